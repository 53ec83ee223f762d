"""What a batch shows while it runs: an image bar, tile bars and one line per image.

`TerminalProgress` is handed to `_run.batch.run_batch` by the command line; the batch calls it
back (`record`, `tiles`, `message`) and never prints progress itself.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from .._images.redact import one_line, redact
from .._run.spec import Record, TileCallback

if TYPE_CHECKING:  # tqdm is imported only when a bar is shown: fast start-up
    from tqdm import tqdm

__all__ = ["TILE_BAR_MIN", "TerminalProgress"]

#: Images with more tiles than this get a second progress bar over their tiles.
TILE_BAR_MIN = 16


class TerminalProgress:
    """What cron-friendly tools print: failures always; a bar on a terminal (not when quiet
    or verbose); with `verbose`, one line per image, skipped ones too."""

    def __init__(self, quiet: bool = False, verbose: bool = False) -> None:
        self.quiet, self.verbose = quiet, verbose
        self.bar: tqdm | None = None
        self.lines, self.count, self.lock = threading.local(), 0, threading.Lock()

    def start(self, total: int | None) -> None:
        """The run has `total` images to go through (None: a stream, not known)."""
        if not self.quiet and not self.verbose and sys.stderr.isatty():
            self.bar = _image_bar(total)

    def record(self, record: Record) -> None:
        """One image finished (any status): a line for a failure, and for any image when
        verbose."""
        if record.disk_full is not None:
            pass  # said once for the run, after the images in flight (`_run.batch`)
        elif record.status == "failed":
            self.message(one_line(f"{record.src}: {record.error}"))
        elif self.verbose:
            line = f"{record.status} {record.src} -> {record.dst} ({record.seconds:.2f} s"
            if record.model is not None:
                quality = f", JPEG q{record.jpeg_quality}" if record.jpeg_quality else ""
                line += f", {record.model} weights{quality}"
            line += ")"
            self.message(one_line(line))
        if self.bar is not None:
            self.bar.update(1)

    def tiles(self) -> TileCallback | None:
        """A callback for one image's tiles; called from the thread that processes it."""
        return None if self.bar is None else _tile_progress(self._line)

    def message(self, text: str) -> None:
        """One line on stderr, above the bars (credentials masked: `_images.redact`)."""
        text = redact(text)
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            click.echo(text, err=True)

    def close(self) -> None:
        """The images are through (the summary comes after)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _line(self) -> int:
        if not hasattr(self.lines, "position"):
            with self.lock:
                self.count += 1
                self.lines.position = self.count
        return int(self.lines.position)


def _image_bar(total: int | None) -> tqdm:
    from tqdm import tqdm

    return tqdm(total=total, unit="img", dynamic_ncols=True)


def _tile_progress(line: Callable[[], int]) -> TileCallback:
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
