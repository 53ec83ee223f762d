"""Upscaling pixels: colour handling, tiling, the backend call and stitching.

The core owns colour, alpha and bit depth: "y" backends get luma (chroma is upscaled
here with bicubic), alpha always goes through bicubic. The output is assembled directly in
the input's integer type, tile by tile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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
) -> None:
    """Upscale `pixels` into a zeroed canvas of the output's shape and dtype."""
    img = pixels[:, :, None] if pixels.ndim == 2 else pixels
    scale = _full_scale(img.dtype)
    h, w, _ = img.shape
    s = backend.factor
    tile = tile or backend.default_tile
    overlap = max(_default_overlap(backend) if overlap is None else overlap, BICUBIC_HALO)
    tiles = plan_tiles(h, w, tile, overlap)
    feather = Feather(h, w, tile, overlap, s) if backend.halo is None else None
    done = 0
    for group in batches(tiles, MAX_BATCH_PIXELS):
        batch = np.stack(
            [img[t.y.pad_start : t.y.pad_stop, t.x.pad_start : t.x.pad_stop] for t in group]
        )
        result = _upscale_batch(batch.astype(np.float32) / np.float32(scale), backend)
        for t, r in zip(group, result, strict=True):
            _place(out, t, r, s, scale, feather)
        done += len(group)
        if on_tiles:
            on_tiles(done, len(tiles))


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


def _upscale_batch(batch: Float, backend: Backend) -> Float:
    """(B, H, W, C) in [0, 1] -> (B, H*s, W*s, C): colour by the backend, alpha by bicubic."""
    s = backend.factor
    n_colour = 3 if batch.shape[3] >= 3 else 1
    colour, alpha = batch[..., :n_colour], batch[..., n_colour:]
    if backend.channels == "y" and n_colour == 3:
        ycc = rgb_to_ycbcr(colour)
        y = _call(backend, ycc[..., :1])
        colour_out = ycbcr_to_rgb(_merge(y, upscale_chroma(ycc[..., 1:], s)))
    else:
        colour_out = _call(backend, colour)
    if alpha.shape[3] == 0:
        return colour_out
    return np.concatenate([colour_out, bicubic_upscale(alpha, s)], axis=-1)


def _merge(y: Float, chroma: Float) -> Float:
    """(B, H, W, 1) and (B, H, W, 2) -> (B, H, W, 3); cv2.merge is 4x faster than concatenate."""
    merged = [cv2.merge([y[i], chroma[i]]) for i in range(len(y))]
    return merged[0][None] if len(merged) == 1 else np.stack(merged)


def _call(backend: Backend, tiles: Float) -> Float:
    b, h, w, c = tiles.shape
    if getattr(backend, "thread_safe", False):
        out = np.asarray(backend.upscale(np.ascontiguousarray(tiles)), dtype=np.float32)
    else:
        with _ONE_AT_A_TIME:
            out = np.asarray(backend.upscale(np.ascontiguousarray(tiles)), dtype=np.float32)
    expected = (b, h * backend.factor, w * backend.factor, c)
    if out.shape != expected:
        raise BackendError(f"backend returned shape {out.shape}, expected {expected}")
    return out


def _place(
    out: Canvas, t: Tile, result: Float, s: int, scale: float, feather: Feather | None
) -> None:
    """Write one tile's output: its core (exact halo) or a feathered blend (no halo)."""
    if feather is None:
        oy, ox = (t.y.start - t.y.pad_start) * s, (t.x.start - t.x.pad_start) * s
        core = result[oy : oy + (t.y.stop - t.y.start) * s, ox : ox + (t.x.stop - t.x.start) * s]
        out.write(t.y.start * s, t.x.start * s, _to_dtype(core, scale, out.dtype))
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
