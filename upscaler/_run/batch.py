"""`upscaler batch` as a function: plan -> lock -> run an engine -> report -> exit status.

What the run shows while it goes (bars, per-image lines, messages) is the caller's `Progress`;
where images are processed is an engine's (`engines`); what happens to one image, `job`'s.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any, Protocol

from .. import __version__
from .._defaults import DEFAULT_ENGINE, DEFAULT_MAX_DECODE_PIXELS, DEFAULT_MAX_FRAMES
from .._errors import UpscalerError
from .._images.redact import one_line, redact
from .._images.storage import is_url
from .._pixels.size import OutputSize
from .._plugins.interface import BackendOptions
from .._plugins.registry import consistency_floor as backend_floor
from .._plugins.registry import load_backend, plugin_precision
from .engines import (
    Engine,
    EngineError,
    Tls,
    client_security,
    cores,
    create_engine,
    engine_problem,
    plain_tcp_warning,
    split_cores,
)
from .job import is_disk_full
from .lock import LockTimeout, hold_lock
from .plan import Discovery, find_jobs
from .report import (
    REPORT_SUFFIXES,
    Tally,
    consistency_floor,
    flag_suspects,
    report_path,
    summary_line,
    write_report,
)
from .spec import Job, Location, Record, Settings, TileCallback
from .stop import StopSignals
from .stream import PathStream
from .thumbs import thumbnails_folder

__all__ = ["BatchRequest", "Progress", "run_batch"]

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_LOCKED, EXIT_DISK_FULL = 0, 1, 2, 3, 4
#: Lock file in each output folder (hidden: never taken for an input).
LOCK_NAME = ".upscaler.lock"


class Progress(Protocol):
    """What the run tells its user: `_cli.progress.TerminalProgress` on the command line."""

    def start(self, total: int | None) -> None:
        """The run has `total` images to go through (None: not known, a stream of inputs)."""
        ...

    def record(self, record: Record) -> None: ...

    def tiles(self) -> TileCallback | None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BatchRequest:
    """The run spec of `upscaler batch`: what the user asked, decided once. The CLI (or a
    caller) gives every field as it will be used: the output size as one `OutputSize`, the
    backend by name (the default already chosen); `run_batch` decides the precision that
    "auto" means once, before any image, and nothing below re-decides any of it."""

    #: Local paths, or URLs (str) for shared storage (s3://...).
    inputs: tuple[Location, ...]
    out: Location | None
    #: How large each output is made (--factor, --scale, --width, --height, --fit).
    size: OutputSize
    backend: str
    weights: Path | None
    device: str
    tile: int | None
    overlap: int | None
    fmt: str
    quality: int
    report: Path | None
    reference: Path | None
    rgb_psnr: bool
    jobs: int
    threads: int | None
    skip_existing: bool
    max_pixels: int
    lock_timeout: float
    dry_run: bool
    quiet: bool
    engine: str = DEFAULT_ENGINE
    scheduler: str | None = None
    workers: int | None = None
    #: Files for a tls:// scheduler (None: Dask's configuration).
    tls: Tls | None = None
    #: Join a plain tcp:// scheduler on another host without the warning.
    insecure: bool = False
    #: "auto" (the backend's best on this machine), "fp32" or "bf16"; `run_batch` replaces
    #: "auto" by what it means here before anything runs.
    precision: str = "auto"
    max_frames: int = DEFAULT_MAX_FRAMES
    max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS
    input_kind: str = "auto"
    #: More inputs, one path per line, read while the run goes (--files-from; "-": standard
    #: input): the run ends at the end of that file (`stream.PathStream`).
    files_from: str | None = None

    def in_flight(self, images: int) -> int:
        """Images processed at once by one process (`split_cores`)."""
        return split_cores(images, self.jobs)[0]

    def settings(self, images: int = 1) -> Settings:
        """Settings for a run of `images` images (their number decides the backend's threads)."""
        threads = self.threads or self._default_threads(images)
        options = BackendOptions(
            weights=self.weights,
            device=self.device,
            threads=threads,
            precision=self.precision,
            concurrent=self.in_flight(images) if self.engine == "local" else None,
        )
        alone = cores() // self.jobs if self.engine == "local" and not self.threads else None
        return Settings(
            backend=self.backend,
            size=self.size,
            alone_threads=alone if alone and alone != threads else None,
            tile=self.tile,
            overlap=self.overlap,
            quality=self.quality,
            skip_existing=self.skip_existing,
            options=options,
            reference=self.reference,
            rgb_psnr=self.rgb_psnr,
            max_pixels=self.max_pixels,
            max_frames=self.max_frames,
            max_decode_pixels=self.max_decode_pixels,
            input_kind=self.input_kind,
        )

    def _default_threads(self, images: int) -> int | None:
        if self.engine != "local":
            return None  # on a cluster, each worker gives its backend its own thread count
        return split_cores(images, self.jobs)[1]

    def create_engine(self, images: int, progress: Progress) -> Engine:
        """The engine that runs this request's `images` images."""
        return create_engine(
            self.engine,
            workers=self.in_flight(images) if self.engine == "local" else self.workers,
            scheduler=self.scheduler,
            processes=self.jobs,
            tile_progress=progress.tiles,
            tls=self.tls,
        )


def run_batch(req: BatchRequest, progress: Progress) -> int:
    """Run a batch; returns the exit status."""
    started = datetime.now().astimezone()
    if req.report and req.report.suffix.lower() not in REPORT_SUFFIXES:
        return _usage(progress, f"--report must end in {', '.join(REPORT_SUFFIXES)}")
    try:
        report = report_path(req.report, started) if req.report else None
    except UpscalerError as exc:
        return _usage(progress, str(exc))
    try:  # what "auto" runs as here, decided once for every image (and every worker)
        req = replace(req, report=report, precision=plugin_precision(req.backend, req.precision))
    except UpscalerError as exc:
        return _usage(progress, str(exc))
    problem = engine_problem(
        req.engine, req.scheduler, req.workers, req.jobs, req.tls, req.insecure
    ) or _stream_problem(req)
    if problem:
        return _usage(progress, problem)
    try:
        if req.scheduler:
            client_security(req.scheduler, req.tls)  # a wrong file fails before any work
    except EngineError as exc:
        return _usage(progress, str(exc))
    warning = plain_tcp_warning(req.scheduler, req.insecure)
    if warning:
        progress.message(f"upscaler: warning: {warning}")
    try:
        found = find_jobs(req.inputs, req.out, req.size.label, req.fmt)
        if isinstance(req.out, Path) and req.files_from is not None:  # the streamed inputs'
            out = Path(os.path.abspath(req.out))
            found.roots.extend([] if out in found.roots else [out])
        # a stream's images come one or a few at a time: one per core, as for a large batch
        settings = req.settings(max(len(found.jobs), cores() if req.files_from else 0))
        if req.report is not None and req.report.suffix.lower() == ".html":
            settings = replace(settings, thumbnails=thumbnails_folder(req.report.absolute()))
        factor = req.size.first_factor()
        if not req.dry_run and (found.jobs or req.files_from) and factor is not None:
            # a model that cannot load stops the run once, before any image, as a usage error
            load_backend(settings.backend, factor, settings.options)
    except UpscalerError as exc:
        return _usage(progress, str(exc))
    if req.dry_run:
        return _dry_run(req, found, progress)
    try:
        with _locked(found.roots, req.lock_timeout):
            return _process_all(req, settings, found, progress, started)
    except EngineError as exc:
        return _usage(progress, str(exc))
    except LockTimeout as exc:
        progress.message(
            f"upscaler: error: another upscaler run is writing to {exc.path.parent} "
            f"(waited {req.lock_timeout:g} s for {exc.path})"
        )
        return EXIT_LOCKED
    except OSError as exc:  # the output folder or its lock file cannot even be created
        if not is_disk_full(exc):
            raise
        progress.message(
            f"upscaler: error: cannot create {exc.filename or 'the output folder'}: "
            f"{exc.strerror}: free some space and run the same command again"
        )
        return EXIT_DISK_FULL


@contextmanager
def _locked(roots: list[Path], timeout: float) -> Iterator[None]:
    """Hold a lock file in each output folder, so that two runs never write the same files."""
    with ExitStack() as stack:
        for root in sorted(roots):
            root.mkdir(parents=True, exist_ok=True)
            stack.enter_context(hold_lock(root / LOCK_NAME, timeout))
        yield


def _usage(progress: Progress, message: str) -> int:
    progress.message(f"upscaler: error: {message}")
    return EXIT_USAGE


def _stream_problem(req: BatchRequest) -> str | None:
    """Why --files-from does not go with the other options, or None."""
    if req.files_from is None:
        return None if req.inputs else "give INPUTS, or --files-from"
    if req.out is None or is_url(req.out):
        return "--files-from needs -o, a local folder (it is locked while the run reads)"
    if req.engine != "local":
        return "--files-from is for --engine local"
    return None


def _jobs(
    req: BatchRequest, found: Discovery, on_problem: Callable[[Location, str], None]
) -> tuple[Iterable[Job | None], PathStream | None]:
    """The run's jobs: those `found` on the command line, then (with --files-from) those of
    the paths as they are read, with the stream that plans them."""
    if req.files_from is None:
        return found.jobs, None
    assert isinstance(req.out, Path)
    folders = [p for p in req.inputs if isinstance(p, Path) and p.is_dir()]
    stream = PathStream(
        req.files_from, req.out, req.size.label, req.fmt, found, on_problem, folders
    )
    return chain(tuple(found.jobs), stream.jobs()), stream


def _dry_run(req: BatchRequest, found: Discovery, progress: Progress) -> int:
    for path, reason in found.problems:
        progress.message(f"{path}: {reason}")
    jobs, stream = _jobs(req, found, lambda path, reason: progress.message(f"{path}: {reason}"))
    for job in jobs:
        if job is not None:
            print(redact(f"{job.src} -> {job.dst}"), flush=True)
            if stream is not None:
                stream.finished(str(job.dst))
    counted = _Counted.of(found, stream)
    progress.message(f"{counted.jobs} images, {counted.not_images} other files skipped")
    return EXIT_SOME_FAILED if counted.problems else EXIT_OK


def _process_all(
    req: BatchRequest,
    settings: Settings,
    found: Discovery,
    progress: Progress,
    started: datetime,
) -> int:
    own_model = settings.options.weights is not None
    fixed = None if own_model else backend_floor(settings.backend)
    records: list[Record] = []
    tally = Tally()
    # a stream may never end: without a report to write, it keeps a tally, not its records
    keep = req.files_from is None or req.report is not None

    def take(record: Record) -> None:
        if keep:
            records.append(record)
        else:  # judged by the backend's floor as it comes (a run's median needs them all)
            tally.add(flag_suspects([record], fixed)[0])

    def problem(path: Location, reason: str) -> None:
        take(Record(str(path), "", "failed", reason))
        progress.message(one_line(f"{path}: {reason}"))

    for path, reason in found.problems:
        problem(path, reason)
    clock = time.perf_counter()
    jobs, stream = _jobs(req, found, problem)
    engine = req.create_engine(len(found.jobs) if stream is None else cores(), progress)
    progress.start(len(found.jobs) if stream is None else None)
    full: Record | None = None  # the first image that found the disk full
    with StopSignals(progress.message) as stop:
        try:
            for record in engine.results(jobs, settings, stop):
                if stream is not None:
                    stream.finished(record.dst)
                take(record)
                if record.disk_full is not None and full is None:
                    full = record
                    stop.halt()  # every image after it would fail the same way
                progress.record(record)
        finally:
            progress.close()
    floor = fixed
    if keep:
        floor = consistency_floor(records, fixed)
        records = flag_suspects(records, floor)
        for record in records:
            tally.add(record)
    counted = _Counted.of(found, stream)
    summary = tally.summary(time.perf_counter() - clock, counted.not_images)
    summary["consistency_floor"] = floor
    summary.update(
        started=started.isoformat(timespec="seconds"),
        ended=datetime.now().astimezone().isoformat(timespec="seconds"),
        version=__version__,
        host=platform.node(),
        backend=settings.backend,
        precision=settings.options.precision,
        factor=settings.size.factor,
        size=settings.size.label,
    )
    if full is not None:
        progress.message(_disk_full_message(full, tally, counted, found.roots))
    if stream is None:  # input order, whatever finished first (a stream's: as they finished)
        order = {str(job.src): i for i, job in enumerate(found.jobs)}
        records.sort(key=lambda r: order.get(r.src, -1))
    report_status = _report(req.report, records, summary, progress) if req.report else EXIT_OK
    if not req.quiet:
        progress.message(summary_line(summary))
    if full is not None or report_status == EXIT_DISK_FULL:
        return EXIT_DISK_FULL  # before 130/143: the next run needs space first
    if stop.signum is not None:
        return 128 + stop.signum  # 130 for SIGINT, 143 for SIGTERM
    return EXIT_SOME_FAILED if summary["failed"] or report_status else EXIT_OK


def _report(path: Path, records: list[Record], summary: dict[str, Any], progress: Progress) -> int:
    """Write the report: EXIT_OK, or one line on stderr and the status its failure calls for."""
    try:
        write_report(path, records, summary)
    except OSError as exc:  # on the full disk too, or not writable: say so, no traceback
        reason = exc.strerror or str(exc)
        progress.message(f"upscaler: error: cannot write the report {path}: {reason}")
        return EXIT_DISK_FULL if is_disk_full(exc) else EXIT_SOME_FAILED
    return EXIT_OK


@dataclass(frozen=True)
class _Counted:
    """How many jobs, problems and other files a run found, on its command line and in its
    stream (which counts them as they go, keeping none)."""

    jobs: int
    problems: int
    not_images: int

    @classmethod
    def of(cls, found: Discovery, stream: PathStream | None) -> _Counted:
        jobs, problems, not_images = (0, 0, 0) if stream is None else stream.counts()
        jobs, problems = jobs + len(found.jobs), problems + len(found.problems)
        return cls(jobs, problems, not_images + len(found.not_images))


def _disk_full_message(first: Record, tally: Tally, counted: _Counted, roots: list[Path]) -> str:
    """The one line that says the run stopped for a full disk, and that a rerun resumes."""
    folder = _full_folder(first.disk_full or first.dst, roots)
    done, skipped = tally.counts["done"], tally.counts["skipped"]
    not_started = counted.problems + counted.jobs - sum(tally.counts.values())
    return (
        f"upscaler: error: {folder} is full ({first.error}): the run stopped with {done} of "
        f"{counted.jobs} images done ({skipped} skipped as already done), {tally.disk_full} "
        f"failed for lack of space and {not_started} not started. Free some space and run the "
        "same command again: it skips the finished outputs and carries on where it stopped."
    )


def _full_folder(folder: str, roots: list[Path]) -> str:
    """The output folder (as given) that holds `folder`, or the staging temporary folder."""
    import tempfile  # here: not imported by a run that stages nothing

    where = Path(os.path.abspath(folder))
    for root in sorted(roots, key=lambda r: len(Path(os.path.abspath(r)).parts), reverse=True):
        if where.is_relative_to(os.path.abspath(root)):
            return f"output folder {root}"
    if where == Path(os.path.abspath(tempfile.gettempdir())):
        return f"temporary folder {where} (where URL inputs and outputs are staged)"
    return f"folder {where}"
