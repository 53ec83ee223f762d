"""Bicubic resampling with Pillow's kernel (a = -0.5, antialiased when shrinking).

This is the kernel of MATLAB's `imresize`, which made the benchmark LR images and which
the published bicubic numbers use; OpenCV's INTER_CUBIC (a = -0.75) is a different kernel.
It serves where speed matters more than the kernel: the chroma planes beside a network's
luma (`upscale_chroma`), about 5x faster than Pillow on float planes.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

__all__ = ["BICUBIC_HALO", "bicubic_resize", "bicubic_upscale", "resize_pixels", "upscale_chroma"]

Float = NDArray[np.float32]

#: Input pixels on each side that one upscaled pixel depends on.
BICUBIC_HALO = 2


def bicubic_upscale(planes: Float, factor: int) -> Float:
    """(..., H, W, C) float32 -> (..., H*factor, W*factor, C), each plane resized alone."""
    h, w = planes.shape[-3:-1]
    return bicubic_resize(planes, (w * factor, h * factor))


def resize_pixels(pixels: NDArray[Any], size: tuple[int, int]) -> NDArray[Any]:
    """An (H, W) or (H, W, C) uint8/uint16 image resized to `size` = (width, height) with
    antialiased bicubic, in float, rounded back to its type (a network output to the exact
    size asked for)."""
    planes = pixels.astype(np.float32)
    out = bicubic_resize(planes[..., None] if pixels.ndim == 2 else planes, size)
    top = float(np.iinfo(pixels.dtype).max)
    out = np.clip(np.rint(out), 0.0, top).astype(pixels.dtype)
    return out[..., 0] if pixels.ndim == 2 else out


def bicubic_resize(planes: Float, size: tuple[int, int]) -> Float:
    """Resize (..., H, W, C) float32 planes to `size` = (width, height)."""
    lead, (h, w, c) = planes.shape[:-3], planes.shape[-3:]
    flat = np.ascontiguousarray(planes, dtype=np.float32).reshape(-1, h, w, c)
    out = np.empty((flat.shape[0], size[1], size[0], c), np.float32)
    for i in range(flat.shape[0]):
        for ch in range(c):
            plane = Image.fromarray(flat[i, :, :, ch], mode="F")
            out[i, :, :, ch] = np.asarray(plane.resize(size, Image.Resampling.BICUBIC))
    return out.reshape(*lead, size[1], size[0], c)


def upscale_chroma(planes: Float, factor: int) -> Float:
    """(B, H, W, C) float32 -> (B, H*factor, W*factor, C) with OpenCV's bicubic (same halo)."""
    b, h, w, c = planes.shape
    out = np.empty((b, h * factor, w * factor, c), np.float32)
    for i in range(b):
        out[i] = cv2.resize(
            planes[i], (w * factor, h * factor), interpolation=cv2.INTER_CUBIC
        ).reshape(h * factor, w * factor, c)
    return out
