"""Backend discovery through the ``upscaler.backends`` entry-point group."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

from ._backend import Backend, BackendOptions, BackendPlugin
from ._errors import BackendError

__all__ = [
    "backend_models",
    "BackendInfo",
    "auto_precision",
    "describe_backends",
    "load_backend",
    "load_plugin",
]

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


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_plugin(name: str) -> BackendPlugin:
    """Import one plugin by name, and only that one."""
    eps = _entry_points()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise BackendError(f"unknown backend {name!r} (registered: {known})")
    try:
        plugin = eps[name].load()
    except Exception as exc:  # a broken third-party plugin must not take the run down
        raise BackendError(f"backend {name!r} failed to import: {exc}") from exc
    if not isinstance(plugin, BackendPlugin):
        raise BackendError(f"backend {name!r} ({eps[name].value}) is not a BackendPlugin")
    return plugin


def describe_backends() -> list[BackendInfo]:
    """Every registered backend with its factors and whether it can run here."""
    infos = []
    for name, ep in sorted(_entry_points().items()):
        dist = ep.dist.name if ep.dist else "?"
        try:
            plugin = load_plugin(name)
        except BackendError as exc:
            infos.append(BackendInfo(name, (), dist, str(exc)))
            continue
        problem = plugin.unavailable_reason()
        infos.append(BackendInfo(name, plugin.factors, dist, problem, auto_precision(plugin)))
    return infos


def auto_precision(plugin: BackendPlugin) -> str | None:
    """What `auto` precision means for `plugin` on this machine (optional `precision` method)."""
    decide = getattr(plugin, "precision", None)
    if decide is None:
        return None
    try:
        return str(decide("auto"))
    except BackendError:
        return None


@lru_cache(maxsize=32)
def backend_models(name: str, factor: int) -> tuple[str, ...]:
    """The weights a backend has for `factor` (its optional `models(factor)`: "clean", and
    "jpeg" where trained); () for a backend without a choice of weights (bicubic, most
    plugins)."""
    listed = getattr(load_plugin(name), "models", None)
    return tuple(listed(factor)) if listed is not None else ()


_DEFAULT_OPTIONS = BackendOptions()


_LOADING = threading.Lock()


def load_backend(name: str, factor: int, options: BackendOptions = _DEFAULT_OPTIONS) -> Backend:
    """The backend `name` loaded for `factor`; cached, so each process loads it once."""
    with _LOADING:  # threads of one run share one model, loaded once
        return _load_backend(name, factor, options)


@lru_cache(maxsize=8)
def _load_backend(name: str, factor: int, options: BackendOptions) -> Backend:
    plugin = load_plugin(name)
    if factor not in plugin.factors:
        raise BackendError(f"backend {name!r} supports factors {plugin.factors}, not {factor}")
    problem = plugin.unavailable_reason()
    if problem:
        raise BackendError(f"backend {name!r} is unavailable: {problem}")
    return plugin.create(factor, options)
