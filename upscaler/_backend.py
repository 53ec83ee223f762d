"""The interface between the core and backend plugins.

A plugin is an object published under the entry-point group ``upscaler.backends``. Listing
plugins imports only their (light) modules; `create` loads the framework and the model.

A backend may set ``thread_safe = True`` when `upscale` can run in several threads at once
(`upscaler batch` processes one image per core on threads); without it, the core calls
`upscale` from one thread at a time, and only decoding and encoding overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Backend", "BackendOptions", "BackendPlugin"]


@dataclass(frozen=True)
class BackendOptions:
    """What the user may ask of any backend; a backend ignores what it cannot use."""

    weights: Path | None = None
    device: str = "cpu"
    threads: int | None = None
    #: "auto" (the backend's best on this machine), "fp32" or "bf16"; a backend refuses a
    #: precision it cannot run rather than run another one.
    precision: str = "auto"
    #: Images this process runs through the backend at the same time (threads calling
    #: `upscale`); None: as many as `threads` leaves cores for.
    concurrent: int | None = None
    #: Which of a backend's own weights: "clean" (photos as they are) or "jpeg" (photos
    #: stored as JPEG). A plugin lists what it has for a factor in an optional
    #: `models(factor)`; one without it has only "clean" and ignores this.
    model: str = "clean"


@runtime_checkable
class Backend(Protocol):
    """A loaded model for one factor."""

    factor: int
    #: Context, in input pixels, that one output pixel depends on; None if unbounded.
    halo: int | None
    #: "y": the core sends luma (B, H, W, 1) and upscales chroma itself with bicubic;
    #: "color": the core sends the colour channels as they are (1 for grey, 3 for RGB).
    #: Alpha never reaches a backend: the core upscales it with bicubic.
    channels: Literal["y", "color"]
    #: Tile side, in input pixels, that this backend runs best with.
    default_tile: int

    def upscale(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        """(B, H, W, C) float32 in [0, 1] -> (B, H*factor, W*factor, C); may leave [0, 1]."""
        ...


@runtime_checkable
class BackendPlugin(Protocol):
    """What an entry point of the group ``upscaler.backends`` refers to."""

    factors: tuple[int, ...]

    def unavailable_reason(self) -> str | None:
        """None when usable here, otherwise why not (with the fix), cheaply."""
        ...

    def create(self, factor: int, options: BackendOptions) -> Backend:
        """Load the model for `factor`; raise BackendError with a clear message on failure."""
        ...
