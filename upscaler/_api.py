"""The Python API: the same engine as `upscaler batch`, on images in memory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from numpy.typing import NDArray
from PIL import Image

from ._images.codec import pil_to_pixels, pixels_to_pil
from ._images.jpeg import image_quality, weights_for
from ._pixels.pipeline import output_rows
from ._pixels.rows import Window, collect, from_array
from ._pixels.size import OutputSize, network_passes
from ._pixels.upscale import upscale_pixels
from ._plugins.interface import Backend, BackendOptions
from ._plugins.registry import default_backend, load_backend, nearest_model, plugin_precision

__all__ = ["upscale_array", "upscale_image"]


def upscale_array(
    pixels: NDArray[Any],
    factor: int | None = None,
    backend: str | None = None,
    *,
    scale: float | None = None,
    width: int | None = None,
    height: int | None = None,
    fit: tuple[int, int] | None = None,
    shrink: bool = False,
    tile: int | None = None,
    overlap: int | None = None,
    weights: Path | None = None,
    device: str = "cpu",
    threads: int | None = None,
    precision: str = "auto",
    model: str | None = None,
    jpeg_quality: int | None = None,
) -> NDArray[Any]:
    """Upscale an (H, W) or (H, W, C) uint8/uint16/float32 array (C: 2=LA, 3=RGB, 4=RGBA).

    float32 values are taken to be in [0, 1]. Returns the same dtype and channels. The size
    is `factor` (2, 3 or 4; 3 when no size is given) or one of the sizes of `upscaler batch`:
    `scale` (1 to 8), `width`, `height` or `fit` (width, height), the network at the factor
    that serves it, then an antialiased bicubic resize to the exact size; with `shrink`, a
    larger image is made smaller to `width`, `height` or `fit` (else it keeps its size).
    The backend defaults to `upscaler batch`'s: openvino (bfloat16) where the CPU computes
    bfloat16 natively, else onnx. The first network pass runs the weights `upscaler batch
    --input-kind auto` picks for a JPEG of `jpeg_quality` (as estimated from its quantisation
    tables; None: not a JPEG, the clean weights), the nearest the backend has; `model`
    ("clean", "jpeg", "jpeg-high") names them instead, and a factor without them raises
    BackendError. `weights` (a model of your own) is never switched.
    """
    if factor is not None and (isinstance(factor, bool) or not isinstance(factor, int)):
        raise TypeError(f"factor must be an int (2, 3 or 4), not {factor!r}")
    name = backend or default_backend(device)
    chosen = plugin_precision(name, precision)  # decided once, as for a batch
    clean = BackendOptions(weights=weights, device=device, threads=threads, precision=chosen)

    def first_pass(f: int) -> BackendOptions:
        """The options of the first network pass, at factor `f`: its weights decided once."""
        if weights is not None or model is not None:
            return replace(clean, model=model or "clean")
        nearest = nearest_model(name, f, weights_for(jpeg_quality))
        return replace(clean, model=nearest or "clean")

    if scale is None and width is None and height is None and fit is None:
        f = 3 if factor is None else factor
        return upscale_pixels(pixels, load_backend(name, f, first_pass(f)), tile, overlap)
    if factor is not None:
        raise ValueError("give factor or one of scale, width, height, fit, not both")
    rule = OutputSize(scale=scale, width=width, height=height, fit=fit, shrink=shrink)
    img = pixels[:, :, None] if pixels.ndim == 2 else pixels
    size = rule.size_for(img.shape[1], img.shape[0])
    network_passes((img.shape[1], img.shape[0]), size)  # ValueError beyond what is served

    def backend_for(f: int, first: bool) -> Backend:
        return load_backend(name, f, first_pass(f) if first else clean)

    out = collect(output_rows(Window(from_array(img)).reader(), size, backend_for, tile, overlap))
    return out[:, :, 0] if pixels.ndim == 2 else out


def upscale_image(
    image: Image.Image,
    factor: int | None = None,
    backend: str | None = None,
    **options: object,
) -> Image.Image:
    """Upscale a PIL image; keyword options as for `upscale_array`.

    Palette, CMYK and other modes are converted first (to RGB or RGBA); 16-bit grey
    ("I;16") stays 16-bit. An image read from a JPEG file (Pillow's JpegImageFile, MPO too)
    gives its quality from its quantisation tables, so the weights are picked as `upscaler
    batch` picks them; `jpeg_quality=` or `model=` overrides that.
    """
    if "jpeg_quality" not in options:
        options = {**options, "jpeg_quality": image_quality(image)}
    out = upscale_array(pil_to_pixels(image), factor, backend, **options)  # type: ignore[arg-type]
    return pixels_to_pil(out)
