"""From decoded rows to output rows: the network passes, the resize, and what is measured on
the way (the consistency PSNR, thumbnails), all band by band.

`output_rows` chains the stages an output size needs (`size.network_passes`, then a bicubic
resize where the size is not a whole factor). `Watch` passes the output's bands on to the
encoder unchanged and, as they go by, shrinks their luma back to the input's size and compares
it with the input's rows (which it reads through its own reader of the input's window, a band
behind the network): the consistency PSNR of a whole image, without the whole image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._defaults import THUMB_SIDE
from .._plugins.interface import Backend
from .color import to_uint8
from .metrics import shrink_for, y_channel, y_plane
from .rows import Reader, Rows, Window, collect, from_array, squeezed
from .size import network_passes
from .stages import across, coefficients, down, resized, upscaled

__all__ = ["Watch", "output_rows"]

TileCallback = Callable[[int, int], None]
#: Input rows compared at a time by the consistency check.
_CHECK_ROWS = 64
#: Output rows are turned into float luma about this many bytes at a time.
_LUMA_BYTES = 2 << 20


def output_rows(
    source: Reader,
    size: tuple[int, int],
    backend_for: Callable[[int, bool], Backend],
    tile: int | None,
    overlap: int | None,
    on_tiles: TileCallback | None = None,
) -> Rows:
    """The output of `size` (width, height) as a stream: the network at each factor of
    `network_passes` (`backend_for(factor, first pass?)` gives its backend), then an
    antialiased bicubic resize to the exact size where still needed."""
    passes = network_passes(source.rows.size, size)
    if not passes and source.rows.size == size:
        return _through(source)  # kept as it is (--width of its own width...)
    for index, factor in enumerate(passes):
        rows = upscaled(source, backend_for(factor, index == 0), tile, overlap, on_tiles)
        if rows.size == size:
            return rows
        source = Window(rows).reader()
    return resized(source, size)


def _through(source: Reader) -> Rows:
    """The rows of `source`, read through its window (which another reader shares)."""
    src = source.rows
    step = src.band_rows(src.width * src.channels * src.dtype.itemsize)

    def bands() -> Iterator[NDArray[Any]]:
        for top in range(0, src.height, step):
            yield source.get(top, min(top + step, src.height))

    return Rows(src.width, src.height, src.channels, src.dtype, bands())


class Watch:
    """The output's bands on their way to the encoder (`rows`), measured as they pass: the
    consistency PSNR against the input, strided copies for thumbnails, and with `keep` the
    whole output (for scoring against a reference).

    An output that no network pass made (no larger than its input: --shrink, or a size
    option that keeps the size) is the input resized by the same bicubic the check uses:
    there is nothing to check, its consistency is None (and its input is not read again: a
    large input shrunk to a small output is never held)."""

    def __init__(self, source: Reader, out: Rows, thumbs: bool = False, keep: bool = False) -> None:
        self.source, self.out = source, out
        src = source.rows
        self._checked = bool(network_passes(src.size, out.size))
        if not self._checked:
            source.close()
        self._check = _Consistency(src.size, out.size)
        self._thumbs = thumbs
        self._steps = (_thumb_step(out.size), _thumb_step(src.size))
        self._small: tuple[list[NDArray[Any]], list[NDArray[Any]]] = ([], [])
        self._whole: list[NDArray[Any]] | None = [] if keep else None
        self._next = 0  # first input row not yet compared
        self._done = 0  # output rows seen
        self.rows = Rows(out.width, out.height, out.channels, out.dtype, self._passing())

    def _passing(self) -> Iterator[NDArray[Any]]:
        for band in self.out.bands:
            yield band
            self._see(band)
            del band  # not held while the next band is made
        if self._checked:
            self._compare(self.source.rows.height)

    def _see(self, band: NDArray[Any]) -> None:
        top, self._done = self._done, self._done + band.shape[0]
        if self._whole is not None:
            self._whole.append(band.copy())
        if self._thumbs:
            step = self._steps[0]
            self._small[0].append(band[(-top) % step :: step, ::step].copy())
        if self._checked:
            self._check.add(band)
            self._compare(self._check.ready(self._done))

    def _compare(self, upto: int) -> None:
        """Compare input rows up to `upto` (those whose output rows have all gone by)."""
        src_h = self.source.rows.height
        while self._next < min(upto, src_h):
            top = self._next
            bottom = min(top + _CHECK_ROWS, upto, src_h)
            pixels = self.source.get(top, bottom)
            self._check.compare(pixels, top, bottom)
            if self._thumbs:
                step = self._steps[1]
                self._small[1].append(pixels[(-top) % step :: step, ::step].copy())
            self._next = bottom

    def consistency(self) -> float | None:
        """The consistency PSNR (dB) once every band has gone by; None with nothing to check."""
        return self._check.psnr() if self._checked else None

    def thumbnails(self) -> tuple[NDArray[Any], NDArray[Any]]:
        """(output, input) strided copies (about 2 x thumbnail size) for `write_thumbnails`
        (the output's twice where the input was not read again)."""
        out = squeezed(np.concatenate(self._small[0]))
        return out, squeezed(np.concatenate(self._small[1])) if self._small[1] else out

    def whole(self) -> NDArray[Any]:
        """The whole output (with `keep`)."""
        assert self._whole is not None
        return squeezed(np.concatenate(self._whole))


def _thumb_step(size: tuple[int, int]) -> int:
    return max(1, max(size) // (2 * THUMB_SIDE))


class _Consistency:
    """The output's luma shrunk back to the input's size with Pillow's antialiased bicubic
    kernel (in float, no rounding between), compared with the input's luma, input row band by
    band: `metrics.consistency_psnr` on a stream, with its filters: a whole multiple with
    OpenCV's separable filter (`BicubicShrink`, across as the bands come, down per band of
    input rows, as `consistency_psnr` does it by strips), else Pillow's resize across and
    Pillow's weights down."""

    def __init__(self, size: tuple[int, int], out: tuple[int, int]) -> None:
        (w, h), (ow, oh) = size, out
        self.size, self.out = size, out
        whole = (oh % h, ow % w) == (0, 0) and oh // h == ow // w
        self.shrink = shrink_for(ow // w, oh, ow) if whole else None
        self.scale = oh / h
        self._rows: list[NDArray[np.float32]] = []  # across-shrunk luma rows, from `_first`
        self._first = 0
        self._total, self._count = 0.0, 0

    def add(self, band: NDArray[Any]) -> None:
        """The next band of output rows (taken a few rows at a time: its float luma would
        be 4 bytes per output pixel)."""
        step = max(1, _LUMA_BYTES // (band.shape[1] * 4))
        for top in range(0, band.shape[0], step):
            part = to_uint8(band[top : top + step])
            plane = y_plane(squeezed(part))
            if self.shrink is not None:
                narrow = self.shrink.across(plane)
            else:
                narrow = collect(across(_one(plane), self.size[0]))[..., 0]
            self._rows.append(narrow.astype(np.float32, copy=False))

    def ready(self, seen: int) -> int:
        """How many input rows have all their output rows among the first `seen` ones."""
        if seen >= self.out[1]:
            return self.size[1]
        if self.shrink is not None:  # rows up to bottom x factor + reach
            return max(0, (seen - self.shrink.reach) // self.shrink.factor)
        support = 2.0 * max(self.scale, 1.0)
        upto = min(max(0, math.floor((seen - support) / self.scale)), self.size[1])
        while upto > 0:  # the estimate, checked against the weights themselves
            first, count, _ = coefficients(self.out[1], self.scale, upto - 1, upto)
            if first[0] + count[0] <= seen:
                break
            upto -= 1
        return upto

    def compare(self, pixels: NDArray[Any], top: int, bottom: int) -> None:
        """Score input rows top..bottom (`pixels`) against the output rows gone by."""
        plane = self._plane()
        if self.shrink is not None:
            s, reach = self.shrink.factor, self.shrink.reach
            y0, y1 = max(top * s - reach, 0), min(bottom * s + reach, self.out[1])
            rows = plane[y0 - self._first : y1 - self._first]
            shrunk = self.shrink.down_rows(rows, y0, top, bottom)
            keep_from = bottom * s - reach
        else:
            first, _, weights = coefficients(self.out[1], self.scale, top, bottom)
            shrunk = down(plane[..., None], first - self._first, weights)[..., 0]
            keep_from = int(coefficients(self.out[1], self.scale, bottom, bottom + 1)[0][0])
        diff = shrunk.astype(np.float64) - y_channel(to_uint8(pixels))
        self._total += float(np.sum(diff * diff))
        self._count += diff.size
        if bottom < self.size[1]:  # the rows the next input rows need stay
            self._drop(keep_from)

    def _plane(self) -> NDArray[np.float32]:
        if len(self._rows) > 1:
            self._rows = [np.concatenate(self._rows)]
        return self._rows[0]

    def _drop(self, keep_from: int) -> None:
        """Forget output rows before `keep_from` (no later input row needs them)."""
        plane = self._plane()
        cut = min(max(keep_from - self._first, 0), plane.shape[0])
        self._rows, self._first = [plane[cut:]], self._first + cut

    def psnr(self) -> float:
        if self._total == 0:
            return float("inf")
        return 10.0 * float(np.log10(255.0**2 * self._count / self._total))


def _one(plane: NDArray[np.float32]) -> Reader:
    """A float plane as a one-channel stream reader, for `across`."""
    return Window(from_array(plane[..., None])).reader()
