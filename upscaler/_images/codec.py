"""Decoding and encoding image files, with the metadata that should survive upscaling.

Pillow does the work, except for 16-bit colour, which Pillow reduces to 8 bits: those
PNG/TIFF files go through OpenCV, the metadata still through Pillow. Bit depth comes from
the file's header, never from pixel values.

PNG outputs are written by `png` (ISA-L's deflate: several times faster than libpng's zlib),
with the metadata chunks that Pillow would write.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, PngImagePlugin

from .._defaults import DEFAULT_MAX_DECODE_PIXELS
from .._errors import ImageError, file_reason
from .._pixels.color import to_uint8
from .._pixels.rows import Rows, collect, from_array, squeezed
from .._pixels.size import OutputSize, checked_size
from .frames import Animation, frame_count, quantise, write_frames
from .jpeg import image_quality
from .jpegstrips import write_jpeg
from .png import write_png, write_png_bands

__all__ = [
    "FORMATS",
    "READABLE_SUFFIXES",
    "SEQUENCE_SUFFIXES",
    "SeveralFrames",
    "count_frames",
    "image_metadata",
    "encode_frames",
    "encode_rows",
    "Decoded",
    "Metadata",
    "Opened",
    "check_decode_size",
    "check_whole_output",
    "whole_writer",
    "decode",
    "open_rows",
    "encode",
    "output_suffix",
    "partial_output",
    "probe_pixels",
    "pil_to_pixels",
    "pixels_to_pil",
]

#: --format choices -> (Pillow format, file suffix).
FORMATS = {
    "png": ("PNG", ".png"),
    "jpg": ("JPEG", ".jpg"),
    "webp": ("WEBP", ".webp"),
    "tiff": ("TIFF", ".tif"),
    "jxl": ("JXL", ".jxl"),
    "gif": ("GIF", ".gif"),
}
_WRITABLE = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".avif": "AVIF",
    ".heic": "HEIF",
    ".heif": "HEIF",
    ".jxl": "JXL",
    ".gif": "GIF",
}
#: Suffix of the hidden temporary file an output is written to before its rename.
TEMP_SUFFIX = ".upscaler.tmp"
_PNG_XMP = "XML:com.adobe.xmp"  # the iTXt keyword that holds XMP in PNG files
_HEIF_SUFFIXES = frozenset([".heic", ".heif"])
READABLE_SUFFIXES = frozenset(_WRITABLE)
#: Suffixes of files that may hold several frames (animations, multi-page TIFF).
SEQUENCE_SUFFIXES = frozenset([".gif", ".png", ".webp", ".tif", ".tiff"])
# Size limits are ours (decode's max_pixels), checked from the header before decoding.
Image.MAX_IMAGE_PIXELS = None

#: What Pillow and its plugins raise for a bad file (struct.error: a header cut short;
#: RuntimeError: the JPEG XL plugin's; IndexError: GIF bytes cut short).
BAD_FILE = (OSError, ValueError, SyntaxError, EOFError, RuntimeError, struct.error, IndexError)

_MODES = {
    "1": "L",
    "L": "L",
    "LA": "LA",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "I;16": "I;16",
    "I;16B": "I;16",
    "I;16L": "I;16",
}


@dataclass(frozen=True)
class Metadata:
    """What is carried from input to output where the output format can hold it."""

    icc_profile: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None
    text: dict[str, str] = field(default_factory=dict)
    xmp: bytes | None = None

    def scaled(self, factor: int) -> Metadata:
        """The same metadata for an image `factor` times larger (same printed size)."""
        dpi = (self.dpi[0] * factor, self.dpi[1] * factor) if self.dpi else None
        return replace(self, dpi=dpi)

    def resized(self, size: tuple[int, int], new: tuple[int, int]) -> Metadata:
        """The same metadata for an image resized from `size` to `new` (width, height): the
        DPI follows the true ratio of each side, so the printed size stays."""
        if not self.dpi:
            return self
        return replace(self, dpi=(self.dpi[0] * new[0] / size[0], self.dpi[1] * new[1] / size[1]))


@dataclass(frozen=True)
class Decoded:
    """An image as pixels: (H, W) or (H, W, C) uint8/uint16, C in 2 (LA), 3 (RGB), 4 (RGBA)."""

    pixels: NDArray[Any]
    format: str
    metadata: Metadata
    #: Shown turned a quarter (EXIF orientation 5 to 8): its shown width is its height.
    turned: bool = False

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as stored."""
        return self.pixels.shape[1], self.pixels.shape[0]


def decode(
    path: Path,
    max_pixels: int | None = None,
    factor: int | OutputSize = 1,
    max_decode_pixels: int | None = DEFAULT_MAX_DECODE_PIXELS,
) -> Decoded:
    """Read a still image file whole; ImageError says why not.

    An image whose output at `factor` (or of that `OutputSize`) would have more than
    `max_pixels` pixels, or that the size cannot serve, or that has more than
    `max_decode_pixels` pixels itself (by default --max-decode-pixels' default: references,
    compare's ground truth and outputs are decoded whole too), is refused
    from its header, before any pixel is decoded (decompression bombs); animations and
    multi-page files are refused. A multi-picture JPEG (MPO: a photo plus depth maps, gain maps,
    a stereo pair or previews) is its primary image: the secondary images are not read.
    """
    _register_plugin(path.suffix)
    try:
        with Image.open(path) as im:
            turned = _turned(im)
            _check_header(im, max_pixels, _as_size(factor), turned)
            check_decode_size(im.size, max_decode_pixels, "")
            return _decoded(im, path, turned)
    except ImageError:
        raise
    except BAD_FILE as exc:
        raise ImageError(file_reason(exc)) from exc


def _decoded(im: Image.Image, path: Path, turned: bool) -> Decoded:
    """The pixels and metadata of an opened still image whose header was checked."""
    meta = image_metadata(im)
    fmt = im.format or "?"
    if _is_16bit_colour(im, path):
        pixels = _read_16bit_colour(path)
    elif im.mode == "CMYK" and meta.icc_profile:
        pixels, meta = _cmyk_to_srgb(im, meta)
    else:
        pixels = pil_to_pixels(im)
    if fmt == "JXL" and meta.xmp is None:  # the plugin does not read it: its box
        meta = replace(meta, xmp=_jxl_box(path, b"xml "))
    return Decoded(pixels, fmt, meta, turned)


def check_decode_size(size: tuple[int, int], max_decode_pixels: int | None, what: str) -> None:
    """ImageError when a picture decoded whole (`what`: why it is, e.g. "a GIF frame") would
    have more than `max_decode_pixels` pixels (--max-decode-pixels); from its header."""
    w, h = size
    if max_decode_pixels is not None and w * h > max_decode_pixels:
        kind = f" ({what} is decoded whole)" if what else ""
        raise ImageError(
            f"{w}x{h} pixels{kind}: more than --max-decode-pixels {max_decode_pixels:,}"
        )


def check_whole_output(
    size: tuple[int, int], max_decode_pixels: int | None, why: str | None
) -> None:
    """ImageError when an output held whole (`why`: what holds it, e.g. "the WEBP writer";
    None for an output written in strips) would have more than `max_decode_pixels` pixels:
    what is held whole is bounded alike, read or written."""
    w, h = size
    if why is not None and max_decode_pixels is not None and w * h > max_decode_pixels:
        hint = " (PNG and JPEG outputs are written in strips)" if why.endswith("writer") else ""
        raise ImageError(
            f"{w}x{h} pixels of output ({why} holds it whole): more than --max-decode-pixels"
            f" {max_decode_pixels:,}{hint}"
        )


def whole_writer(dst: Path) -> str | None:
    """What holds an output of `dst`'s format whole ("the TIFF writer"); None for PNG and
    JPEG, written in strips."""
    fmt = _WRITABLE.get(dst.suffix.lower(), dst.suffix.lstrip(".").upper())
    return None if fmt in ("PNG", "JPEG") else f"the {fmt} writer"


@dataclass(frozen=True)
class Opened:
    """A still image about to be read as a stream of rows."""

    rows: Rows
    format: str
    metadata: Metadata
    #: Shown turned a quarter (EXIF orientation 5 to 8).
    turned: bool = False
    #: Decoded in strips by libvips (else decoded whole, then cut into bands).
    streamed: bool = False
    #: The whole decoded pixels when not streamed (thumbnails and scores use them).
    pixels: NDArray[Any] | None = None
    #: A JPEG's quality estimated from its quantisation tables (`jpeg`); None otherwise.
    jpeg_quality: int | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as stored."""
        return self.rows.width, self.rows.height


def open_rows(
    path: Path,
    max_pixels: int | None,
    size: OutputSize,
    max_decode_pixels: int | None,
    stream_above: int,
) -> Opened:
    """A still image file as rows: baseline JPEG, non-interlaced PNG and plain TIFF of more
    than `stream_above` pixels are decoded in strips by libvips; everything else is decoded
    whole, refused above `max_decode_pixels`. Sizes are checked from the header first, as in
    `decode`; SeveralFrames for an animation or a multi-page file."""
    _register_plugin(path.suffix)
    try:
        with Image.open(path) as im:
            turned = _turned(im)
            _check_header(im, max_pixels, size, turned)
            quality = image_quality(im)
            streams = im.width * im.height > stream_above and _streamable(im, path)
            if not streams:
                check_decode_size(im.size, max_decode_pixels, _whole_reason(im))
                d = _decoded(im, path, turned)
                return Opened(
                    from_array(d.pixels), d.format, d.metadata, turned, False, d.pixels, quality
                )
            meta, fmt = image_metadata(im, header_only=True), im.format or "?"
    except ImageError:
        raise
    except BAD_FILE as exc:
        raise ImageError(file_reason(exc)) from exc
    from .vips import read_rows

    return Opened(read_rows(str(path)), fmt, meta, turned, True, jpeg_quality=quality)


def _streamable(im: Image.Image, path: Path) -> bool:
    """Whether libvips decodes `im` in strips to the same pixels as `_decoded`: baseline JPEG
    (grey or RGB), non-interlaced PNG and single-page TIFF without a palette or a transparent
    colour, 8 or 16 bits (a TIFF stored upright: Pillow turns the others as it reads them)."""
    if "transparency" in im.info:
        return False
    if im.format in ("JPEG", "MPO"):
        return im.mode in ("L", "RGB") and not im.info.get("progressive")
    if im.format == "PNG":
        plain = im.mode in ("L", "LA", "RGB", "RGBA", "I;16", "I;16B") or _is_16bit_colour(im, path)
        return plain and not im.info.get("interlace") and frame_count(im) == 1
    if im.format == "TIFF":
        bits = im.tag_v2.get(258, (8,))  # type: ignore[attr-defined]
        eight = all(b == 8 for b in bits) and im.mode in ("L", "LA", "RGB", "RGBA")
        upright = im.tag_v2.get(274, 1) == 1  # type: ignore[attr-defined]  # Pillow turns the rest
        return (eight or im.mode in ("I;16", "I;16B")) and upright and frame_count(im) == 1
    return False


def _whole_reason(im: Image.Image) -> str:
    """Why an image is decoded whole, for the refusal above --max-decode-pixels."""
    if im.format == "JPEG" and im.info.get("progressive"):
        return "a progressive JPEG"
    if im.format == "PNG" and im.info.get("interlace"):
        return "an interlaced PNG"
    return f"a {im.format or 'this'} image" if im.format not in ("JPEG", "PNG", "TIFF") else ""


class SeveralFrames(ImageError):
    """`decode` found an animation or a multi-page file: `frames` reads those."""


#: The EXIF tag of how an image is shown (1 as stored; 5 to 8 turned a quarter). TIFF inputs
#: are read upright by Pillow (the tag is dropped): never turned.
_ORIENTATION = 0x0112


def _turned(im: Image.Image) -> bool:
    """Shown turned a quarter, from the EXIF already read with the header (`getexif` would
    decode a whole PNG to look for it: a decompression bomb's pixels too)."""
    raw = im.info.get("exif")
    if im.format == "TIFF" or not isinstance(raw, bytes):
        return False
    exif = Image.Exif()
    try:
        exif.load(raw)
    except (OSError, ValueError, SyntaxError, struct.error):
        return False
    return exif.get(_ORIENTATION, 1) in (5, 6, 7, 8)


def _as_size(factor: int | OutputSize) -> OutputSize:
    return factor if isinstance(factor, OutputSize) else OutputSize(factor=factor)


def _register_plugin(suffix: str) -> None:
    """The optional Pillow plugin a suffix needs: pillow-heif, pillow-jxl-plugin."""
    if suffix.lower() in _HEIF_SUFFIXES:
        _register_heif()
    elif suffix.lower() == ".jxl":
        _register_jxl()


@cache
def _register_jxl() -> None:
    """JPEG XL through the optional pillow-jxl-plugin (`pip install upscaler[jxl]`)."""
    try:
        import pillow_jxl  # noqa: F401  (registers the JXL format with Pillow)
    except ImportError as exc:
        raise ImageError("JPEG XL files need `pip install upscaler[jxl]`") from exc


def _jxl_box(path: Path, kind: bytes) -> bytes | None:
    """The payload of the first uncompressed `kind` box of a JPEG XL container, or None
    (a bare codestream has no boxes). ISO BMFF boxes: 32-bit size (1: 64-bit size follows,
    0: to the end), 4-byte type."""
    with open(path, "rb") as fh:
        data = fh.read()
    pos = 0
    while pos + 8 <= len(data):
        size, box = struct.unpack(">I4s", data[pos : pos + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        end = len(data) if size == 0 else pos + size
        if box == kind:
            return data[pos + head : end]
        if size < head:
            return None  # not a box structure (a bare codestream)
        pos = end
    return None


@cache
def _register_heif() -> None:
    """HEIC/HEIF through the optional pillow-heif (`pip install upscaler[heif]`)."""
    try:
        import pillow_heif
    except ImportError as exc:
        raise ImageError("HEIC/HEIF files need `pip install upscaler[heif]`") from exc
    pillow_heif.register_heif_opener()


def _cmyk_to_srgb(im: Image.Image, meta: Metadata) -> tuple[NDArray[Any], Metadata]:
    """Convert CMYK through its embedded ICC profile to sRGB; the output then carries sRGB."""
    from PIL import ImageCms  # here: few images need it (its import: 3 ms)

    srgb = ImageCms.createProfile("sRGB")
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(meta.icc_profile or b""))
        rgb = ImageCms.profileToProfile(im, source, srgb, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError) as exc:
        raise ImageError(f"CMYK image with an unusable ICC profile: {exc}") from exc
    assert rgb is not None
    return np.asarray(rgb), replace(meta, icc_profile=ImageCms.ImageCmsProfile(srgb).tobytes())


def _check_header(im: Image.Image, max_pixels: int | None, size: OutputSize, turned: bool) -> None:
    if frame_count(im) > 1:  # MPO (a JPEG photo plus secondary images) counts as one
        raise SeveralFrames(f"{frame_count(im)} frames: an animation or multi-page file")
    checked_size(size, im.size, max_pixels, turned)


def pil_to_pixels(im: Image.Image) -> NDArray[Any]:
    """A PIL image as an array the engine takes (other modes become RGB or RGBA).

    32-bit greys are never clipped: a float image ("F") must hold values from 0 to 1 (black
    to white) and becomes 16-bit grey; an integer one ("I") must hold values from 0 to 65535
    (16-bit samples, as Pillow reads some 16-bit files) and becomes 16-bit grey as it is;
    anything else is refused (ImageError), since no range rule would be right for it."""
    if im.mode in ("F", "I"):
        return _wide_grey(np.asarray(im), im.mode)
    mode = _MODES.get(im.mode)
    if mode is None:
        has_alpha = "A" in im.mode or "transparency" in im.info
        mode = "RGBA" if has_alpha else "RGB"
    arr = np.asarray(im.convert(mode) if mode != im.mode and mode != "I;16" else im)
    return arr.astype(np.uint16) if mode == "I;16" else arr


def _wide_grey(values: NDArray[Any], mode: str) -> NDArray[np.uint16]:
    """A 32-bit float ("F", 0 to 1) or integer ("I", 0 to 65535) grey image as 16-bit grey."""
    if values.size == 0:
        return values.astype(np.uint16)
    low, high = float(np.min(values)), float(np.max(values))
    if mode == "F":
        if not (np.isfinite(low) and np.isfinite(high) and 0.0 <= low and high <= 1.0):
            raise ImageError(
                f"32-bit float image with values from {low:g} to {high:g}: only 0 to 1 "
                "(black to white) is taken"
            )
        return np.asarray(np.rint(values.astype(np.float64) * 65535.0), dtype=np.uint16)
    if low < 0 or high > 65535:
        raise ImageError(
            f"32-bit integer image with values from {low:g} to {high:g}: only 0 to 65535 "
            "(16-bit samples) is taken"
        )
    return values.astype(np.uint16)


def _is_16bit_colour(im: Image.Image, path: Path) -> bool:
    if im.format == "PNG":
        with open(path, "rb") as fh:
            header = fh.read(26)
        return header[24] == 16 and header[25] in (2, 6)  # IHDR bit depth, colour type
    tags = getattr(im, "tag_v2", None)  # a TiffImageFile's (its plugin is imported by open)
    if im.format == "TIFF" and tags is not None:
        bits = tags.get(258, (8,))
        return len(bits) >= 3 and max(bits) == 16
    return False


def _read_16bit_colour(path: Path) -> NDArray[np.uint16]:
    data = np.fromfile(path, np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3:
        raise ImageError("16-bit colour image that OpenCV cannot decode")
    code = cv2.COLOR_BGRA2RGBA if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return np.asarray(cv2.cvtColor(arr, code), dtype=np.uint16)


def image_metadata(im: Image.Image, header_only: bool = False) -> Metadata:
    """What an opened image carries that outputs keep (ICC, EXIF, DPI, text, XMP). With
    `header_only` (an image streamed, or an animation: not decoded whole here), a PNG's text
    is what its header holds: Pillow's `text` would decode every pixel (every frame) to look
    for chunks after them."""
    dpi = im.info.get("dpi")
    given = im.info if header_only and im.format == "PNG" else getattr(im, "text", {})
    text = {
        k: v
        for k, v in given.items()
        if isinstance(k, str) and isinstance(v, str) and k != _PNG_XMP
    }
    xmp = im.info.get("xmp") or im.info.get(_PNG_XMP) or None
    return Metadata(
        icc_profile=im.info.get("icc_profile") or None,
        exif=im.info.get("exif") or None,
        dpi=(float(dpi[0]), float(dpi[1])) if dpi else None,
        text=text,
        xmp=xmp.encode() if isinstance(xmp, str) else xmp,
    )


def output_suffix(src: Path | str, fmt: str) -> str:
    """The output file suffix for `src` under --format `fmt` ("same" keeps it if writable;
    a still GIF becomes PNG, which keeps every colour; an animated one, or one named by a
    URL, stays GIF)."""
    suffix = PurePosixPath(str(src)).suffix
    if fmt != "same":
        return FORMATS[fmt][1]
    if suffix.lower() == ".gif" and isinstance(src, Path) and count_frames(src) == 1:
        return ".png"
    return suffix if suffix.lower() in _WRITABLE else ".png"


def count_frames(path: Path) -> int:
    """Frames or pages of the image file at `path` (1 for a still image, or when the header
    cannot be read: decoding will say why)."""
    if path.suffix.lower() not in SEQUENCE_SUFFIXES:
        return 1
    try:
        with Image.open(path) as im:
            return frame_count(im)
    except BAD_FILE:
        return 1


def encode(
    pixels: NDArray[Any] | Image.Image, dst: Path, metadata: Metadata, quality: int = 95
) -> None:
    """Write `pixels` to `dst` atomically (temporary file, then rename); format from suffix.

    The temporary file is the hidden `.<name>.upscaler.tmp` beside `dst`; one left by a
    killed run is replaced. Callers make sure no other process or thread writes `dst` at the
    same time (`upscaler batch` holds a folder lock and gives each output one job).
    """
    fmt = _WRITABLE.get(dst.suffix.lower())
    _register_plugin(dst.suffix)
    if fmt is None:
        raise ImageError(f"cannot write {dst.suffix!r} files")
    _atomically(dst, lambda fh: _write(pixels, fh, fmt, metadata, quality))


def encode_rows(rows: Rows, dst: Path, metadata: Metadata, quality: int = 95) -> None:
    """`encode` for an image that arrives as a stream of row bands: PNG and JPEG are written
    band by band (`png`, `jpegstrips`); other formats are collected whole and written by
    `encode`. Atomic either way."""
    fmt = _WRITABLE.get(dst.suffix.lower())
    _register_plugin(dst.suffix)
    if fmt is None:
        raise ImageError(f"cannot write {dst.suffix!r} files")
    if fmt == "PNG":
        chunks = _png_chunks(metadata)
        _atomically(
            dst,
            lambda fh: write_png_bands(
                rows.bands, rows.size, rows.channels, rows.dtype, fh, chunks
            ),
        )
    elif fmt == "JPEG":
        options = _save_options(fmt, metadata, quality)
        _atomically(dst, lambda fh: write_jpeg(_jpeg_ready(rows), fh, options))
    else:
        encode(squeezed(collect(rows)), dst, metadata, quality)


def _jpeg_ready(rows: Rows) -> Rows:
    """`rows` as JPEG takes them, band by band: 8 bits, alpha composited over white (with
    Pillow, as `_flatten_alpha` does the whole image)."""
    channels = 1 if rows.channels in (1, 2) else 3

    def bands() -> Iterator[NDArray[Any]]:
        for band in rows.bands:
            band8 = to_uint8(band)
            if rows.channels in (2, 4):
                plane = pixels_to_pil(band8)
                band8 = np.asarray(_flatten_alpha(plane)).reshape(*band.shape[:2], channels)
            yield band8
            del band, band8

    return Rows(rows.width, rows.height, channels, np.dtype(np.uint8), bands())


def encode_frames(
    frames: Iterator[Rows],
    dst: Path,
    animation: Animation,
    metadata: Metadata,
    quality: int = 95,
) -> None:
    """Write the frames of an animation or multi-page file to `dst` as `encode` writes a
    still image: atomically, the format from the suffix, metadata where it fits."""
    fmt = _WRITABLE.get(dst.suffix.lower(), dst.suffix)
    options = _save_options(fmt, metadata, quality)
    chunks = _png_chunks(metadata) if fmt == "PNG" else None
    _atomically(dst, lambda fh: write_frames(frames, fh, fmt, animation, options, chunks))


def partial_output(dst: Path) -> Path:
    """The hidden temporary file that `dst` is written to before its rename."""
    return dst.with_name(f".{dst.name}{TEMP_SUFFIX}")


def _atomically(dst: Path, write: Callable[[BinaryIO], None]) -> None:
    """Run `write` on a new hidden temporary file beside `dst`, then rename it to `dst`."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_output(dst)
    tmp.unlink(missing_ok=True)
    # Created afresh with the umask's permissions; never through a planted symbolic link.
    # Readable too: Pillow's multi-page TIFF writer reads back what it wrote.
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        with os.fdopen(fd, "w+b") as fh:
            write(fh)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def probe_pixels(path: Path) -> int:
    """Width x height from the file's header, or 0 when it cannot be read (decode will say)."""
    try:
        with Image.open(path) as im:
            return int(im.width * im.height)
    except Exception:
        return 0


def _write(
    pixels: NDArray[Any] | Image.Image, fh: BinaryIO, fmt: str, meta: Metadata, quality: int
) -> None:
    if fmt == "PNG" and _png_writable(pixels):
        write_png(np.asarray(pixels), fh, _png_chunks(meta))
        return
    if isinstance(pixels, np.ndarray):
        if pixels.dtype == np.uint16 and pixels.ndim == 3 and fmt == "TIFF":
            _write_16bit_tiff(pixels, fh)
            return
        if pixels.dtype == np.uint16 and fmt == "JXL" and quality >= 100 and pixels.ndim == 3:
            raise ImageError(
                "16-bit colour cannot be written losslessly as JPEG XL (its Pillow plugin takes"
                " 8 bits a channel): use --format png or tiff, or a --quality under 100"
            )
        keep = ("PNG", "TIFF", "JXL")  # 16-bit grey ("I;16"), lossless at JPEG XL quality 100
        if pixels.dtype == np.uint16 and fmt not in keep:  # 16-bit grey elsewhere
            pixels = to_uint8(pixels)
        pixels = pixels_to_pil(pixels)
    im = _flatten_alpha(pixels) if fmt in ("JPEG", "BMP") else pixels
    if fmt == "JXL" and meta.icc_profile:
        im = _to_srgb(im, meta.icc_profile)
    if fmt == "GIF":
        im = quantise(im)
    im.save(fh, format=fmt, **_save_options(fmt, meta, quality))


def _to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    """Colour pixels converted from their ICC profile to sRGB: the JPEG XL plugin cannot
    embed a profile (its files say sRGB), so the colours are carried instead."""
    if im.mode not in ("RGB", "RGBA"):
        return im
    from PIL import ImageCms  # here: few images need it (its import: 3 ms)

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(im, source, srgb, outputMode=im.mode) or im
    except (ImageCms.PyCMSError, OSError, ValueError):
        return im  # a profile littleCMS cannot read: the pixels as they are


def pixels_to_pil(pixels: NDArray[Any]) -> Image.Image:
    """An engine array as a PIL image (16-bit grey as "I;16"; 16-bit colour reduced to 8)."""
    keep_16bit = pixels.dtype == np.uint16 and pixels.ndim == 2
    arr = pixels if keep_16bit else to_uint8(pixels)
    return Image.fromarray(np.ascontiguousarray(arr))  # uint16 (H, W) becomes "I;16"


def _flatten_alpha(im: Image.Image) -> Image.Image:
    """Composite over white: JPEG and BMP have no alpha channel."""
    if im.mode not in ("LA", "RGBA"):
        return im
    white = Image.new(im.mode, im.size, (255,) * len(im.mode))
    return Image.alpha_composite(white.convert("RGBA"), im.convert("RGBA")).convert(im.mode[:-1])


def _save_options(fmt: str, meta: Metadata, quality: int) -> dict[str, object]:
    opts: dict[str, object] = {}
    if meta.icc_profile and fmt in ("JPEG", "PNG", "WEBP", "TIFF", "AVIF", "HEIF"):
        opts["icc_profile"] = meta.icc_profile
    if meta.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF", "AVIF", "HEIF", "JXL"):
        opts["exif"] = meta.exif
    if meta.dpi and fmt in ("JPEG", "PNG", "TIFF", "BMP"):
        opts["dpi"] = meta.dpi
    if fmt in ("JPEG", "WEBP", "AVIF", "HEIF", "JXL"):
        opts["quality"] = quality
    if fmt == "JXL" and quality >= 100:  # libjxl has no lossy quality 100: lossless is that
        opts["lossless"] = True
    if meta.xmp and fmt in ("JPEG", "WEBP", "JXL"):
        opts["xmp"] = meta.xmp
    if fmt == "PNG":
        opts["compress_level"] = 1
    if fmt == "PNG" and (meta.text or meta.xmp):
        opts["pnginfo"] = _png_info(meta)
    return opts


def _png_info(meta: Metadata) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    for k, v in meta.text.items():
        info.add_text(k, v)
    if meta.xmp:
        info.add_itxt(_PNG_XMP, meta.xmp.decode("utf-8", "replace"))
    return info


def _png_writable(pixels: NDArray[Any] | Image.Image) -> bool:
    """8 or 16 bits, 1 to 4 channels: everything the engine makes."""
    if isinstance(pixels, Image.Image):
        return pixels.mode in ("L", "LA", "RGB", "RGBA", "I;16")
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    return pixels.dtype in (np.uint8, np.uint16) and 1 <= channels <= 4


def _to_bgr(pixels: NDArray[Any]) -> NDArray[Any]:
    if pixels.ndim == 2:
        return pixels
    code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
    return np.asarray(cv2.cvtColor(pixels, code))


def _png_chunks(meta: Metadata) -> list[tuple[bytes, bytes]]:
    """iCCP, pHYs, eXIf and text chunks as Pillow writes them."""
    chunks = []
    if meta.icc_profile:
        chunks.append((b"iCCP", b"ICC Profile\0\0" + zlib.compress(meta.icc_profile)))
    if meta.dpi:
        ppm = (int(meta.dpi[0] / 0.0254 + 0.5), int(meta.dpi[1] / 0.0254 + 0.5))
        chunks.append((b"pHYs", struct.pack(">IIB", *ppm, 1)))
    if meta.exif:
        exif = meta.exif[6:] if meta.exif.startswith(b"Exif\0\0") else meta.exif
        chunks.append((b"eXIf", exif))
    if meta.text or meta.xmp:
        chunks += [(cid, body) for cid, body, *_ in _png_info(meta).chunks]
    return chunks


def _write_16bit_tiff(pixels: NDArray[Any], fh: Any) -> None:
    ok, buf = cv2.imencode(".tif", _to_bgr(pixels))
    if not ok:
        raise ImageError("OpenCV could not encode the 16-bit image")
    fh.write(buf.tobytes())
