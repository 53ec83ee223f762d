"""Cheap in-process tests of the batch and the API (the fast tier: `pytest -m "not slow"`).

The batch runs in this process (`run_batch`, as the command line calls it) on a few small
real files, with the real `bicubic` and ONNX backends, Pillow and the file system: what the
slow tier checks through the installed command, in a fraction of a second each.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

import upscaler
from conftest import photo
from upscaler._pixels.metrics import psnr_y
from upscaler._pixels.size import OutputSize
from upscaler._run.batch import BatchRequest, run_batch
from upscaler._run.lock import LockTimeout, hold_lock
from upscaler._run.spec import Record, TileCallback
from upscaler.plugin import shipped_models


@dataclass
class Collected:
    """A `Progress` that keeps what the run tells its user."""

    total: int | None = None
    records: list[Record] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    closed: bool = False

    def start(self, total: int) -> None:
        self.total = total

    def record(self, record: Record) -> None:
        self.records.append(record)

    def tiles(self) -> TileCallback | None:
        return None

    def message(self, text: str) -> None:
        self.messages.append(text)

    def close(self) -> None:
        self.closed = True


def request(inputs: list[Path], out: Path, **options: object) -> BatchRequest:
    """`upscaler batch INPUTS -o OUT` as the command line builds it, at x2 with bicubic."""
    given: dict[str, object] = {
        "inputs": tuple(inputs),
        "out": out,
        "size": OutputSize(factor=2),
        "backend": "bicubic",
        "weights": None,
        "device": "cpu",
        "tile": None,
        "overlap": None,
        "fmt": "same",
        "quality": 95,
        "report": None,
        "reference": None,
        "rgb_psnr": False,
        "jobs": 1,
        "threads": None,
        "skip_existing": True,
        "max_pixels": 100_000_000,
        "lock_timeout": 5.0,
        "dry_run": False,
        "quiet": False,
    }
    return BatchRequest(**{**given, **options})  # type: ignore[arg-type]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Three small photos (PNG, grey PNG in a subfolder, JPEG) and a text file."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    photo(21, 14, seed=1).save(root / "a.png")
    photo(9, 12, "L", seed=2).save(root / "sub" / "grey.png")
    photo(16, 16, seed=3).save(root / "c.jpg", quality=90)
    (root / "notes.txt").write_text("not an image")
    return root


def test_batch_in_process_writes_each_image_and_a_json_report(folder: Path, tmp_path: Path) -> None:
    out, report = tmp_path / "out", tmp_path / "r.json"
    progress = Collected()
    assert run_batch(request([folder], out, report=report), progress) == 0
    assert progress.total == 3 and progress.closed and len(progress.records) == 3
    assert progress.messages[-1].startswith("3 done, 0 skipped, 0 failed, 1 non-image")
    for name, size, mode in [
        ("a.png", (42, 28), "RGB"),
        ("sub/grey.png", (18, 24), "L"),
        ("c.jpg", (32, 32), "RGB"),
    ]:
        with Image.open(out / name) as im:
            assert (im.size, im.mode) == (size, mode), name
    with Image.open(folder / "a.png") as src, Image.open(out / "a.png") as dst:
        expected = upscaler.upscale_image(src, 2, "bicubic")  # the API: the same pixels
        assert np.array_equal(np.asarray(dst), np.asarray(expected))
    data = json.loads(report.read_text())
    assert {k: data["summary"][k] for k in ("done", "skipped", "failed", "not_images")} == {
        "done": 3,
        "skipped": 0,
        "failed": 0,
        "not_images": 1,
    }
    assert data["summary"]["backend"] == "bicubic" and data["summary"]["factor"] == 2
    images = {Path(r["src"]).name: r for r in data["images"]}
    assert images["a.png"]["output_size"] == [42, 28] and images["a.png"]["status"] == "done"
    assert images["c.jpg"]["jpeg_quality"] == 90  # read from the JPEG's tables
    assert all(r["consistency_psnr"] > 30 for r in data["images"])  # bicubic shrinks back well


def test_batch_in_process_skips_what_is_done_and_fails_a_bad_file_alone(
    folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run_batch(request([folder], out), Collected()) == 0
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but no more")
    again = Collected()
    assert run_batch(request([folder], out, report=tmp_path / "r.csv"), again) == 1
    statuses = sorted((Path(r.src).name, r.status) for r in again.records)
    assert statuses == [
        ("a.png", "skipped"),
        ("broken.png", "failed"),
        ("c.jpg", "skipped"),
        ("grey.png", "skipped"),
    ]
    (failed,) = [r for r in again.records if r.status == "failed"]
    assert failed.error == "not a recognised image file"  # the progress prints it, not the run
    assert not (out / "broken.png").exists()
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert len(rows) == 5 and sum(",skipped," in row for row in rows) == 3


def test_batch_dry_run_and_usage_errors_write_nothing(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    progress = Collected()
    assert run_batch(request([folder], out, dry_run=True), progress) == 0
    assert capsys.readouterr().out.count(" -> ") == 3 and not out.exists()
    assert progress.messages == ["3 images, 1 other files skipped"]
    inside = Collected()
    assert run_batch(request([folder], folder / "out"), inside) == 2
    assert "inside input folder" in inside.messages[0] and not (folder / "out").exists()
    unknown = Collected()
    assert run_batch(request([folder], out, backend="nope"), unknown) == 2
    assert "unknown backend 'nope'" in unknown.messages[0] and not out.exists()
    bad_report = Collected()
    assert run_batch(request([folder], out, report=tmp_path / "r.txt"), bad_report) == 2


def test_batch_with_a_reference_writes_an_html_report_with_thumbnails(tmp_path: Path) -> None:
    """Originals shrunk by 2, upscaled by 2 and scored against the originals (PSNR, SSIM)."""
    originals, inputs = tmp_path / "hr", tmp_path / "lr"
    originals.mkdir()
    inputs.mkdir()
    for i in range(2):
        hr = photo(40, 32, seed=i)
        hr.save(originals / f"p{i}.png")
        hr.resize((20, 16), Image.Resampling.BICUBIC).save(inputs / f"p{i}.png")
    report = tmp_path / "report.html"
    progress = Collected()
    ran = run_batch(
        request([inputs], tmp_path / "out", report=report, reference=originals), progress
    )
    assert ran == 0, progress.messages
    assert all(r.psnr is not None and 20 < r.psnr < 60 for r in progress.records)
    assert all(r.ssim is not None and 0.3 < r.ssim <= 1 for r in progress.records)
    page = report.read_text()
    assert page.lower().startswith("<!doctype html>") and "p0.png" in page and "p1.png" in page
    thumbs = sorted(p.name for p in (tmp_path / "report-thumbs").iterdir())
    assert len(thumbs) == 4 and all(name.endswith(".jpg") for name in thumbs)


def test_batch_onnx_at_any_scale_and_an_animation(tmp_path: Path) -> None:
    """The shipped ONNX weights through the batch: --scale 1.5 (x2, then a resize), a JPEG
    of quality 75 given the weights trained for JPEGs, and an animated GIF whose frames are
    upscaled one by one with their timing."""
    src = tmp_path / "in"
    src.mkdir()
    photo(24, 18, seed=4).save(src / "still.png")
    photo(20, 16, seed=5).save(src / "q75.jpg", quality=75)
    frames = [photo(12, 10, seed=s).convert("P") for s in range(3)]
    frames[0].save(
        src / "moving.gif", save_all=True, append_images=frames[1:], duration=[50, 80, 120], loop=0
    )
    progress = Collected()
    size = OutputSize(scale=1.5)
    assert run_batch(request([src], tmp_path / "out", size=size, backend="onnx"), progress) == 0
    with Image.open(tmp_path / "out" / "still.png") as im:
        assert im.size == (36, 27)
        with Image.open(src / "still.png") as original:
            expected = upscaler.upscale_image(original, backend="onnx", scale=1.5)
        assert np.array_equal(np.asarray(im), np.asarray(expected))
    with Image.open(tmp_path / "out" / "moving.gif") as gif:
        assert gif.size == (18, 15) and gif.n_frames == 3
        durations = []
        for i in range(3):
            gif.seek(i)
            durations.append(gif.info["duration"])
        assert durations == [50, 80, 120]
    records = {Path(r.src).name: r for r in progress.records}
    assert records["moving.gif"].frames == 3 and records["moving.gif"].status == "done"
    jpeg = "jpeg" if "jpeg" in shipped_models(2) else "clean"  # the first pass is x2
    assert (records["q75.jpg"].model, records["q75.jpg"].jpeg_quality) == (jpeg, 75)
    assert (records["still.png"].model, records["still.png"].jpeg_quality) == ("clean", None)
    with Image.open(src / "q75.jpg") as im:
        expected = upscaler.upscale_image(im, backend="onnx", scale=1.5)  # picks as the CLI
    with Image.open(tmp_path / "out" / "q75.jpg") as out:
        assert out.size == (30, 24)
        # written as a JPEG: compare what was encoded with the API's pixels, encoded alike
        buf = io.BytesIO()
        expected.save(buf, "JPEG", quality=95)
        assert np.array_equal(np.asarray(out), np.asarray(Image.open(buf)))


def test_second_run_on_a_locked_output_waits_then_gives_up(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with hold_lock(out / ".upscaler.lock", 1):
        with pytest.raises(LockTimeout):
            with hold_lock(out / ".upscaler.lock", 0.2):
                pass
        progress = Collected()
        assert run_batch(request([folder], out, lock_timeout=0.2), progress) == 3
        assert "another upscaler run is writing to" in progress.messages[0]
    assert run_batch(request([folder], out), Collected()) == 0  # released


def test_onnx_network_beats_bicubic_on_a_tiny_photo() -> None:
    """The shipped x2 ONNX model, on a photo shrunk by 2: closer to the original than
    bicubic is (the network does something, and the right thing)."""
    hr = np.asarray(photo(48, 40, seed=7).filter(ImageFilter.SMOOTH))
    lr = np.asarray(Image.fromarray(hr).resize((24, 20), Image.Resampling.BICUBIC))
    espcn = upscaler.upscale_array(lr, 2, "onnx")
    bicubic = upscaler.upscale_array(lr, 2, "bicubic")
    assert espcn.shape == bicubic.shape == hr.shape
    assert not np.array_equal(espcn, bicubic)
    assert psnr_y(espcn, hr, 2) > psnr_y(bicubic, hr, 2)


def test_openvino_gives_the_onnx_pixels() -> None:
    pixels = np.asarray(photo(20, 15, seed=8))
    onnx = upscaler.upscale_array(pixels, 3, "onnx", precision="fp32")
    openvino = upscaler.upscale_array(pixels, 3, "openvino", precision="fp32")
    assert openvino.shape == (45, 60, 3)
    assert np.abs(onnx.astype(int) - openvino.astype(int)).max() <= 1


def test_batch_on_a_dask_cluster_gives_the_local_outputs(folder: Path, tmp_path: Path) -> None:
    """`--engine dask --scheduler ADDRESS` against a cluster in this process (threads): the
    same files as the local engine, and a rerun that skips everything."""
    distributed = pytest.importorskip("distributed")
    assert run_batch(request([folder], tmp_path / "local"), Collected()) == 0
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        on_dask = request(
            [folder], tmp_path / "dask", engine="dask", scheduler=cluster.scheduler_address
        )
        progress = Collected()
        assert run_batch(on_dask, progress) == 0, progress.messages
        assert sorted(r.status for r in progress.records) == ["done"] * 3
        again = Collected()
        assert run_batch(on_dask, again) == 0
        assert [r.status for r in again.records] == ["skipped"] * 3
    for a in sorted((tmp_path / "local").rglob("[!.]*.*")):
        b = tmp_path / "dask" / a.relative_to(tmp_path / "local")
        assert a.read_bytes() == b.read_bytes(), a.name


def test_batch_on_worker_processes_gives_the_files_of_threads(folder: Path, tmp_path: Path) -> None:
    """`--jobs 2`: one image at a time in each of two spawned worker processes."""
    assert run_batch(request([folder], tmp_path / "threads"), Collected()) == 0
    progress = Collected()
    assert run_batch(request([folder], tmp_path / "processes", jobs=2), progress) == 0
    assert sorted(r.status for r in progress.records) == ["done"] * 3
    for a in sorted((tmp_path / "threads").rglob("[!.]*.*")):
        b = tmp_path / "processes" / a.relative_to(tmp_path / "threads")
        assert a.read_bytes() == b.read_bytes(), a.name


def test_batch_reads_and_writes_urls_through_fsspec(tmp_path: Path) -> None:
    """Inputs and outputs named by URL go through `_images.storage` (fsspec): here its
    in-memory file system, as a bucket would be used (listing, download, one upload each)."""
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    bucket = f"/fast-{tmp_path.name}"
    try:
        for i, size in enumerate([(10, 8), (7, 13)]):
            image = io.BytesIO()
            photo(*size, seed=i).save(image, "PNG")
            memory.pipe(f"{bucket}/in/p{i}.png", image.getvalue())
        memory.pipe(f"{bucket}/in/.hidden.png", b"never read")
        progress = Collected()
        urls = request(
            [f"memory://{bucket}/in"], f"memory://{bucket}/out", report=tmp_path / "r.json"
        )
        assert run_batch(urls, progress) == 0, progress.messages
        assert sorted(memory.ls(f"{bucket}/out", detail=False)) == [
            f"{bucket}/out/p0.png",
            f"{bucket}/out/p1.png",
        ]
        for i, size in enumerate([(20, 16), (14, 26)]):
            with Image.open(io.BytesIO(memory.cat(f"{bucket}/out/p{i}.png"))) as im:
                assert im.size == size
        report = json.loads((tmp_path / "r.json").read_text())
        assert [r["dst"] for r in report["images"]] == [
            f"memory://{bucket}/out/p0.png",
            f"memory://{bucket}/out/p1.png",
        ]
    finally:
        memory.rm(bucket, recursive=True)


def test_compare_scores_two_backends_and_writes_its_reports(tmp_path: Path) -> None:
    from upscaler._run.compare import compare

    truth = tmp_path / "hr"
    truth.mkdir()
    for i in range(2):
        photo(36, 30, seed=i).filter(ImageFilter.SMOOTH).save(truth / f"h{i}.png")
    result = compare(truth, 2, ["bicubic", "onnx"], tmp_path / "out")
    summary = result.summary()
    assert set(summary) == {"bicubic", "onnx"}
    assert summary["onnx"]["psnr"] > summary["bicubic"]["psnr"] > 20
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [image["name"] for image in data["images"]] == ["h0.png", "h1.png"]
    assert (tmp_path / "out" / "index.html").read_text().count("<figure") == 6  # 2 x 3 crops
    assert len(list((tmp_path / "out" / "crops").glob("*.png"))) == 6
    rows = (tmp_path / "out" / "report.csv").read_text().splitlines()
    assert rows[0] == "name,backend,psnr,ssim" and len(rows) == 1 + 4 + 2


def test_command_line_in_process(folder: Path, tmp_path: Path) -> None:
    """The click command in this process (the subprocess tests run the installed script)."""
    from click.testing import CliRunner

    from upscaler._cli import cli

    runner = CliRunner()
    ran = runner.invoke(
        cli, ["batch", str(folder), "-o", str(tmp_path / "out"), "--backend", "bicubic", "-v"]
    )
    assert ran.exit_code == 0, ran.output
    assert ran.output.count("done ") == 3 and "3 done, 0 skipped, 0 failed" in ran.output
    with Image.open(tmp_path / "out" / "a.png") as im:
        assert im.size == (63, 42)  # the command line's default factor, 3
    usage = runner.invoke(cli, ["batch", str(folder), "--factor", "5"])
    assert usage.exit_code == 2
    listed = runner.invoke(cli, ["backends"])
    assert listed.exit_code == 0 and "bicubic" in listed.output and "onnx" in listed.output


def test_python_dash_m_upscaler_is_the_command(folder: Path, tmp_path: Path) -> None:
    """`python -m upscaler` (upscaler/__main__.py) runs the same command as the script."""
    ran = subprocess.run(
        [sys.executable, "-m", "upscaler", "batch", str(folder), "-o", str(tmp_path / "out")]
        + ["--backend", "bicubic", "--factor", "4", "-q"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr
    with Image.open(tmp_path / "out" / "sub" / "grey.png") as im:
        assert im.size == (36, 48) and im.mode == "L"


def test_rows_decoded_and_encoded_in_strips_match_the_whole_image(tmp_path: Path) -> None:
    """What a streamed run does to a large image, on a small one: libvips decodes it in
    strips (`_images.vips`), and the PNG and JPEG band writers give the bytes of the files
    written whole (`_images.png`, `_images.jpegstrips`), bands of 5 rows or not."""
    from upscaler._images.codec import Metadata, encode, encode_rows
    from upscaler._images.vips import read_rows
    from upscaler._pixels.rows import collect, from_array

    image = np.asarray(photo(40, 27, seed=9))
    Image.fromarray(image).save(tmp_path / "a.png")
    assert np.array_equal(collect(read_rows(str(tmp_path / "a.png"))), image)
    Image.fromarray(image).save(tmp_path / "a.jpg", quality=90)
    with Image.open(tmp_path / "a.jpg") as im:
        assert np.array_equal(collect(read_rows(str(tmp_path / "a.jpg"))), np.asarray(im))
    for suffix in (".png", ".jpg"):
        whole, banded = tmp_path / f"whole{suffix}", tmp_path / f"banded{suffix}"
        encode(image, whole, Metadata(), quality=90)
        encode_rows(from_array(image, rows=5), banded, Metadata(), quality=90)
        assert banded.read_bytes() == whole.read_bytes(), suffix
    (tmp_path / "cut.png").write_bytes((tmp_path / "a.png").read_bytes()[:300])
    with pytest.raises(upscaler.ImageError, match="^(truncated image file|corrupt image data)"):
        collect(read_rows(str(tmp_path / "cut.png")))  # a reason, not a pyvips.Error


def test_an_image_too_large_to_share_the_budget_gets_every_core(tmp_path: Path) -> None:
    """Images in flight share the cores (one thread each); an image too large to run beside
    another gets every core of its process instead of leaving some idle; a --threads the user
    gave holds for every image."""
    from upscaler._run.budget import BUDGET, estimate_bytes
    from upscaler._run.engines import cores
    from upscaler._run.job import STREAM_ABOVE_PIXELS, settings_for

    n = cores()
    settings = request([], tmp_path, size=OutputSize(scale=6.0)).settings(images=100)
    assert settings.options.threads == max(1, n // min(n, 100))
    assert settings.alone_threads == (n if n > 1 else None)
    assert request([], tmp_path, threads=1).settings(images=100).alone_threads is None
    small, large = tmp_path / "small.png", tmp_path / "large.jpg"
    photo(64, 48).save(small)
    photo(600, 400).save(large, quality=90)  # --scale 6: about 69 MiB of the 128 MiB budget
    held = {p: estimate_bytes(p, settings.size, STREAM_ABOVE_PIXELS) for p in (small, large)}
    assert held[small] < BUDGET.total // 2 < held[large]
    assert settings_for(settings, held[small]) == settings
    alone = settings_for(settings, held[large]).options
    assert (alone.threads, alone.concurrent) == (
        (n, 1) if n > 1 else (1, settings.options.concurrent)
    )
