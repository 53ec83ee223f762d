"""Upscaling pixels: colour handling, tiling, the backend call and stitching.

The core owns colour, alpha and bit depth: "y" backends get luma (chroma is upscaled
here with bicubic), alpha always goes through bicubic. The output is assembled directly in
the input's integer type, tile by tile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from .._errors import BackendError
from .._plugins.interface import Backend
from .canvas import ArrayCanvas, Canvas
from .color import rgb_to_ycbcr, ycbcr_to_rgb
from .resize import BICUBIC_HALO, bicubic_upscale, upscale_chroma
from .tiling import Feather, Tile, batches, plan_tiles

__all__ = ["DEFAULT_FEATHER_OVERLAP", "upscale_into", "upscale_pixels"]

Float = NDArray[np.float32]
#: Largest backend call, in padded input pixels (about 0.5 MB of float32 input, 10 MB of
#: float32 colour output at x3; a 256-pixel tile with its halo is one call by itself).
MAX_BATCH_PIXELS = 1 << 15
#: Overlap used for backends with no finite halo when the user gives none.
DEFAULT_FEATHER_OVERLAP = 16
#: Held around calls of backends that do not declare `thread_safe`.
_ONE_AT_A_TIME = threading.Lock()


def upscale_pixels(
    pixels: NDArray[Any],
    backend: Backend,
    tile: int | None = None,
    overlap: int | None = None,
    on_tiles: Callable[[int, int], None] | None = None,
) -> NDArray[Any]:
    """Upscale (H, W) or (H, W, C) uint8/uint16/float32 pixels; same dtype and channels.

    `on_tiles(done, total)` is called after each backend call.
    """
    h, w = pixels.shape[:2]
    c = 1 if pixels.ndim == 2 else pixels.shape[2]
    canvas = ArrayCanvas(np.zeros((h * backend.factor, w * backend.factor, c), pixels.dtype))
    upscale_into(canvas, pixels, backend, tile, overlap, on_tiles)
    return canvas.array[:, :, 0] if pixels.ndim == 2 else canvas.array


def upscale_into(
    out: Canvas,
    pixels: NDArray[Any],
    backend: Backend,
    tile: int | None = None,
    overlap: int | None = None,
    on_tiles: Callable[[int, int], None] | None = None,
    rows: tuple[int, int] | None = None,
) -> None:
    """Upscale `pixels` into a zeroed canvas of the output's shape and dtype; with `rows` =
    (a, b), only rows a..b (the canvas holds their output), the rows around them serving
    as context (a backend with a finite halo only: the others blend whole tiles).

    A tile with at least the backend's halo of pixels around its core on every side goes to
    the backend's `upscale_core` where it has one (only the core's output is computed);
    the others, at the image's edges, to `upscale` with their whole padded box."""
    img = pixels[:, :, None] if pixels.ndim == 2 else pixels
    scale = _full_scale(img.dtype)
    h, w, _ = img.shape
    s = backend.factor
    tile = tile or backend.default_tile
    overlap = max(_default_overlap(backend) if overlap is None else overlap, BICUBIC_HALO)
    if rows is not None and backend.halo is None:
        raise ValueError("only a backend with a finite halo upscales a band with context")
    top = 0 if rows is None else rows[0]
    tiles = plan_tiles(h, w, tile, overlap, rows)
    feather = Feather(h, w, tile, overlap, s) if backend.halo is None else None
    core = _core_runner(backend)
    jobs = [_Job(t, _trim(t, backend.halo) if core else 0) for t in tiles]
    done = 0
    for group in batches(jobs, MAX_BATCH_PIXELS, key=lambda j: j.kind):
        trim = group[0].trim
        batch = np.stack([img[j.box] for j in group]).astype(np.float32) / np.float32(scale)
        result = _upscale_batch(batch, backend, core if trim else None, trim)
        for j, r in zip(group, result, strict=True):
            if trim:  # the core's output, exactly
                out.write(
                    (j.tile.y.start - top) * s, j.tile.x.start * s, _to_dtype(r, scale, out.dtype)
                )
            else:
                _place(out, j.tile, r, s, scale, feather, top)
        done += len(group)
        if on_tiles:
            on_tiles(done, len(tiles))


@dataclass(frozen=True)
class _Job:
    """A tile and how much context the backend gets around its core: `trim` pixels on every
    side (its halo, for `upscale_core`), or 0 for its whole padded box (`upscale`)."""

    tile: Tile
    trim: int

    @property
    def box(self) -> tuple[slice, slice]:
        """The input rows and columns the backend gets."""
        t, k = self.tile, self.trim
        if k:
            return slice(t.y.start - k, t.y.stop + k), slice(t.x.start - k, t.x.stop + k)
        return slice(t.y.pad_start, t.y.pad_stop), slice(t.x.pad_start, t.x.pad_stop)

    @property
    def padded_shape(self) -> tuple[int, int]:
        ys, xs = self.box
        return ys.stop - ys.start, xs.stop - xs.start

    @property
    def kind(self) -> tuple[int, int, int]:
        """What a batch shares: the shape the backend gets and the trim."""
        return (*self.padded_shape, self.trim)


def _trim(t: Tile, halo: int | None) -> int:
    """The halo where the tile has that much context on every side (inside the image),
    else 0."""
    if halo is None:
        return 0
    inside = (
        t.y.start - t.y.pad_start >= halo
        and t.y.pad_stop - t.y.stop >= halo
        and t.x.start - t.x.pad_start >= halo
        and t.x.pad_stop - t.x.stop >= halo
    )
    return halo if inside else 0


def _core_runner(backend: Backend) -> Callable[[Float], Float] | None:
    """The backend's `upscale_core` (optional: see `Backend`), or None."""
    if backend.halo is None:
        return None
    runner: Callable[[Float], Float] | None = getattr(backend, "upscale_core", None)
    return runner


def _default_overlap(backend: Backend) -> int:
    return DEFAULT_FEATHER_OVERLAP if backend.halo is None else backend.halo


def _full_scale(dtype: np.dtype[np.generic]) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if dtype == np.float32:
        return 1.0
    raise TypeError(f"pixels must be uint8, uint16 or float32, not {dtype}")


def _upscale_batch(
    batch: Float, backend: Backend, core: Callable[[Float], Float] | None = None, trim: int = 0
) -> Float:
    """(B, H, W, C) in [0, 1] -> (B, H*s, W*s, C): colour by the backend, alpha by bicubic;
    with `core` (the backend's `upscale_core`, given with its `trim`), only the output of
    the tiles' cores, `trim` pixels in from every side: (B, (H - 2 trim)*s, (W - 2 trim)*s, C)."""
    s = backend.factor
    n_colour = 3 if batch.shape[3] >= 3 else 1
    colour, alpha = batch[..., :n_colour], batch[..., n_colour:]
    method = backend.upscale if core is None else core
    if backend.channels == "y" and n_colour == 3:
        ycc = rgb_to_ycbcr(colour)
        y = _call(method, ycc[..., :1], backend, trim)
        colour_out = ycbcr_to_rgb(_merge(y, _cropped(upscale_chroma(ycc[..., 1:], s), trim * s)))
    else:
        colour_out = _call(method, colour, backend, trim)
    if alpha.shape[3] == 0:
        return colour_out
    return np.concatenate([colour_out, _cropped(bicubic_upscale(alpha, s), trim * s)], axis=-1)


def _cropped(planes: Float, k: int) -> Float:
    """(B, H, W, C) without `k` pixels on every side."""
    return planes[:, k:-k, k:-k] if k else planes


def _merge(y: Float, chroma: Float) -> Float:
    """(B, H, W, 1) and (B, H, W, 2) -> (B, H, W, 3); cv2.merge is 4x faster than concatenate."""
    merged = [cv2.merge([y[i], chroma[i]]) for i in range(len(y))]
    return merged[0][None] if len(merged) == 1 else np.stack(merged)


def _call(method: Callable[[Float], Float], tiles: Float, backend: Backend, trim: int) -> Float:
    """`backend.upscale` (trim 0) or its `upscale_core` (trim = its halo) on `tiles`, its
    output's shape checked."""
    b, h, w, c = tiles.shape
    if getattr(backend, "thread_safe", False):
        out = np.asarray(method(np.ascontiguousarray(tiles)), dtype=np.float32)
    else:
        with _ONE_AT_A_TIME:
            out = np.asarray(method(np.ascontiguousarray(tiles)), dtype=np.float32)
    s = backend.factor
    expected = (b, (h - 2 * trim) * s, (w - 2 * trim) * s, c)
    if out.shape != expected:
        raise BackendError(f"backend returned shape {out.shape}, expected {expected}")
    return out


def _place(
    out: Canvas,
    t: Tile,
    result: Float,
    s: int,
    scale: float,
    feather: Feather | None,
    top: int = 0,
) -> None:
    """Write one tile's output from its padded box: its core (exact halo) or a feathered
    blend (no halo); the canvas starts at input row `top`."""
    if feather is None:
        oy, ox = (t.y.start - t.y.pad_start) * s, (t.x.start - t.x.pad_start) * s
        core = result[oy : oy + (t.y.stop - t.y.start) * s, ox : ox + (t.x.stop - t.x.start) * s]
        out.write((t.y.start - top) * s, t.x.start * s, _to_dtype(core, scale, out.dtype))
        return
    y, x = t.y.pad_start * s, t.x.pad_start * s
    region = out.read(y, x, result.shape[0], result.shape[1]).astype(np.float32) / np.float32(scale)
    a = feather.alpha(t)
    out.write(y, x, _to_dtype(region * (1 - a) + np.clip(result, 0, 1) * a, scale, out.dtype))


def _to_dtype(values: NDArray[Any], scale: float, dtype: np.dtype[Any]) -> NDArray[Any]:
    """Clip to [0, 1] and scale to `dtype`, rounding half to even (as np.rint)."""
    if dtype == np.float32:
        return np.asarray(np.clip(values, 0.0, 1.0))
    # One pass instead of numpy's four: OpenCV's saturating conversion rounds like np.rint.
    depth = cv2.CV_8U if dtype == np.uint8 else cv2.CV_16U
    out = cv2.addWeighted(values, scale, values, 0.0, 0.0, dtype=depth)
    return np.asarray(out).reshape(values.shape)
