"""The interface between the core and backend plugins (public through `upscaler.plugin`).

A plugin is an object published under the entry-point group ``upscaler.backends``. Listing
plugins imports only their (light) modules; `create` loads the framework and the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from .._errors import BackendError
from .precision import fp32_only

if TYPE_CHECKING:  # numpy only where a model runs: the run spec's types stay light
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["Backend", "BackendOptions", "BackendPlugin", "BasePlugin", "check_factor"]


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
    #: Which of a backend's own weights: "clean" (photos as they are), "jpeg" (photos stored
    #: as JPEG) or "jpeg-high" (JPEGs of high quality). A plugin lists what it has for a
    #: factor in `models(factor)`; one that has none ignores this.
    model: str = "clean"


@runtime_checkable
class Backend(Protocol):
    """A loaded model for one factor (attributes or properties, read only).

    Optionally, a backend with a finite `halo` may also have `upscale_core`: a callable
    taking (B, H, W, C) tiles that have `halo` pixels of image around their cores on every
    side and returning only the cores' output, (B, (H - 2 halo)*factor, (W - 2 halo)*factor,
    C): what `upscale` gives for the same tiles, cropped, without computing the context's own
    output (an unpadded twin of a network). The core sends it the tiles inside the image,
    and the tiles at its edges to `upscale`; None, or no such attribute: every tile goes to
    `upscale`.
    """

    @property
    def factor(self) -> int:
        """The factor it upscales by."""
        ...

    @property
    def halo(self) -> int | None:
        """Context, in input pixels, that one output pixel depends on; None if unbounded."""
        ...

    @property
    def channels(self) -> Literal["y", "color"]:
        """ "y": the core sends luma (B, H, W, 1) and upscales chroma itself with bicubic;
        "color": the core sends the colour channels as they are (1 for grey, 3 for RGB).
        Alpha never reaches a backend: the core upscales it with bicubic."""
        ...

    @property
    def default_tile(self) -> int:
        """Tile side, in input pixels, that this backend runs best with."""
        ...

    @property
    def precision(self) -> str:
        """The arithmetic it runs in: "fp32" or "bf16"."""
        ...

    @property
    def thread_safe(self) -> bool:
        """True when `upscale` may run in several threads at once (`upscaler batch`
        processes one image per core on threads); False: the core calls it from one thread
        at a time, and only decoding and encoding overlap."""
        ...

    def upscale(self, tiles: NDArray[np.float32]) -> NDArray[np.float32]:
        """(B, H, W, C) float32 in [0, 1] -> (B, H*factor, W*factor, C); may leave [0, 1]."""
        ...


@runtime_checkable
class BackendPlugin(Protocol):
    """What an entry point of the group ``upscaler.backends`` refers to (`BasePlugin` gives
    every method but `create` a default)."""

    factors: tuple[int, ...]
    #: Consistency PSNR (dB) under which this backend's output is suspect (docs/reference.md
    #: #reports); None: the run's median decides.
    consistency_floor: float | None

    def unavailable_reason(self) -> str | None:
        """None when usable here, otherwise why not (with the fix), cheaply."""
        ...

    def precision(self, wanted: str = "auto") -> str:
        """What `wanted` ("auto", "fp32", "bf16") runs as here, without loading anything;
        BackendError for a precision it cannot run."""
        ...

    def models(self, factor: int) -> tuple[str, ...]:
        """Its own weights for `factor`: "clean", and "jpeg", "jpeg-high" where trained; ()
        for none."""
        ...

    def default_rank(self, device: str) -> int:
        """How strongly it offers itself as the default backend on `device` here (the
        highest rank wins; 0: never the default)."""
        ...

    def create(self, factor: int, options: BackendOptions) -> Backend:
        """Load the model for `factor`; raise BackendError with a clear message on failure."""
        ...


class BasePlugin:
    """A plugin's defaults: float32 only, no weights of its own, never the default, the
    run's median as the suspect floor. Subclass it and write `create`."""

    #: The name it is registered under, for messages.
    name: str = "plugin"
    factors: tuple[int, ...] = (2, 3, 4)
    consistency_floor: float | None = None

    def unavailable_reason(self) -> str | None:
        return None

    def precision(self, wanted: str = "auto") -> str:
        return fp32_only(wanted, self.name)

    def models(self, factor: int) -> tuple[str, ...]:
        return ()

    def default_rank(self, device: str) -> int:
        return 0

    def create(self, factor: int, options: BackendOptions) -> Backend:
        raise NotImplementedError


def check_factor(
    run: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    factor: int,
    source: object,
    channels: int = 1,
) -> None:
    """Run a model once on an 8x8 input of `channels`; BackendError unless its output holds
    (8 * factor)² pixels of them (`run`: the model's own call, before any reshaping;
    `source`: its file or name, for the message)."""
    import numpy as np

    try:
        out = np.asarray(run(np.zeros((1, 8, 8, channels), np.float32)))
    except Exception as exc:
        raise BackendError(f"{source} is not a model this backend can run: {exc}") from exc
    if out.size != 64 * channels * factor * factor:
        got = int(round((out.size / 64 / channels) ** 0.5))
        raise BackendError(f"{source} upscales by {got}, not {factor}")
