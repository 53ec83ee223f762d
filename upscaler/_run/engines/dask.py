"""The `dask` engine: a batch on a Dask cluster, local (`LocalCluster`) or joined by address.

The driver (this process) lists the jobs, reports the up-to-date ones as skipped without
submitting them, and submits the rest in chunks through a bounded window, so a run of
millions of images keeps a few hundred tasks on the scheduler at a time. A worker that dies
while running a chunk is replaced and the chunk retried (up to the scheduler's
`distributed.scheduler.allowed-failures`); a chunk that keeps killing workers is split into
single images, so the one image that kills its worker fails alone. Dask counts a worker's death
against every task assigned to that worker, so an image whose own task "keeps killing workers"
may only have been queued beside the culprit: it is tried once more, alone, at the end of the
run (nothing else of the run in flight), and only fails if it kills workers then too.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import uuid4

from distributed.diagnostics.plugin import WorkerPlugin

from ..._plugins.registry import load_backend
from ..job import discard_partial, process_job, skip_record
from ..spec import Job, Record, Settings
from .base import EngineError, StopFlag, cores
from .security import Tls, client_security, connect_problem

__all__ = ["ALLOWED_FAILURES", "DaskEngine", "LeaveSignalsToDriver", "run_chunk", "stop_chunks"]

#: Worker deaths a task survives on a local cluster (Dask's own default is 3).
ALLOWED_FAILURES = 2
#: Dask configuration of a local cluster. Its workers do not get Dask's default
#: MALLOC_TRIM_THRESHOLD_=65536: glibc then gives back every freed image buffer, which cost
#: about 1 s of system time and 15% of the wall time on 200 small photos on two cores.
LOCAL_CLUSTER_CONFIG = {
    "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
    "distributed.nanny.pre-spawn-environ": {
        "OMP_NUM_THREADS": 1,
        "MKL_NUM_THREADS": 1,
        "OPENBLAS_NUM_THREADS": 1,
    },
}
#: Most images in one task.
MAX_CHUNK = 256
#: Fewest tasks per worker thread (smaller chunks, so that all threads finish about together).
SPREAD = 16
#: Chunks in flight per worker thread: enough to keep workers busy between round trips.
CHUNKS_PER_THREAD = 2
#: How often the driver looks for a stop signal while it waits for chunks (seconds).
STOP_POLL = 0.2
#: On each worker process: the runs asked to stop (their chunks return after the image in hand).
_STOPPED: set[str] = set()


class DaskEngine:
    """Runs jobs on the cluster at `scheduler` (joined with `tls` for a tls:// address), or
    on a local cluster of `workers` processes."""

    def __init__(
        self, scheduler: str | None = None, workers: int | None = None, tls: Tls | None = None
    ) -> None:
        self.scheduler, self.workers, self.tls = scheduler, workers, tls

    def results(
        self, jobs: Iterable[Job | None], settings: Settings, stop: StopFlag
    ) -> Iterator[Record]:
        """Skipped records first, then one record per submitted job as chunks finish.

        The cluster is started (or joined) only when there is something to submit: after
        the last job (a stream of jobs is read to its end first; `batch` gives this engine
        none).
        """
        todo = []
        for job in jobs:
            if job is None:
                continue
            skipped = skip_record(job, settings)
            if skipped is not None:
                yield skipped  # nothing submitted
            else:
                todo.append(job)
        if not todo or stop.stopping:
            return
        with self._client() as client:
            yield from _Driver(client, _portable_settings(settings), stop).run(todo)

    @contextmanager
    def _client(self) -> Iterator[Any]:
        import dask

        dist = _distributed()
        if self.scheduler:
            security = client_security(self.scheduler, self.tls)
            with _connect(dist.Client, self.scheduler, security) as client:
                yield client
            return
        with (
            dask.config.set(LOCAL_CLUSTER_CONFIG),
            dist.LocalCluster(
                n_workers=self.workers or cores(),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",  # its HTTP server is on even without
                # a dashboard: a free port, never a warning that 8787 is taken
                silence_logs=logging.CRITICAL,
                plugins={LeaveSignalsToDriver()},
            ) as cluster,
            dist.Client(cluster) as client,
        ):
            yield client


@contextmanager
def _connect(client_class: Any, address: str, security: Any) -> Iterator[Any]:
    """A client of the scheduler at `address` that has at least one worker.

    Waits `distributed.comm.timeouts.connect` (30 s by default) for the scheduler, then as
    long again for a worker (a worker whose certificate the cluster refuses never joins).
    """
    try:
        client = client_class(address, security=security)
    except (OSError, ValueError, TypeError, MemoryError) as exc:
        raise EngineError(connect_problem(address, exc)) from exc
    with client:
        _wait_for_a_worker(client, address)
        yield client


def _wait_for_a_worker(client: Any, address: str) -> None:
    import dask
    from dask.utils import parse_timedelta

    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError as exc:
        raise EngineError(
            f"the Dask scheduler at {address} has no workers (waited {timeout:g} s; a worker "
            "without a certificate from the cluster's CA cannot join)"
        ) from exc


def _distributed() -> Any:
    """`distributed`, imported on first use (it has no type hints)."""
    import distributed

    return distributed


class _Driver:
    """Feeds chunks of jobs to the cluster through a bounded window and collects records."""

    def __init__(self, client: Any, settings: Settings, stop: StopFlag) -> None:
        self.client, self.settings, self.stop = client, settings, stop
        self.threads = max(1, sum(client.nthreads().values()))
        self.queue: deque[list[Job]] = deque()
        self.in_flight: dict[Any, list[Job]] = {}
        #: Images whose own task died, to try again alone; and those so tried.
        self.suspects: deque[Job] = deque()
        self.alone: set[Job] = set()
        self.finished = _distributed().as_completed()
        self.run_id = f"upscaler-{uuid4().hex[:8]}"
        self.submitted = 0

    def run(self, jobs: list[Job]) -> Iterator[Record]:
        """Records of `jobs`, as their chunks finish."""
        size = min(MAX_CHUNK, max(1, math.ceil(len(jobs) / (SPREAD * self.threads))))
        self.queue.extend(jobs[i : i + size] for i in range(0, len(jobs), size))
        self._fill()
        with self._relaying_stop():
            for future in self.finished:
                chunk = self.in_flight.pop(future)
                yield from self._records(future, chunk)
                self._fill()

    @contextmanager
    def _relaying_stop(self) -> Iterator[None]:
        """While chunks run, pass a stop signal on to the workers (the driver may be waiting)."""
        finished = threading.Event()

        def watch() -> None:
            while not finished.wait(STOP_POLL):
                if self.stop.stopping:
                    self.client.run(stop_chunks, self.run_id)
                    return

        watcher = threading.Thread(target=watch, name="upscaler-stop-relay", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            finished.set()
            watcher.join()

    def _fill(self) -> None:
        while self.queue and len(self.in_flight) < CHUNKS_PER_THREAD * self.threads:
            if self.stop.stopping:
                return
            self._submit(self.queue.popleft())
        if self.suspects and not self.queue and not self.in_flight and not self.stop.stopping:
            job = self.suspects.popleft()
            self.alone.add(job)
            self._submit([job])

    def _submit(self, chunk: list[Job]) -> None:
        self.submitted += 1
        key = f"{self.run_id}-{self.submitted}"
        portable = [_portable_job(job) for job in chunk]
        future = self.client.submit(
            run_chunk, portable, self.settings, self.run_id, key=key, pure=False
        )
        self.in_flight[future] = chunk
        self.finished.add(future)

    def _records(self, future: Any, chunk: list[Job]) -> list[Record]:
        try:
            records: list[Record] = future.result()
        except _distributed().KilledWorker as exc:
            if len(chunk) > 1:  # find the image that kills workers: one task per image
                self.queue.extendleft([job] for job in reversed(chunk))
                return []
            if chunk[0] not in self.alone:  # perhaps only queued beside the culprit
                self.suspects.append(chunk[0])
                return []
            discard_partial(chunk[0])  # the dead worker's half-written output
            return [
                self._failed(chunk[0], f"worker process died ({exc.allowed_failures + 1} attempts)")
            ]
        except Exception as exc:  # the scheduler lost the task, a worker could not unpickle it...
            return [
                self._failed(job, f"worker failed: {type(exc).__name__}: {exc}") for job in chunk
            ]
        # records name the paths as given (and in order; a stopped chunk returns fewer)
        return [
            replace(r, src=str(j.src), dst=str(j.dst)) for r, j in zip(records, chunk, strict=False)
        ]

    def _failed(self, job: Job, reason: str) -> Record:
        return Record.of(job, self.settings, "failed", reason)


def _portable_job(job: Job) -> Job:
    """The job with absolute local paths: workers have their own working folders."""
    src = job.src.absolute() if isinstance(job.src, Path) else job.src
    dst = job.dst.absolute() if isinstance(job.dst, Path) else job.dst
    return replace(job, src=src, dst=dst)


def _portable_settings(settings: Settings) -> Settings:
    weights = settings.options.weights
    options = replace(settings.options, weights=weights.absolute() if weights else None)
    reference = settings.reference.absolute() if settings.reference else None
    return replace(settings, options=options, reference=reference)


def run_chunk(jobs: list[Job], settings: Settings, run_id: str) -> list[Record]:
    """On a worker: upscale `jobs`, which the driver found to need it (so none is skipped
    here: a chunk retried after its worker died redoes the images that worker finished).

    The backend gets as many intra-op threads as the worker has threads unless --threads says
    otherwise (ONNX Runtime ignores OMP_NUM_THREADS, and its default, all cores per worker
    process, oversubscribes them). Once the run is stopped, the images not started get no
    record, as in a local run.
    """
    nthreads = _distributed().get_worker().state.nthreads
    threads = settings.options.threads or nthreads
    options = replace(settings.options, threads=threads, concurrent=nthreads)
    on_worker = replace(settings, options=options)
    factor = on_worker.size.first_factor()  # None: each input's size decides (--width...)
    with suppress(Exception):  # errors: each image's record says why (load_backend locks)
        if factor is not None:
            load_backend(on_worker.backend, factor, on_worker.options)
    records = []
    for job in jobs:
        if run_id in _STOPPED:
            break
        records.append(process_job(job, on_worker))
        if records[-1].disk_full is not None:  # the driver stops the run; this worker's
            _STOPPED.add(run_id)  # chunks stop now rather than when the driver says so
    return records


def stop_chunks(run_id: str) -> None:
    """On every worker (`Client.run`): the chunks of `run_id` take no new image."""
    _STOPPED.add(run_id)


class LeaveSignalsToDriver(WorkerPlugin):
    """Local workers ignore SIGINT and SIGTERM sent to the whole process group (Ctrl-C in a
    terminal, `systemctl stop`): the driver stops the run and its workers after the images in
    hand. A worker killed by the same signal would instead be replaced and its chunk redone
    whole. The cluster's own shutdown does not use signals (then SIGKILL); set up again in
    every replaced worker.
    """

    def setup(self, worker: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
