"""Thumbnails for the HTML batch report: small JPEG files in a folder beside the report.

They are made while the image is in memory (decoding every output again at the end would
cost a second pass over the whole run), named from the output's location.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .._defaults import THUMB_SIDE
from .._pixels.color import to_uint8

__all__ = ["SIDE", "thumbnail_names", "thumbnails_folder", "write_thumbnails"]

#: Longest side of a thumbnail, in pixels (the pipeline keeps strided rows for it).
SIDE = THUMB_SIDE


def thumbnails_folder(report: Path) -> Path:
    """`<report stem>-thumbs/` beside the report."""
    return report.with_name(f"{report.stem}-thumbs")


def thumbnail_names(dst: str) -> tuple[str, str]:
    """(output, input) thumbnail file names for the output `dst` (stable, collision-free)."""
    key = hashlib.sha1(dst.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{key}.jpg", f"{key}-in.jpg"


def write_thumbnails(
    output: NDArray[Any] | Image.Image, source: NDArray[Any], folder: Path, dst: str
) -> None:
    """The output's and the input's thumbnails; raises OSError when they cannot be written."""
    folder.mkdir(parents=True, exist_ok=True)
    out_name, in_name = thumbnail_names(dst)
    _save(_small(output), folder / out_name)
    _save(_small(source), folder / in_name)


def _save(im: Image.Image, path: Path) -> None:
    """A JPEG written as every output is: a new temporary file (never through a planted
    symbolic link: O_EXCL | O_NOFOLLOW), then renamed over `path` (which replaces a link at
    `path` rather than writing where it points)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            im.save(fh, "JPEG", quality=80)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _small(pixels: NDArray[Any] | Image.Image) -> Image.Image:
    """An RGB or grey image at most SIDE pixels on its longest side."""
    if isinstance(pixels, Image.Image):
        step = max(1, max(pixels.size) // (2 * SIDE))
        im = pixels.reduce(step) if step > 1 else pixels.copy()
    else:
        step = max(1, max(pixels.shape[:2]) // (2 * SIDE))  # a cheap first cut, then filtered
        im = Image.fromarray(np.ascontiguousarray(to_uint8(pixels[::step, ::step])))
    im = im.convert("RGB") if im.mode not in ("RGB", "L") else im
    im.thumbnail((SIDE, SIDE), Image.Resampling.BICUBIC)
    return im
