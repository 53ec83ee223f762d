"""Inputs that come while a batch runs (`upscaler batch --files-from`): one path per line.

A per-upload hook that starts `upscaler batch` for every photo pays the start-up (Python,
NumPy, OpenCV, Pillow, the engine and the model) every time: for a small photo, most of its
time. One run fed by a stream of paths pays it once: `inotifywait -m -e close_write
--format '%w%f' uploads | upscaler batch --files-from - -o upscaled`.

The paths are read on a thread of their own, so that a run waiting for the next one still
hands its finished records on, and stops within `POLL` seconds of a signal. Each line is
planned as a command-line input would be (`plan.discover`): a file goes to OUT/<name>, a
folder's images below OUT/ with their relative paths, and a path inside a folder of the
command line where that folder's walk puts it (`upscaler batch uploads --files-from - -o
out` does the backlog, then follows the stream, into one tree). A path inside OUT is refused: a hook
that watches a folder holding OUT would otherwise feed the run its own outputs. A path given
again is done again (unless its output is up to date and the run skips those): after the job
in flight for the same output has finished, since no two jobs ever write one output at once.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._errors import UpscalerError
from .._images.storage import is_url
from .plan import Discovery, discover, unusable
from .spec import Job, Location

__all__ = ["MAX_LINE", "POLL", "PathStream"]

#: Seconds a run waiting for the next path goes without looking at its stop flag.
POLL = 0.2
#: The longest line taken for a path (Linux's PATH_MAX is 4096 bytes).
MAX_LINE = 1 << 16
#: Paths read ahead of the jobs, at most: then the reader waits (and so does a writer to a
#: pipe), so that a long list is not held whole.
_READ_AHEAD = 256
_END = object()


class PathStream:
    """Jobs planned from the lines of the file `source` ("-": standard input) as they come,
    below the output folder `out`.

    `found` holds what was planned before (the command line's inputs: their outputs are
    taken, and not written twice at once); what the stream adds is counted (`counts`), not
    kept, since a stream may never end; `on_problem(path, reason)` is called for each
    problem as it is found. A path inside one of the folders `within` (the command line's)
    goes where that folder's walk puts it, its relative path kept.
    """

    def __init__(
        self,
        source: str,
        out: Path,
        label: str,
        fmt: str,
        found: Discovery,
        on_problem: Callable[[Location, str], None],
        within: Sequence[Path] = (),
    ) -> None:
        self.out, self.label, self.fmt, self.within = out, label, fmt, tuple(within)
        self._out = Path(os.path.abspath(out))
        self.on_problem = on_problem
        self._jobs = self._problems = self._not_images = 0
        self._lines: queue.Queue[object] = queue.Queue(maxsize=_READ_AHEAD)
        # outputs of the jobs handed out and not yet finished
        self._busy = {str(job.dst) for job in found.jobs}
        self._waiting: deque[Job] = deque()  # planned, not yet handed out
        self._claimed: dict[Location, Location] = {job.dst: job.src for job in found.jobs}
        reader = threading.Thread(target=self._read, args=(source,), daemon=True)
        reader.name = "upscaler-files-from"
        reader.start()

    def jobs(self) -> Iterator[Job | None]:
        """The next job to start, None when there is none yet (a caller polls again), and
        the end once the stream has ended and every job has been handed out."""
        ended = False
        while True:
            ready = self._ready()
            if ready is not None:
                yield self._start(ready)
                continue
            if ended:
                if not self._waiting:
                    return
                time.sleep(POLL)  # for the job that holds the output of the next one to end
                yield None
                continue
            try:
                line = self._lines.get(timeout=POLL)
            except queue.Empty:
                yield None
                continue
            if line is _END:
                ended = True
            elif isinstance(line, _Problem):
                self._problem(line.name, line.reason)
            else:
                assert isinstance(line, str)
                self._waiting.extend(self._plan(line))

    def finished(self, dst: str) -> None:
        """The job writing `dst` is over (any outcome): a later job for it may start."""
        self._busy.discard(dst)

    def counts(self) -> tuple[int, int, int]:
        """(jobs handed out, problems, files that are not images) so far."""
        return self._jobs, self._problems, self._not_images

    def _ready(self) -> Job | None:
        """The first waiting job whose output no job in flight writes (taken off the queue)."""
        for i, job in enumerate(self._waiting):
            if str(job.dst) not in self._busy:
                del self._waiting[i]
                return job
        return None

    def _start(self, job: Job) -> Job:
        self._busy.add(str(job.dst))
        self._jobs += 1
        return job

    def _plan(self, line: str) -> list[Job]:
        """The jobs of one line (none, after saying why, for a path that cannot be used)."""
        if is_url(line):
            self._problem(line, "URLs are not taken from --files-from: give them as INPUTS")
            return []
        path = Path(line)
        reason = unusable(path)
        if Path(os.path.abspath(path)).is_relative_to(self._out):
            reason = f"inside the output folder {self.out}: not read (an output?)"
        if reason is not None:
            self._problem(path, reason)
            return []
        try:
            one = discover([path], self.out, self.label, self.fmt, self.within)
        except UpscalerError as exc:  # the output folder inside it; a path gone meanwhile
            self._problem(path, str(exc))
            return []
        self._not_images += len(one.not_images)
        for src, reason in one.problems:
            self._problem(src, reason)
        jobs = []
        for job in one.jobs:  # the same file named another way (relative, absolute) is no clash
            first = self._claimed.setdefault(job.dst, job.src)
            if os.path.abspath(first) != os.path.abspath(job.src):
                self._problem(job.src, f"its output {job.dst} is already the output of {first}")
            else:
                jobs.append(job)
        return jobs

    def _problem(self, path: Location, reason: str) -> None:
        self._problems += 1
        self.on_problem(path, reason)

    def _read(self, source: str) -> None:
        """Lines of `source` ("-": standard input), decoded as file names are, then the end.

        Read with `os.read`, not through `sys.stdin`: a thread still waiting for input when
        the run ends must not hold the lock of a Python file object at interpreter exit. A
        line longer than `MAX_LINE` bytes is no path: it is skipped, not held."""
        name = "standard input" if source == "-" else source
        fd, rest, too_long = -1, b"", False
        try:
            fd = 0 if source == "-" else os.open(source, os.O_RDONLY)  # a FIFO waits here
            while chunk := os.read(fd, 1 << 16):
                *lines, rest = (rest + chunk).split(b"\n")
                for raw in lines:
                    if too_long:  # the end of a line already skipped
                        too_long = False
                    elif raw:
                        self._lines.put(os.fsdecode(raw))
                if len(rest) > MAX_LINE:
                    if not too_long:
                        self._lines.put(_Problem(name, f"a line of more than {MAX_LINE} bytes"))
                    too_long, rest = True, b""
            if rest and not too_long:  # a last line without its newline
                self._lines.put(os.fsdecode(rest))
        except OSError as exc:
            reason = f"cannot read the list of inputs: {exc.strerror or exc}"
            self._lines.put(_Problem(name, reason))
        finally:
            if fd > 0:
                os.close(fd)
            self._lines.put(_END)


@dataclass(frozen=True)
class _Problem:
    """Trouble with the stream itself (an I/O error: the run ends after what it read; a line
    too long to be a path), said as a problem of `name`, the stream."""

    name: str
    reason: str
