"""The `local` engine: images on this machine, on threads of this process or in processes.

With one process (the default), up to `workers` images run at once on threads, while their
estimated memory fits the process's budget (`budget`: each job waits for room before it
starts): decoding, encoding and the backend release the GIL, so one image's encoding overlaps
another's network. With `processes` > 1 (`--jobs N`), each worker process takes one image at
a time.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from ..job import discard_partial, run_job
from ..spec import Job, Record, Settings, TileCallback
from .base import StopFlag, cores

__all__ = ["LocalEngine", "split_cores"]


def split_cores(images: int, processes: int = 1) -> tuple[int, int]:
    """(images in flight in each process, backend threads per image) for a local run of
    `images` images: one image per core on threads when there is one process.

    Decoding, encoding and the backend release the GIL, so two images on two cores overlap
    one's encoding with the other's network, and neither waits on the other. (An image too
    large to share the memory budget runs with every core instead: `Settings.alone_threads`.)
    """
    in_flight = 1 if processes > 1 else max(1, min(cores(), images))
    return in_flight, max(1, cores() // (processes * in_flight))


class LocalEngine:
    """`workers` images at a time on threads, or one per process when `processes` > 1.

    `tile_progress`, when given, is called once per image (on the thread that processes it)
    for the callback that follows that image's tiles.
    """

    def __init__(
        self,
        workers: int,
        processes: int = 1,
        tile_progress: Callable[[], TileCallback | None] | None = None,
    ) -> None:
        self.workers, self.processes = max(1, workers), processes
        self.tile_progress = tile_progress or (lambda: None)

    def results(
        self, jobs: Iterable[Job | None], settings: Settings, stop: StopFlag
    ) -> Iterator[Record]:
        """Records in the order images finish; none for images not started once stopping.

        `jobs` may be a stream (`stream.PathStream.jobs`): None from it means no job yet.
        """
        if self.processes > 1 and not (isinstance(jobs, Sequence) and len(jobs) <= 1):
            return _in_processes(jobs, settings, self.processes, stop)
        return self._on_threads(jobs, settings, stop)

    def _on_threads(
        self, jobs: Iterable[Job | None], settings: Settings, stop: StopFlag
    ) -> Iterator[Record]:
        """One more image per worker waits in the pool's queue, so that a worker that finishes
        starts the next image at once; once the run is stopping, queued images do not start."""
        todo, pending = _Jobs(jobs), set[Future[Record | None]]()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="upscaler")
        try:
            while True:
                todo.idle = False
                while not stop.stopping and len(pending) < 2 * self.workers:
                    job = todo.next()
                    if job is None:
                        break
                    pending.add(pool.submit(self._unless_stopped, job, settings, stop))
                if not pending:
                    if todo.ended or stop.stopping:
                        return
                    continue  # a stream with nothing new: `todo.next` waited for it
                done, _ = wait(pending, timeout=todo.wait(), return_when=FIRST_COMPLETED)
                for future in done:
                    pending.discard(future)
                    record = future.result()
                    if record is not None:
                        yield record
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _unless_stopped(self, job: Job, settings: Settings, stop: StopFlag) -> Record | None:
        """`run_job` on a worker thread, or None (not started) once the run is stopping.

        A full disk stops the run from the worker that found it, before a queued image starts.
        """
        if stop.stopping:
            return None
        record = run_job(job, settings, self.tile_progress())
        if record.disk_full is not None:
            stop.halt()
        return record


def _in_processes(
    jobs: Iterable[Job | None], settings: Settings, processes: int, stop: StopFlag
) -> Iterator[Record]:
    """One image per worker process (spawned: no inherited threads or locks).

    Images are handed to the pool one per free worker, so that a stop (signal, full disk)
    leaves nothing queued: the pool commits whatever it has queued to a worker.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    pool = ProcessPoolExecutor(
        processes, mp_context=get_context("spawn"), initializer=_ignore_sigint
    )
    todo, pending = _Jobs(jobs), dict[Future[Record], Job]()
    try:
        while True:
            todo.idle = False
            while len(pending) < processes and not stop.stopping:
                job = todo.next()
                if job is None:
                    break
                pending[pool.submit(run_job, job, settings)] = job
            if not pending:
                if todo.ended or stop.stopping:
                    return
                continue  # a stream with nothing new: `todo.next` waited for it
            done, _ = wait(pending, timeout=todo.wait(), return_when=FIRST_COMPLETED)
            for future in done:
                yield _outcome(future, pending.pop(future), settings)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Jobs:
    """The engine's side of its jobs: `next()` is the next job, or None for none now: the
    jobs have `ended`, or a stream has nothing new yet (`idle`: its iterator yields None
    after waiting a moment for a path, so the engine need not wait again before it hands
    on the records of the images that finished meanwhile)."""

    def __init__(self, jobs: Iterable[Job | None]) -> None:
        self._jobs, self.ended, self.idle = iter(jobs), False, False

    def next(self) -> Job | None:
        if self.ended:
            return None
        job = next(self._jobs, _END)
        if job is _END:
            self.ended = True
            return None
        self.idle = job is None
        assert job is None or isinstance(job, Job)
        return job

    def wait(self) -> float | None:
        """How long to wait for an image to finish: not at all when the stream was just
        asked (and waited) for a path, else until one does."""
        return 0 if self.idle else None


_END = object()


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops the run cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _outcome(future: Future[Record], job: Job, settings: Settings) -> Record:
    """The worker's record, or a failure if the worker process died."""
    try:
        return future.result()
    except Exception as exc:  # BrokenProcessPool and the like: this image, not the run
        discard_partial(job)  # what the dead process was writing
        return Record.of(job, settings, "failed", f"worker process failed: {exc}")
