"""upscaler: batch photo upscaling with a sub-pixel convolutional network (ESPCN).

Importing the package is cheap; the API functions load their modules on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

__version__ = "0.1.0"
__all__ = [
    "Backend",
    "BackendError",
    "BackendOptions",
    "BackendPlugin",
    "ImageError",
    "UpscalerError",
    "__version__",
    "psnr_y",
    "upscale_array",
    "upscale_image",
]

if _TYPE_CHECKING:
    from ._api import upscale_array, upscale_image
    from ._errors import BackendError, ImageError, UpscalerError
    from ._pixels.metrics import psnr_y
    from ._plugins.interface import Backend, BackendOptions, BackendPlugin

_LAZY = {
    "upscale_array": "_api",
    "upscale_image": "_api",
    "Backend": "_plugins.interface",
    "BackendOptions": "_plugins.interface",
    "BackendPlugin": "_plugins.interface",
    "BackendError": "_errors",
    "ImageError": "_errors",
    "UpscalerError": "_errors",
    "psnr_y": "_pixels.metrics",
}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (what `help(upscaler)` and completion show), loaded or not."""
    return sorted(__all__)


del annotations  # the __future__ flag: not part of the API
