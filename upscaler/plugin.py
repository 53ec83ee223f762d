"""The public interface for backend plugins: what a backend implements and what it may use.

A backend is an object published under the entry-point group ``upscaler.backends`` (see
docs/plugins.md); `upscaler backends` lists every one installed, the built-in ones included,
which come through the same door and import nothing of upscaler's but this module. Subclass
`BasePlugin` (the optional parts have defaults there) and return a `Backend` from `create`::

    from upscaler.plugin import Backend, BackendOptions, BasePlugin

    class _Plugin(BasePlugin):
        name = "mine"
        factors = (2,)

        def create(self, factor: int, options: BackendOptions) -> Backend:
            self.precision(options.precision)  # refuses bf16: this one runs fp32 only
            return MyBackend(factor)

    plugin = _Plugin()

Listing plugins imports their modules, so keep frameworks out of module level: import them
in `create`. What the core decides from a plugin (its precision, whether the run's outputs
are suspect, the default backend) it asks the plugin, through `BasePlugin`'s methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import BackendError, UpscalerError
from ._plugins.cache import cache_dir
from ._plugins.interface import Backend, BackendOptions, BackendPlugin, BasePlugin, check_factor
from ._plugins.precision import PRECISIONS, fp32_only, native_bf16
from ._plugins.weights import shipped_models, shipped_weights

__all__ = [
    "BICUBIC_HALO",
    "PRECISIONS",
    "Backend",
    "BackendError",
    "BackendOptions",
    "BackendPlugin",
    "BasePlugin",
    "UpscalerError",
    "bicubic_upscale",
    "cache_dir",
    "check_factor",
    "fp32_only",
    "load_keras_model",
    "native_bf16",
    "shipped_models",
    "shipped_weights",
]

if TYPE_CHECKING:
    from ._pixels.resize import BICUBIC_HALO, bicubic_upscale
    from ._training.network import load_model as load_keras_model

#: Loaded on first use: OpenCV, Keras; listing a plugin should import neither.
_LAZY = {
    "BICUBIC_HALO": ("_pixels.resize", "BICUBIC_HALO"),
    "bicubic_upscale": ("_pixels.resize", "bicubic_upscale"),
    "load_keras_model": ("_training.network", "load_model"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        module, attr = _LAZY[name]
        return getattr(import_module(f"{__package__}.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
