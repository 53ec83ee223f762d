"""The Python API: the same engine as `upscaler batch`, on images in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from numpy.typing import NDArray
from PIL import Image

from ._backend import BackendOptions
from ._codec import pil_to_pixels, pixels_to_pil
from ._precision import default_backend
from ._registry import load_backend
from ._upscale import upscale_pixels

__all__ = ["upscale_array", "upscale_image"]


def upscale_array(
    pixels: NDArray[Any],
    factor: int = 3,
    backend: str | None = None,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    weights: Path | None = None,
    device: str = "cpu",
    threads: int | None = None,
    precision: str = "auto",
    model: str = "clean",
) -> NDArray[Any]:
    """Upscale an (H, W) or (H, W, C) uint8/uint16/float32 array (C: 2=LA, 3=RGB, 4=RGBA).

    float32 values are taken to be in [0, 1]. Returns the same dtype and channels. The
    backend defaults to `upscaler batch`'s: openvino (bfloat16) where the CPU computes
    bfloat16 natively, else onnx. `model="jpeg"` runs the weights trained for JPEG inputs
    (pixels carry no file to tell: say so for pixels decoded from a JPEG); a factor without
    them raises BackendError.
    """
    if isinstance(factor, bool) or not isinstance(factor, int):
        raise TypeError(f"factor must be an int (2, 3 or 4), not {factor!r}")
    options = BackendOptions(
        weights=weights, device=device, threads=threads, precision=precision, model=model
    )
    loaded = load_backend(backend or default_backend(device), factor, options)
    return upscale_pixels(pixels, loaded, tile, overlap)


def upscale_image(
    image: Image.Image,
    factor: int = 3,
    backend: str | None = None,
    **options: object,
) -> Image.Image:
    """Upscale a PIL image; keyword options as for `upscale_array`.

    Palette, CMYK and other modes are converted first (to RGB or RGBA); 16-bit grey
    ("I;16") stays 16-bit.
    """
    out = upscale_array(pil_to_pixels(image), factor, backend, **options)  # type: ignore[arg-type]
    return pixels_to_pil(out)
