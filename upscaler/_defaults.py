"""Every default of the batch layer that more than one module (or the CLI) needs, in one place.

Kept free of heavy imports: the command line reads it to build its options.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_ENGINE",
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUALITY",
    "ENGINES",
]

#: Where images are processed: in this machine's processes, or on a Dask cluster.
ENGINES = ("local", "dask")
DEFAULT_ENGINE = "local"
#: Default --max-pixels: 400 megapixels of output (6000x4000 at x4 is 384).
DEFAULT_MAX_PIXELS = 400_000_000
#: Default --max-frames: longer animations and multi-page files are refused (an animation's
#: output frames are all in memory while Pillow writes them).
DEFAULT_MAX_FRAMES = 300
#: JPEG/WebP quality.
DEFAULT_QUALITY = 95
