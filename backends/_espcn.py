"""What the two ESPCN backends (onnx, keras) share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from upscaler._errors import BackendError

__all__ = ["ESPCN_HALO", "ESPCN_TILE", "EspcnBackend", "check_factor"]

#: Receptive field of ESPCN around one input pixel: 5x5, 3x3, 3x3, 3x3 convolutions.
ESPCN_HALO = 5
#: Default tile side in input pixels.
ESPCN_TILE = 256


def check_factor(
    run: Callable[[NDArray[np.float32]], NDArray[np.float32]], factor: int, source: object
) -> None:
    """Run the model once on an 8x8 input; refuse it unless it returns 8*factor squared."""
    try:
        out = np.asarray(run(np.zeros((1, 8, 8, 1), np.float32)))
    except Exception as exc:
        raise BackendError(f"{source} is not an ESPCN model this backend can run: {exc}") from exc
    if out.size != 64 * factor * factor:
        got = int(round((out.size / 64) ** 0.5))
        raise BackendError(f"{source} upscales by {got}, not {factor}")


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
