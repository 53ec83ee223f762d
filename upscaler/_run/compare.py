"""`upscaler compare`: several backends on the same images, scored against ground truth.

It runs through the batch layer: the ground truth (cropped to a multiple of the factor) and
the low-resolution inputs are staged in a temporary folder (PNG files; JPEG where the input is
a JPEG, so that the weights chosen for JPEG inputs see its tables), then each contender (a
backend, or a backend with one of its sets of weights: "onnx:jpeg") is a batch over them on an
engine (`local` or `dask`) with the ground truth as `--reference`, so the scores are the
batch's own. Writes DIR/report.json, DIR/report.csv and a self-contained DIR/index.html (crops
as PNG files beside it, an inline SVG chart; nothing fetched from the network), only once every
image has been scored.
"""

from __future__ import annotations

import csv
import html
import io
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .._defaults import DEFAULT_ENGINE, DEFAULT_QUALITY
from .._errors import ImageError
from .._images.codec import Metadata, decode, encode, pixels_to_pil
from .._pixels.metrics import y_channel
from .._pixels.resize import bicubic_resize
from .._pixels.size import OutputSize
from .._plugins.interface import BackendOptions
from .._plugins.registry import backend_models, load_backend, plugin_precision
from .engines import Engine, Tls, create_engine, split_cores
from .plan import find_reference, image_files
from .report import write_text_atomic
from .report_html import url_path
from .spec import Job, Record, Settings
from .stop import StopSignals

__all__ = ["Comparison", "Where", "compare", "contender"]

#: Side of the detail crop shown per image, in output pixels.
CROP = 48


@dataclass
class Comparison:
    """Scores per image and backend, and the time each backend took."""

    factor: int
    backends: list[str]
    images: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, float]]:
        return {b: {**self._means(b), "seconds": round(self.seconds[b], 3)} for b in self.backends}

    def _means(self, backend: str) -> dict[str, float]:
        keys = self.images[0][backend].keys()
        return {k: round(statistics.fmean(i[backend][k] for i in self.images), 5) for k in keys}

    def as_json(self) -> dict[str, Any]:
        return {"factor": self.factor, "summary": self.summary(), "images": self.images}


@dataclass(frozen=True)
class Where:
    """The engine that runs a comparison: `local`, or `dask` with its scheduler or workers."""

    engine: str = DEFAULT_ENGINE
    scheduler: str | None = None
    workers: int | None = None
    tls: Tls | None = None

    def create(self, images: int) -> Engine:
        workers = split_cores(images)[0] if self.engine == "local" else self.workers
        return create_engine(self.engine, workers=workers, scheduler=self.scheduler, tls=self.tls)


def compare(
    hr_dir: Path,
    factor: int,
    backends: list[str],
    out: Path,
    lr_dir: Path | None = None,
    options: BackendOptions | None = None,
    rgb_psnr: bool = False,
    where: Where | None = None,
    jpeg_quality: int | None = None,
) -> Comparison:
    """Run every contender on every image of `hr_dir`, score, and write the three reports.

    A contender is a backend's name, whose weights are chosen per image as `upscaler batch`
    chooses them (`--input-kind auto`), or "NAME:WEIGHTS" for one of its sets of weights
    ("onnx:clean", "onnx:jpeg"): `contender` checks it. `hr_dir` is walked recursively. Where
    it holds `*_HR.*` files beside `*_LR.*` ones (the layout of Set5, Set14, BSD100...), those
    pairs whose sizes fit `factor` are compared; otherwise every image is ground truth, its
    input taken from `lr_dir` (same relative path, any image suffix) or made with antialiased
    bicubic. With `jpeg_quality`, inputs that are not JPEG files already are saved as JPEG at
    that quality (Pillow, 4:2:0), as stored photos are.
    """
    pairs = _pairs(hr_dir, factor, lr_dir)
    where = where or Where()
    options = options or _threads_for(where, len(pairs))
    kinds = {spec: contender(spec, factor) for spec in backends}
    chosen = {  # each backend's precision decided once: what "auto" runs as here
        spec: replace(options, precision=plugin_precision(name, options.precision))
        for spec, (name, _) in kinds.items()
    }
    for spec, (name, _) in kinds.items():  # an unusable backend stops the run before any work
        load_backend(name, factor, chosen[spec])
    result = Comparison(factor, list(backends))
    with tempfile.TemporaryDirectory(prefix="upscaler-compare-") as tmp:
        staged = _stage(pairs, factor, Path(tmp), jpeg_quality)
        outputs: dict[str, list[Record]] = {}
        for spec, (name, kind) in kinds.items():
            settings = Settings(
                name,
                OutputSize(factor=factor),
                skip_existing=False,
                options=chosen[spec],
                reference=Path(tmp) / "hr",
                rgb_psnr=rgb_psnr,
                input_kind=kind,
            )
            folder = Path(tmp) / f"out{len(outputs)}"
            outputs[spec], result.seconds[spec] = _run(staged, settings, where, folder)
        (out / "crops").mkdir(parents=True, exist_ok=True)
        stems: set[str] = set()
        for i, (pair, job) in enumerate(zip(pairs, staged, strict=True)):
            hr = decode(Path(tmp) / "hr" / job.rel.with_suffix(".png")).pixels
            upscaled = {b: decode(Path(outputs[b][i].dst)).pixels for b in backends}
            stem = _crop_stem(pair.name, stems)
            result.images.append(
                {
                    "name": pair.name,
                    **{b: _scores(outputs[b][i], rgb_psnr) for b in backends},
                    "crops": _save_crops(out / "crops", stem, hr, upscaled),
                }
            )
    _write_reports(out, result)
    return result


def contender(spec: str, factor: int) -> tuple[str, str]:
    """(backend, --input-kind) of a contender "NAME" (auto) or "NAME:WEIGHTS"; ImageError for
    weights the backend does not have at `factor` (an unknown backend is load_backend's)."""
    name, _, weights = spec.partition(":")
    if not weights:
        return name, "auto"
    have = backend_models(name, factor)
    if weights not in have:
        offered = ", ".join(f"{name}:{w}" for w in have) or "none"
        raise ImageError(f"{spec}: {name} has no {weights} weights at x{factor} (has: {offered})")
    return name, weights


def _threads_for(where: Where, images: int) -> BackendOptions:
    """Local runs split the cores between the images in flight, as `upscaler batch` does."""
    if where.engine != "local":
        return BackendOptions()
    in_flight, threads = split_cores(images)
    return BackendOptions(threads=threads, concurrent=in_flight)


@dataclass(frozen=True)
class _Pair:
    """One image to compare: its name in the reports, ground truth, given input (if any)."""

    name: str
    hr: Path
    lr: Path | None


def _pairs(hr_dir: Path, factor: int, lr_dir: Path | None) -> list[_Pair]:
    files = image_files(hr_dir)
    marked = [p for p in files if p.stem.endswith("_HR")]
    if not marked:
        pairs = [_Pair(p.relative_to(hr_dir).as_posix(), p, None) for p in files]
        if lr_dir is not None:
            pairs = [_Pair(p.name, p.hr, _given(lr_dir, p.name)) for p in pairs]
        if not pairs:
            raise ImageError(f"no images in {hr_dir}")
        return pairs
    pairs = []
    for hr in marked:
        lr = hr.with_name(f"{hr.stem[:-3]}_LR{hr.suffix}")
        if lr.is_file() and _fits(hr, lr, factor):
            pairs.append(_Pair(hr.relative_to(hr_dir).as_posix(), hr, lr))
    if not pairs:
        raise ImageError(f"no *_HR/*_LR image pairs at x{factor} in {hr_dir}")
    return pairs


def _given(lr_dir: Path, name: str) -> Path:
    """The input of `name` in `lr_dir`: same relative path, or same stem with any image
    suffix (photo.png's input may be photo.jpg)."""
    return find_reference(lr_dir, Path(name)) or lr_dir / name


def _fits(hr: Path, lr: Path, factor: int) -> bool:
    """True when the LR image is the HR one's size divided by `factor` (from the headers)."""
    try:
        with Image.open(hr) as big, Image.open(lr) as small:
            return (big.width // factor, big.height // factor) == small.size
    except (OSError, ValueError) as exc:
        raise ImageError(f"{hr} or {lr}: not a readable image ({exc})") from exc


def _stage(pairs: Sequence[_Pair], factor: int, tmp: Path, jpeg_quality: int | None) -> list[Job]:
    """Ground truth (cropped to a multiple of `factor`) in tmp/hr and the low-resolution
    inputs in tmp/lr, named by index: one job per image. Inputs are PNG files, but a given
    JPEG is copied as it is (its quantisation tables choose the weights) and, with
    `jpeg_quality`, the others are saved as JPEG at that quality."""
    jobs = []
    for i, pair in enumerate(pairs):
        try:
            hr = _crop_to_multiple(decode(pair.hr).pixels, factor)
        except ImageError as exc:
            raise ImageError(f"{pair.hr}: {exc}") from exc
        lr, given_jpeg = _low_resolution(hr, factor, pair.lr)
        encode(hr, tmp / "hr" / f"{i:06}.png", Metadata())
        rel = Path(f"{i:06}.jpg" if given_jpeg or jpeg_quality else f"{i:06}.png")
        if given_jpeg and pair.lr is not None:  # as it is: its tables choose the weights
            (tmp / "lr").mkdir(exist_ok=True)
            shutil.copyfile(pair.lr, tmp / "lr" / rel)
        else:
            encode(lr, tmp / "lr" / rel, Metadata(), jpeg_quality or DEFAULT_QUALITY)
        jobs.append(Job(tmp / "lr" / rel, tmp / "out" / rel, rel))
    return jobs


def _run(
    staged: Sequence[Job], settings: Settings, where: Where, folder: Path
) -> tuple[list[Record], float]:
    """One backend over every staged image: records in input order, and the wall time."""
    jobs = [Job(j.src, folder / j.rel.with_suffix(".png"), j.rel) for j in staged]
    started = time.perf_counter()
    with StopSignals(lambda text: None) as stop:
        records = {r.src: r for r in where.create(len(jobs)).results(jobs, settings, stop)}
    seconds = time.perf_counter() - started
    if stop.signum is not None:
        raise KeyboardInterrupt
    ordered = [records.get(str(j.src)) for j in jobs]
    for record in ordered:
        if record is None or record.status != "done" or record.psnr is None:
            reason = record.error if record else "not run"
            raise ImageError(f"{settings.backend} could not be scored: {reason}")
    return [r for r in ordered if r is not None], seconds


def _scores(record: Record, rgb_psnr: bool) -> dict[str, float]:
    scores = {"psnr": record.psnr, "ssim": record.ssim}
    if rgb_psnr:
        scores["psnr_rgb"] = record.psnr_rgb
    return {k: float(v) for k, v in scores.items() if v is not None}


def _crop_to_multiple(img: NDArray[Any], factor: int) -> NDArray[Any]:
    h, w = img.shape[:2]
    return img[: h - h % factor, : w - w % factor]


def _low_resolution(hr: NDArray[Any], factor: int, given: Path | None) -> tuple[NDArray[Any], bool]:
    """The given LR image (checked for size), or HR shrunk with antialiased bicubic; and
    whether it is a given JPEG (or MPO) file."""
    h, w = hr.shape[0] // factor, hr.shape[1] // factor
    if given is not None:
        if not given.is_file():
            raise ImageError(f"{given}: no low-resolution image of that name")
        decoded = decode(given)
        lr = decoded.pixels
        if lr.shape[:2] != (h, w):
            raise ImageError(f"{given}: is {lr.shape[1]}x{lr.shape[0]}, expected {w}x{h}")
        return lr, decoded.format in ("JPEG", "MPO")
    if hr.dtype == np.uint8:
        return np.asarray(pixels_to_pil(hr).resize((w, h), Image.Resampling.BICUBIC)), False
    planes = hr.astype(np.float32)[..., None] if hr.ndim == 2 else hr.astype(np.float32)
    small = np.clip(np.rint(bicubic_resize(planes, (w, h))), 0, 65535).astype(hr.dtype)
    return (small[..., 0] if hr.ndim == 2 else small), False


def _detail_box(outputs: dict[str, NDArray[Any]]) -> tuple[int, int, int]:
    """(top, left, side) of the square where the backends' Y channels differ most."""
    ys = np.stack([y_channel(o) for o in outputs.values()])
    spread = ys.max(axis=0) - ys.min(axis=0)
    side = min(CROP, *spread.shape)
    sums = np.cumsum(np.cumsum(np.pad(spread, ((1, 0), (1, 0))), 0), 1)
    windows = sums[side:, side:] - sums[:-side, side:] - sums[side:, :-side] + sums[:-side, :-side]
    top, left = np.unravel_index(int(np.argmax(windows)), windows.shape)
    return int(top), int(left), side


def _crop_stem(name: str, taken: set[str]) -> str:
    """The file stem for an image's crops, unique in the run (a.png and a.jpg, d/e.png and
    d_e.png would otherwise share one)."""
    base = PurePosixPath(name).with_suffix("").as_posix().replace("/", "_")
    stem, n = base, 1
    while stem in taken:
        n += 1
        stem = f"{base}-{n}"
    taken.add(stem)
    return stem


def _save_crops(
    folder: Path, stem: str, hr: NDArray[Any], outputs: dict[str, NDArray[Any]]
) -> dict[str, str]:
    top, left, side = _detail_box(outputs)
    crops = {}
    for label, img in {"ground truth": hr, **outputs}.items():
        name = f"{stem}_{label.replace(' ', '_')}.png"
        # written as outputs are (new file, then rename): never through a planted link
        encode(
            np.ascontiguousarray(img[top : top + side, left : left + side]),
            folder / name,
            Metadata(),
        )
        crops[label] = f"crops/{name}"
    return crops


def _write_reports(out: Path, result: Comparison) -> None:
    write_text_atomic(out / "report.json", json.dumps(result.as_json(), indent=2) + "\n")
    write_text_atomic(out / "report.csv", _csv(result))
    write_text_atomic(out / "index.html", _html(result))


def _csv(result: Comparison) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["name", "backend", "psnr", "ssim"])
    for image in result.images:
        writer.writerows(
            [image["name"], b, image[b]["psnr"], image[b]["ssim"]] for b in result.backends
        )
    for b, s in result.summary().items():
        writer.writerow(["mean", b, s["psnr"], s["ssim"]])
    return buf.getvalue()


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>upscaler compare x{factor}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 10px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
td.best {{ background: #d8f3d8; font-weight: bold; }}
tr.mean td {{ border-top: 2px solid #444; }}
figure {{ display: inline-block; margin: 0 12px 12px 0; text-align: center; }}
figure img {{ width: {zoom}px; height: {zoom}px; image-rendering: pixelated; display: block; }}
</style></head>
<body data-images="{n_images}">
<h1>upscaler compare, x{factor}</h1>
<p>PSNR (dB) and SSIM on the Y channel of BT.601, {factor} border pixels cropped.
Best value per row highlighted.</p>
{chart}
<h2>PSNR / SSIM</h2>
<table><thead><tr><th>image</th>{head}</tr></thead><tbody>
{rows}
</tbody></table>
<h2>Details</h2>
<p>Per image, the {crop}x{crop} region where the backends differ most, enlarged
{zoom_factor}x without smoothing.</p>
{details}
<script>
window.addEventListener("load", () => {{
  const imgs = [...document.images];
  document.body.dataset.loaded = imgs.filter((i) => i.complete && i.naturalWidth > 0).length;
}});
</script>
</body></html>
"""


def _cells(values: dict[str, tuple[float, float]]) -> str:
    best_psnr = max(v[0] for v in values.values())
    best_ssim = max(v[1] for v in values.values())
    cells = []
    for p, s in values.values():
        cells.append(f"<td{' class=best' if p == best_psnr else ''}>{p:.2f}</td>")
        cells.append(f"<td{' class=best' if s == best_ssim else ''}>{s:.4f}</td>")
    return "".join(cells)


def _html(result: Comparison) -> str:
    names = [html.escape(b) for b in result.backends]
    head = "".join(f"<th>{b} PSNR</th><th>{b} SSIM</th>" for b in names)
    rows = [
        f"<tr><td>{html.escape(i['name'])}</td>"
        + _cells({b: (i[b]["psnr"], i[b]["ssim"]) for b in result.backends})
        + "</tr>"
        for i in result.images
    ]
    summary = result.summary()
    rows.append(
        '<tr class="mean"><td>mean</td>'
        + _cells({b: (s["psnr"], s["ssim"]) for b, s in summary.items()})
        + "</tr>"
    )
    rows.append(
        "<tr><td>seconds</td>"
        + "".join(f'<td colspan="2">{s["seconds"]:.2f}</td>' for s in summary.values())
        + "</tr>"
    )
    zoom = 4
    return _PAGE.format(
        factor=result.factor,
        zoom=CROP * zoom,
        zoom_factor=zoom,
        crop=CROP,
        n_images=sum(len(i["crops"]) for i in result.images),
        chart=_chart(summary),
        head=head,
        rows="\n".join(rows),
        details="\n".join(_detail(i) for i in result.images),
    )


def _detail(image: dict[str, Any]) -> str:
    figures = "".join(
        f'<figure><img src="{html.escape(url_path(src))}" alt="{html.escape(label)}">'
        f"<figcaption>{html.escape(label)}</figcaption></figure>"
        for label, src in image["crops"].items()
    )
    return f"<h3>{html.escape(image['name'])}</h3><div>{figures}</div>"


def _chart(summary: dict[str, dict[str, float]]) -> str:
    """Horizontal bars of mean PSNR per backend, as inline SVG."""
    values = {b: s["psnr"] for b, s in summary.items()}
    low = min(values.values()) - 1.0
    span = max(max(values.values()) - low, 1e-6)
    bars = []
    for row, (backend, value) in enumerate(values.items()):
        width = 300 * (value - low) / span
        y = 10 + row * 26
        bars.append(
            f'<text x="0" y="{y + 15}">{html.escape(backend)}</text>'
            f'<rect x="90" y="{y}" width="{width:.1f}" height="20" fill="#4a7bd0"></rect>'
            f'<text x="{95 + width:.1f}" y="{y + 15}">{value:.2f} dB</text>'
        )
    height = 20 + 26 * len(values)
    return (
        f'<h2>Mean PSNR</h2><svg width="480" height="{height}" role="img" '
        f'aria-label="mean PSNR per backend">{"".join(bars)}</svg>'
    )
