"""Files named by location: an fsspec URL (`s3://bucket/key` with the s3 extra) or a local path.

Only runs that name a URL come here; purely local runs keep `_run.plan` and `codec`'s own file
handling. Object stores get one PUT to the final key per output (a reader sees the old object
or the new one, never a part); local paths are written by `codec.encode` (temporary file,
then rename).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .._errors import UpscalerError
from .redact import redact

__all__ = [
    "AccessError",
    "Entry",
    "StorageError",
    "download",
    "entry",
    "is_url",
    "join",
    "kind",
    "list_files",
    "parent",
    "upload",
]


class StorageError(UpscalerError):
    """A location that cannot be used: unknown scheme, missing extra, no access, no server."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(redact(f"{location}: {' '.join(reason.split())}"))
        self.location, self.reason = location, reason


class AccessError(StorageError):
    """A location that exists in principle but cannot be reached or read (one input fails)."""


@contextmanager
def _errors(location: str) -> Iterator[None]:
    """Any failure to look at `location` as an AccessError (credentials, network, ...)."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        raise AccessError(location, f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class Entry:
    """A file found by `list_files`: its location and modification time (None if unknown)."""

    location: str
    #: Relative to the listed folder, with "/" separators.
    rel: str
    mtime: float | None


def is_url(location: object) -> bool:
    """True for `scheme://...` strings (the CLI keeps those as str; local paths are Path)."""
    return isinstance(location, str) and "://" in location


def kind(location: str) -> str | None:
    """ "dir", "file", or None when nothing is there."""
    fs, path = _fs(location)
    with _errors(location):
        if fs.isdir(path):
            return "dir"
        return "file" if fs.isfile(path) else None


def list_files(folder: str) -> list[Entry]:
    """The visible files below `folder` (no part of their path starts with "."), sorted."""
    fs, root = _fs(folder)
    try:
        with _errors(folder):
            found = fs.find(root, detail=True)
    except AccessError as exc:
        if isinstance(exc.__cause__, FileNotFoundError):
            return []
        raise
    prefix = root.rstrip("/") + "/"
    return sorted(_entries(folder, fs, prefix, found), key=lambda e: e.rel)


def _entries(folder: str, fs: Any, prefix: str, found: dict[str, Any]) -> Iterator[Entry]:
    for path, info in found.items():
        rel = path[len(prefix) :] if path.startswith(prefix) else posixpath.basename(path)
        if info.get("type") == "file" and rel and not _hidden(rel):
            location = fs.unstrip_protocol(path) if is_url(folder) else path
            yield Entry(location, rel, _mtime(info))


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/"))


def _mtime(info: dict[str, Any]) -> float | None:
    """Seconds since the epoch from a listing entry (local "mtime", S3 "LastModified", ...)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str) and value:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def entry(location: str) -> Entry:
    """The file at `location` as `list_files` would give it, relative to its folder."""
    fs, path = _fs(location)
    with _errors(location):
        info = fs.info(path)
    return Entry(location, posixpath.basename(path), _mtime(info))


def join(folder: str, rel: str) -> str:
    """`rel` (with "/") below `folder`."""
    return f"{folder.rstrip('/')}/{rel}"


def parent(location: str) -> str:
    """The folder that holds `location`."""
    return location.rstrip("/").rsplit("/", 1)[0]


def download(location: str, path: Path) -> None:
    """Copy the file at `location` to the local `path`."""
    fs, remote = _fs(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    fs.get_file(remote, str(path))


def upload(path: Path, location: str) -> None:
    """Write the local file `path` to `location` in one PUT (multipart only beyond 100 MB)."""
    fs, remote = _fs(location)
    fs.pipe_file(remote, path.read_bytes())


def _fs(location: str) -> tuple[Any, str]:
    scheme, _, rest = location.partition("://")
    if scheme.lower() in ("s3", "s3a") and "@" in rest.split("/", 1)[0]:
        raise StorageError(
            location,
            "s3fs does not read credentials from the URL: give them in the environment "
            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or a profile (AWS_PROFILE)",
        )
    try:
        from fsspec.core import url_to_fs
    except ImportError as exc:
        raise StorageError(location, "URLs need `pip install upscaler[s3]`") from exc
    try:
        fs, path = url_to_fs(location)
    except ImportError as exc:  # fsspec names the package: "Install s3fs to access S3"
        scheme = location.split("://", 1)[0]
        hint = "`pip install upscaler[s3]`" if scheme in ("s3", "s3a") else str(exc)
        raise StorageError(location, f"{scheme}:// URLs need {hint}") from exc
    except ValueError as exc:  # unknown protocol
        raise StorageError(location, str(exc)) from exc
    return fs, str(path)
