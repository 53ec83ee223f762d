"""Image quality metrics with the project's protocol (the ESPCN paper's and BasicSR's).

PSNR on the Y channel of BT.601 studio-swing YCbCr of 8-bit images, after cropping
`crop` pixels from every border; a greyscale image is its own Y.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["psnr_y", "y_channel"]

_STUDIO_Y = np.array([65.481, 128.553, 24.966]) / 255.0


def y_channel(image: NDArray[np.generic]) -> NDArray[np.float64]:
    """BT.601 studio-swing Y (16..235) of an 8-bit RGB image; a grey image as it is."""
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim == 2:
        return arr
    return 16.0 + arr[..., :3] @ _STUDIO_Y


def psnr_y(output: NDArray[np.generic], reference: NDArray[np.generic], crop: int) -> float:
    """PSNR in dB between two 8-bit images of equal size, on Y, borders cropped."""
    if output.shape != reference.shape:
        raise ValueError(f"shapes differ: {output.shape} vs {reference.shape}")
    a, b = y_channel(output), y_channel(reference)
    if crop:
        a, b = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))
