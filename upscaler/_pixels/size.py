"""The size of each output: `--factor`, `--scale`, `--width`, `--height` or `--fit`.

A factor of 2, 3 or 4 runs the network once at that factor. Any other size runs it at the
factor that serves the size best, then resizes to the exact size with antialiased bicubic
(Pillow's kernel, in float): up to x4, the smallest shipped factor at or above the scale;
above x4, two passes, the smaller factor first (x2 then x3 up to x6, x2 then x4 up to x8:
as good as the other order within 0.04 dB on Set5 and BSDS500, at half the cost or less;
see docs/reference.md#any-output-size). Sizes round half up; a side is at least 1 pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._errors import ImageError

__all__ = ["MAX_SCALE", "OutputSize", "checked_size", "network_passes"]

#: The largest scale served (two passes of the network, x2 then x4).
MAX_SCALE = 8.0
#: Ratios this close to a factor count as that factor (float noise of width/height ratios).
_EPS = 1e-9


@dataclass(frozen=True)
class OutputSize:
    """What size an input of (width, height) is made; exactly one field is set.

    `shrink` (with width, height or fit): an input already larger than the target is made
    smaller; otherwise it keeps its size.
    """

    factor: int | None = None
    scale: float | None = None
    width: int | None = None
    height: int | None = None
    fit: tuple[int, int] | None = None
    shrink: bool = False

    def __post_init__(self) -> None:
        given = [f for f in ("factor", "scale", "width", "height", "fit") if getattr(self, f)]
        if len(given) != 1:
            raise ValueError(f"give one output size, not {len(given)}: {', '.join(given)}")
        if self.scale is not None and not 1 <= self.scale <= MAX_SCALE:
            raise ValueError(f"--scale must be from 1 to {MAX_SCALE:g}, not {self.scale:g}")

    @property
    def label(self) -> str:
        """Short name for folders and reports: x3, x2.5, w1000, h800, fit3840x2160."""
        if self.factor or self.scale:
            return f"x{self.factor or self.scale:g}"
        if self.width or self.height:
            return f"w{self.width}" if self.width else f"h{self.height}"
        assert self.fit is not None
        return f"fit{self.fit[0]}x{self.fit[1]}"

    def stored_size_for(self, width: int, height: int, turned: bool) -> tuple[int, int]:
        """`size_for` an image stored as (width, height) and shown turned a quarter (EXIF
        orientation 5 to 8) when `turned`: --width and --height mean the shown sides."""
        if not turned:
            return self.size_for(width, height)
        shown = self.size_for(height, width)
        return shown[1], shown[0]

    def first_factor(self) -> int | None:
        """The factor of the first network pass where the rule alone decides it (--factor,
        --scale above 1); None where each input's size does (--width, --height, --fit)."""
        if self.factor:
            return self.factor
        passes = _passes(self.scale) if self.scale else ()
        return passes[0] if passes else None

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """The exact output (width, height) for an input shown as (width, height)."""
        if self.factor:
            return width * self.factor, height * self.factor
        if self.scale:
            return _rounded(width * self.scale), _rounded(height * self.scale)
        ratio = self._ratio(width, height)
        if ratio < 1 and not self.shrink:
            return width, height
        if self.width or (self.fit and self.fit[0] / width <= self.fit[1] / height):
            target = self.width or self.fit[0]  # type: ignore[index]
            return target, _rounded(height * target / width)
        target = self.height or self.fit[1]  # type: ignore[index]
        return _rounded(width * target / height), target

    def _ratio(self, width: int, height: int) -> float:
        if self.width:
            return self.width / width
        if self.height:
            return self.height / height
        assert self.fit is not None
        return min(self.fit[0] / width, self.fit[1] / height)


def network_passes(size: tuple[int, int], out: tuple[int, int]) -> tuple[int, ...]:
    """The factors to run the network at, in order, to go from `size` to `out` (then resize).

    Raises ValueError above MAX_SCALE.
    """
    return _passes(max(out[0] / size[0], out[1] / size[1]))


def _passes(ratio: float) -> tuple[int, ...]:
    if ratio <= 1 + _EPS:
        return ()
    if ratio <= 4 + _EPS:
        return (next(f for f in (2, 3, 4) if ratio <= f + _EPS),)
    if ratio <= 6 + _EPS:
        return (2, 3)
    if ratio <= MAX_SCALE + _EPS:
        return (2, 4)
    raise ValueError(f"needs x{ratio:.3g}, more than the x{MAX_SCALE:g} served")


def checked_size(
    rule: OutputSize, size: tuple[int, int], max_pixels: int | None, turned: bool = False
) -> tuple[int, int]:
    """The output size `rule` gives an input (or frame) of `size`, as stored; ImageError when
    no network passes serve it or it has more than `max_pixels` pixels (checked from the
    header, before any pixel is decoded)."""
    w, h = size
    out = rule.stored_size_for(w, h, turned)
    try:
        network_passes(size, out)
    except ValueError as exc:
        raise ImageError(f"{w}x{h} pixels to {out[0]}x{out[1]}: {exc}") from exc
    if max_pixels is not None and out[0] * out[1] > max_pixels:
        raise ImageError(
            f"{w}x{h} pixels: the {out[0]}x{out[1]} output would exceed --max-pixels {max_pixels:,}"
        )
    return out


def _rounded(value: float) -> int:
    return max(1, math.floor(value + 0.5))
