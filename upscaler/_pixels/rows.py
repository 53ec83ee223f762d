"""Images as streams of row bands, top to bottom: what lets memory stay flat.

A `Rows` is an image of known size whose pixels arrive as bands of whole rows, (h, W, C),
top to bottom, each band once. A stage (`stages`) reads the rows it needs through a `Window`
(which keeps only the rows some reader may still ask for) and yields its own bands; the
encoder pulls the last stage's bands and writes each one before the next is made. Memory is
then set by the band sizes (about BAND_BYTES per stage), not by the image's height, whatever
the decoder, the sizes or the encoder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BAND_BYTES",
    "Reader",
    "Rows",
    "Window",
    "collect",
    "from_array",
    "squeezed",
]

#: About this many bytes of output per band of a stage (fewer rows for wider images).
BAND_BYTES = 8 << 20


@dataclass
class Rows:
    """An image of `height` x `width` x `channels` values of `dtype` arriving as `bands`."""

    width: int
    height: int
    channels: int
    dtype: np.dtype[Any]
    bands: Iterator[NDArray[Any]]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.width, self.height

    def band_rows(self, bytes_per_row: int) -> int:
        """Rows per band so that a band of `bytes_per_row` rows takes about BAND_BYTES."""
        return max(1, min(self.height, BAND_BYTES // max(1, bytes_per_row)))


def from_array(pixels: NDArray[Any], rows: int | None = None) -> Rows:
    """A decoded (H, W) or (H, W, C) array as a stream of bands (views, no copies)."""
    img = pixels[:, :, None] if pixels.ndim == 2 else pixels
    h, w, c = img.shape
    step = rows or max(1, BAND_BYTES // max(1, w * c * img.dtype.itemsize))
    return Rows(w, h, c, img.dtype, (img[top : top + step] for top in range(0, h, step)))


def collect(rows: Rows) -> NDArray[Any]:
    """The whole image of a stream, (H, W, C): for what must hold it all (small images,
    encoders that take one picture)."""
    out = np.empty((rows.height, rows.width, rows.channels), rows.dtype)
    top = 0
    for band in rows.bands:
        out[top : top + band.shape[0]] = band
        top += band.shape[0]
    if top != rows.height:
        raise ValueError(f"the stream gave {top} rows of {rows.height}")
    return out


def squeezed(pixels: NDArray[Any]) -> NDArray[Any]:
    """(H, W, 1) pixels as (H, W), the engine's shape for one channel; others as they are."""
    return pixels[:, :, 0] if pixels.shape[2] == 1 else pixels


class Window:
    """Rows of a stream, read in order by one or more readers, each asking for ranges whose
    start never goes back; rows that every reader has passed are dropped."""

    def __init__(self, rows: Rows, readers: int = 1) -> None:
        self.rows = rows
        self._bands: list[tuple[int, NDArray[Any]]] = []  # (first row, band)
        self._end = 0  # rows pulled from the stream so far
        self._marks = [0] * readers

    def reader(self, index: int = 0) -> Reader:
        return Reader(self, index)

    def close(self, reader: int) -> None:
        self._marks[reader] = self.rows.height

    def get(self, y0: int, y1: int, reader: int = 0) -> NDArray[Any]:
        """Rows [y0, y1) as one (y1 - y0, W, C) array."""
        if y0 < self._marks[reader]:
            raise ValueError(f"row {y0} asked for after row {self._marks[reader]}")
        self._marks[reader] = y0
        while self._end < y1:
            band = next(self.rows.bands, None)
            if band is None:
                raise ValueError(f"the stream ended at row {self._end} of {self.rows.height}")
            self._bands.append((self._end, band))
            self._end += band.shape[0]
        keep = min(self._marks)
        self._bands = [(top, b) for top, b in self._bands if top + b.shape[0] > keep]
        parts = [
            b[max(y0 - top, 0) : y1 - top]
            for top, b in self._bands
            if top < y1 and top + b.shape[0] > y0
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


@dataclass(frozen=True)
class Reader:
    """One reader of a `Window`."""

    window: Window
    index: int

    @property
    def rows(self) -> Rows:
        return self.window.rows

    def get(self, y0: int, y1: int) -> NDArray[Any]:
        return self.window.get(y0, y1, self.index)

    def close(self) -> None:
        """This reader asks for no more rows: the window stops keeping rows for it."""
        self.window.close(self.index)
