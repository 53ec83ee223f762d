"""Where the images of a batch are processed: engines, peers behind one protocol.

Every engine runs the same pure per-job function (`job.run_job`) and yields one `Record` per
job as jobs finish; planning, progress, the report and the exit status stay with `batch`.
`local` runs on this machine, `dask` on a Dask cluster (its module is imported only when asked
for: it needs the dask extra).
"""

from __future__ import annotations

from collections.abc import Callable

from ..._defaults import ENGINES
from ..spec import TileCallback
from .base import Engine, EngineError, StopFlag, cores
from .local import LocalEngine, split_cores
from .security import Tls, client_security, plain_tcp_warning, tls_problem

__all__ = [
    "ENGINES",
    "Engine",
    "EngineError",
    "LocalEngine",
    "StopFlag",
    "Tls",
    "client_security",
    "cores",
    "create_engine",
    "engine_problem",
    "plain_tcp_warning",
    "split_cores",
]


def create_engine(
    name: str,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    processes: int = 1,
    tile_progress: Callable[[], TileCallback | None] | None = None,
    tls: Tls | None = None,
) -> Engine:
    """The engine `name`: `local` (`workers` images at a time, or `processes` processes) or
    `dask` (the cluster at `scheduler`, joined with `tls` for a tls:// address, or a local
    cluster of `workers` processes)."""
    if name == "local":
        return LocalEngine(workers or cores(), processes, tile_progress)
    if name == "dask":
        from .dask import DaskEngine

        return DaskEngine(scheduler, workers, tls)
    raise ValueError(f"unknown engine {name!r} (known: {', '.join(ENGINES)})")


def engine_problem(
    name: str,
    scheduler: str | None,
    workers: int | None,
    jobs: int,
    tls: Tls | None = None,
    insecure: bool = False,
) -> str | None:
    """Why these engine options do not go together, or None."""
    if name == "local" and (scheduler or workers):
        return "--scheduler and --workers need --engine dask"
    problem = tls_problem(scheduler, tls, insecure)
    if problem:
        return problem
    if name != "local" and jobs != 1:
        return f"--jobs is for --engine local; with --engine {name} use --workers"
    if scheduler and workers:
        return "--workers starts a local cluster; a cluster given by --scheduler has its own"
    return None
