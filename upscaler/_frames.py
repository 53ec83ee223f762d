"""Animated and multi-page images: GIF, WebP and PNG (APNG) animations, multi-page TIFF.

Frames are read one at a time as a viewer shows them (Pillow composites each animation frame
over the ones before it) and upscaled one at a time; Pillow's GIF writer takes them the same
way, its PNG, WebP and TIFF writers want them all first. Durations, the loop count, each GIF
frame's disposal and transparency are kept. GIF output is quantised to 255 colours (and a
transparent one) per frame: of two palettes, the one closer to the frame: a median-cut
palette of the frame shrunk 4 times, refined by k-means (4 rounds), or the plain median cut
of the whole frame (what Pillow itself does); pixels mapped to the nearest colour, without
dithering. Never worse than Pillow's default on a frame (0.01 dB: one colour fewer), up to
1.7 dB better on upscaled photos, at 1.3 to 2 times its cost
(docs/reference.md#animations-and-multi-page-files). Pillow's writers keep their own copy of
every frame until the file is written (GIF: one byte per pixel; PNG, WebP and TIFF: the full
frame), so `--max-frames` bounds an animation's memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ._errors import ImageError

__all__ = [
    "ANIMATED_FORMATS",
    "Animation",
    "describe",
    "frame_count",
    "quantise",
    "read_frames",
    "write_frames",
]

#: Pillow formats that hold several frames, as they are written.
ANIMATED_FORMATS = ("GIF", "PNG", "WEBP", "TIFF")
#: GIF: the palette index that is transparent in frames with transparency.
_CLEAR = 255


@dataclass
class Animation:
    """What a multi-frame file says about its frames (besides their pixels)."""

    format: str
    count: int
    loop: int | None = None
    durations: list[int] = field(default_factory=list)
    disposals: list[int] = field(default_factory=list)


def frame_count(im: Image.Image) -> int:
    """Frames (or pages) of an opened image; a multi-picture JPEG counts as one."""
    return 1 if im.format == "MPO" else int(getattr(im, "n_frames", 1))


def read_frames(im: Image.Image, animation: Animation) -> Iterator[Image.Image]:
    """The frames of the opened `im` in order, each as shown, filling in `animation`'s
    durations and disposals as they go (so it is complete once the iterator is)."""
    for index in range(animation.count):
        im.seek(index)
        im.load()  # WebP knows a frame's duration once it is decoded
        animation.durations.append(int(im.info.get("duration", 0) or 0))
        animation.disposals.append(int(getattr(im, "disposal_method", 0) or 0))
        # a new image either way: the next seek changes `im`
        yield (
            im.convert("RGBA" if _has_alpha(im) else "RGB") if im.mode in ("P", "PA") else im.copy()
        )


def describe(im: Image.Image) -> Animation:
    """The facts of the first frame of an opened multi-frame image."""
    im.seek(0)
    loop = im.info.get("loop")
    return Animation(im.format or "?", frame_count(im), None if loop is None else int(loop))


def write_frames(
    frames: Iterable[Image.Image],
    fh: BinaryIO,
    fmt: str,
    animation: Animation,
    options: dict[str, object],
) -> None:
    """Write `frames` (a generator is consumed as the writer goes) as one `fmt` file."""
    if fmt not in ANIMATED_FORMATS:
        raise ImageError(
            f"{animation.count} frames cannot be written as {fmt}: use --format png, webp, "
            "tiff or gif (or same)"
        )
    frames = iter(frames)
    first = next(frames)
    if fmt == "GIF":  # GIF takes the frames one by one (and keeps each, 1 byte a pixel)
        first, frames = quantise(first), (quantise(f) for f in frames)
    else:  # the others go through all frames (PNG: twice) before they write the first
        frames = list(frames)
    first.save(
        fh,
        format=fmt,
        save_all=True,
        append_images=frames,
        **_sequence_options(fmt, animation, options),
    )


def _sequence_options(
    fmt: str, animation: Animation, options: dict[str, object]
) -> dict[str, object]:
    opts = dict(options)
    if fmt == "TIFF":
        return opts
    # Pillow reads durations after the frames are written: a list that fills as they go.
    opts["duration"] = _Durations(animation.durations)
    if animation.loop is not None:
        opts["loop"] = animation.loop
    if fmt == "GIF":
        opts["disposal"] = _Durations(animation.disposals)
        opts.pop("quality", None)
        opts["optimize"] = False  # keep each frame's own palette as made
    if fmt == "PNG":
        opts["disposal"], opts["blend"] = 0, 0  # whole frames, as shown: no compositing
    return opts


class _Durations(list):  # type: ignore[type-arg]
    """A list that is filled while the writer iterates the frames (Pillow indexes it per
    frame, after it has taken that frame)."""

    def __init__(self, values: list[int]) -> None:
        super().__init__()
        self.values = values

    def __getitem__(self, index: Any) -> Any:
        return self.values[index]

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[int]:
        return iter(self.values)


def quantise(frame: Image.Image) -> Image.Image:
    """A GIF frame: 255 colours, the closer of two palettes (see the module), no dithering;
    pixels under half opacity get the transparent index."""
    rgb = frame.convert("RGB")
    small = rgb.resize((max(1, rgb.width // 4), max(1, rgb.height // 4)), Image.Resampling.BOX)
    palette = small.quantize(_CLEAR, Image.Quantize.MEDIANCUT, kmeans=4)
    refined = rgb.quantize(palette=palette, dither=Image.Dither.NONE)
    plain = rgb.quantize(_CLEAR, Image.Quantize.MEDIANCUT)  # what Pillow's GIF writer does
    out = min((refined, plain), key=lambda candidate: _error(candidate, rgb))
    if frame.mode == "RGBA":
        clear = np.asarray(frame.getchannel("A")) < 128
        if clear.any():
            indices = np.asarray(out).copy()
            indices[clear] = _CLEAR
            out = _with_palette(indices, out)
            out.info["transparency"] = _CLEAR
    return out


def _error(indexed: Image.Image, rgb: Image.Image) -> float:
    diff = np.asarray(indexed.convert("RGB"), np.int32) - np.asarray(rgb, np.int32)
    return float(np.vdot(diff, diff))


def _with_palette(indices: NDArray[np.uint8], like: Image.Image) -> Image.Image:
    im = Image.fromarray(indices, "P")
    palette = like.getpalette() or []
    im.putpalette(palette + [0] * (768 - len(palette)))
    return im


def _has_alpha(im: Image.Image) -> bool:
    return "A" in im.mode or "transparency" in im.info
