"""Batch reports: a summary plus one record per image, as JSON, CSV or HTML (by extension)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import re
import statistics
import string
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import Field, asdict, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from .._errors import UpscalerError
from .spec import Record
from .thumbs import thumbnails_folder

__all__ = [
    "REPORT_SUFFIXES",
    "RUN_FIELDS",
    "Tally",
    "consistency_floor",
    "flag_suspects",
    "report_path",
    "summarise",
    "summary_line",
    "write_report",
    "write_text_atomic",
]

REPORT_SUFFIXES = (".json", ".csv", ".html")
#: Backends without a floor of their own (`consistency_floor`) and own models: this far under
#: the run's median is suspect (the widest healthy spread under the median measured on 400
#: BSDS500 photos was 16.4 dB).
UNDER_MEDIAN = 18.0
#: A run needs this many scored images for its median to mean anything.
MEDIAN_MIN_IMAGES = 5
#: What every report says about its run (the CSV report repeats them on every row).
RUN_FIELDS = ("started", "ended", "version", "host", "backend", "precision", "factor", "size")


def report_path(path: Path, started: datetime) -> Path:
    """`path` with its placeholders filled: `{started:FORMAT}` (strftime) and `{host}`, so that
    a nightly run writes a report of its own instead of replacing the last one. Nothing else
    is a placeholder: other fields, attributes, indexes, conversions and unknown strftime
    directives are refused (UpscalerError), never evaluated."""
    text, out = str(path), []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise _bad_placeholder(text, str(exc)) from exc
    for literal, field, spec, conversion in parsed:
        out.append(literal)
        if field is None:
            continue
        if field not in ("started", "host") or conversion:
            raise _bad_placeholder(text, f"{{{field}{'!' + conversion if conversion else ''}}}")
        if field == "host":
            if spec:
                raise _bad_placeholder(text, f"{{host:{spec}}}")
            out.append(platform.node())
            continue
        directives = re.findall(r"%(.?)", spec or "")
        if any(d not in _STRFTIME for d in directives):
            raise _bad_placeholder(text, f"{{started:{spec}}}")
        out.append(started.strftime(spec) if spec else format(started))
    return Path("".join(out))


#: strftime directives `{started:...}` takes (C89's and ISO week's; %% for a percent sign).
_STRFTIME = frozenset("aAbBcdHIjmMpSUwWxXyYZzGuV%")


def _bad_placeholder(path: str, what: str) -> UpscalerError:
    return UpscalerError(
        f"--report {path}: bad placeholder {what}; use {{started:%Y-%m-%d}} or {{host}}"
    )


def consistency_floor(records: Sequence[Record], fixed: float | None) -> float | None:
    """The consistency PSNR under which an output is suspect: `fixed` (the backend's own
    floor for its shipped models), else the run's median less UNDER_MEDIAN, or None (too
    few images)."""
    if fixed is not None:
        return fixed
    values = [r.consistency_psnr for r in records if r.consistency_psnr is not None]
    if len(values) < MEDIAN_MIN_IMAGES:
        return None
    return round(statistics.median(values) - UNDER_MEDIAN, 2)


def flag_suspects(records: Sequence[Record], floor: float | None) -> list[Record]:
    """`records`, those done with a consistency PSNR under `floor` marked `suspect`."""

    def under(r: Record) -> bool:
        return floor is not None and r.consistency_psnr is not None and r.consistency_psnr < floor

    return [replace(r, suspect=True) if under(r) else r for r in records]


def summarise(records: Sequence[Record], seconds: float, not_images: int) -> dict[str, Any]:
    """Counts by status, throughput and the mean scores of the images done."""
    tally = Tally()
    for record in records:
        tally.add(record)
    return tally.summary(seconds, not_images)


class Tally:
    """The figures of `summarise`, taken one record at a time, keeping none: what a run fed
    paths for as long as its input lasts (`--files-from`) holds instead of its records when
    it writes no report, so that its memory does not grow with the photos it has done."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.disk_full = 0  # records of images that failed for lack of space
        self.suspect: list[str] = []
        self._megapixels = _Sum()
        self._scores = {name: _Sum() for name in ("consistency_psnr", "psnr", "ssim")}

    def add(self, r: Record) -> None:
        self.counts[r.status] += 1
        self.disk_full += r.disk_full is not None
        if r.suspect:
            self.suspect.append(r.src)
        if r.status != "done":
            return
        if r.output_size:  # every frame of an animation was made
            self._megapixels.add(r.output_size[0] * r.output_size[1] * (r.frames or 1))
        for name, total in self._scores.items():
            value = getattr(r, name)
            if value is not None:
                total.add(value)

    def summary(self, seconds: float, not_images: int) -> dict[str, Any]:
        megapixels = self._megapixels.total() / 1e6
        scores = self._scores
        return {
            "images": sum(self.counts.values()),
            "done": self.counts["done"],
            "skipped": self.counts["skipped"],
            "failed": self.counts["failed"],
            "not_images": not_images,
            "seconds": round(seconds, 3),
            "output_megapixels": round(megapixels, 3),
            "megapixels_per_second": round(megapixels / seconds, 3) if seconds > 0 else None,
            "mean_consistency_psnr": scores["consistency_psnr"].mean(3),
            "mean_psnr": scores["psnr"].mean(3),
            "mean_ssim": scores["ssim"].mean(4),
            "suspect": list(self.suspect),
        }


class _Sum:
    """An exact running sum of floats (Shewchuk's partials, as `math.fsum` keeps them): the
    mean of values added one at a time is `statistics.fmean` of them all, to the last bit."""

    def __init__(self) -> None:
        self.partials: list[float] = []
        self.count = 0

    def add(self, x: float) -> None:
        self.count += 1
        i = 0
        for y in self.partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                self.partials[i] = lo
                i += 1
            x = hi
        self.partials[i:] = [x]

    def total(self) -> float:
        return math.fsum(self.partials)

    def mean(self, digits: int) -> float | None:
        return round(self.total() / self.count, digits) if self.count else None


def summary_line(s: dict[str, Any]) -> str:
    """The one line that closes every run on stderr."""
    parts = [
        f"{s['done']} done, {s['skipped']} skipped, {s['failed']} failed, "
        f"{s['not_images']} non-image files ignored in {s['seconds']} s"
    ]
    if s["megapixels_per_second"]:
        parts.append(f"{s['megapixels_per_second']} output MP/s")
    if s["mean_consistency_psnr"] is not None:
        parts.append(f"mean consistency PSNR {s['mean_consistency_psnr']} dB")
    if s["mean_psnr"] is not None:
        parts.append(f"mean PSNR {s['mean_psnr']} dB, SSIM {s['mean_ssim']}")
    if s.get("backend"):
        precision = f" ({s['precision']})" if s.get("precision") else ""
        parts.append(f"backend {s['backend']}{precision}")
    if s.get("suspect"):
        shown = ", ".join(s["suspect"][:5]) + (", ..." if len(s["suspect"]) > 5 else "")
        floor = s.get("consistency_floor")
        parts.append(f"{len(s['suspect'])} suspect (consistency PSNR under {floor} dB): {shown}")
    return ", ".join(parts)


def write_report(path: Path, records: Sequence[Record], summary: dict[str, Any]) -> None:
    """Write the report atomically; the format follows the suffix (.json, .csv or .html)."""
    suffix = path.suffix.lower()
    if suffix == ".html":
        from .report_html import render_html  # here: the page's modules only for a page

        thumbs = thumbnails_folder(path)
        text = render_html(records, summary, path, thumbs if thumbs.is_dir() else None)
    elif suffix in (".json", ".csv"):
        text = (_json if suffix == ".json" else _csv)(records, summary)
    else:
        raise ValueError(f"report must end in {', '.join(REPORT_SUFFIXES)}, not {path.suffix!r}")
    write_text_atomic(path, text)


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it into place.

    The file gets the permissions the umask gives (as the images do), not mkstemp's 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _json(records: Sequence[Record], summary: dict[str, Any]) -> str:
    names = {f.name for f in _reported()}
    images = [{k: v for k, v in asdict(r).items() if k in names} for r in records]
    return json.dumps({"summary": summary, "images": images}, indent=2) + "\n"


def _reported() -> list[Field[Any]]:
    """The fields of `Record` that are report columns (not those marked `report: False`)."""
    return [f for f in fields(Record) if f.metadata.get("report", True)]


def _columns() -> list[str]:
    names = []
    for f in _reported():
        if f.name.endswith("_size"):
            prefix = f.name.removesuffix("_size")
            names += [f"{prefix}_width", f"{prefix}_height"]
        else:
            names.append(f.name)
    return names


def _row(r: Record) -> list[Any]:
    row: list[Any] = []
    for f in _reported():
        value = getattr(r, f.name)
        if f.name.endswith("_size"):
            row += list(value) if value else ["", ""]
        else:
            row.append("" if value is None else round(value, 3) if f.name == "seconds" else value)
    return row


def _csv(records: Sequence[Record], summary: dict[str, Any]) -> str:
    """One row per image, the run's facts repeated on each (a CSV has no header block)."""
    run = [summary.get(k) for k in RUN_FIELDS]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*_columns(), *(f"run_{k}" for k in RUN_FIELDS)])
    writer.writerows([*_row(r), *run] for r in records)
    return buf.getvalue()
