"""`upscaler batch`: discover -> process each image -> report, with progress and exit status."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._backend import BackendOptions
from ._codec import probe_pixels
from ._discover import Discovery, Job
from ._engines import EngineError, create_engine, engine_problem
from ._errors import UpscalerError
from ._lock import LockTimeout, hold_lock
from ._pipeline import Record, Settings, is_disk_full
from ._registry import load_backend
from ._remote import AnyJob, find_jobs, run_job
from ._report import REPORT_SUFFIXES, summarise, summary_line, write_report

if TYPE_CHECKING:  # tqdm and the process pool are imported only when used: fast start-up
    from tqdm import tqdm

__all__ = ["BatchRequest", "run_batch"]

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_LOCKED, EXIT_DISK_FULL = 0, 1, 2, 3, 4
#: Lock file in each output folder (hidden: never taken for an input).
LOCK_NAME = ".upscaler.lock"
#: Images with more tiles than this get a second progress bar over their tiles.
TILE_BAR_MIN = 16
#: Output pixels of the images in flight at once in one process; a larger image runs alone.
IN_FLIGHT_PIXELS = 100_000_000


@dataclass(frozen=True)
class BatchRequest:
    """The options of `upscaler batch`, as parsed."""

    #: Local paths, or URLs (str) for shared storage (s3://...).
    inputs: tuple[Path | str, ...]
    out: Path | str | None
    factor: str
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
    engine: str = "local"
    scheduler: str | None = None
    workers: int | None = None
    #: "auto" (the backend's best on this machine), "fp32" or "bf16".
    precision: str = "auto"

    def in_flight(self, images: int) -> int:
        """Images processed at once by one process: one per core (threads) when --jobs is 1.

        Decoding, encoding and the backend release the GIL, so two images on two cores
        overlap one's encoding with the other's network, and neither waits on the other.
        """
        return 1 if self.jobs > 1 else max(1, min(_cores(), images))

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
        return Settings(
            backend=self.backend,
            factor=int(self.factor),
            tile=self.tile,
            overlap=self.overlap,
            quality=self.quality,
            skip_existing=self.skip_existing,
            options=options,
            reference=self.reference,
            rgb_psnr=self.rgb_psnr,
            max_pixels=self.max_pixels,
        )

    def _default_threads(self, images: int) -> int | None:
        if self.engine != "local":
            return None  # on a cluster, each worker gives its backend its own thread count
        return max(1, _cores() // (self.jobs * self.in_flight(images)))


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_batch(req: BatchRequest) -> int:
    """Run a batch; returns the exit status."""
    if req.report and req.report.suffix.lower() not in REPORT_SUFFIXES:
        return _usage(f"--report must end in {', '.join(REPORT_SUFFIXES)}")
    problem = engine_problem(req.engine, req.scheduler, req.workers, req.jobs)
    if problem:
        return _usage(problem)
    try:
        found = find_jobs(req.inputs, req.out, int(req.factor), req.fmt)
        settings = req.settings(len(found.jobs))
        precision = None
        if not req.dry_run and found.jobs:
            backend = load_backend(settings.backend, settings.factor, settings.options)
            precision = getattr(backend, "precision", None)
    except UpscalerError as exc:
        return _usage(str(exc))
    if req.dry_run:
        return _dry_run(found)
    try:
        with _locked(found.roots, req.lock_timeout):
            return _process_all(req, settings, found, precision)
    except EngineError as exc:
        return _usage(str(exc))
    except LockTimeout as exc:
        click.echo(
            f"upscaler: error: another upscaler run is writing to {exc.path.parent} "
            f"(waited {req.lock_timeout:g} s for {exc.path})",
            err=True,
        )
        return EXIT_LOCKED
    except OSError as exc:  # the output folder or its lock file cannot even be created
        if not is_disk_full(exc):
            raise
        click.echo(
            f"upscaler: error: cannot create {exc.filename or 'the output folder'}: "
            f"{exc.strerror}: free some space and run the same command again",
            err=True,
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


def _usage(message: str) -> int:
    click.echo(f"upscaler: error: {message}", err=True)
    return EXIT_USAGE


def _dry_run(found: Discovery) -> int:
    for job in found.jobs:
        click.echo(f"{job.src} -> {job.dst}")
    for path, reason in found.problems:
        click.echo(f"{path}: {reason}", err=True)
    click.echo(f"{len(found.jobs)} images, {len(found.not_images)} other files skipped", err=True)
    return EXIT_SOME_FAILED if found.problems else EXIT_OK


def _process_all(
    req: BatchRequest, settings: Settings, found: Discovery, precision: str | None
) -> int:
    records = [Record(str(p), "", "failed", reason) for p, reason in found.problems]
    for r in records:
        click.echo(f"{r.src}: {r.error}", err=True)
    started = time.perf_counter()
    bar = _image_bar(req, len(found.jobs))
    full: Record | None = None  # the first image that found the disk full
    with StopSignals() as stop:
        try:
            for record in _results(req, settings, found.jobs, bar, stop):
                records.append(record)
                if record.disk_full is not None and full is None:
                    full = record
                    stop.halt()  # every image after it would fail the same way
                _announce(record, req, bar)
        finally:
            if bar is not None:
                bar.close()
    summary = summarise(records, time.perf_counter() - started, len(found.not_images))
    summary.update(backend=settings.backend, precision=precision)
    if full is not None:
        click.echo(_disk_full_message(full, records, found), err=True)
    order = {str(job.src): i for i, job in enumerate(found.jobs)}
    records.sort(key=lambda r: order.get(r.src, -1))  # input order, whatever finished first
    report_status = _report(req.report, records, summary) if req.report else EXIT_OK
    if not req.quiet:
        click.echo(summary_line(summary), err=True)
    if full is not None or report_status == EXIT_DISK_FULL:
        return EXIT_DISK_FULL  # before 130/143: the next run needs space first
    if stop.signum is not None:
        return 128 + stop.signum  # 130 for SIGINT, 143 for SIGTERM
    return EXIT_SOME_FAILED if summary["failed"] or report_status else EXIT_OK


def _report(path: Path, records: list[Record], summary: dict[str, Any]) -> int:
    """Write the report: EXIT_OK, or one line on stderr and the status its failure calls for."""
    try:
        write_report(path, records, summary)
    except OSError as exc:  # on the full disk too, or not writable: say so, no traceback
        reason = exc.strerror or str(exc)
        click.echo(f"upscaler: error: cannot write the report {path}: {reason}", err=True)
        return EXIT_DISK_FULL if is_disk_full(exc) else EXIT_SOME_FAILED
    return EXIT_OK


def _disk_full_message(first: Record, records: list[Record], found: Discovery) -> str:
    """The one line that says the run stopped for a full disk, and that a rerun resumes."""
    folder = _full_folder(first.disk_full or first.dst, found.roots)
    done = sum(r.status == "done" for r in records)
    skipped = sum(r.status == "skipped" for r in records)
    lacking = sum(r.disk_full is not None for r in records)
    not_started = len(found.problems) + len(found.jobs) - len(records)
    return (
        f"upscaler: error: {folder} is full ({first.error}): the run stopped with {done} of "
        f"{len(found.jobs)} images done ({skipped} skipped as already done), {lacking} failed "
        f"for lack of space and {not_started} not started. Free some space and run the same "
        "command again: it skips the finished outputs and carries on where it stopped."
    )


def _full_folder(folder: str, roots: list[Path]) -> str:
    """The output folder (as given) that holds `folder`, or the staging temporary folder."""
    where = Path(os.path.abspath(folder))
    for root in sorted(roots, key=lambda r: len(Path(os.path.abspath(r)).parts), reverse=True):
        if where.is_relative_to(os.path.abspath(root)):
            return f"output folder {root}"
    if where == Path(os.path.abspath(tempfile.gettempdir())):
        return f"temporary folder {where} (where URL inputs and outputs are staged)"
    return f"folder {where}"


class StopSignals:
    """The run's stop flag (`_engines.StopFlag`): once `stopping`, no new image is started.

    While active, SIGINT/SIGTERM set it (`signum`), and so does `halt` (the run itself, when
    the output disk is full). A second signal exits at once, without a report, as a user
    pressing Ctrl-C twice wants (outputs being written are hidden temporary files, replaced by
    the next run).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.halted = False
        self._previous: dict[int, Any] = {}

    @property
    def stopping(self) -> bool:
        """True once a signal came or `halt` was called."""
        return self.halted or self.signum is not None

    def halt(self) -> None:
        """Stop for a reason of the run's own: the images in flight finish, no new one starts."""
        self.halted = True

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None:
            sys.stderr.flush()
            os._exit(128 + signum)
        self.signum = signum
        click.echo(
            f"upscaler: {signal.Signals(signum).name}: stopping after the images in flight",
            err=True,
        )


def _results(
    req: BatchRequest, settings: Settings, jobs: list[AnyJob], bar: tqdm | None, stop: StopSignals
) -> Iterator[Record]:
    if req.engine != "local":
        yield from create_engine(req.engine, req.scheduler, req.workers).results(
            jobs, settings, stop
        )
        return
    if req.jobs == 1 or len(jobs) <= 1:
        yield from _in_process(jobs, settings, req.in_flight(len(jobs)), bar, stop)
        return
    yield from _in_processes(req, settings, jobs, stop)


def _in_processes(
    req: BatchRequest, settings: Settings, jobs: list[AnyJob], stop: StopSignals
) -> Iterator[Record]:
    """`--jobs N`: one image per worker process (spawned: no inherited threads or locks).

    Images are handed to the pool one per free worker, so that a stop (signal, full disk)
    leaves nothing queued: the pool commits whatever it has queued to a worker.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    pool = ProcessPoolExecutor(
        req.jobs, mp_context=get_context("spawn"), initializer=_ignore_sigint
    )
    todo, pending = iter(jobs), dict[Future[Record], AnyJob]()
    try:
        while True:
            while len(pending) < req.jobs and not stop.stopping:
                job = next(todo, None)
                if job is None:
                    break
                pending[pool.submit(run_job, job, settings)] = job
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield _outcome(future, pending.pop(future))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _in_process(
    jobs: list[AnyJob], settings: Settings, workers: int, bar: tqdm | None, stop: StopSignals
) -> Iterator[Record]:
    """Run up to `workers` images at a time on threads, in order, under IN_FLIGHT_PIXELS.

    One more image per worker waits in the pool's queue, so that a worker that finishes
    starts the next image at once instead of waiting for this thread to hand it over; once
    the run is stopping, queued images do not start (`_unless_stopped`).
    """
    sized = ((job, _pixels(job) * settings.factor**2) for job in jobs)
    waiting, pending = next(sized, None), dict[Future[Record | None], int]()
    bars = _TileBars(bar)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="upscaler")
    try:
        while waiting or pending:
            while waiting and not stop.stopping and _admits(pending, waiting[1], 2 * workers):
                future = pool.submit(_unless_stopped, waiting[0], settings, bars.progress(), stop)
                pending[future], waiting = waiting[1], next(sized, None)
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                del pending[future]
                record = future.result()
                if record is not None:
                    yield record
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _unless_stopped(
    job: AnyJob,
    settings: Settings,
    on_tiles: Callable[[int, int], None] | None,
    stop: StopSignals,
) -> Record | None:
    """`run_job` on a worker thread, or None (not started) once the run is stopping.

    A full disk stops the run from the worker that found it, before a queued image starts.
    """
    if stop.stopping:
        return None
    record = run_job(job, settings, on_tiles)
    if record.disk_full is not None:
        stop.halt()
    return record


def _pixels(job: AnyJob) -> int:
    """The input's pixels from its header; 0 (unknown) for URL jobs, whose input is remote."""
    return probe_pixels(job.src) if isinstance(job, Job) else 0


def _admits(pending: dict[Future[Record | None], int], pixels: int, slots: int) -> bool:
    """One image always goes; more only while a slot is free and the pixels fit (queued
    images count, so the images running can never exceed IN_FLIGHT_PIXELS)."""
    if not pending:
        return True
    return len(pending) < slots and sum(pending.values()) + pixels <= IN_FLIGHT_PIXELS


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops the run cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _outcome(future: Future[Record], job: AnyJob) -> Record:
    """The worker's record, or a failure if the worker process died."""
    try:
        return future.result()
    except Exception as exc:  # BrokenProcessPool and the like: this image, not the run
        return Record(str(job.src), str(job.dst), "failed", f"worker process failed: {exc}")


def _image_bar(req: BatchRequest, total: int) -> tqdm | None:
    if req.quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="img", dynamic_ncols=True)


class _TileBars:
    """Tile bars for images processed at the same time, each on a line of its own."""

    def __init__(self, bar: tqdm | None) -> None:
        self.bar, self.lines = bar, threading.local()
        self.count = 0
        self.lock = threading.Lock()

    def progress(self) -> Callable[[int, int], None] | None:
        """A callback for one image; called from the thread that processes it."""
        if self.bar is None:
            return None
        return _tile_progress(self._line)

    def _line(self) -> int:
        if not hasattr(self.lines, "position"):
            with self.lock:
                self.count += 1
                self.lines.position = self.count
        return int(self.lines.position)


def _tile_progress(line: Callable[[], int]) -> Callable[[int, int], None]:
    """A callback that shows a tile bar under the image bar for images with many tiles."""
    state: dict[str, tqdm] = {}

    def update(done: int, total: int) -> None:
        if total >= TILE_BAR_MIN and "bar" not in state:
            from tqdm import tqdm

            state["bar"] = tqdm(
                total=total, unit="tile", leave=False, position=line(), dynamic_ncols=True
            )
        if "bar" in state:
            state["bar"].update(done - state["bar"].n)
            if done == total:
                state.pop("bar").close()

    return update


def _announce(record: Record, req: BatchRequest, bar: tqdm | None) -> None:
    if record.disk_full is not None:
        pass  # said once for the run, after the images in flight (`_disk_full_message`)
    elif record.status == "failed":
        message = f"{record.src}: {record.error}"
        bar.write(message, file=sys.stderr) if bar is not None else click.echo(message, err=True)
    elif bar is None and not req.quiet:
        click.echo(
            f"{record.status} {record.src} -> {record.dst} ({record.seconds:.2f} s)", err=True
        )
    if bar is not None:
        bar.update(1)
