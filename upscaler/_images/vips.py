"""libvips (pyvips) at the decoding end of a streamed image: rows decoded in strips.

Why libvips: it is the one maintained Python-reachable library that decodes JPEG, PNG and
TIFF in strips on demand (sequential access), each row once. (Outputs are encoded by our own
band writers, `png` and `jpegstrips`: libvips encodes only from a file or a byte stream.)

Importing this module loads libvips (about 30 ms); only images large enough to stream do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyvips
from numpy.typing import NDArray

from .._errors import ImageError
from .._pixels.rows import Rows

__all__ = ["read_rows"]

# One libvips thread per image: our images already run one per core, and libvips's own
# threads buffer more strips (a third more peak memory for the same speed, measured).
pyvips.concurrency_set(1)
pyvips.cache_set_max(0)

_FORMATS = {"uchar": np.uint8, "ushort": np.uint16}
#: Input rows fetched from libvips at a time (then cut into the stages' own bands).
_FETCH_BYTES = 2 << 20


def read_rows(path: str) -> Rows:
    """The pixels of a JPEG, PNG or TIFF file as a stream of row bands, decoded by libvips in
    strips (sequential access: each row decoded once). A truncated or corrupt file raises
    ImageError when the stream reaches the bad part."""
    try:
        image = pyvips.Image.new_from_file(path, access="sequential", fail_on="truncated")
    except pyvips.Error as exc:
        raise ImageError(_reason(exc)) from exc
    dtype = _FORMATS.get(image.format)
    if dtype is None:
        raise ImageError(f"libvips reads it as {image.format} pixels, not 8 or 16 bits")
    width, height, bands = image.width, image.height, image.bands
    step = max(1, _FETCH_BYTES // (width * bands * np.dtype(dtype).itemsize))

    def strips() -> Iterator[NDArray[Any]]:
        region = pyvips.Region.new(image)
        for top in range(0, height, step):
            h = min(step, height - top)
            try:
                data = region.fetch(0, top, width, h)
            except pyvips.Error as exc:
                raise ImageError(_reason(exc)) from exc
            yield np.frombuffer(data, dtype).reshape(h, width, bands)

    return Rows(width, height, bands, np.dtype(dtype), strips())


def _reason(exc: pyvips.Error) -> str:
    text = " ".join(str(exc.detail or exc.message).split())
    if "truncat" in text.lower() or "premature" in text.lower():
        return "truncated image file"
    return f"corrupt image data ({text[:200]})"
