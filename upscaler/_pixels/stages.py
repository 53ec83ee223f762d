"""The stages of a streamed image: the network (`upscaled`) and the bicubic resize to an exact
size (`resized`), each a `Rows` made band by band from the rows of the stage before.

Results equal the whole-image ones: a band of the network's output is computed from the input
rows it covers plus the backend's halo (the context its tiles get in a whole image, so the
values are the same but for float rounding), and the resize computes each output row from
exactly the input rows and weights that Pillow's resize of the whole image uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .._plugins.interface import Backend
from .canvas import ArrayCanvas
from .resize import BICUBIC_HALO
from .rows import BAND_BYTES, Reader, Rows, Window
from .tiling import plan_tiles
from .upscale import DEFAULT_FEATHER_OVERLAP, upscale_into

__all__ = ["MIN_BAND_ROWS", "across", "coefficients", "down", "resized", "upscaled"]

#: Fewest input rows per band of the network (its halo is recomputed for every band).
MIN_BAND_ROWS = 16

TileCallback = Callable[[int, int], None]


def upscaled(
    source: Reader,
    backend: Backend,
    tile: int | None = None,
    overlap: int | None = None,
    on_tiles: TileCallback | None = None,
) -> Rows:
    """The backend's output of `source`, band by band: each band of input rows is tiled with
    the backend's halo of rows above and below as context (what its tiles get in a whole
    image), so only the band's own output is computed. A backend with no finite halo gets its
    feather overlap as context, and its bands are cut, not blended (its tiles within a band
    are): it computes the context rows' output too, and they are cropped."""
    src, s = source.rows, backend.factor
    halo = backend.halo
    context = max(
        (DEFAULT_FEATHER_OVERLAP if halo is None else halo) if overlap is None else overlap,
        BICUBIC_HALO,
    )
    tile = tile or backend.default_tile
    per_row = src.width * s * s * src.channels * src.dtype.itemsize
    if src.height * per_row <= BAND_BYTES:
        rows = src.height  # one band: the whole image, as `upscale_pixels` does it
    else:  # whole tiles per band where they fit (the tiles of a band take its height)
        most = max(MIN_BAND_ROWS, BAND_BYTES // per_row - (2 * context if halo is None else 0))
        rows = _even(src.height, most // tile * tile if most >= tile else most)
    spans = [(top, min(top + rows, src.height)) for top in range(0, src.height, rows)]
    padded = [(max(a - context, 0), min(b + context, src.height)) for a, b in spans]
    cores = [
        None if halo is None else (a - lo, b - lo)
        for (a, b), (lo, _) in zip(spans, padded, strict=True)
    ]
    counts = [
        len(plan_tiles(hi - lo, src.width, tile, context, band))
        for (lo, hi), band in zip(padded, cores, strict=True)
    ]
    total = sum(counts)

    def bands() -> Iterator[NDArray[Any]]:
        done = 0
        for (a, b), (lo, hi), band, count in zip(spans, padded, cores, counts, strict=True):
            pixels = source.get(lo, hi)
            made = (hi - lo) if band is None else (b - a)
            canvas = ArrayCanvas(np.zeros((made * s, src.width * s, src.channels), src.dtype))
            progress = None if on_tiles is None else _offset(on_tiles, done, total)
            upscale_into(canvas, pixels, backend, tile, overlap, progress, band)
            done += count
            yield canvas.array if band is not None else canvas.array[(a - lo) * s : (b - lo) * s]
            del pixels, canvas  # not held while the next band is made (see `rows`)

    return Rows(src.width * s, src.height * s, src.channels, src.dtype, bands())


def _even(height: int, most: int) -> int:
    """Rows per band for `height` rows, at most `most` (one band if the image fits): as
    even as can be, so that no band is a sliver (each band's tiles take its height)."""
    if height <= most:
        return height
    bands = -(-height // most)
    return -(-height // bands)


def _offset(on_tiles: TileCallback, before: int, total: int) -> TileCallback:
    return lambda done, _: on_tiles(before + done, total)


def resized(source: Reader, size: tuple[int, int]) -> Rows:
    """`source` resized to `size` (width, height) with Pillow's antialiased bicubic, in
    float32 per channel, as `resize.resize_pixels` does the whole image: integer images are
    rounded back to their type, float32 ones left unrounded. Pillow resizes across, then down;
    so does this: across with Pillow on each band as it comes, down with Pillow's weights
    (`_coefficients`) applied to the rows of the first pass that each band of output needs,
    in the same order and precision, so the values are Pillow's to the bit (ties included)."""
    src = source.rows
    first_pass = across(source, size[0])
    window = Window(first_pass)
    rows = first_pass.band_rows(size[0] * src.channels * 32)  # float64 sums and their terms
    scale = src.height / size[1]

    def bands() -> Iterator[NDArray[Any]]:
        for j0 in range(0, size[1], rows):
            j1 = min(j0 + rows, size[1])
            first, count, weights = coefficients(src.height, scale, j0, j1)
            top = int(first.min())
            plane = window.get(top, int((first + count).max()))
            yield _back_to(down(plane, first - top, weights), src.dtype)
            del plane

    return Rows(size[0], size[1], src.channels, src.dtype, bands())


def coefficients(
    in_size: int, scale: float, j0: int, j1: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """(first input row, rows used, weights) of output rows j0..j1 of a bicubic resize of
    `in_size` rows by 1/`scale`: Pillow's `precompute_coeffs` (Resample.c) for the whole
    image, weights padded with zeros to one width (trailing zero taps change no sum)."""
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    ss = 1.0 / filterscale
    centers = (np.arange(j0, j1, dtype=np.float64) + 0.5) * scale
    xmin = np.maximum((centers - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum((centers + support + 0.5).astype(np.int64), in_size) - xmin
    taps = int(xmax.max())
    x = np.arange(taps, dtype=np.float64)
    w = _bicubic((x[None, :] + xmin[:, None] - centers[:, None] + 0.5) * ss)
    w[x[None, :] >= xmax[:, None]] = 0.0
    total = np.zeros(len(centers))
    for t in range(taps):  # Pillow sums the weights in order
        total += w[:, t]
    w = np.divide(w, total[:, None], out=w, where=total[:, None] != 0.0)
    return xmin, xmax, w


def _bicubic(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Pillow's bicubic filter, a = -0.5, as its C code evaluates it."""
    a, x = -0.5, np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def down(
    plane: NDArray[np.float32], first: NDArray[np.int64], weights: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Rows `first + t` of `plane` weighted by `weights[:, t]`, summed in order in float64
    (Pillow's passes on float images: a product of the float32 value and the double weight,
    added to a double), stored as float32."""
    acc = np.zeros((len(first), plane.shape[1], plane.shape[2]), np.float64)
    last = plane.shape[0] - 1
    for t in range(weights.shape[1]):  # padding taps (weight 0) read a row that is there
        rows = np.minimum(first + t, last)
        acc += plane[rows] * weights[:, t, None, None]  # float32 x float64: a double product
    return acc.astype(np.float32)


def across(source: Reader, width: int) -> Rows:
    """The first pass of `resized`: every row resized across to `width` by Pillow (float32
    per channel), as its resize of the whole image does first: row by row, so bands give the
    whole image's values."""
    src = source.rows
    step = src.band_rows(max(src.width, width) * src.channels * 16)  # float32 and copies

    def bands() -> Iterator[NDArray[Any]]:
        for top in range(0, src.height, step):
            band = source.get(top, min(top + step, src.height)).astype(np.float32)
            yield band if width == src.width else _per_channel(band, width)
            del band

    return Rows(width, src.height, src.channels, np.dtype(np.float32), bands())


def _per_channel(planes: NDArray[np.float32], width: int) -> NDArray[np.float32]:
    """Pillow's BICUBIC resize of each (h, w) float32 channel of `planes` to `width`."""
    h = planes.shape[0]
    out = np.empty((h, width, planes.shape[2]), np.float32)
    for ch in range(planes.shape[2]):
        plane = Image.fromarray(np.ascontiguousarray(planes[:, :, ch]), mode="F")
        out[:, :, ch] = np.asarray(plane.resize((width, h), Image.Resampling.BICUBIC))
    return out


def _back_to(values: NDArray[np.float32], dtype: np.dtype[Any]) -> NDArray[Any]:
    if dtype == np.float32:
        return values
    top = float(np.iinfo(dtype).max)
    return np.clip(np.rint(values), 0.0, top).astype(dtype)
