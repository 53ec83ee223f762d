"""An exclusive lock on a file, held while a run writes to an output folder.

On POSIX this is `flock` itself rather than the filelock package, whose import (asyncio,
logging) costs ~13 ms of a ~200 ms start-up. It is the same lock filelock takes on POSIX,
so programs using either exclude each other. Elsewhere (Windows) filelock does the work.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["LockTimeout", "hold_lock"]

_POLL_SECONDS = 0.05


class LockTimeout(Exception):
    """Another process held the lock for longer than the timeout."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"timed out waiting for {path}")
        self.path = path


@contextmanager
def hold_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed), waiting up to `timeout` s."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield from _with_filelock(path, timeout)
        return
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:  # a symbolic link at the lock's name: replaced, never followed
        if exc.errno != errno.ELOOP:
            raise
        path.unlink()
        fd = os.open(path, flags, 0o666)
    try:
        deadline = time.monotonic() + timeout
        while not _try_flock(fcntl, fd):
            if time.monotonic() >= deadline:
                raise LockTimeout(path)
            time.sleep(_POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _try_flock(fcntl: object, fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # type: ignore[attr-defined]
    except BlockingIOError:
        return False
    return True


def _with_filelock(path: Path, timeout: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    try:
        lock = FileLock(path, timeout=timeout)
        lock.acquire()
    except Timeout as exc:
        raise LockTimeout(path) from exc
    try:
        yield
    finally:
        lock.release()
