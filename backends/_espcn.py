"""What the two ESPCN backends (onnx, keras) share."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from upscaler.plugin import BasePlugin, shipped_models

__all__ = ["ESPCN_HALO", "ESPCN_TILE", "EspcnBackend", "EspcnPlugin"]

#: Receptive field of ESPCN around one input pixel: 5x5, 3x3, 3x3, 3x3 convolutions.
ESPCN_HALO = 5
#: Default tile side in input pixels.
ESPCN_TILE = 256


class EspcnBackend:
    """Luma in, upscaled luma out; subclasses run the model in `run`."""

    halo: int | None = ESPCN_HALO
    #: The arithmetic the network runs in: "fp32" or "bf16".
    precision: str = "fp32"
    channels: Literal["y", "color"] = "y"
    default_tile: int = ESPCN_TILE
    thread_safe: bool = False
    factor: int

    def upscale(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        b, h, w, _ = tiles.shape
        return self.run(tiles).reshape(b, h * self.factor, w * self.factor, 1)

    def run(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        """The model's raw output for (B, H, W, 1) luma."""
        raise NotImplementedError


class EspcnPlugin(BasePlugin):
    """The plugins of the shipped weights: their models, and the consistency PSNR under which
    an output is suspect: at least 1 dB under the lowest of 400 healthy BSDS500 photos at x2,
    x3 and x4 (43.6 dB; docs/reference.md#reports), above black frames, upside-down outputs,
    most seams and RGB/BGR mix-ups."""

    consistency_floor: float | None = 42.0

    def models(self, factor: int) -> tuple[str, ...]:
        """The shipped weights for `factor` ("clean", and "jpeg" where trained)."""
        return tuple(str(model) for model in shipped_models(factor))
