"""How hard a JPEG was compressed, from its quantisation tables: which weights serve it.

libjpeg (and Pillow, and most software) makes its tables by scaling the standard luminance
table of the JPEG specification (Annex K) by the quality: S = 5000 / q below 50, else
200 - 2q, each entry (entry x S + 50) / 100 clipped to 1..255. The quality is the one whose
scaled table has the same sum as the file's luminance table (sums do not depend on the order
the tables are stored in); a file from libjpeg gives its quality exactly. Cameras and phones
write tables of their own: the sum still places them on the same scale, an estimate (a phone's
"fine" tables land at 90-97). An MPO (a photo plus secondary pictures) is its primary JPEG's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

__all__ = ["CLEAN_FROM", "HIGH_FROM", "estimate_quality", "image_quality", "weights_for"]

#: JPEGs of this estimated quality or above get the clean weights, those from HIGH_FROM up to
#: it the weights trained on qualities 86-95 ("jpeg-high"), those under HIGH_FROM the weights
#: trained on 50-95 ("jpeg"). Chosen on 20 held-out BSDS500 photos at x2, x3 and x4
#: (`benchmarks/jpeg_quality.py --hr-dir`, docs/training.md): jpeg-high beat jpeg from
#: quality 86 (+0.02 to +0.06 dB) and tied or beat the clean weights up to 96, which won
#: from 97 (+0.03 to +0.04).
CLEAN_FROM = 97
HIGH_FROM = 86

_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip


@cache
def _sums() -> tuple[int, ...]:
    """The sum of libjpeg's luminance table at each quality 1..100 (index q - 1)."""
    out = []
    for q in range(1, 101):
        scale = 5000 // q if q < 50 else 200 - 2 * q
        out.append(sum(min(255, max(1, (v * scale + 50) // 100)) for v in _LUMINANCE))
    return tuple(out)


def estimate_quality(tables: Mapping[int, Sequence[int]] | None) -> int | None:
    """The libjpeg quality (1-100) whose luminance table is closest in sum to the file's
    first table (`JpegImageFile.quantization`); None without tables (not a JPEG)."""
    if not tables:
        return None
    luminance = tables.get(0) or next(iter(tables.values()))
    if len(luminance) != 64:
        return None
    total = sum(int(v) for v in luminance)
    sums = _sums()
    # sums fall as quality rises; the closest one, the higher quality on a tie
    best = min(range(100), key=lambda i: (abs(sums[i] - total), -i))
    return best + 1


def image_quality(image: object) -> int | None:
    """`estimate_quality` of an opened image: a JpegImageFile's (an MPO's) tables; None for
    any other image (no `quantization`)."""
    return estimate_quality(getattr(image, "quantization", None))


def weights_for(quality: int | None) -> str:
    """The shipped weights for an input of this estimated JPEG quality (None: not a JPEG):
    "clean", "jpeg-high" or "jpeg"."""
    if quality is None or quality >= CLEAN_FROM:
        return "clean"
    return "jpeg-high" if quality >= HIGH_FROM else "jpeg"
