"""Weights chosen per input (issue 27): JPEGs by their quantisation tables, through the
installed command, with the shipped weights; the JPEG quality estimate on real files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SET5, photo, run_cli
from upscaler._images.jpeg import estimate_quality, weights_for
from upscaler.plugin import shipped_models


def _jpeg(im: Image.Image, **options: object) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", **options)
    buf.seek(0)
    return Image.open(buf)


def test_quality_is_read_from_the_tables() -> None:
    """Pillow's (libjpeg's) tables give their quality exactly; a camera's own tables land on
    the same scale."""
    im = photo(64, 48)
    for quality in (5, 20, 50, 66, 75, 85, 90, 95, 97, 100):
        assert estimate_quality(_jpeg(im, quality=quality).quantization) == quality
    standard = _jpeg(im, quality=90).quantization
    custom = {
        k: [max(1, v - 1 if i % 2 else v + 1) for i, v in enumerate(t)] for k, t in standard.items()
    }
    assert abs(estimate_quality(_jpeg(im, qtables=custom).quantization) - 90) <= 2  # type: ignore[operator]
    assert estimate_quality(None) is None and estimate_quality({}) is None


def _records(report: Path) -> dict[str, dict[str, object]]:
    return {Path(r["src"]).name: r for r in json.loads(report.read_text())["images"]}


@pytest.fixture()
def inputs(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    im = photo(60, 40)
    im.save(src / "q75.jpg", quality=75)
    im.save(src / "q90.jpg", quality=90)
    im.save(src / "q95.jpg", quality=95)
    im.save(src / "q97.jpg", quality=97)
    im.save(src / "clean.png")
    stereo = src / "stereo.jpg"  # an MPO (two pictures), named as cameras name them
    im.save(stereo, "MPO", quality=80, save_all=True, append_images=[photo(60, 40, seed=1)])
    standard = _jpeg(im, quality=85).quantization
    custom = {k: [v + (i % 3 == 0) for i, v in enumerate(t)] for k, t in standard.items()}
    im.save(src / "camera.jpg", qtables=custom)
    return src


@pytest.mark.slow
def test_each_input_gets_the_weights_for_what_it_is(inputs: Path, tmp_path: Path) -> None:
    """--input-kind auto (the default): JPEGs up to quality 85 get the jpeg weights, 86 to 96
    the jpeg-high ones, everything else the clean ones; the report says which, with the
    estimated quality; -v says it too."""
    report = tmp_path / "r.json"
    ran = run_cli(
        "batch", inputs, "-o", tmp_path / "out", "--factor", "3", "--report", report, "-v"
    )
    assert ran.returncode == 0, ran.stderr
    got = {name: (r["model"], r["jpeg_quality"]) for name, r in _records(report).items()}
    assert got["q75.jpg"] == ("jpeg", 75) and got["q90.jpg"] == ("jpeg-high", 90)
    assert got["q95.jpg"] == ("jpeg-high", 95) and got["q97.jpg"] == ("clean", 97)
    assert got["clean.png"] == ("clean", None)
    assert got["stereo.jpg"] == ("jpeg", 80)
    assert got["camera.jpg"] == ("jpeg", 85)  # tables of its own, near libjpeg's q85
    assert "jpeg weights, JPEG q75)" in ran.stderr
    assert "jpeg-high weights, JPEG q90)" in ran.stderr
    header = tmp_path / "r.csv"
    csv_run = run_cli("batch", inputs / "q75.jpg", "-o", tmp_path / "csv", "--report", header)
    assert csv_run.returncode == 0 and "model" in header.read_text().splitlines()[0]
    page = tmp_path / "r.html"
    html_run = run_cli("batch", inputs / "q90.jpg", "-o", tmp_path / "html", "--report", page)
    assert html_run.returncode == 0, html_run.stderr
    text = page.read_text()
    assert "<th>model</th><th>jpeg_quality</th>" in text
    assert "<td>jpeg-high</td><td>90</td>" in text


@pytest.mark.slow
def test_the_kind_can_be_forced_and_own_weights_are_never_switched(
    inputs: Path, tmp_path: Path
) -> None:
    for kind in ("clean", "jpeg", "jpeg-high"):
        report = tmp_path / f"{kind}.json"
        ran = run_cli(
            "batch", inputs, "-o", tmp_path / kind, "--input-kind", kind, "--report", report
        )
        assert ran.returncode == 0, ran.stderr
        assert {r["model"] for r in _records(report).values()} == {kind}
    from upscaler.plugin import shipped_weights

    own = tmp_path / "own.json"
    ran = run_cli(
        "batch",
        inputs,
        "-o",
        tmp_path / "own",
        "--weights",
        shipped_weights(3, "onnx"),
        "--report",
        own,
    )
    assert ran.returncode == 0 and {r["model"] for r in _records(own).values()} == {"own"}
    bicubic = tmp_path / "bicubic.json"
    ran = run_cli(
        "batch", inputs, "-o", tmp_path / "bic", "--backend", "bicubic", "--report", bicubic
    )
    assert {r["model"] for r in _records(bicubic).values()} == {None}
    x2 = tmp_path / "x2.json"
    ran = run_cli(
        "batch", inputs / "q75.jpg", "-o", tmp_path / "x2", "--factor", "2", "--report", x2
    )
    assert _records(x2)["q75.jpg"]["model"] == "jpeg"


@pytest.mark.skipif("jpeg" not in shipped_models(3), reason="no JPEG weights for x3 shipped")
@pytest.mark.slow
def test_jpeg_weights_lift_set5_at_quality_75(tmp_path: Path) -> None:
    """Set5's x3 inputs saved as JPEG at quality 75 (Pillow, 4:2:0), the shared protocol
    through the command: the default picks the JPEG weights and gains on both the clean
    weights and bicubic (floors well under what was measured: see docs/training.md)."""
    lr, hr = tmp_path / "lr", tmp_path / "hr"
    lr.mkdir()
    hr.mkdir()
    for path in sorted((SET5 / "image_SRF_3").glob("*_HR.png")):
        stem = path.name.removesuffix("_HR.png")
        Image.open(path).save(hr / f"{stem}.png")
        Image.open(path.with_name(f"{stem}_LR.png")).convert("RGB").save(
            lr / f"{stem}.jpg", quality=75
        )
    scores = {}
    for name, args in (
        ("auto", []),
        ("clean", ["--input-kind", "clean"]),
        ("bicubic", ["--backend", "bicubic"]),
    ):
        report = tmp_path / f"{name}.json"
        ran = run_cli(
            "batch",
            lr,
            "-o",
            tmp_path / name,
            "--factor",
            "3",
            "--reference",
            hr,
            "--report",
            report,
            *args,
        )
        assert ran.returncode == 0, ran.stderr
        scores[name] = float(np.mean([r["psnr"] for r in _records(report).values()]))
    assert scores["auto"] >= scores["clean"] + 0.5, scores
    assert scores["auto"] >= scores["bicubic"] + 1.0, scores


@pytest.mark.skipif("jpeg" not in shipped_models(3), reason="no JPEG weights for x3 shipped")
def test_compare_sets_the_weights_against_each_other_on_jpeg_inputs(tmp_path: Path) -> None:
    """`compare --jpeg-quality 75` makes JPEG inputs; NAME:WEIGHTS runs one set of weights,
    NAME alone picks per image (here the JPEG weights); --lr-dir JPEGs are used as they are
    (the same pixels give the same scores); weights a backend lacks stop the run first."""
    hr = tmp_path / "hr"
    hr.mkdir()
    lr = tmp_path / "lr"
    lr.mkdir()
    for path in sorted((SET5 / "image_SRF_3").glob("*_HR.png"))[:3]:
        stem = path.name.removesuffix("_HR.png")
        truth = Image.open(path).convert("RGB")
        truth = truth.crop((0, 0, truth.width // 3 * 3, truth.height // 3 * 3))
        truth.save(hr / f"{stem}.png")
        small = truth.resize((truth.width // 3, truth.height // 3), Image.Resampling.BICUBIC)
        small.save(lr / f"{stem}.jpg", quality=75)
    contenders = ["onnx", "onnx:clean", "onnx:jpeg"]
    backends = [arg for name in contenders for arg in ("--backend", name)]
    made = run_cli("compare", hr, "--jpeg-quality", "75", "-o", tmp_path / "made", *backends)
    assert made.returncode == 0, made.stderr
    given = run_cli("compare", hr, "--lr-dir", lr, "-o", tmp_path / "given", *backends)
    assert given.returncode == 0, given.stderr
    summaries = [
        json.loads((tmp_path / run / "report.json").read_text())["summary"]
        for run in ("made", "given")
    ]
    psnr = {name: summaries[0][name]["psnr"] for name in contenders}
    assert psnr["onnx"] == psnr["onnx:jpeg"] >= psnr["onnx:clean"] + 0.5, psnr
    assert {name: summaries[1][name]["psnr"] for name in contenders} == psnr
    wrong = run_cli("compare", hr, "--backend", "bicubic:jpeg", "-o", tmp_path / "wrong")
    assert wrong.returncode == 1 and "bicubic has no jpeg weights at x3" in wrong.stderr
    assert not (tmp_path / "wrong").exists()


def test_each_quality_band_has_its_weights() -> None:
    """The bands chosen on held-out photos (docs/training.md): up to 85 "jpeg", 86 to 96
    "jpeg-high", 97 and up (and every input that is not a JPEG) "clean"."""
    assert [weights_for(q) for q in (10, 50, 85, 86, 96, 97, 100, None)] == [
        *["jpeg"] * 3,
        *["jpeg-high"] * 2,
        *["clean"] * 3,
    ]
