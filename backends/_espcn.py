"""What the two ESPCN backends (onnx, keras) share."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from upscaler.plugin import (
    BackendError,
    BackendOptions,
    BasePlugin,
    shipped_models,
    shipped_weights,
)

__all__ = ["ESPCN_HALO", "ESPCN_TILE", "EspcnBackend", "EspcnPlugin", "Lazy", "unpadded_twin"]

T = TypeVar("T")

#: Receptive field of ESPCN around one input pixel: 5x5, 3x3, 3x3, 3x3 convolutions.
ESPCN_HALO = 5
#: Default tile side in input pixels.
ESPCN_TILE = 256


class EspcnBackend:
    """Luma in, upscaled luma out; subclasses run the model in `run`, and its unpadded twin
    (where the shipped weights have one) in `run_core`."""

    halo: int | None = ESPCN_HALO
    #: The arithmetic the network runs in: "fp32" or "bf16".
    precision: str = "fp32"
    channels: Literal["y", "color"] = "y"
    default_tile: int = ESPCN_TILE
    thread_safe: bool = False
    factor: int
    #: `Backend.upscale_core` where the model has an unpadded twin, else None.
    upscale_core: Callable[[NDArray[np.float32]], NDArray[np.float32]] | None = None

    def upscale(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        b, h, w, _ = tiles.shape
        return self.run(tiles).reshape(b, h * self.factor, w * self.factor, 1)

    def run(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        """The model's raw output for (B, H, W, 1) luma."""
        raise NotImplementedError

    def _upscale_core(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        b, h, w, _ = tiles.shape
        k, s = ESPCN_HALO, self.factor
        return self.run_core(tiles).reshape(b, (h - 2 * k) * s, (w - 2 * k) * s, 1)

    def run_core(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        """The unpadded twin's raw output for (B, H, W, 1) luma: the cores' only."""
        raise NotImplementedError


def unpadded_twin(factor: int, options: BackendOptions) -> Path | None:
    """The shipped unpadded twin of the model `options` ask for (`scripts/unpadded_models.py`),
    verified; None for a user's own weights (`--weights`), which have none."""
    if options.weights is not None:
        return None
    try:
        return shipped_weights(factor, "onnx_unpadded", options.model)
    except (BackendError, KeyError):  # a manifest from before the twins
        return None


class Lazy(Generic[T]):
    """A value made on first use, once, whichever thread asks first (a model that only
    large images need: small photos never pay for loading it)."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._make()
            return self._value


class EspcnPlugin(BasePlugin):
    """The plugins of the shipped weights: their models, and the consistency PSNR under which
    an output is suspect: at least 1 dB under the lowest of 400 healthy BSDS500 photos at x2,
    x3 and x4 (43.6 dB; docs/reference.md#reports), above black frames, upside-down outputs,
    most seams and RGB/BGR mix-ups."""

    consistency_floor: float | None = 42.0

    def models(self, factor: int) -> tuple[str, ...]:
        """The shipped weights for `factor` ("clean", and "jpeg", "jpeg-high" where trained)."""
        return tuple(str(model) for model in shipped_models(factor))
