"""The entry points of a group, read by `importlib.metadata` and kept in the per-user cache
for the next run of the same environment.

Why a cache: importing `importlib.metadata` (it imports `email`, `zipfile`, `csv`, `socket`,
`tempfile`...) took 20-25 ms of `python -X importtime` in every run, and scanning every
installed distribution's metadata 5-8 ms more, to find the same four names (2-core AMD EPYC,
docs/benchmarks.md).

The cache is keyed by the import path (`sys.path`) and the modification time of each of its
folders: installing, upgrading or removing a distribution adds or removes a folder in one of
them, which changes its time, and a different PYTHONPATH or virtual environment is a
different path; either way the entry points are read again. A cache that cannot be read or
written is no cache: the entry points are read every run, as before.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import threading
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from .cache import cache_dir

__all__ = ["Point", "entry_points"]

_FILE = "entry-points.json"
_VERSION = 1
#: `importlib.metadata.EntryPoint.pattern`: module, optional attributes, optional extras.
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


@dataclass(frozen=True)
class Point:
    """One entry point: its name, its value ("module:attribute") and its distribution."""

    name: str
    value: str
    distribution: str

    def load(self) -> Any:
        """The object the value names, imported (as `importlib.metadata.EntryPoint.load`)."""
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"malformed entry point value {self.value!r}")
        found: Any = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            found = getattr(found, attr)
        return found


def entry_points(group: str) -> list[Point]:
    """The entry points of `group`, in `importlib.metadata`'s order."""
    key = _environment()
    cached = _read(group, key)
    if cached is not None:
        return cached
    from importlib.metadata import entry_points as read

    points = [
        Point(ep.name, ep.value, ep.dist.name if ep.dist else "?") for ep in read(group=group)
    ]
    _write(group, key, points)
    return points


def _environment() -> list[list[Any]]:
    """Each folder of the import path with its modification time (None if it is not there)."""
    key: list[list[Any]] = []
    for entry in sys.path:
        path = entry or os.getcwd()
        try:
            key.append([path, os.stat(path).st_mtime_ns])
        except OSError:
            key.append([path, None])
    return key


def _read(group: str, key: list[list[Any]]) -> list[Point] | None:
    folder = cache_dir("plugins")
    if folder is None:
        return None
    try:
        data = json.loads((folder / _FILE).read_text(encoding="utf-8"))
        if data["version"] != _VERSION or data["path"] != key:
            return None
        return [Point(str(n), str(v), str(d)) for n, v, d in data["groups"][group]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(group: str, key: list[list[Any]], points: list[Point]) -> None:
    folder = cache_dir("plugins")
    if folder is None:
        return
    data = {
        "version": _VERSION,
        "path": key,
        "groups": {group: [[p.name, p.value, p.distribution] for p in points]},
    }
    tmp = folder / f".{_FILE}.{os.getpid()}.{threading.get_ident()}"
    try:  # written whole, then renamed: concurrent runs read the old file or the new one
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, folder / _FILE)
    except OSError:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
