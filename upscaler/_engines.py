"""Where the images of a batch are processed: in this machine's processes, or on a cluster.

Every engine runs the same pure per-image function (`_pipeline.process_image`) and yields one
`Record` per image as images finish; discovery, progress, the report and the exit status stay
with `_run`. The `local` engine is `_run`'s own loop (one process, or `--jobs N` processes);
`dask` lives in `_dask` and is imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from ._errors import UpscalerError
from ._pipeline import Record, Settings
from ._remote import AnyJob

__all__ = ["ENGINES", "Engine", "EngineError", "StopFlag", "create_engine", "engine_problem"]

ENGINES = ("local", "dask")


class EngineError(UpscalerError):
    """The engine cannot run at all (e.g. the scheduler cannot be reached)."""


class StopFlag(Protocol):
    """Polled by engines: once `stopping`, the run takes no new image (`_run.StopSignals`).

    Set by SIGINT/SIGTERM or by the run itself (a full output disk).
    """

    @property
    def stopping(self) -> bool: ...


class Engine(Protocol):
    """Runs a batch's jobs somewhere and yields their records, in the order they finish."""

    def results(
        self, jobs: Sequence[AnyJob], settings: Settings, stop: StopFlag
    ) -> Iterator[Record]:
        """One record per job (fewer once `stop.stopping`: the jobs not started get none)."""
        ...


def create_engine(name: str, scheduler: str | None, workers: int | None) -> Engine:
    """The engine `name` (not `local`, which is `_run`'s own loop)."""
    if name == "dask":
        from ._dask import DaskEngine

        return DaskEngine(scheduler, workers)
    raise ValueError(f"unknown engine {name!r} (known: {', '.join(ENGINES)})")


def engine_problem(name: str, scheduler: str | None, workers: int | None, jobs: int) -> str | None:
    """Why these engine options do not go together, or None."""
    if name == "local" and (scheduler or workers):
        return "--scheduler and --workers need --engine dask"
    if name != "local" and jobs != 1:
        return f"--jobs is for --engine local; with --engine {name} use --workers"
    if scheduler and workers:
        return "--workers starts a local cluster; a cluster given by --scheduler has its own"
    return None
