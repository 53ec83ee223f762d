"""Planning a batch: finding the input images and deciding where each output goes.

Inputs and outputs are local paths (`Path`) or URLs of shared storage (`str`, s3://...). A
run that names only local paths walks the file system (`os.walk`); one that names a URL lists
every input and output location once (`_images.storage`), so that skip-existing costs two listings,
not two requests per image.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .._errors import UpscalerError
from .._images import storage
from .._images.codec import READABLE_SUFFIXES, output_suffix
from .._images.storage import is_url
from .spec import Job, Location

__all__ = [
    "Discovery",
    "MissingInput",
    "OutputInsideInput",
    "find_jobs",
    "find_reference",
    "image_files",
    "unusable",
]


class OutputInsideInput(UpscalerError):
    """The output folder lies inside an input folder (a usage error)."""


class MissingInput(UpscalerError):
    """An input that does not exist (an unmounted share, a typo): a usage error, found before
    anything is created."""


@dataclass
class Discovery:
    """What a walk over the inputs found."""

    jobs: list[Job] = field(default_factory=list)
    not_images: list[Location] = field(default_factory=list)
    #: Inputs that cannot even be tried, with the reason (dangling link, collision, ...).
    problems: list[tuple[Location, str]] = field(default_factory=list)
    #: The local output folders that jobs write below (each is locked during a run).
    roots: list[Path] = field(default_factory=list)


def find_jobs(inputs: Sequence[Location], out: Location | None, label: str, fmt: str) -> Discovery:
    """Plan the jobs: a walk of the file system when everything is local, listings otherwise."""
    local = [p for p in inputs if isinstance(p, Path)]
    if len(local) == len(inputs) and not is_url(out):
        return discover(local, Path(out) if out else None, label, fmt)
    return _discover_remote([_location(p) for p in inputs], out, label, fmt)


def find_reference(folder: Path, rel: Path) -> Path | None:
    """The original of `rel` under `folder`: same relative path, or same stem, any image suffix."""
    exact = folder / rel
    if exact.is_file():
        return exact
    matches = sorted(
        p
        for p in exact.parent.glob(f"{glob.escape(rel.stem)}.*")
        if p.suffix.lower() in READABLE_SUFFIXES
    )
    return matches[0] if matches else None


def default_output(root: Path, label: str) -> Path:
    """The sibling folder `<input>-<label>` of an input folder (the output size's label: x3,
    x2.5, w1000, fit3840x2160)."""
    root = _absolute(root)
    if not root.name:
        raise UpscalerError(f"no folder can be made beside {root}: give one with -o")
    return root.with_name(f"{root.name}-{label}")


def discover(
    inputs: Sequence[Path],
    out: Path | None,
    label: str,
    fmt: str,
    within: Sequence[Path] = (),
) -> Discovery:
    """Walk `inputs` (files and folders) and plan one Job per image, in a stable order.

    A folder's images keep their relative paths under OUT (default: the folder's sibling
    `<folder>-<label>`, e.g. photos-x3); a file goes to OUT/<name> (default: `<its
    folder>-<label>/`). An input inside one of the folders `within` (those of a run's command
    line, for the paths of its stream) is placed as that folder's walk places it: its path
    relative to the innermost one (and skipped if hidden there, as the walk skips it).
    """
    for given in inputs:
        reason = unusable(given)
        if reason is not None:
            raise MissingInput(f"{given}: {reason}")
    found = Discovery()
    roots = [_absolute(p) for p in inputs if p.is_dir()]
    claimed: dict[Location, Location] = {}
    folders = sorted((_absolute(f) for f in within), key=lambda f: len(f.parts), reverse=True)
    for given in inputs:
        base = _absolute(given) if given.is_dir() else _absolute(given).parent
        inside = next((f for f in folders if _absolute(given).is_relative_to(f)), None)
        base = inside or base
        target = _absolute(out) if out else default_output(base, label)
        _refuse_inside(target, roots)
        if target not in found.roots:
            found.roots.append(target)
        for src, problem in _walk(given):
            if problem and (
                src.suffix.lower() in READABLE_SUFFIXES or problem.startswith("cannot")
            ):
                found.problems.append((src, problem))
            elif problem or src.suffix.lower() not in READABLE_SUFFIXES:  # a link or not: ignored
                found.not_images.append(src)
            elif inside and _hidden(_absolute(src).relative_to(base)):
                continue  # as the walk of `base` skips it
            else:
                rel = _absolute(src).relative_to(base)
                dst = (target / rel).with_suffix(output_suffix(src, fmt))
                _add(found, claimed, Job(src, dst, rel))
    return found


def unusable(given: Path) -> str | None:
    """Why an input path cannot be read as a file or a folder, or None."""
    if not given.exists():
        return "dangling symbolic link" if given.is_symlink() else "no such file or folder"
    if not (given.is_file() or given.is_dir()):  # a device, a FIFO, a socket
        return "not a regular file or folder"
    return None


def image_files(folder: Path) -> list[Path]:
    """The visible image files below `folder`, walked as `discover` walks it, in order."""
    return [
        p
        for p, problem in _walk(folder)
        if problem is None and p.suffix.lower() in READABLE_SUFFIXES
    ]


def _add(found: Discovery, claimed: dict[Location, Location], job: Job) -> None:
    """Add `job` unless its output is already another input's output (then it is a problem)."""
    first = claimed.get(job.dst)
    if first is None:
        claimed[job.dst] = job.src
        found.jobs.append(job)
    elif first != job.src:  # the same file named twice is simply done once
        found.problems.append((job.src, f"its output {job.dst} is already the output of {first}"))


def _refuse_inside(target: Location, folders: Sequence[Location]) -> None:
    """Refuse an output folder (path or URL) at or below an input folder."""
    for folder in folders:
        if _inside(target, folder):
            raise OutputInsideInput(
                f"output folder {target} is inside input folder {folder}: "
                "the next run would upscale its own outputs; choose another -o"
            )


def _inside(target: Location, folder: Location) -> bool:
    if isinstance(target, Path) and isinstance(folder, Path):
        return target == folder or target.is_relative_to(folder)
    t, f = str(target).rstrip("/"), str(folder).rstrip("/")
    return t == f or t.startswith(f + "/")


def _location(path: Location) -> str:
    return path if isinstance(path, str) and is_url(path) else os.path.abspath(path)


def _local(location: str) -> Location:
    """A location of a URL run as a job holds it: URLs as str, local paths as Path."""
    return location if is_url(location) else Path(location)


def _discover_remote(inputs: list[str], out: Location | None, label: str, fmt: str) -> Discovery:
    found = Discovery()
    kinds = {given: _kind(given, found) for given in inputs}
    missing = [given for given, kind in kinds.items() if kind is None]
    if missing:
        raise MissingInput("; ".join(f"{g}: {r}" for g, r in found.problems if g in missing))
    folders = [given for given, k in kinds.items() if k == "dir"]
    claimed: dict[Location, Location] = {}
    outputs: dict[str, dict[str, float | None]] = {}
    for given in inputs:
        base = given if kinds[given] == "dir" else storage.parent(given)
        target = _location(out) if out else f"{base.rstrip('/')}-{label}"
        _refuse_inside(target, folders)
        if not is_url(target) and Path(target) not in found.roots:
            found.roots.append(Path(target))
        if target not in outputs:  # what is already there, for skip-existing
            outputs[target] = {e.rel: e.mtime for e in storage.list_files(target)}
        entries = storage.list_files(given) if kinds[given] == "dir" else [storage.entry(given)]
        for entry in entries:
            _plan_remote(found, claimed, entry, target, outputs[target], fmt)
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


def _plan_remote(
    found: Discovery,
    claimed: dict[Location, Location],
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
    dst = _local(storage.join(target, rel))
    job = Job(_local(entry.location), dst, Path(entry.rel), entry.mtime, outputs.get(rel))
    _add(found, claimed, job)


def _walk(given: Path) -> Iterator[tuple[Path, str | None]]:
    """(file, None) for each visible file below `given`, or (path, reason) for trouble."""
    if given.is_file():
        yield given, None
        return
    if not given.is_dir():
        yield given, unusable(given) or "not a regular file or folder"
        return
    errors: list[OSError] = []
    for folder, dirs, files in os.walk(given, onerror=errors.append):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _is_dir_link(folder, d))
        for name in sorted(f for f in files if not f.startswith(".")):
            path = Path(folder, name)
            yield (path, None) if path.is_file() else (path, _not_file_reason(path))
    for err in errors:
        yield Path(err.filename), f"cannot list folder: {err.strerror}"


def _hidden(rel: Path) -> bool:
    """A hidden file or one in a hidden folder (an upload in progress, say): walks skip them."""
    return any(part.startswith(".") for part in rel.parts)


def _is_dir_link(folder: str, name: str) -> bool:
    """Symbolic links to folders are not followed (they may loop)."""
    return os.path.islink(os.path.join(folder, name))


def _not_file_reason(path: Path) -> str:
    if path.is_symlink():
        try:
            path.stat()
        except OSError as exc:
            return (
                "dangling symbolic link"
                if isinstance(exc, FileNotFoundError)
                else f"bad symbolic link: {exc.strerror}"
            )
    return "not a regular file"


def _absolute(path: Path) -> Path:
    """Absolute and without `..`, but symbolic links left as they are (unlike resolve())."""
    return Path(os.path.abspath(path))
