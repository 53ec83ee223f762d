"""The HTML batch report: the page an operator opens in the morning.

Summary first (counts, time, throughput, the run), then what needs a look (failures with their
reason, suspect outputs with the input beside the output), a histogram of consistency PSNR with
the suspect floor drawn, and the table of every image with only the columns that hold data.
Thumbnails are files beside the report (`job` writes them while the image is in memory),
loaded lazily, so a report of 100,000 images stays a page that opens; links are relative and
URL-quoted. Nothing is fetched from the network.
"""

from __future__ import annotations

import html
import math
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .spec import Record
from .thumbs import thumbnail_names

__all__ = ["render_html", "url_path"]

_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; max-width: 1160px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
.summary { font-size: 1.05em; } .summary b { font-size: 1.2em; }
table { border-collapse: collapse; width: 100%; table-layout: auto; }
td, th { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
td { overflow-wrap: anywhere; }
tr.failed { background: #fdd; } tr.suspect { background: #ffd; } tr.skipped { color: #888; }
img { display: block; max-width: 160px; max-height: 120px; }
.look figure { display: inline-block; margin: 0 8px 8px 0; }
"""


def render_html(
    records: Sequence[Record], summary: dict[str, Any], report: Path, thumbs: Path | None
) -> str:
    """The page for `report`; `thumbs` is the folder of thumbnails (None: no pictures)."""
    parts = [
        f"<h1>upscaler batch report</h1>\n{_summary(summary)}",
        _needs_a_look(records, report, thumbs),
        _histogram(records, summary.get("consistency_floor")),
        _table(records, report, thumbs),
    ]
    body = "\n".join(p for p in parts if p)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>upscaler batch report</title><style>{_STYLE}</style></head>\n"
        f"<body>\n{body}\n{_COUNT_IMAGES}</body></html>\n"
    )


_COUNT_IMAGES = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  document.body.dataset.images = imgs.length;
  document.body.dataset.loaded = imgs.filter((i) => i.complete && i.naturalWidth > 0).length;
});
</script>
"""


def _summary(s: dict[str, Any]) -> str:
    counts = (
        f"<b>{s['done']}</b> done, <b>{s['skipped']}</b> skipped, <b>{s['failed']}</b> failed, "
        f"<b>{len(s.get('suspect') or [])}</b> suspect, {s['not_images']} non-image files"
    )
    speed = f"{s['seconds']} s"
    if s.get("megapixels_per_second"):
        speed += f", {s['megapixels_per_second']} output MP/s"
    if s.get("mean_consistency_psnr") is not None:
        speed += f", mean consistency PSNR {s['mean_consistency_psnr']} dB"
    if s.get("mean_psnr") is not None:
        speed += f", mean PSNR {s['mean_psnr']} dB, SSIM {s['mean_ssim']}"
    run = ", ".join(
        f"{k} {s[k]}"
        for k in ("started", "ended", "host", "version", "backend", "precision", "factor", "size")
        if s.get(k) is not None
    )
    return (
        f'<p class="summary">{counts}</p>\n<p>{html.escape(speed)}</p>\n'
        f'<p class="run">{html.escape(run)}</p>'
    )


def _needs_a_look(records: Sequence[Record], report: Path, thumbs: Path | None) -> str:
    failed = [r for r in records if r.status == "failed"]
    suspect = [r for r in records if r.suspect]
    if not failed and not suspect:
        return ""
    items = [f"<li>{_link(r.src, report)}: {html.escape(r.error or '')}</li>" for r in failed]
    figures = []
    for r in suspect:
        pictures = _pictures(r, report, thumbs, with_input=True)
        text = f"{_link(r.src, report)}: consistency {r.consistency_psnr} dB"
        figures.append(f"<figure>{pictures}<figcaption>{text}</figcaption></figure>")
    return (
        '<section class="look"><h2>Needs a look</h2>'
        + (f"<ul>{''.join(items)}</ul>" if items else "")
        + "".join(figures)
        + "</section>"
    )


def _histogram(records: Sequence[Record], floor: float | None) -> str:
    """Consistency PSNR of the images done, in 1 dB bins, as inline SVG; the floor in red."""
    values = [r.consistency_psnr for r in records if r.consistency_psnr is not None]
    if not values:
        return ""
    low = math.floor(min([*values, floor] if floor is not None else values))
    high = math.floor(max(values)) + 1
    bins = Counter(math.floor(v) for v in values)
    width, height, step = 600, 120, 600 / max(1, high - low)
    peak = max(bins.values())
    bars = "".join(
        f'<rect x="{(b - low) * step:.1f}" y="{height - n / peak * height:.1f}" '
        f'width="{max(step - 1, 1):.1f}" height="{n / peak * height:.1f}" fill="#4a7bd0">'
        f"<title>{b}-{b + 1} dB: {n}</title></rect>"
        for b, n in sorted(bins.items())
    )
    line = ""
    if floor is not None:
        x = (floor - low) * step
        line = (
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}" stroke="#d00" '
            f'stroke-width="2"></line><text x="{x + 4:.1f}" y="12" fill="#d00">'
            f"suspect under {floor} dB</text>"
        )
    axis = f'<text x="0" y="{height + 16}">{low} dB</text>' + (
        f'<text x="{width - 50}" y="{height + 16}">{high} dB</text>'
    )
    return (
        "<h2>Consistency PSNR</h2>"
        f'<svg width="{width}" height="{height + 20}" role="img" '
        f'aria-label="histogram of consistency PSNR">{bars}{line}{axis}</svg>'
    )


def _table(records: Sequence[Record], report: Path, thumbs: Path | None) -> str:
    order = {"failed": 0, "done": 2, "skipped": 3}
    rows = sorted(records, key=lambda r: 1 if r.suspect else order.get(r.status, 4))
    columns = [c for c in _COLUMNS if any(_value(r, c) not in (None, "", False) for r in rows)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["image", *columns])
    body = "\n".join(
        f'<tr class="{r.status}{" suspect" if r.suspect else ""}">'
        f"<td>{_pictures(r, report, thumbs)}{_link(r.src, report)}"
        + (f"<br>&rarr; {_link(r.dst, report)}" if r.status != "failed" and r.dst else "")
        + "</td>"
        + "".join(f"<td>{html.escape(_text(_value(r, c)))}</td>" for c in columns)
        + "</tr>"
        for r in rows
    )
    return f"<h2>Images</h2><table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


_COLUMNS = [
    "status",
    "error",
    "consistency_psnr",
    "psnr",
    "ssim",
    "psnr_rgb",
    "input",
    "output",
    "model",
    "jpeg_quality",
    "seconds",
    "reference",
]


def _value(r: Record, column: str) -> Any:
    if column in ("input", "output"):
        size = r.input_size if column == "input" else r.output_size
        return f"{size[0]}x{size[1]}" if size else None
    value = getattr(r, column)
    return round(value, 2) if column == "seconds" and value is not None else value


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _pictures(r: Record, report: Path, thumbs: Path | None, with_input: bool = False) -> str:
    if thumbs is None or r.status != "done" or not r.dst:
        return ""
    out, given = thumbnail_names(r.dst)
    names = [given, out] if with_input else [out]
    pictures = "".join(
        f'<img loading="lazy" src="{html.escape(_relative(thumbs / n, report))}" alt="">'
        for n in names
    )
    if "://" in r.dst:
        return pictures
    return f'<a href="{html.escape(_relative(Path(r.dst), report))}">{pictures}</a>'


def _link(location: str, report: Path) -> str:
    """A link to a local file (shown as its absolute path), relative to the report; a URL as
    text."""
    if not location or "://" in location:
        return html.escape(location)
    href = html.escape(_relative(Path(location), report))
    return f'<a href="{href}">{html.escape(os.path.abspath(location))}</a>'


def _relative(path: Path, report: Path) -> str:
    """The URL of `path` relative to the report's folder."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(report.parent))
    return url_path(Path(rel).as_posix())


def url_path(path: str) -> str:
    """The relative URL of a `/`-separated path: each segment percent-quoted, `/` kept.

    Without it a file named `a#1.png` would be read as `a` plus a fragment; `%`, `?`, `:`
    and spaces are quoted too. Escape the result for HTML where it goes into an attribute.
    """
    return "/".join(quote(segment, safe="") for segment in path.split("/"))
