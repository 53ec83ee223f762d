"""Animated and multi-page images: GIF, WebP and PNG (APNG) animations, multi-page TIFF.

Frames are read one at a time as a viewer shows them (Pillow composites each animation frame
over the ones before it), each checked from its header before it is decoded, upscaled one at
a time and written one at a time: APNG by our PNG writer, GIF by Pillow's frame encoder
(`getheader`/`getdata`: every frame whole), TIFF pages by Pillow's page appender. Pillow's
WebP writer takes every frame first, so WebP animations are bounded up front
(WHOLE_FRAMES_PIXELS). Durations, the loop count, each GIF frame's disposal and transparency
are kept. GIF output is quantised to 255 colours (and a transparent one) per frame: of two
palettes, the one closer to the frame: a median-cut palette of the frame shrunk 4 times,
refined by k-means (4 rounds), or the plain median cut of the whole frame (what Pillow itself
does; of the frame halved above 4 megapixels, for memory); pixels mapped to the nearest
colour, without dithering. Never worse than Pillow's default on a frame of up to 4 megapixels
(0.01 dB: one colour fewer), up to 1.7 dB better on upscaled photos, at 1.3 to 2 times its
cost (docs/reference.md#animations-and-multi-page-files).
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import GifImagePlugin, Image

from .._errors import ImageError, file_reason
from .._memory import give_back
from .._pixels.color import to_uint8
from .._pixels.rows import Rows, collect, squeezed
from .png import write_png_chunk, write_png_frame

__all__ = [
    "ANIMATED_FORMATS",
    "WHOLE_FRAMES_PIXELS",
    "write_apng",
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
#: Largest GIF frame whose plain median cut is taken whole (`_plain`).
PLAIN_WHOLE_PIXELS = 4_000_000
#: Output pixels that a writer holding every frame (WebP's) may be given, all frames together.
WHOLE_FRAMES_PIXELS = 64_000_000
_PIL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


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


def read_frames(
    im: Image.Image, animation: Animation, check: Callable[[tuple[int, int]], object]
) -> Iterator[Image.Image]:
    """The frames of the opened `im` in order, each as shown, filling in `animation`'s
    durations and disposals as they go (so it is complete once the iterator is). `check`
    sees each frame's size (from its header) before the frame is decoded, and raises to
    refuse it."""
    for index in range(animation.count):
        with warnings.catch_warnings():  # Pillow warns of some broken files: they fail here
            warnings.simplefilter("error")
            try:
                im.seek(index)
                check(im.size)
                im.load()
            except ImageError:
                raise
            except (
                OSError,
                ValueError,
                SyntaxError,
                EOFError,
                RuntimeError,
                struct.error,
                Warning,
            ) as exc:
                raise ImageError(f"frame {index + 1}: {file_reason(exc)}") from exc
        # loaded first: WebP knows a frame's duration once it is decoded
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
    frames: Iterable[Rows],
    fh: BinaryIO,
    fmt: str,
    animation: Animation,
    options: dict[str, object],
    png_chunks: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Write `frames` (each a stream of row bands, made one at a time as the writer asks) as
    one `fmt` file. PNG (APNG, our writer), GIF (Pillow's frame writer) and TIFF (Pillow's
    page appender) are written a frame at a time; WebP's writer holds every frame, so its
    frames are refused when they would add up to more than WHOLE_FRAMES_PIXELS. Every frame of
    an animation (PNG, GIF, WebP) must have the first frame's size; TIFF pages keep their own."""
    if fmt not in ANIMATED_FORMATS:
        raise ImageError(
            f"{animation.count} frames cannot be written as {fmt}: use --format png, webp, "
            "tiff or gif (or same)"
        )
    frames = iter(frames)
    if fmt == "PNG":
        write_apng(map(_array, _same_size(frames)), fh, animation, png_chunks or [])
    elif fmt == "GIF":
        _write_gif(_same_size(frames), fh, animation)
    elif fmt == "TIFF":
        _write_tiff(map(_array, frames), fh, options)
    else:
        _write_held(_held(_same_size(frames), animation.count), fh, fmt, animation, options)


def _array(frame: Rows) -> NDArray[Any]:
    """A frame's pixels, whole: (H, W) for one channel, else (H, W, C)."""
    return squeezed(collect(frame))


def _same_size(frames: Iterator[Rows]) -> Iterator[Rows]:
    """The frames, refused from the first whose size differs from the first frame's."""
    first: tuple[int, int] | None = None
    for index, frame in enumerate(frames):
        if first is None:
            first = frame.size
        elif frame.size != first:
            raise ImageError(
                f"frame {index + 1} is {frame.width}x{frame.height}, frame 1 "
                f"{first[0]}x{first[1]}: frames of different sizes can only be written as "
                "pages of a TIFF (--format tiff)"
            )
        yield frame


def _held(frames: Iterator[Rows], count: int) -> Iterator[NDArray[Any]]:
    """The frames of a writer that holds them all, refused from the first frame's size when
    they would add up to more than WHOLE_FRAMES_PIXELS."""
    for index, frame in enumerate(frames):
        total = frame.width * frame.height * count
        if index == 0 and total > WHOLE_FRAMES_PIXELS:
            raise ImageError(
                f"{count} frames of {frame.width}x{frame.height}: {total:,} pixels of "
                f"output frames, more than the {WHOLE_FRAMES_PIXELS:,} that a WebP animation "
                "may hold in memory (PNG, GIF and TIFF are written a frame at a time: "
                "--format png)"
            )
        yield _array(frame)


def _write_held(
    frames: Iterator[NDArray[Any]],
    fh: BinaryIO,
    fmt: str,
    animation: Animation,
    options: dict[str, object],
) -> None:
    """A writer that takes every frame first (Pillow's WebP)."""
    images = [_as_image(f, keep_16bit=False) for f in frames]
    opts = dict(options, duration=list(animation.durations))
    if animation.loop is not None:
        opts["loop"] = animation.loop
    images[0].save(fh, format=fmt, save_all=True, append_images=images[1:], **opts)


def _write_tiff(frames: Iterator[NDArray[Any]], fh: BinaryIO, options: dict[str, object]) -> None:
    """Pages appended one at a time (Pillow's AppendingTiffWriter): each page its own size."""
    from PIL import TiffImagePlugin  # here: only multi-page TIFF outputs need it

    with TiffImagePlugin.AppendingTiffWriter(fh) as tiff:
        for frame in frames:
            _as_image(frame).save(tiff, format="TIFF", **options)
            tiff.newFrame()


def _write_gif(frames: Iterator[Rows], fh: BinaryIO, animation: Animation) -> None:
    """GIF a frame at a time with Pillow's frame encoder (`getheader`, `getdata`): every frame
    whole, quantised with its own palette (the first one's in the global table), with its
    duration, disposal and transparency."""
    for index, frame in enumerate(frames):
        indexed = quantise(_pasted(frame))
        params: dict[str, Any] = {
            "duration": animation.durations[index],
            "disposal": animation.disposals[index],
            "include_color_table": index > 0,
        }
        if "transparency" in indexed.info:
            params["transparency"] = indexed.info["transparency"]
        if index == 0:
            info: dict[str, Any] = {"optimize": False}
            if animation.loop is not None:
                info["loop"] = animation.loop
            header, _ = GifImagePlugin.getheader(indexed, None, info)
            fh.write(b"".join(header))
        for piece in GifImagePlugin.getdata(indexed, (0, 0), **params):
            fh.write(piece)
        del indexed
        give_back()  # the median cut's many small blocks, freed
    fh.write(b";")  # the GIF trailer


def _pasted(frame: Rows) -> Image.Image:
    """A frame as an 8-bit Pillow image, its bands pasted in as they come (no whole array
    beside Pillow's own copy: 48 MB less for a 16-megapixel colour frame)."""
    image = Image.new(_PIL_MODES[frame.channels], frame.size)
    top = 0
    for band in frame.bands:
        rows = to_uint8(band)
        image.paste(Image.fromarray(squeezed(rows)), (0, top))
        top += band.shape[0]
    return image


def write_apng(
    frames: Iterator[NDArray[Any]],
    fh: BinaryIO,
    animation: Animation,
    chunks: list[tuple[bytes, bytes]],
) -> None:
    """An animated PNG a frame at a time (`png`'s writer for each frame's data): whole
    frames, no blending (as shown), each frame's duration, the loop count; every frame in the
    first frame's channels (alpha added opaque, or dropped, as Pillow's APNG writer does)."""
    loop = 0 if animation.loop is None else animation.loop
    sequence, channels = 0, 0
    for index, frame in enumerate(frames):
        if index == 0:
            channels = 1 if frame.ndim == 2 else frame.shape[2]
        frame = _with_channels(frame, channels)
        fctl = struct.pack(
            ">IIIIIHHBB",
            sequence,
            frame.shape[1],
            frame.shape[0],
            0,
            0,
            max(0, min(animation.durations[index], 65535)),
            1000,
            0,  # dispose_op: none (each frame is whole)
            0,  # blend_op: source (no compositing)
        )
        sequence += 1
        if index == 0:
            actl = struct.pack(">II", animation.count, loop)
            write_png_frame(frame, fh, [*chunks, (b"acTL", actl), (b"fcTL", fctl)])
        else:
            write_png_chunk(fh, b"fcTL", fctl)
            sequence = write_png_frame(frame, fh, sequence=sequence)
    write_png_chunk(fh, b"IEND", b"")


def _with_channels(frame: NDArray[Any], channels: int) -> NDArray[Any]:
    have = 1 if frame.ndim == 2 else frame.shape[2]
    if have == channels:
        return frame
    return np.asarray(_as_image(frame).convert(_PIL_MODES[channels]))


def _as_image(frame: NDArray[Any], keep_16bit: bool = True) -> Image.Image:
    """A frame as a Pillow image: 16-bit grey as "I;16" where the writer keeps it (TIFF),
    else scaled to 8 bits (Pillow's own conversion of "I;16" to RGB clips: white)."""
    keep = keep_16bit and frame.dtype == np.uint16 and frame.ndim == 2
    return Image.fromarray(np.ascontiguousarray(frame if keep else to_uint8(frame)))


def quantise(frame: Image.Image) -> Image.Image:
    """A GIF frame: 255 colours, the closer of two palettes (see the module), no dithering;
    pixels under half opacity get the transparent index."""
    rgb = frame if frame.mode == "RGB" else frame.convert("RGB")
    small = rgb.resize((max(1, rgb.width // 4), max(1, rgb.height // 4)), Image.Resampling.BOX)
    palette = small.quantize(_CLEAR, Image.Quantize.MEDIANCUT, kmeans=4)
    out = rgb.quantize(palette=palette, dither=Image.Dither.NONE)
    error = _error(out, rgb)
    plain = _plain(rgb)
    if _error(plain, rgb) < error:
        out = plain
    del plain
    if frame.mode == "RGBA":
        clear = np.asarray(frame.getchannel("A")) < 128
        if clear.any():
            indices = np.asarray(out).copy()
            indices[clear] = _CLEAR
            out = _with_palette(indices, out)
            out.info["transparency"] = _CLEAR
    return out


def _plain(rgb: Image.Image) -> Image.Image:
    """What Pillow's GIF writer does: the median cut of the whole frame. Above
    PLAIN_WHOLE_PIXELS, the median cut of the frame halved (Pillow's median cut takes about
    9 bytes a pixel: 140 MB for a 16-megapixel frame), every pixel mapped to that palette."""
    if rgb.width * rgb.height <= PLAIN_WHOLE_PIXELS:
        return rgb.quantize(_CLEAR, Image.Quantize.MEDIANCUT)
    palette = rgb.reduce(2).quantize(_CLEAR, Image.Quantize.MEDIANCUT)
    return rgb.quantize(palette=palette, dither=Image.Dither.NONE)


def _error(indexed: Image.Image, rgb: Image.Image) -> float:
    """Sum of squared differences, a band of rows at a time (whole-frame int32 copies of a
    16-megapixel frame took 600 MB; bands of a quarter megapixel take about 10 MB)."""
    total, step = 0.0, max(1, (1 << 18) // max(1, rgb.width))
    for top in range(0, rgb.height, step):
        box = (0, top, rgb.width, min(top + step, rgb.height))
        shown = np.asarray(indexed.crop(box).convert("RGB"), np.int32)
        diff = shown - np.asarray(rgb.crop(box), np.int32)
        total += float(np.vdot(diff, diff))
    return total


def _with_palette(indices: NDArray[np.uint8], like: Image.Image) -> Image.Image:
    im = Image.fromarray(indices, "P")
    palette = like.getpalette() or []
    im.putpalette(palette + [0] * (768 - len(palette)))
    return im


def _has_alpha(im: Image.Image) -> bool:
    return "A" in im.mode or "transparency" in im.info
