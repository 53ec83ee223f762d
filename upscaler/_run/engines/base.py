"""What every engine is: the protocol, the stop flag it polls, the error it raises."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Protocol

from ..._errors import UpscalerError
from ..spec import Job, Record, Settings

__all__ = ["Engine", "EngineError", "StopFlag", "cores"]


class EngineError(UpscalerError):
    """The engine cannot run at all (e.g. the scheduler cannot be reached)."""


class StopFlag(Protocol):
    """Polled by engines: once `stopping`, the run takes no new image.

    Set by SIGINT/SIGTERM or by the run itself (a full output disk).
    """

    @property
    def stopping(self) -> bool: ...

    def halt(self) -> None:
        """Stop the run for a reason of its own (an image found the output disk full)."""
        ...


class Engine(Protocol):
    """Runs a batch's jobs somewhere and yields their records, in the order they finish."""

    def results(
        self, jobs: Iterable[Job | None], settings: Settings, stop: StopFlag
    ) -> Iterator[Record]:
        """One record per job (fewer once `stop.stopping`: the jobs not started get none).

        `jobs` is a list, or a stream of jobs as they come (`--files-from`), in which None
        means that there is no new job yet: the engine hands on the records of the images
        that finished meanwhile and asks again."""
        ...


def cores() -> int:
    """The processors this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
