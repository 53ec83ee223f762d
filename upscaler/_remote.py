"""Batches whose inputs or output are URLs (shared storage): planning and running their jobs.

A `RemoteJob` is processed by the same `process_image` as a local one, through staging files
in a private temporary folder: the input is downloaded there (unless it is local), the output
is encoded there and uploaded in one PUT (unless it is local, where `_codec.encode` writes it
in place atomically). Skip-existing compares the modification times found by the listings, so
planning a run costs two listings, not two requests per image.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from . import _storage as storage
from ._codec import READABLE_SUFFIXES, output_suffix
from ._discover import Discovery, Job, OutputInsideInput, add_job, discover
from ._pipeline import Record, Settings, is_disk_full, is_up_to_date, process_image
from ._storage import is_url

__all__ = ["AnyJob", "RemoteJob", "find_jobs", "is_done", "run_job"]


@dataclass(frozen=True)
class RemoteJob:
    """One image of a run that names URLs: locations are URLs or local paths, as str."""

    src: str
    dst: str
    rel: Path
    #: Modification times from the listings (None: unknown or no output yet).
    src_mtime: float | None = None
    dst_mtime: float | None = None


AnyJob = Job | RemoteJob


def find_jobs(
    inputs: Sequence[Path | str], out: Path | str | None, factor: int, fmt: str
) -> Discovery:
    """Plan the jobs: `_discover.discover` when everything is local, listings otherwise."""
    local = [p for p in inputs if isinstance(p, Path)]
    if len(local) == len(inputs) and not is_url(out):
        return discover(local, Path(out) if out else None, factor, fmt)
    return _discover_remote([_location(p) for p in inputs], out, factor, fmt)


def _location(path: Path | str) -> str:
    return path if isinstance(path, str) and is_url(path) else os.path.abspath(path)


def _discover_remote(inputs: list[str], out: Path | str | None, factor: int, fmt: str) -> Discovery:
    found = Discovery()
    kinds = {given: _kind(given, found) for given in inputs}
    folders = [given for given, k in kinds.items() if k == "dir"]
    claimed: dict[Path | str, Path | str] = {}
    outputs: dict[str, dict[str, float | None]] = {}
    for given in inputs:
        base = given if kinds[given] == "dir" else storage.parent(given)
        target = _location(out) if out else f"{base.rstrip('/')}-x{factor}"
        _refuse_inside(target, folders)
        if not is_url(target) and Path(target) not in found.roots:
            found.roots.append(Path(target))
        if kinds[given] is None:
            continue
        if target not in outputs:  # what is already there, for skip-existing
            outputs[target] = {e.rel: e.mtime for e in storage.list_files(target)}
        entries = storage.list_files(given) if kinds[given] == "dir" else [storage.entry(given)]
        for entry in entries:
            _plan(found, claimed, entry, target, outputs[target], fmt)
    return found


def _kind(given: str, found: Discovery) -> str | None:
    """ "dir" or "file"; None, with the reason among the problems, when it cannot be used."""
    try:
        kind = storage.kind(given)
    except storage.AccessError as exc:  # a missing extra or unknown scheme is a usage error
        found.problems.append((given, exc.reason))
        return None
    if kind is None:
        found.problems.append((given, "no such file or folder"))
    return kind


def _plan(
    found: Discovery,
    claimed: dict[Path | str, Path | str],
    entry: storage.Entry,
    target: str,
    outputs: dict[str, float | None],
    fmt: str,
) -> None:
    src = PurePosixPath(entry.rel)
    if src.suffix.lower() not in READABLE_SUFFIXES:
        found.not_images.append(entry.location)
        return
    rel = str(src.with_suffix(output_suffix(Path(src.name), fmt)))
    dst = storage.join(target, rel)
    job = RemoteJob(entry.location, dst, Path(entry.rel), entry.mtime, outputs.get(rel))
    add_job(found, claimed, job)


def _refuse_inside(target: str, folders: list[str]) -> None:
    for folder in folders:
        if target.rstrip("/") == folder.rstrip("/") or target.startswith(folder.rstrip("/") + "/"):
            raise OutputInsideInput(
                f"output folder {target} is inside input folder {folder}: "
                "the next run would upscale its own outputs; choose another -o"
            )


def is_done(job: AnyJob) -> bool:
    """True when the job's output exists and is at least as new as its input."""
    if isinstance(job, Job):
        return is_up_to_date(job)
    if job.src_mtime is None or job.dst_mtime is None:
        return False
    return job.dst_mtime >= job.src_mtime


def run_job(
    job: AnyJob, settings: Settings, on_tiles: Callable[[int, int], None] | None = None
) -> Record:
    """`process_image` for any job; never raises for a bad image."""
    if isinstance(job, Job):
        return process_image(job, settings, on_tiles)
    if settings.skip_existing and is_done(job):
        return Record(job.src, job.dst, "skipped", backend=settings.backend, factor=settings.factor)
    try:
        staging = tempfile.TemporaryDirectory(prefix="upscaler-")
    except OSError as exc:  # a full disk stops the run (`Record.disk_full`), else: this job
        return Record(
            job.src,
            job.dst,
            "failed",
            f"cannot make a temporary folder: {exc.strerror or exc}",
            backend=settings.backend,
            factor=settings.factor,
            disk_full=tempfile.gettempdir() if is_disk_full(exc) else None,
        )
    with staging as tmp:
        record = _staged(job, replace(settings, skip_existing=False), Path(tmp), on_tiles)
    return replace(record, src=job.src, dst=job.dst)


def _staged(
    job: RemoteJob, settings: Settings, tmp: Path, on_tiles: Callable[[int, int], None] | None
) -> Record:
    src = tmp / "in" / posixpath.basename(job.src) if is_url(job.src) else Path(job.src)
    dst = tmp / "out" / posixpath.basename(job.dst) if is_url(job.dst) else Path(job.dst)
    failed = Record(job.src, job.dst, "failed", backend=settings.backend, factor=settings.factor)
    #: A full staging disk stops the run as a full output disk does (`Record.disk_full`).
    staging = str(tmp.parent)
    try:
        if is_url(job.src):
            storage.download(job.src, src)
    except Exception as exc:  # missing object, no permission, network...
        if is_disk_full(exc):
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            return replace(failed, error=f"cannot download: {reason}", disk_full=staging)
        return replace(failed, error=f"cannot read: {type(exc).__name__}: {exc}")
    record = process_image(Job(src, dst, job.rel), settings, on_tiles)
    if record.disk_full is not None and Path(record.disk_full).is_relative_to(tmp):
        record = replace(record, disk_full=staging)  # `tmp` itself is gone when the run hears
    try:
        if record.status == "done" and is_url(job.dst):
            storage.upload(dst, job.dst)
    except Exception as exc:
        return replace(failed, error=f"cannot write: {type(exc).__name__}: {exc}")
    return record
