"""Run reports: one record per image plus a summary, as JSON or CSV (by extension)."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ._pipeline import Record

__all__ = ["REPORT_SUFFIXES", "summarise", "write_report"]

REPORT_SUFFIXES = (".json", ".csv")


def summarise(records: Sequence[Record], seconds: float, not_images: int) -> dict[str, Any]:
    """Counts by status, output megapixels and throughput."""
    counts = Counter(r.status for r in records)
    megapixels = sum(r.output_size[0] * r.output_size[1] for r in records if r.output_size) / 1e6
    return {
        "images": len(records),
        "done": counts["done"],
        "skipped": counts["skipped"],
        "failed": counts["failed"],
        "not_images": not_images,
        "seconds": round(seconds, 3),
        "output_megapixels": round(megapixels, 3),
        "megapixels_per_second": round(megapixels / seconds, 3) if seconds > 0 else None,
    }


def write_report(path: Path, records: Sequence[Record], summary: dict[str, Any]) -> None:
    """Write the report atomically; the format follows the suffix (.json or .csv)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        text = json.dumps({"summary": summary, "images": [asdict(r) for r in records]}, indent=2)
    elif suffix == ".csv":
        text = _csv(records)
    else:
        raise ValueError(f"report must end in {' or '.join(REPORT_SUFFIXES)}, not {suffix!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text + ("\n" if suffix == ".json" else ""))
    os.replace(tmp, path)


def _csv(records: Sequence[Record]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        [
            "src",
            "dst",
            "status",
            "error",
            "seconds",
            "input_width",
            "input_height",
            "output_width",
            "output_height",
        ]
    )
    for r in records:
        iw, ih = r.input_size or ("", "")
        ow, oh = r.output_size or ("", "")
        writer.writerow([r.src, r.dst, r.status, r.error or "", f"{r.seconds:.3f}", iw, ih, ow, oh])
    return buf.getvalue()
