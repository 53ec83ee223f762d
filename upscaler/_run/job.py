"""One job from plan to record: skip check, staging of URLs, decode -> upscale -> encode.

`run_job` is pure apart from the files it reads and writes and the per-process backend
cache, so any engine (threads, processes, a Dask cluster) runs it as it is. A job that names
a URL goes through staging files in a private temporary folder: the input is downloaded there
(unless it is local), the output encoded there and uploaded in one PUT (unless it is local,
where `_images.codec.encode` writes it in place atomically).
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import posixpath
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from numpy.typing import NDArray
from PIL import Image

from .._defaults import STREAM_ABOVE_PIXELS
from .._errors import ImageError, UpscalerError, file_reason
from .._images import storage
from .._images.codec import (
    BAD_FILE,
    Metadata,
    SeveralFrames,
    check_decode_size,
    check_whole_output,
    decode,
    encode_frames,
    encode_rows,
    image_metadata,
    open_rows,
    partial_output,
    pil_to_pixels,
    whole_writer,
)
from .._images.frames import Animation, describe, read_frames
from .._images.jpeg import weights_for
from .._memory import ensure_flat_heap, give_back
from .._pixels.metrics import score
from .._pixels.pipeline import Watch, output_rows
from .._pixels.rows import Rows, Window, from_array
from .._pixels.size import checked_size, network_passes
from .._plugins.interface import Backend
from .._plugins.registry import load_backend, nearest_model
from .budget import BUDGET, estimate_bytes
from .plan import find_reference
from .spec import Job, Record, Settings, TileCallback
from .thumbs import write_thumbnails

__all__ = [
    "discard_partial",
    "is_disk_full",
    "is_done",
    "process_job",
    "run_job",
    "skip_record",
]

#: Errors that say the disk is full: every image after this one would fail the same way.
DISK_FULL_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None
)


def is_done(job: Job) -> bool:
    """True when the job's output exists and is at least as new as its input (for a job that
    names a URL: by the modification times its listings found)."""
    if job.remote:
        if job.src_mtime is None or job.dst_mtime is None:
            return False
        return job.dst_mtime >= job.src_mtime
    try:
        return os.stat(job.dst).st_mtime_ns >= os.stat(job.src).st_mtime_ns
    except OSError:
        return False


def skip_record(job: Job, settings: Settings) -> Record | None:
    """The "skipped" record when the run skips existing outputs and `job`'s is up to date."""
    if settings.skip_existing and is_done(job):
        return Record.of(job, settings, "skipped")
    return None


def run_job(job: Job, settings: Settings, on_tiles: TileCallback | None = None) -> Record:
    """Process one job, or skip it if up to date; never raises for a bad image: the record
    says what went wrong. `on_tiles(done, total)` follows the backend calls."""
    skipped = skip_record(job, settings)
    return skipped if skipped is not None else process_job(job, settings, on_tiles)


def process_job(job: Job, settings: Settings, on_tiles: TileCallback | None = None) -> Record:
    """Process one job that the run decided to do (`run_job` without the skip check: for an
    engine that made that decision elsewhere, as the Dask driver does)."""
    ensure_flat_heap()
    if not job.remote:
        return _process_image(job, settings, on_tiles)
    import tempfile  # here: a run of local files stages nothing

    try:
        staging = tempfile.TemporaryDirectory(prefix="upscaler-")
    except OSError as exc:  # a full disk stops the run (`Record.disk_full`), else: this job
        failed = Record.of(
            job, settings, "failed", f"cannot make a temporary folder: {exc.strerror or exc}"
        )
        return replace(failed, disk_full=tempfile.gettempdir() if is_disk_full(exc) else None)
    with staging as tmp:
        return _staged(job, settings, Path(tmp), on_tiles)


def _staged(job: Job, settings: Settings, tmp: Path, on_tiles: TileCallback | None) -> Record:
    src = tmp / "in" / posixpath.basename(job.src) if isinstance(job.src, str) else job.src
    dst = tmp / "out" / posixpath.basename(job.dst) if isinstance(job.dst, str) else job.dst
    failed = Record.of(job, settings, "failed")
    #: A full staging disk stops the run as a full output disk does (`Record.disk_full`).
    staging = str(tmp.parent)
    try:
        if isinstance(job.src, str):
            storage.download(job.src, src)
    except Exception as exc:  # missing object, no permission, network...
        if is_disk_full(exc):
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            return replace(failed, error=f"cannot download: {reason}", disk_full=staging)
        return replace(failed, error=f"cannot read: {type(exc).__name__}: {exc}")
    record = _process_image(Job(src, dst, job.rel), settings, on_tiles, str(job.dst))
    if record.disk_full is not None and Path(record.disk_full).is_relative_to(tmp):
        record = replace(record, disk_full=staging)  # `tmp` itself is gone when the run hears
    try:
        if record.status == "done" and isinstance(job.dst, str):
            storage.upload(dst, job.dst)
    except Exception as exc:
        return replace(failed, error=f"cannot write: {type(exc).__name__}: {exc}")
    return replace(record, src=str(job.src), dst=str(job.dst))


#: After an image estimated above this, the heap's free pages go back to the system.
TRIM_ABOVE_BYTES = 32 << 20


def settings_for(settings: Settings, held: int) -> Settings:
    """The settings an image estimated at `held` bytes runs with: the run's, but every core
    (`alone_threads`) for an image too large to share the budget with another like it."""
    if settings.alone_threads and held > BUDGET.total // 2:
        options = replace(settings.options, threads=settings.alone_threads, concurrent=1)
        return replace(settings, options=options)
    return settings


def _process_image(
    job: Job, settings: Settings, on_tiles: TileCallback | None, named: str | None = None
) -> Record:
    """Decode -> upscale -> encode -> score one local file, as a stream of row bands
    (`named`: the output's location as the run knows it, when `job` is a staged copy)."""
    assert isinstance(job.src, Path) and isinstance(job.dst, Path)
    held = estimate_bytes(job.src, settings.size, STREAM_ABOVE_PIXELS)
    settings = settings_for(settings, held)
    with BUDGET.hold(held):  # waits while the images running leave no room for this one
        try:
            return _process_held(job, settings, on_tiles, named)
        finally:
            if held > TRIM_ABOVE_BYTES:  # a small image's heap is kept for the next one
                give_back()


def _process_held(
    job: Job, settings: Settings, on_tiles: TileCallback | None, named: str | None
) -> Record:
    """`_process_image` once the image's memory is held in the process's budget."""
    assert isinstance(job.src, Path) and isinstance(job.dst, Path)
    base = Record.of(job, settings, "skipped")
    started = time.perf_counter()
    try:
        try:
            image = open_rows(
                job.src,
                settings.max_pixels,
                settings.size,
                settings.max_decode_pixels,
                STREAM_ABOVE_PIXELS,
            )
        except SeveralFrames:
            return _process_frames(job, settings, on_tiles, base, named)
        size = settings.size.stored_size_for(*image.size, image.turned)
        keep = settings.reference is not None
        why = "--reference" if keep else whole_writer(job.dst)
        check_whole_output(size, settings.max_decode_pixels, why)
        model = _model_for(settings, network_passes(image.size, size), image.jpeg_quality)
        window = Window(image.rows, readers=2)
        out = output_rows(
            window.reader(0),
            size,
            _backends(settings, model),
            settings.tile,
            settings.overlap,
            on_tiles,
        )
        watch = Watch(window.reader(1), out, settings.thumbnails is not None, keep)
        meta = image.metadata.resized(image.size, size)
        encode_rows(watch.rows, job.dst, meta, settings.quality)
    except Exception as exc:  # one image never stops the run by itself (a full disk does)
        seconds = time.perf_counter() - started
        full = str(job.dst.parent) if is_disk_full(exc) else None
        return replace(base, status="failed", error=_message(exc), seconds=seconds, disk_full=full)
    scores: dict[str, Any] = {"consistency_psnr": _round(watch.consistency())}
    try:  # the output is written: a scoring problem is a note, not a failure
        if settings.reference is not None:
            scores = _scores(watch.whole(), image.size, job, settings, scores)
    except Exception as exc:
        scores = {"error": f"scoring failed: {_message(exc)}"}
    if settings.thumbnails is not None:
        with contextlib.suppress(OSError, ValueError):  # pictures for the report: a nicety
            small_out, small_in = watch.thumbnails()
            write_thumbnails(small_out, small_in, settings.thumbnails, named or str(job.dst))
    return replace(
        base,
        status="done",
        seconds=time.perf_counter() - started,
        input_size=image.size,
        output_size=size,
        scale=round(size[0] / image.size[0], 4),
        model=model,
        jpeg_quality=image.jpeg_quality,
        **scores,
    )


def _backends(settings: Settings, model: str | None = None) -> Callable[[int, bool], Backend]:
    """The run's backend at each factor (loaded once per process, `_plugins.registry`'s cache): the
    first network pass, which sees the input as stored, with the weights of `model`; later
    passes see the network's own output, which is clean."""

    def backend_for(factor: int, first: bool) -> Backend:
        options = settings.options
        if first and model not in (None, "clean", "own"):
            options = replace(options, model=model)
        return load_backend(settings.backend, factor, options)

    return backend_for


def _model_for(settings: Settings, passes: tuple[int, ...], jpeg_quality: int | None) -> str | None:
    """Which weights the first network pass runs: "own" (--weights: never switched), the
    weights --input-kind names, or with auto those for the input's JPEG quality
    (`jpeg.weights_for`); where the backend lacks them for the factor, the nearest it has
    (`registry.nearest_model`). None when no network runs or the backend has no choice of
    weights (bicubic, most plugins)."""
    if not passes:
        return None
    if settings.options.weights is not None:
        return "own"
    wanted = settings.input_kind
    if wanted == "auto":
        wanted = weights_for(jpeg_quality)
    return nearest_model(settings.backend, passes[0], wanted)


def _process_frames(
    job: Job, settings: Settings, on_tiles: TileCallback | None, base: Record, named: str | None
) -> Record:
    """`_process_image` for an animation or a multi-page file, one frame at a time; its
    consistency PSNR is the lowest of its frames' (one broken frame is enough to look)."""
    assert isinstance(job.src, Path) and isinstance(job.dst, Path)
    started, seen = time.perf_counter(), _Seen()
    try:
        with Image.open(job.src) as im:
            animation, meta = _described(im)
            if animation.count > settings.max_frames:
                raise ImageError(
                    f"{animation.count} frames: more than --max-frames {settings.max_frames}"
                )
            size = _frame_size(im.size, settings)
            frames = _upscaled_frames(im, animation, settings, on_tiles, seen, named or job.dst)
            meta = meta.resized(im.size, size)
            encode_frames(frames, job.dst, animation, meta, settings.quality)
    except Exception as exc:
        full = str(job.dst.parent) if is_disk_full(exc) else None
        error, seconds = _message(exc), time.perf_counter() - started
        return replace(base, status="failed", error=error, seconds=seconds, disk_full=full)
    return replace(
        base,
        status="done",
        seconds=time.perf_counter() - started,
        input_size=seen.sizes[0],
        output_size=seen.sizes[1],
        scale=round(seen.sizes[1][0] / seen.sizes[0][0], 4),
        frames=animation.count,
        model=_model_for(settings, network_passes(*seen.sizes), None),
        consistency_psnr=_round(min(seen.scores, default=None)),
    )


def _described(im: Image.Image) -> tuple[Animation, Metadata]:
    """The animation's facts and metadata from its header; ImageError for a bad file."""
    try:
        return describe(im), image_metadata(im, header_only=True)
    except BAD_FILE as exc:
        raise ImageError(file_reason(exc)) from exc


@dataclass
class _Seen:
    """What the frames of an animation left behind: sizes of the first, each one's score."""

    sizes: list[tuple[int, int]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


def _frame_size(size: tuple[int, int], settings: Settings) -> tuple[int, int]:
    """A frame's (or page's) output size; ImageError, from its header, for a frame too large
    to decode whole (--max-decode-pixels) or to make (--max-pixels)."""
    check_decode_size(size, settings.max_decode_pixels, "each frame or page")
    out = checked_size(settings.size, size, settings.max_pixels)
    check_whole_output(out, settings.max_decode_pixels, "each output frame or page")
    return out


def _upscaled_frames(
    im: Image.Image,
    animation: Animation,
    settings: Settings,
    on_tiles: TileCallback | None,
    seen: _Seen,
    dst: str | Path,
) -> Iterator[Rows]:
    """Each frame of `im` upscaled, one at a time, as a stream that the writer pulls; its
    score and the first one's sizes and thumbnails noted in `seen` once the writer has taken
    it; each frame's size is checked before it is decoded."""
    for frame in read_frames(im, animation, lambda size: _frame_size(size, settings)):
        size = _frame_size(frame.size, settings)
        window = Window(from_array(pil_to_pixels(frame)), readers=2)
        out = output_rows(
            window.reader(0), size, _backends(settings), settings.tile, settings.overlap, on_tiles
        )
        first = not seen.sizes
        watch = Watch(window.reader(1), out, thumbs=first and settings.thumbnails is not None)
        yield watch.rows  # the writer takes every band before it asks for the next frame
        score_ = watch.consistency()
        if score_ is not None:
            seen.scores.append(score_)
        if first:
            seen.sizes = [frame.size, size]
            if settings.thumbnails is not None:
                with contextlib.suppress(OSError, ValueError):
                    small_out, small_in = watch.thumbnails()
                    write_thumbnails(small_out, small_in, settings.thumbnails, str(dst))
        del window, out, watch


def _scores(
    out: NDArray[Any], size: tuple[int, int], job: Job, settings: Settings, scores: dict[str, Any]
) -> dict[str, Any]:
    """`scores` with psnr and ssim of the whole output `out` (of an input of `size`) against
    its reference image. A reference that cannot be used is noted in `error`; the image
    itself still counts as done."""
    assert settings.reference is not None
    ref_path = find_reference(settings.reference, job.rel)
    if ref_path is None:
        return {**scores, "error": f"no reference for {job.rel} in {settings.reference}"}
    try:
        ref = decode(ref_path, max_decode_pixels=settings.max_decode_pixels).pixels
        crop = math.ceil(out.shape[1] / size[0] - 1e-9)  # the shared protocol: ceil(scale)
        measured = score(out, ref, crop, settings.rgb_psnr)
    except (ImageError, ValueError) as exc:
        return {**scores, "reference": str(ref_path), "error": f"reference {ref_path}: {exc}"}
    return {**scores, "reference": str(ref_path), **measured}


def _round(value: float | None, digits: int = 4) -> float | None:
    return round(value, digits) if value is not None and math.isfinite(value) else None


def discard_partial(job: Job) -> None:
    """Remove what a process that died while writing `job`'s output left (its hidden
    temporary file: outputs are written as they are made, so one exists while an image
    runs). For the engine that saw the process die; nothing for a URL output."""
    if isinstance(job.dst, Path):
        with contextlib.suppress(OSError):
            partial_output(job.dst).unlink(missing_ok=True)


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
