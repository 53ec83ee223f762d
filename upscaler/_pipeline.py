"""One image from path to result record: decode -> upscale -> encode.

`process_image` is pure apart from the files it reads and writes and the per-process
backend cache, so a process pool (or a distributed engine) can run it as it is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ._backend import BackendOptions
from ._codec import decode, encode
from ._discover import Job
from ._engine import upscale_pixels
from ._errors import UpscalerError
from ._registry import load_backend

__all__ = ["Record", "Settings", "is_up_to_date", "process_image"]

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class Settings:
    """How every image of a run is processed."""

    backend: str = "bicubic"
    factor: int = 3
    tile: int | None = None
    overlap: int | None = None
    quality: int = 95
    skip_existing: bool = True
    options: BackendOptions = field(default_factory=BackendOptions)


@dataclass(frozen=True)
class Record:
    """The outcome for one image (one row of the report)."""

    src: str
    dst: str
    status: Status
    error: str | None = None
    seconds: float = 0.0
    input_size: tuple[int, int] | None = None
    output_size: tuple[int, int] | None = None


def is_up_to_date(job: Job) -> bool:
    """True when the output exists and is at least as new as the input."""
    try:
        return os.stat(job.dst).st_mtime_ns >= os.stat(job.src).st_mtime_ns
    except OSError:
        return False


def process_image(
    job: Job, settings: Settings, on_tiles: Callable[[int, int], None] | None = None
) -> Record:
    """Upscale one file; never raises for a bad image, the record says what went wrong."""
    if settings.skip_existing and is_up_to_date(job):
        return Record(str(job.src), str(job.dst), "skipped")
    started = time.perf_counter()
    try:
        backend = load_backend(settings.backend, settings.factor, settings.options)
        image = decode(job.src)
        out = upscale_pixels(image.pixels, backend, settings.tile, settings.overlap, on_tiles)
        encode(out, job.dst, image.metadata.scaled(settings.factor), settings.quality)
    except Exception as exc:  # one image must never stop the run
        return Record(
            str(job.src), str(job.dst), "failed", _message(exc), time.perf_counter() - started
        )
    h, w = image.pixels.shape[:2]
    return Record(
        str(job.src),
        str(job.dst),
        "done",
        None,
        time.perf_counter() - started,
        (w, h),
        (out.shape[1], out.shape[0]),
    )


def _message(exc: Exception) -> str:
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, UpscalerError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"
