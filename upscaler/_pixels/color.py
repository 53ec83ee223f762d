"""Colour conversions shared by inference and training.

YCbCr here is full-range BT.601 (the JPEG/JFIF definition) on float32 values in [0, 1]: the
network sees Y = 0.299 R + 0.587 G + 0.114 B. Applied with `cv2.transform` and our own
matrices rather than `cv2.cvtColor`, whose inverse uses rounded constants (errors of 2e-4,
i.e. 14 levels in 16-bit images): here the inverse is the exact inverse of the forward
matrix, and `cv2.transform` is about 9x faster than the same product in numpy.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Float = NDArray[np.float32]

_FORWARD = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)
_OFFSET = np.array([0.0, 0.5, 0.5])
_RGB_TO_YCC = _FORWARD.T.astype(np.float32)
_YCC_TO_RGB = np.linalg.inv(_FORWARD).T.astype(np.float32)
_OFFSET32 = _OFFSET.astype(np.float32)
# The same maps as 3x4 affine matrices for cv2.transform: out = M[:, :3] @ pixel + M[:, 3].
_RGB_TO_YCC_AFFINE = np.hstack([_FORWARD, _OFFSET[:, None]]).astype(np.float32)
_INVERSE = np.linalg.inv(_FORWARD)
_YCC_TO_RGB_AFFINE = np.hstack([_INVERSE, -(_INVERSE @ _OFFSET)[:, None]]).astype(np.float32)


def rgb_to_ycbcr(rgb: Float) -> Float:
    """(..., 3) RGB in [0, 1] -> (..., 3) Y, Cb, Cr in [0, 1]."""
    return _affine(rgb, _RGB_TO_YCC_AFFINE)


def ycbcr_to_rgb(ycc: Float) -> Float:
    """Inverse of `rgb_to_ycbcr`; values may leave [0, 1], the caller clips."""
    return _affine(ycc, _YCC_TO_RGB_AFFINE)


def _affine(pixels: Float, matrix: Float) -> Float:
    """`matrix` applied to every (..., 3) pixel, as rows of one image for cv2.transform."""
    flat = np.ascontiguousarray(pixels, dtype=np.float32).reshape(-1, 1, 3)
    return np.asarray(cv2.transform(flat, matrix), dtype=np.float32).reshape(pixels.shape)


def rgb_to_y(rgb: Float) -> Float:
    """Luma only: (..., 3) -> (...)."""
    return np.asarray(rgb @ _RGB_TO_YCC[:, 0], dtype=np.float32)


def to_uint8(image: NDArray[Any]) -> NDArray[np.uint8]:
    """8-bit copy of a uint16 or float32 ([0, 1]) image, rounded; uint8 as it is."""
    if image.dtype == np.uint8:
        return image
    scale = 255.0 if image.dtype == np.float32 else 1 / 257.0
    return np.asarray(np.clip(np.rint(image * scale), 0, 255), dtype=np.uint8)
