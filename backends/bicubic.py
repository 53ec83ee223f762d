"""The bicubic baseline: Pillow's BICUBIC on every colour channel, no model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from upscaler._backend import BackendOptions
from upscaler._precision import fp32_only
from upscaler._resize import BICUBIC_HALO, bicubic_upscale

__all__ = ["BicubicBackend", "plugin"]


@dataclass(frozen=True)
class BicubicBackend:
    """Classic bicubic interpolation (MATLAB `imresize` kernel)."""

    factor: int
    halo: int | None = BICUBIC_HALO
    channels: Literal["y", "color"] = "color"
    default_tile: int = 1024
    thread_safe: bool = True
    precision: str = "fp32"

    def upscale(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        return bicubic_upscale(tiles, self.factor)


class _Plugin:
    factors = (2, 3, 4)

    def unavailable_reason(self) -> str | None:
        return None

    def precision(self, wanted: str = "auto") -> str:
        """What `wanted` runs as here: fp32, or a BackendError."""
        return fp32_only(wanted, "bicubic")

    def create(self, factor: int, options: BackendOptions) -> BicubicBackend:
        fp32_only(options.precision, "bicubic")
        return BicubicBackend(factor)


plugin = _Plugin()
