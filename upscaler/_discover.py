"""Finding input images and deciding where each output goes."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ._codec import READABLE_SUFFIXES, output_suffix
from ._errors import UpscalerError

if TYPE_CHECKING:
    from ._remote import RemoteJob

__all__ = ["Discovery", "Job", "OutputInsideInput", "add_job", "discover", "image_files"]


class OutputInsideInput(UpscalerError):
    """The output folder lies inside an input folder (a usage error)."""


@dataclass(frozen=True)
class Job:
    """One image to upscale: where it is read from and written to."""

    src: Path
    dst: Path
    #: Path relative to the input folder it was found in (its name, for a file input).
    rel: Path


@dataclass
class Discovery:
    """What a walk over the inputs found."""

    #: `Job`s; `_remote.RemoteJob`s when the run names URLs.
    jobs: list[Job | RemoteJob] = field(default_factory=list)
    #: Paths; str locations when the run names URLs (and so in `problems`).
    not_images: list[Path | str] = field(default_factory=list)
    #: Inputs that cannot even be tried, with the reason (dangling link, collision, ...).
    problems: list[tuple[Path | str, str]] = field(default_factory=list)
    #: The local output folders that jobs write below (each is locked during a run).
    roots: list[Path] = field(default_factory=list)


def default_output(root: Path, factor: int) -> Path:
    """The sibling folder `<input>-x<factor>` of an input folder."""
    root = _absolute(root)
    return root.with_name(f"{root.name}-x{factor}")


def discover(inputs: Sequence[Path], out: Path | None, factor: int, fmt: str) -> Discovery:
    """Walk `inputs` (files and folders) and plan one Job per image, in a stable order.

    A folder's images keep their relative paths under OUT (default: the folder's sibling
    `<folder>-x<factor>`); a file goes to OUT/<name> (default: `<its folder>-x<factor>/`).
    """
    found = Discovery()
    roots = [_absolute(p) for p in inputs if p.is_dir()]
    claimed: dict[Path | str, Path | str] = {}
    for given in inputs:
        base = _absolute(given) if given.is_dir() else _absolute(given).parent
        target = _absolute(out) if out else default_output(base, factor)
        _refuse_inside(target, roots)
        if target not in found.roots:
            found.roots.append(target)
        for src, problem in _walk(given):
            if problem:
                found.problems.append((src, problem))
            elif src.suffix.lower() not in READABLE_SUFFIXES:
                found.not_images.append(src)
            else:
                rel = _absolute(src).relative_to(base)
                dst = (target / rel).with_suffix(output_suffix(src, fmt))
                add_job(found, claimed, Job(src, dst, rel))
    return found


def image_files(folder: Path) -> list[Path]:
    """The visible image files below `folder`, walked as `discover` walks it, in order."""
    return [
        p
        for p, problem in _walk(folder)
        if problem is None and p.suffix.lower() in READABLE_SUFFIXES
    ]


def add_job(found: Discovery, claimed: dict[Path | str, Path | str], job: Job | RemoteJob) -> None:
    """Add `job` unless its output is already another input's output (then it is a problem)."""
    first = claimed.get(job.dst)
    if first is None:
        claimed[job.dst] = job.src
        found.jobs.append(job)
    elif first != job.src:  # the same file named twice is simply done once
        found.problems.append((job.src, f"its output {job.dst} is already the output of {first}"))


def _refuse_inside(target: Path, roots: Sequence[Path]) -> None:
    for root in roots:
        if target == root or target.is_relative_to(root):
            raise OutputInsideInput(
                f"output folder {target} is inside input folder {root}: "
                "the next run would upscale its own outputs; choose another -o"
            )


def _walk(given: Path) -> Iterator[tuple[Path, str | None]]:
    """(file, None) for each visible file below `given`, or (path, reason) for trouble."""
    if given.is_file():
        yield given, None
        return
    if not given.is_dir():
        yield (
            given,
            "no such file or folder" if not given.is_symlink() else "dangling symbolic link",
        )
        return
    errors: list[OSError] = []
    for folder, dirs, files in os.walk(given, onerror=errors.append):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _is_dir_link(folder, d))
        for name in sorted(f for f in files if not f.startswith(".")):
            path = Path(folder, name)
            yield (path, None) if path.is_file() else (path, _not_file_reason(path))
    for err in errors:
        yield Path(err.filename), f"cannot list folder: {err.strerror}"


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
