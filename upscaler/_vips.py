"""libvips (pyvips) at both ends of a streamed image: rows decoded in strips, JPEG encoded
from strips.

Why libvips: it is the one maintained Python-reachable library that decodes JPEG, PNG and
TIFF in strips on demand (sequential access) and encodes JPEG while its input is still being
made. pyvips has no operation that calls back into Python for pixels, so the strips go back to
libvips as an uncompressed PNG stream (`pngload_source` on a `SourceCustom` that our generator
feeds; the deflate is level 0, the PNG only a framing) and libvips's `jpegsave` encodes it as
it reads. Its JPEG encoder is libjpeg-turbo's with the standard tables, as Pillow's: the same
quality and 4:2:0 subsampling give the same pixels (tested). The metadata segments are
Pillow's own (made by Pillow for an 8x8 image with the same metadata) in place of libvips's,
because libvips rewrites EXIF through libexif (adds resolution tags, reorders entries): outputs
carry exactly the bytes they carried when Pillow wrote the whole image.

Importing this module loads libvips (about 30 ms); only images large enough to stream do.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np
import pyvips
from numpy.typing import NDArray
from PIL import Image

from ._errors import ImageError
from ._rows import Rows

__all__ = ["read_rows", "write_jpeg"]

# One libvips thread per image: our images already run one per core, and libvips's own
# threads buffer more strips (a third more peak memory for the same speed, measured).
pyvips.concurrency_set(1)
pyvips.cache_set_max(0)

_FORMATS = {"uchar": np.uint8, "ushort": np.uint16}
#: Input rows fetched from libvips at a time (then cut into the stages' own bands).
_FETCH_BYTES = 2 << 20


def read_rows(path: str) -> Rows:
    """The pixels of a JPEG, PNG or TIFF file as a stream of row bands, decoded by libvips in
    strips (sequential access: each row decoded once). A truncated or corrupt file raises
    ImageError when the stream reaches the bad part."""
    try:
        image = pyvips.Image.new_from_file(path, access="sequential", fail_on="truncated")
    except pyvips.Error as exc:
        raise ImageError(_reason(exc)) from exc
    dtype = _FORMATS.get(image.format)
    if dtype is None:
        raise ImageError(f"libvips reads it as {image.format} pixels, not 8 or 16 bits")
    width, height, bands = image.width, image.height, image.bands
    step = max(1, _FETCH_BYTES // (width * bands * np.dtype(dtype).itemsize))

    def strips() -> Iterator[NDArray[Any]]:
        region = pyvips.Region.new(image)
        for top in range(0, height, step):
            h = min(step, height - top)
            try:
                data = region.fetch(0, top, width, h)
            except pyvips.Error as exc:
                raise ImageError(_reason(exc)) from exc
            yield np.frombuffer(data, dtype).reshape(h, width, bands)

    return Rows(width, height, bands, np.dtype(dtype), strips())


def _reason(exc: pyvips.Error) -> str:
    text = " ".join(str(exc.detail or exc.message).split())
    if "truncat" in text.lower() or "premature" in text.lower():
        return "truncated image file"
    return f"corrupt image data ({text[:200]})"


def write_jpeg(rows: Rows, fh: BinaryIO, options: dict[str, Any]) -> None:
    """Encode 8-bit grey or RGB `rows` as a baseline JPEG into `fh`, strip by strip, with
    Pillow's metadata segments for `options` (Pillow's JPEG save options: quality, dpi,
    icc_profile, exif, xmp)."""
    if rows.dtype != np.uint8 or rows.channels not in (1, 3):
        raise ValueError(f"JPEG takes 8-bit grey or RGB, not {rows.channels} x {rows.dtype}")
    source = pyvips.SourceCustom()
    source.on_read(_Feed(_png_stream(rows)).read)
    image = pyvips.Image.pngload_source(source, access="sequential")
    target = pyvips.TargetCustom()
    spliced = _Spliced(fh, _pillow_head(rows.channels, options))
    target.on_write(spliced.write)
    image.jpegsave_target(
        target,
        Q=int(options.get("quality", 75)),
        subsample_mode="on",  # Pillow's (libjpeg's) default 4:2:0 at every quality
        optimize_coding=False,
        interlace=False,
        keep="none",
    )
    if spliced.error is not None:
        raise spliced.error


def _pillow_head(channels: int, options: dict[str, Any]) -> bytes:
    """SOI and the APPn segments (JFIF, EXIF, ICC, XMP) Pillow writes with `options`."""
    buf = io.BytesIO()
    Image.new("L" if channels == 1 else "RGB", (8, 8)).save(buf, "JPEG", **options)
    data = buf.getvalue()
    return data[: _after_app_segments(data)]


def _after_app_segments(data: bytes) -> int:
    """Offset of the first marker after SOI that is not APPn (0xE0-0xEF); -1 if `data` ends
    before it."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("not a JPEG marker")
        if not 0xE0 <= data[pos + 1] <= 0xEF:
            return pos
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return -1


class _Spliced:
    """What libvips writes, with its SOI and APPn segments replaced by `head`."""

    def __init__(self, fh: BinaryIO, head: bytes) -> None:
        self.fh, self.head, self.start = fh, head, bytearray()
        self.error: BaseException | None = None

    def write(self, data: bytes) -> int:
        try:
            if self.head is None:
                self.fh.write(data)
                return len(data)
            self.start += data
            cut = _after_app_segments(bytes(self.start)) if len(self.start) >= 4 else -1
            if cut >= 0:
                self.fh.write(self.head + bytes(self.start[cut:]))
                self.head, self.start = None, bytearray()  # type: ignore[assignment]
        except BaseException as exc:  # a full disk: libvips sees a failed write, we re-raise
            self.error = exc
            return -1
        return len(data)


class _Feed:
    """`on_read` for a SourceCustom: bytes from a generator of byte strings, on demand."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks, self.pending, self.offset = chunks, b"", 0

    def read(self, size: int) -> bytes:
        while self.offset >= len(self.pending):
            nxt = next(self.chunks, None)
            if nxt is None:
                return b""
            self.pending, self.offset = nxt, 0
        out = self.pending[self.offset : self.offset + size]
        self.offset += len(out)
        return out


def _png_stream(rows: Rows) -> Iterator[bytes]:
    """`rows` as an 8-bit PNG with stored (uncompressed) deflate blocks: framing, no work;
    made a few megabytes at a time, as libvips reads it."""
    colour = {1: 0, 3: 2}[rows.channels]
    yield b"\x89PNG\r\n\x1a\n"
    yield from _chunk(b"IHDR", struct.pack(">IIBBBBB", rows.width, rows.height, 8, colour, 0, 0, 0))
    deflate = zlib.compressobj(0)
    line = rows.width * rows.channels
    step = max(1, _FETCH_BYTES // line)
    for band in rows.bands:
        for top in range(0, band.shape[0], step):
            part = band[top : top + step].reshape(-1, line)
            filtered = np.zeros((part.shape[0], line + 1), np.uint8)
            filtered[:, 1:] = part  # filter byte 0: None
            yield from _chunk(b"IDAT", deflate.compress(filtered.data))
    yield from _chunk(b"IDAT", deflate.flush())
    yield from _chunk(b"IEND", b"")


def _chunk(kind: bytes, body: bytes) -> Iterator[bytes]:
    if kind == b"IDAT" and not body:
        return
    yield struct.pack(">I", len(body)) + kind
    yield body
    yield struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))
