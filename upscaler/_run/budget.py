"""How much memory an image will take, from its header, and the per-process budget that lets
images run at the same time only while their estimates fit.

Every process that runs jobs (the local engine's threads, `--jobs` processes, Dask workers)
holds its images' estimates against IN_FLIGHT_BYTES: an image starts when the ones running
leave room for it (one always runs). The estimate follows the pipeline: what is decoded whole
(7 bytes a pixel while Pillow decodes and hands it over) or libvips's strips; each network
pass's band of output and its tiles' float work; the resize's bands; and what the encoder
holds (a PNG or JPEG: a strip or two; anything else: the whole output, as an array and as
Pillow's copy). Animations count one frame at a time, plus every frame for WebP's writer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from .._pixels.rows import BAND_BYTES
from .._pixels.size import OutputSize, network_passes

__all__ = ["IN_FLIGHT_BYTES", "Budget", "estimate_bytes"]

#: Estimated bytes of the images in flight at once in one process (a larger one runs alone).
IN_FLIGHT_BYTES = 128 << 20
#: libvips's buffers while it decodes in strips: a few megabytes and some rows of the image
#: (its line cache and strip buffers, 128 rows at a time).
_VIPS_BASE, _VIPS_PER_COLUMN = 8 << 20, 2400
#: What the PNG and JPEG band writers hold: a strip or two of rows and their encoding.
_BAND_WRITER = 8 << 20
#: Float work of the network's tiles beside their band (batches of MAX_BATCH_PIXELS).
_TILE_BYTES = 24 << 20


def estimate_bytes(path: Path, size: OutputSize, stream_above: int, channels: int = 4) -> int:
    """The memory one image of `path` is expected to take while it is processed (0 when its
    header cannot be read: decoding will say why)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            frames = int(getattr(im, "n_frames", 1)) if im.format != "MPO" else 1
            fmt = im.format
    except Exception:
        return 0
    try:
        ow, oh = size.size_for(w, h)
        passes = network_passes((w, h), (ow, oh))
    except ValueError:
        return 0
    out = ow * oh
    if frames > 1:  # decoded whole, upscaled and collected a frame at a time
        held = out * channels * frames if path.suffix.lower() == ".webp" else 0
        return w * h * 7 + _stages(w, h, passes, ow, oh, channels) + out * channels * 2 + held
    streamed_in = w * h > stream_above and fmt in ("JPEG", "MPO", "PNG", "TIFF")
    cost = _vips(w) if streamed_in else w * h * 7
    cost += _stages(w, h, passes, ow, oh, channels)
    if path.suffix.lower() in (".png", ".jpg", ".jpeg"):  # written band by band
        cost += _BAND_WRITER
    else:
        cost += out * (channels + 4)
    return cost


def _vips(width: int) -> int:
    return _VIPS_BASE + width * _VIPS_PER_COLUMN


def _stages(w: int, h: int, passes: tuple[int, ...], ow: int, oh: int, channels: int) -> int:
    """The bands and tile work of the network passes and the resize."""
    cost, pixels = 0, w * h
    for factor in passes:
        pixels *= factor * factor
        cost += min(pixels * channels, BAND_BYTES) + min(pixels * channels * 16, _TILE_BYTES)
    if pixels != ow * oh:  # resized to the exact size
        cost += min(ow * oh * channels * 8, 2 * BAND_BYTES)
    return cost


class Budget:
    """Bytes held by the images running in this process, at most `total` unless one image
    alone is larger (it then runs alone)."""

    def __init__(self, total: int) -> None:
        self.total, self.used, self.running = total, 0, 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        """Wait until `nbytes` fit beside the images running (or none runs), hold them."""
        with self._changed:
            self._changed.wait_for(lambda: self.running == 0 or self.used + nbytes <= self.total)
            self.used, self.running = self.used + nbytes, self.running + 1
        try:
            yield
        finally:
            with self._changed:
                self.used, self.running = self.used - nbytes, self.running - 1
                self._changed.notify_all()


#: This process's budget, shared by every thread that runs jobs.
BUDGET = Budget(IN_FLIGHT_BYTES)
