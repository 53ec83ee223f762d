"""Backend discovery through the ``upscaler.backends`` entry-point group, and what the core
asks of a plugin (its precision, models, suspect floor, whether it is the default): each
question answered here once, with `BasePlugin`'s defaults for a plugin that leaves a part out."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from .._errors import BackendError
from .discovery import Point, entry_points
from .interface import Backend, BackendOptions, BasePlugin
from .weights import MODELS

__all__ = [
    "BackendInfo",
    "auto_precision",
    "backend_models",
    "consistency_floor",
    "default_backend",
    "describe_backends",
    "load_backend",
    "load_plugin",
    "loaded_backends",
    "nearest_model",
    "plugin_precision",
]

#: What a plugin must have; the rest (`BackendPlugin`) defaults to `BasePlugin`'s.
_REQUIRED = ("factors", "unavailable_reason", "create")

GROUP = "upscaler.backends"


@dataclass(frozen=True)
class BackendInfo:
    """One line of `upscaler backends`."""

    name: str
    factors: tuple[int, ...]
    distribution: str
    problem: str | None
    #: What `--precision auto` runs as here ("fp32", "bf16"), None if the plugin does not say.
    precision: str | None = None


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, Point]:
    """The group's entry points, read once per process (from the per-user cache where the
    environment has not changed since they were last read: `discovery`)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_plugin(name: str) -> BasePlugin:
    """Import one plugin by name, and only that one."""
    eps = _entry_points()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise BackendError(f"unknown backend {name!r} (registered: {known})")
    try:
        plugin = eps[name].load()
    except Exception as exc:  # a broken third-party plugin must not take the run down
        raise BackendError(f"backend {name!r} failed to import: {exc}") from exc
    if not all(hasattr(plugin, attr) for attr in _REQUIRED):
        raise BackendError(f"backend {name!r} ({eps[name].value}) is not a BackendPlugin")
    return plugin if isinstance(plugin, BasePlugin) else _Completed(plugin, name)


def describe_backends() -> list[BackendInfo]:
    """Every registered backend with its factors and whether it can run here."""
    infos = []
    for name, ep in sorted(_entry_points().items()):
        dist = ep.distribution
        try:
            plugin = load_plugin(name)
        except BackendError as exc:
            infos.append(BackendInfo(name, (), dist, str(exc)))
            continue
        problem = plugin.unavailable_reason()
        infos.append(BackendInfo(name, plugin.factors, dist, problem, auto_precision(plugin)))
    return infos


class _Completed(BasePlugin):
    """A plugin that leaves parts of `BackendPlugin` out, with `BasePlugin`'s for those."""

    def __init__(self, plugin: Any, name: str) -> None:
        self._plugin, self.name, self.factors = plugin, name, tuple(plugin.factors)
        self.consistency_floor = getattr(plugin, "consistency_floor", None)

    def unavailable_reason(self) -> str | None:
        return cast(str | None, self._plugin.unavailable_reason())

    def precision(self, wanted: str = "auto") -> str:
        own = getattr(self._plugin, "precision", None)
        return str(own(wanted)) if own is not None else super().precision(wanted)

    def models(self, factor: int) -> tuple[str, ...]:
        own = getattr(self._plugin, "models", None)
        return tuple(own(factor)) if own is not None else ()

    def default_rank(self, device: str) -> int:
        own = getattr(self._plugin, "default_rank", None)
        return int(own(device)) if own is not None else 0

    def create(self, factor: int, options: BackendOptions) -> Backend:
        return cast(Backend, self._plugin.create(factor, options))


def auto_precision(plugin: BasePlugin) -> str | None:
    """What `auto` precision means for `plugin` on this machine; None if it cannot run."""
    try:
        return plugin.precision("auto")
    except BackendError:
        return None


def plugin_precision(name: str, wanted: str) -> str:
    """What `wanted` ("auto", "fp32", "bf16") runs as in backend `name` on this machine,
    without loading a model; BackendError for one it cannot run."""
    plugin = load_plugin(name)
    try:
        return str(plugin.precision(wanted))
    except BackendError:
        raise
    except Exception as exc:  # a third-party plugin's bug: one line, not a traceback
        raise BackendError(f"backend {name!r} cannot say what {wanted!r} runs as: {exc}") from exc


def consistency_floor(name: str) -> float | None:
    """The consistency PSNR under which backend `name`'s output is suspect (None: the run's
    median decides)."""
    floor = load_plugin(name).consistency_floor
    return None if floor is None else float(floor)


def default_backend(device: str = "cpu") -> str:
    """The backend that ranks itself highest for `device` on this machine (`default_rank`):
    openvino where the CPU computes bfloat16 natively, else onnx, among the built-in ones."""
    ranked = []
    for name in sorted(_entry_points()):
        try:
            rank = load_plugin(name).default_rank(device)
        except Exception:  # a broken plugin is no candidate; naming it says why
            continue
        if rank > 0:
            ranked.append((-rank, name))
    if not ranked:
        raise BackendError("no installed backend offers itself as the default: give --backend")
    return min(ranked)[1]


@lru_cache(maxsize=32)
def backend_models(name: str, factor: int) -> tuple[str, ...]:
    """The weights a backend has for `factor` (its optional `models(factor)`: "clean", and
    "jpeg", "jpeg-high" where trained); () for a backend without a choice of weights
    (bicubic, most plugins)."""
    return tuple(load_plugin(name).models(factor))


def nearest_model(name: str, factor: int, wanted: str) -> str | None:
    """The weights of backend `name` at `factor` nearest to `wanted`: `wanted`, else those
    before it in `weights.MODELS` ("jpeg-high", then "jpeg", then "clean"); None for a
    backend without a choice of weights."""
    models = backend_models(name, factor)
    if not models:
        return None
    order = MODELS[MODELS.index(wanted) :: -1] if wanted in MODELS else (wanted,)
    return next((m for m in order if m in models), models[0])


_DEFAULT_OPTIONS = BackendOptions()


_LOADING = threading.Lock()


def load_backend(name: str, factor: int, options: BackendOptions = _DEFAULT_OPTIONS) -> Backend:
    """The backend `name` loaded for `factor`; cached, so each process loads it once."""
    with _LOADING:  # threads of one run share one model, loaded once
        return _load_backend(name, factor, options)


def loaded_backends() -> list[tuple[str, int, BackendOptions]]:
    """The backends this process has loaded, in the order loaded (name, factor, options; the
    last 64)."""
    with _LOADING:
        return list(_LOADED)


_LOADED: deque[tuple[str, int, BackendOptions]] = deque(maxlen=64)


@lru_cache(maxsize=8)
def _load_backend(name: str, factor: int, options: BackendOptions) -> Backend:
    plugin = load_plugin(name)
    if factor not in plugin.factors:
        raise BackendError(f"backend {name!r} supports factors {plugin.factors}, not {factor}")
    problem = plugin.unavailable_reason()
    if problem:
        raise BackendError(f"backend {name!r} is unavailable: {problem}")
    backend = plugin.create(factor, options)
    _LOADED.append((name, factor, options))
    return backend
