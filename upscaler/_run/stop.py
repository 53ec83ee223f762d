"""The stop flag of a run: SIGINT, SIGTERM, or the run itself (a full output disk)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["StopSignals"]


class StopSignals:
    """The run's stop flag (`engines.StopFlag`): once `stopping`, no new image is started.

    `say` tells the user that a signal came.

    While active, SIGINT/SIGTERM set it (`signum`), and so does `halt` (the run itself, when
    the output disk is full). A second signal exits at once, without a report, as a user
    pressing Ctrl-C twice wants (outputs being written are hidden temporary files, replaced by
    the next run).
    """

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
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
        self.say(f"upscaler: {signal.Signals(signum).name}: stopping after the images in flight")
