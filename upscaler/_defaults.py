"""Every default of the batch layer that more than one module (or the CLI) needs, in one place.

Kept free of heavy imports: the command line reads it to build its options.
"""

from __future__ import annotations

import os

__all__ = [
    "DEFAULT_ENGINE",
    "DEFAULT_MAX_DECODE_PIXELS",
    "STREAM_ABOVE_PIXELS",
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUALITY",
    "ENGINES",
    "THUMB_SIDE",
]

#: Where images are processed: in this machine's processes, or on a Dask cluster.
ENGINES = ("local", "dask")
DEFAULT_ENGINE = "local"
#: Default --max-pixels: 2 gigapixels of output. Memory no longer grows with the output (PNG
#: and JPEG are written in strips; other formats are held whole, bounded by
#: --max-decode-pixels); what limits it is the disk (a few GB a file) and time (about 2
#: minutes a gigapixel on 2 cores), and formats: JPEG takes at most 65,535 pixels a side.
DEFAULT_MAX_PIXELS = 2_000_000_000
#: Default --max-frames: longer animations and multi-page files are refused (WebP's writer
#: holds every output frame).
DEFAULT_MAX_FRAMES = 300
#: Default --max-decode-pixels: the largest picture decoded or written whole (progressive JPEG,
#: interlaced PNG, GIF, WebP, HEIF, JPEG XL, frames and pages...), about 7 bytes a pixel.
DEFAULT_MAX_DECODE_PIXELS = 50_000_000
#: Images of more pixels than this are decoded in strips where the format allows it, and
#: JPEG outputs encoded in strips; smaller ones are decoded and encoded whole (faster to
#: start, and never more than about 15 MB each). UPSCALER_STREAM_ABOVE_PIXELS changes it: the
#: tests stream small images with it.
STREAM_ABOVE_PIXELS = int(os.environ.get("UPSCALER_STREAM_ABOVE_PIXELS", 1 << 21))
#: JPEG/WebP quality.
DEFAULT_QUALITY = 95
#: Longest side of a thumbnail of the HTML report, in pixels.
THUMB_SIDE = 160
