"""Tile maths: which input box each tile reads, and where its output goes.

Each tile has a *core* (the input pixels it is responsible for) and a *padded* box: the
core plus `overlap` pixels of context on every side, shifted inwards at the image edges so
that every padded box of an image has the same size (one shape, one backend batch). Where
a padded box meets the image edge the backend sees the same edge as for the whole image,
so with overlap >= the backend's halo, cropping each output to its core reproduces the
untiled result. Backends without a finite halo are blended instead: linear feather weights
across each shared strip, normalised so they sum to one at every pixel.

A band of rows is tiled with the rows around it as context (`plan_tiles(..., rows=)`): only
the band's rows are cut into cores, the padding reaches into the rows around them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["Feather", "Span", "Tile", "plan_spans", "plan_tiles"]


class Shaped(Protocol):
    """What `batches` groups: anything with a padded shape (tiles, and jobs made of them)."""

    @property
    def padded_shape(self) -> tuple[int, int]: ...


T = TypeVar("T", bound=Shaped)


@dataclass(frozen=True)
class Span:
    """One axis of a tile: core [start, stop) inside padded [pad_start, pad_stop)."""

    start: int
    stop: int
    pad_start: int
    pad_stop: int


@dataclass(frozen=True)
class Tile:
    """A tile: its row and column spans, and its place in raster order."""

    row: int
    col: int
    y: Span
    x: Span

    @property
    def padded_shape(self) -> tuple[int, int]:
        return self.y.pad_stop - self.y.pad_start, self.x.pad_stop - self.x.pad_start


def plan_spans(
    length: int, tile: int, overlap: int, cores: tuple[int, int] | None = None
) -> list[Span]:
    """Cut [0, length) into cores of `tile` (the last may be shorter), each padded; with
    `cores` = (a, b), only [a, b) is cut into cores and the rest of [0, length) is context
    their padding may take (a band of rows with the rows around it)."""
    a, b = cores or (0, length)
    if length < 1 or tile < 1 or overlap < 0 or not 0 <= a < b <= length:
        raise ValueError(
            f"bad tiling: length={length} tile={tile} overlap={overlap} cores={a}..{b}"
        )
    size = min(length, min(tile, b - a) + 2 * overlap)
    spans = []
    for start in range(a, b, tile):
        stop = min(start + tile, b)
        pad_start = min(max(start - overlap, 0), length - size)
        spans.append(Span(start, stop, pad_start, pad_start + size))
    return spans


def plan_tiles(
    height: int, width: int, tile: int, overlap: int, rows: tuple[int, int] | None = None
) -> list[Tile]:
    """All tiles of a height x width image, in raster order; with `rows` = (a, b), the tiles
    of rows a..b, the rows around them serving as context only."""
    rows_, cols = plan_spans(height, tile, overlap, rows), plan_spans(width, tile, overlap)
    return [Tile(r, c, ys, xs) for r, ys in enumerate(rows_) for c, xs in enumerate(cols)]


def batches(
    tiles: Sequence[T], max_pixels: int, key: Callable[[T], Hashable] | None = None
) -> Iterator[list[T]]:
    """Consecutive runs of same-shape tiles (same `key`, where given), each at most
    `max_pixels` padded input pixels."""
    run: list[T] = []
    for t in tiles:
        h, w = t.padded_shape
        same = run and (key(run[0]) == key(t) if key else run[0].padded_shape == (h, w))
        fits = same and (len(run) + 1) * h * w <= max_pixels
        if run and not fits:
            yield run
            run = []
        run.append(t)
    if run:
        yield run


def _ramp(spans: Sequence[Span], overlap: int, factor: int, length: int) -> NDArray[np.float64]:
    """(len(spans), length*factor) feather weight of each span at each output pixel."""
    centres = np.arange(length * factor) + 0.5
    width = max(2 * overlap * factor, 1e-9)
    weights = np.zeros((len(spans), length * factor))
    for i, s in enumerate(spans):
        rise = np.clip((centres - (s.start - overlap) * factor) / width, 0, 1) if s.start else 1.0
        fall = (
            np.clip(((s.stop + overlap) * factor - centres) / width, 0, 1)
            if s.stop < length
            else 1.0
        )
        if overlap == 0:
            rise = (centres >= s.start * factor) * 1.0
            fall = (centres < s.stop * factor) * 1.0
        inside = (centres >= s.pad_start * factor) & (centres < s.pad_stop * factor)
        weights[i] = rise * fall * inside
    return weights


class Feather:
    """Blending weights for raster-order stitching of tiles that overlap in the output.

    Tile k is mixed into what is already there with a = w_k / (w_1 + ... + w_k), so once
    every tile is in, each pixel is the weighted mean of all tiles covering it. Weights are
    separable, so only per-axis arrays are kept: no full-size weight or float image.
    """

    def __init__(self, height: int, width: int, tile: int, overlap: int, factor: int) -> None:
        self.factor = factor
        self.u = _ramp(plan_spans(height, tile, overlap), overlap, factor, height)
        self.v = _ramp(plan_spans(width, tile, overlap), overlap, factor, width)
        self.u_before = np.cumsum(self.u, axis=0) - self.u
        self.v_upto = np.cumsum(self.v, axis=0)
        self.v_all = self.v.sum(axis=0)

    def alpha(self, t: Tile) -> NDArray[np.float32]:
        """(padded out h, padded out w, 1): the share of tile `t` where it lands."""
        s = self.factor
        ys, xs = (
            slice(t.y.pad_start * s, t.y.pad_stop * s),
            slice(t.x.pad_start * s, t.x.pad_stop * s),
        )
        u, v = self.u[t.row, ys][:, None], self.v[t.col, xs][None, :]
        den = (
            self.u_before[t.row, ys][:, None] * self.v_all[xs][None, :]
            + u * self.v_upto[t.col, xs][None, :]
        )
        num = u * v
        a: NDArray[np.float32] = np.divide(num, den, out=np.zeros_like(num), where=num > 0).astype(
            np.float32
        )
        return a[:, :, None]
