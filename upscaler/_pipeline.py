"""One image from path to result record: decode -> upscale -> encode.

`process_image` is pure apart from the files it reads and writes and the per-process
backend cache, so a process pool (or a distributed engine) can run it as it is.
"""

from __future__ import annotations

import errno
import glob
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ._backend import BackendOptions
from ._canvas import Canvas, new_canvas
from ._codec import READABLE_SUFFIXES, decode, encode
from ._discover import Job
from ._engine import upscale_into
from ._errors import ImageError, UpscalerError
from ._metrics import consistency_psnr, score
from ._registry import load_backend

__all__ = ["Record", "Settings", "is_disk_full", "is_up_to_date", "process_image"]

Status = Literal["done", "skipped", "failed"]
#: Errors that say the disk is full: every image after this one would fail the same way.
DISK_FULL_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None
)
#: Default --max-pixels: 400 megapixels of output (6000x4000 at x4 is 384).
DEFAULT_MAX_PIXELS = 400_000_000


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
    #: Folder of originals, matched by relative path, to score outputs against.
    reference: Path | None = None
    #: Also PSNR over the RGB channels against the reference.
    rgb_psnr: bool = False
    #: Largest output, in pixels; inputs whose output would be larger are refused unread.
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class Record:
    """The outcome for one image (one row of the report)."""

    src: str
    dst: str
    status: Status
    error: str | None = None
    seconds: float = 0.0
    backend: str | None = None
    factor: int | None = None
    input_size: tuple[int, int] | None = None
    output_size: tuple[int, int] | None = None
    #: Y-PSNR of the output shrunk back to the input's size, against the input (dB).
    consistency_psnr: float | None = None
    #: Against --reference, with the shared protocol (Y, border crop = factor).
    reference: str | None = None
    psnr: float | None = None
    ssim: float | None = None
    psnr_rgb: float | None = None
    #: The folder that could not be written because its disk is full (ENOSPC, EDQUOT): every
    #: remaining image would fail too, so the run stops. Not a report column (`error` says it).
    disk_full: str | None = field(default=None, metadata={"report": False})


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
    base = Record(
        str(job.src), str(job.dst), "skipped", backend=settings.backend, factor=settings.factor
    )
    if settings.skip_existing and is_up_to_date(job):
        return base
    started = time.perf_counter()
    try:
        backend = load_backend(settings.backend, settings.factor, settings.options)
        image = decode(job.src, settings.max_pixels, settings.factor)
        canvas = _canvas_for(image.pixels, settings.factor, job.dst)
        upscale_into(canvas, image.pixels, backend, settings.tile, settings.overlap, on_tiles)
        encode(canvas.output(), job.dst, image.metadata.scaled(settings.factor), settings.quality)
    except Exception as exc:  # one image never stops the run by itself (a full disk does)
        seconds = time.perf_counter() - started
        full = str(job.dst.parent) if is_disk_full(exc) else None
        return replace(base, status="failed", error=_message(exc), seconds=seconds, disk_full=full)
    try:  # the output is written: a scoring problem is a note, not a failure
        scores = _scores(image.pixels, canvas.output(), job, settings)
    except Exception as exc:
        scores = {"error": f"scoring failed: {_message(exc)}"}
    h, w = image.pixels.shape[:2]
    return replace(
        base,
        status="done",
        seconds=time.perf_counter() - started,
        input_size=(w, h),
        output_size=(canvas.shape[1], canvas.shape[0]),
        **scores,
    )


def _canvas_for(pixels: NDArray[Any], factor: int, dst: Path) -> Canvas:
    """8-bit outputs are assembled in Pillow, which encodes them without another copy; PNG
    outputs in numpy, which our PNG writer reads without one."""
    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    pillow = dst.suffix.lower() != ".png"
    return new_canvas(h * factor, w * factor, channels, pixels.dtype, pillow=pillow)


def _scores(
    source: NDArray[Any], out: NDArray[Any] | Image.Image, job: Job, settings: Settings
) -> dict[str, Any]:
    """consistency_psnr always; psnr and ssim against the reference image when there is one.

    A reference that cannot be used is noted in `error`; the image itself still counts as done.
    """
    scores: dict[str, Any] = {"consistency_psnr": _round(consistency_psnr(out, source))}
    if settings.reference is None:
        return scores
    ref_path = find_reference(settings.reference, job.rel)
    if ref_path is None:
        return {**scores, "error": f"no reference for {job.rel} in {settings.reference}"}
    try:
        ref = decode(ref_path).pixels
        measured = score(np.asarray(out), ref, settings.factor, settings.rgb_psnr)
    except (ImageError, ValueError) as exc:
        return {**scores, "reference": str(ref_path), "error": f"reference {ref_path}: {exc}"}
    return {**scores, "reference": str(ref_path), **measured}


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


def _round(value: float, digits: int = 4) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def is_disk_full(exc: BaseException) -> bool:
    """True for ENOSPC or EDQUOT, also when wrapped by another exception (raise ... from)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _message(exc: Exception) -> str:
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, UpscalerError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"
