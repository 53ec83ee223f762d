"""A baseline JPEG written strip by strip: Pillow's encoder (libjpeg-turbo) on each strip of
rows, the strips joined as restart intervals of one file.

A baseline JPEG may be cut into restart intervals (JPEG, ITU T.81, F.1.2.3): each is entropy
coded on its own (the DC predictions start again) and ends at a restart marker, RST0 to RST7
in turn. A strip whose height is a whole number of MCU rows (16 pixels with 4:2:0, 8 for
grey) encodes to exactly the blocks and coefficients it has in the whole image (the DCT,
quantisation and chroma subsampling of libjpeg work within an MCU), so Pillow encodes each
strip as a JPEG of its own with `restart_marker_rows` set to the strip's MCU rows, and the
file is: the first strip's header (Pillow's SOI, APPn metadata segments, tables, SOF with the
whole image's height, DRI, SOS), every strip's entropy-coded data, an RSTn marker between
each two, EOI. Decoded, it has the pixels of Pillow's encoding of the whole image at the same
settings (tested); the bytes differ only by the DRI segment and the markers, a few bytes per
strip. An image of one strip is written without them: Pillow's own file, byte for byte.

Why not a library: no maintained Python library encodes a JPEG from rows that arrive over
time. Pillow's and OpenCV's encoders take a whole image; libvips streams, but takes its input
from a file or a byte stream only, and its strip buffers (128 rows at a time, twice, plus its
line cache) came to about 40 MB at 18000 pixels wide, against a few megabytes here (216 MP of
random pixels encoded in one process, with other work on the machine: 3.4 to 3.9 s through
libvips, 2.6 to 2.7 s here).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .._errors import ImageError
from .._pixels.rows import Rows

__all__ = ["JPEG_MAX_SIDE", "write_jpeg"]

#: JPEG's limit on each side (16-bit fields in the frame header).
JPEG_MAX_SIDE = 65535
#: About this many bytes of pixels per strip (one call of Pillow's encoder).
_STRIP_BYTES = 2 << 20
#: Options that only add metadata segments: given for the first strip, whose header is kept.
_METADATA = ("exif", "icc_profile", "xmp", "dpi", "comment")
_SOF0, _SOS, _EOI = 0xC0, 0xDA, b"\xff\xd9"


def write_jpeg(rows: Rows, fh: BinaryIO, options: dict[str, Any]) -> None:
    """Encode 8-bit grey or RGB `rows` as a baseline JPEG into `fh`, strip by strip, with
    Pillow's save `options` (quality, dpi, icc_profile, exif, xmp): Pillow's metadata segments
    and tables, and the pixels of Pillow's encoding of the whole image."""
    if rows.dtype != np.uint8 or rows.channels not in (1, 3):
        raise ValueError(f"JPEG takes 8-bit grey or RGB, not {rows.channels} x {rows.dtype}")
    if max(rows.size) > JPEG_MAX_SIDE:
        raise ImageError(
            f"{rows.width}x{rows.height} is too large for JPEG"
            f" (at most {JPEG_MAX_SIDE:,} pixels a side)"
        )
    if "subsampling" in options:  # the MCU rows below are those of Pillow's default
        raise ValueError("JPEG strips are written with Pillow's default 4:2:0 subsampling")
    mcu = 8 if rows.channels == 1 else 16  # pixel rows of an MCU: grey, colour at 4:2:0
    per_mcu_row = -(-rows.width // mcu)
    # Strips of whole MCU rows; a restart interval counts its MCUs in 16 bits.
    mcu_rows = max(1, min(_STRIP_BYTES // (mcu * rows.width * rows.channels), 65535 // per_mcu_row))
    strip = mcu_rows * mcu
    if rows.height <= strip:  # one strip: Pillow's own file
        _Strips(rows, fh, options, 0).encode(np.concatenate(list(rows.bands)))
        fh.write(_EOI)
        return
    writer = _Strips(rows, fh, options, mcu_rows)
    for part in _restrip(rows.bands, strip):
        writer.encode(part)
        del part  # a view of its band: not held while the next band is made
    fh.write(_EOI)


def _restrip(bands: Iterator[NDArray[Any]], strip: int) -> Iterator[NDArray[Any]]:
    """The rows of `bands` in parts of `strip` rows (the last one shorter): views of the bands
    where a part lies within one, a copy only where it joins two."""
    carry: NDArray[Any] | None = None
    for band in bands:
        if carry is not None:
            joined = np.concatenate([carry, band[: strip - carry.shape[0]]])
            band = band[strip - carry.shape[0] :]
            if joined.shape[0] < strip:
                carry = joined
                continue
            carry = None
            yield joined
        whole = band.shape[0] // strip * strip
        for top in range(0, whole, strip):
            yield band[top : top + strip]
        if whole < band.shape[0]:
            carry = band[whole:].copy()
        del band  # not held while the next band is made
    if carry is not None:
        yield carry


class _Strips:
    """Strips encoded by Pillow, written to `fh` as the restart intervals of one image."""

    def __init__(self, rows: Rows, fh: BinaryIO, options: dict[str, Any], mcu_rows: int) -> None:
        self.rows, self.fh, self.mcu_rows = rows, fh, mcu_rows
        self.first = dict(options)
        self.rest = {k: v for k, v in options.items() if k not in _METADATA}
        if mcu_rows:
            self.first["restart_marker_rows"] = self.rest["restart_marker_rows"] = mcu_rows
        self.count = 0

    def encode(self, part: NDArray[Any]) -> None:
        mode = "L" if self.rows.channels == 1 else "RGB"
        image = Image.frombuffer(
            mode, (self.rows.width, part.shape[0]), np.ascontiguousarray(part), "raw", mode, 0, 1
        )
        buf = io.BytesIO()
        image.save(buf, "JPEG", **(self.rest if self.count else self.first))
        data = buf.getbuffer()
        scan = _segment(data, _SOS)
        body = scan + 2 + struct.unpack(">H", data[scan + 2 : scan + 4])[0]
        if self.count == 0:
            head = bytearray(data[:body])
            struct.pack_into(">H", head, _segment(data, _SOF0) + 5, self.rows.height)
            self.fh.write(head)
        else:
            self.fh.write(bytes((0xFF, 0xD0 + (self.count - 1) % 8)))
        self.fh.write(data[body : len(data) - 2])  # the entropy-coded data, without EOI
        self.count += 1


def _segment(data: memoryview, marker: int) -> int:
    """Offset of the first segment with `marker` in a JPEG's header (after SOI)."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        if data[pos + 1] == marker:
            return pos
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    raise ValueError(f"no 0xFF{marker:02X} segment in Pillow's JPEG")
