"""Metrics against published numbers and scikit-image; batch reports; `upscaler compare`."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from conftest import SAMPLES, SET5, photo, run_cli
from upscaler._images.codec import decode
from upscaler._pixels.metrics import consistency_psnr, ssim_y, y_channel
from upscaler._pixels.upscale import upscale_pixels
from upscaler._plugins.weights import manifest
from upscaler.backends.bicubic import BicubicBackend

PUBLISHED_BICUBIC_SSIM = {2: 0.9299, 3: 0.8682, 4: 0.8104}


def test_ssim_matches_scikit_image_on_random_images() -> None:
    rng = np.random.default_rng(1)
    for shape in ((40, 50, 3), (64, 33), (23, 23, 4)):
        a = rng.integers(0, 256, shape).astype(np.uint8)
        b = np.clip(a + rng.normal(0, 15, shape), 0, 255).astype(np.uint8)
        ya, yb = y_channel(a)[2:-2, 2:-2], y_channel(b)[2:-2, 2:-2]
        expected = structural_similarity(
            ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        assert ssim_y(a, b, crop=2) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_bicubic_set5_ssim_matches_published(shared: Path, factor: int) -> None:
    folder = SET5 / f"image_SRF_{factor}"
    scores = []
    for lr in sorted(folder.glob("*_LR.png")):
        hr = decode(Path(str(lr).replace("_LR", "_HR"))).pixels
        scores.append(ssim_y(upscale_pixels(decode(lr).pixels, BicubicBackend(factor)), hr, factor))
    assert np.mean(scores) == pytest.approx(PUBLISHED_BICUBIC_SSIM[factor], abs=0.005)


def test_consistency_psnr_exposes_broken_outputs() -> None:
    with Image.open(SAMPLES / "chelsea.png") as im:
        src = np.asarray(im.convert("RGB").resize((90, 60), Image.Resampling.BICUBIC))
    good = upscale_pixels(src, BicubicBackend(3))
    normal = consistency_psnr(good, src)
    assert normal > 35
    seam = good.copy()
    seam[:, 90:93] = 255
    broken = {
        "black frame": np.zeros_like(good),
        "RGB/BGR mix-up": good[..., ::-1],
        "upside down": good[::-1],
        "seam": seam,
    }
    for what, output in broken.items():
        assert consistency_psnr(output, src) < normal - 10, what


@pytest.fixture()
def set5_x3(tmp_path: Path) -> tuple[Path, Path]:
    """Set5 x3 HR images and their given LR images under matching names."""
    hr, lr = tmp_path / "hr", tmp_path / "lr"
    hr.mkdir()
    lr.mkdir()
    for path in sorted((SET5 / "image_SRF_3").glob("*_HR.png")):
        name = path.name.replace("_SRF_3_HR", "")
        shutil.copy(path, hr / name)
        shutil.copy(str(path).replace("_HR", "_LR"), lr / name)
    return hr, lr


@pytest.mark.parametrize(
    "suffix",
    [
        ".json",
        pytest.param(".csv", marks=pytest.mark.slow),
        pytest.param(".html", marks=pytest.mark.slow),
    ],
)
def test_batch_report_with_reference(
    shared: Path, set5_x3: tuple[Path, Path], tmp_path: Path, suffix: str
) -> None:
    hr, lr = set5_x3
    report = tmp_path / f"report{suffix}"
    result = run_cli(
        "batch",
        lr,
        "-o",
        tmp_path / "out",
        "--backend",
        "bicubic",
        "--reference",
        hr,
        "--report",
        report,
    )
    assert result.returncode == 0, result.stderr
    assert "mean PSNR 30.4" in result.stderr and "mean consistency PSNR" in result.stderr
    text = report.read_text()
    if suffix == ".json":
        data = json.loads(text)
        assert data["summary"]["done"] == 5 and data["summary"]["mean_psnr"] == pytest.approx(
            30.39, abs=0.05
        )
        record = data["images"][0]
        assert (
            record["backend"] == "bicubic" and record["factor"] == 3 and record["status"] == "done"
        )
        assert record["output_size"] == [record["input_size"][0] * 3, record["input_size"][1] * 3]
        assert 35 < record["consistency_psnr"] < 60 and record["reference"].endswith("img_001.png")
    elif suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        assert len(rows) == 5 and {r["status"] for r in rows} == {"done"}
        assert np.mean([float(r["ssim"]) for r in rows]) == pytest.approx(0.8682, abs=0.005)
    else:
        assert text.count('<tr class="done">') == 5 and "mean PSNR" in text


def test_missing_reference_is_noted_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "ref").mkdir()
    photo(20, 20).save(tmp_path / "in" / "a.png")
    report = tmp_path / "r.json"
    result = run_cli(
        "batch",
        tmp_path / "in",
        "-o",
        tmp_path / "out",
        "--backend",
        "bicubic",
        "--reference",
        tmp_path / "ref",
        "--report",
        report,
    )
    assert result.returncode == 0
    record = json.loads(report.read_text())["images"][0]
    assert record["status"] == "done" and "no reference" in record["error"]


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("CI"):
        pytest.fail("CI must install Debian's chromium (see .ci/run)")
    return found


def _chromium_flags(tmp_path: Path) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]


def _dump_dom(browser: str, flags: list[str], page: Path) -> str:
    """The DOM of `page` after its load event (the page's script counts the loaded images)."""
    return subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


@pytest.mark.slow
def test_compare_set5_report_and_page(
    shared: Path, set5_x3: tuple[Path, Path], tmp_path: Path
) -> None:
    hr, lr = set5_x3
    out = tmp_path / "cmp"
    result = run_cli(
        "compare",
        hr,
        "--factor",
        3,
        "--backend",
        "bicubic",
        "--backend",
        "onnx",
        "-o",
        out,
        "--lr-dir",
        lr,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "report.json").read_text())
    assert data["factor"] == 3 and set(data["summary"]) == {"bicubic", "onnx"}
    assert data["summary"]["bicubic"]["psnr"] == pytest.approx(30.39, abs=0.05)
    assert data["summary"]["bicubic"]["ssim"] == pytest.approx(0.8682, abs=0.005)
    listed = next(m for m in manifest()["models"] if m["factor"] == 3)["set5_psnr_y"]
    assert data["summary"]["onnx"]["psnr"] == pytest.approx(listed, abs=0.005)
    assert [i["name"] for i in data["images"]] == [f"img_00{i}.png" for i in range(1, 6)]
    assert all({"psnr", "ssim"} <= set(i["onnx"]) for i in data["images"])
    rows = list(csv.DictReader((out / "report.csv").read_text().splitlines()))
    assert len(rows) == 12 and rows[-1]["name"] == "mean"
    page = (out / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing from the network
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    flags = _chromium_flags(tmp_path)
    dom = _dump_dom(browser, flags, out / "index.html")
    assert 'data-images="15"' in dom and 'data-loaded="15"' in dom  # every crop loaded
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            browser,
            *flags,
            "--window-size=1200,1400",
            f"--screenshot={shot}",
            (out / "index.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 20_000


def test_compare_keeps_the_crops_of_images_that_share_a_stem(tmp_path: Path) -> None:
    hr = tmp_path / "hr"
    (hr / "d").mkdir(parents=True)
    names = ["a.png", "a.jpg", "d/e.png", "d_e.png"]
    for seed, name in enumerate(names):
        photo(64, 64, seed=seed).save(hr / name)
    out = tmp_path / "cmp"
    result = run_cli("compare", hr, "--factor", 2, "--backend", "bicubic", "-o", out)
    assert result.returncode == 0, result.stderr
    images = json.loads((out / "report.json").read_text())["images"]
    truths = {i["name"]: out / i["crops"]["ground truth"] for i in images}
    assert sorted(truths) == sorted(names) and len(set(truths.values())) == len(names)
    crops = {name: decode(path).pixels for name, path in truths.items()}
    for name in names:  # each crop is from its own image (the photos differ by seed)
        others = [crops[n] for n in names if n != name]
        assert all(not np.array_equal(crops[name], other) for other in others), name


#: File names that are not URLs as they stand: a fragment, a percent escape, a query, spaces,
#: non-ASCII and an HTML special character.
AWKWARD_NAMES = ["a#1.png", "b%41.png", "c?x.png", "d e.png", "a?b%20c#1.png", "é&ü.png"]


@pytest.mark.slow
def test_compare_page_loads_crops_of_awkward_file_names(tmp_path: Path) -> None:
    hr = tmp_path / "hr"
    hr.mkdir()
    for seed, name in enumerate(AWKWARD_NAMES):
        photo(64, 64, seed=seed).save(hr / name)
    out = tmp_path / "cmp"
    result = run_cli("compare", hr, "--factor", 2, "--backend", "bicubic", "-o", out)
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "report.json").read_text())
    assert sorted(i["name"] for i in data["images"]) == sorted(AWKWARD_NAMES)
    for image in data["images"]:
        assert all((out / path).is_file() for path in image["crops"].values()), image["crops"]
    page = (out / "index.html").read_text()
    assert "<h3>a#1.png</h3>" in page and "<h3>é&amp;ü.png</h3>" in page  # shown as named
    assert 'src="crops/a%231_ground_truth.png"' in page
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    dom = _dump_dom(browser, _chromium_flags(tmp_path), out / "index.html")
    expected = 2 * len(AWKWARD_NAMES)  # ground truth and bicubic per image
    srcs = re.findall(r'<img src="([^"]*)"', dom)
    assert f'data-images="{expected}"' in dom and len(srcs) == expected, dom
    loaded = re.search(r'data-loaded="(\d+)"', dom)
    assert loaded is not None, dom
    assert int(loaded.group(1)) == expected, f"{loaded.group(1)} of {expected} loaded: {srcs}"


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("crops/a#1_onnx.png", "crops/a%231_onnx.png"),
        ("crops/b%41.png", "crops/b%2541.png"),
        ("crops/c?x.png", "crops/c%3Fx.png"),
        ("crops/d e.png", "crops/d%20e.png"),
        ("crops/é&ü.png", "crops/%C3%A9%26%C3%BC.png"),
        ("c:x.png", "c%3Ax.png"),  # not read as a URL scheme
        ("a/b/c_d-e.f~g.png", "a/b/c_d-e.f~g.png"),  # separators and safe characters kept
    ],
)
def test_url_quotes_each_path_segment(path: str, url: str) -> None:
    from urllib.parse import unquote

    from upscaler._run.report_html import url_path

    assert url_path(path) == url
    assert unquote(url_path(path)) == path
    assert unquote(url_path("a?b%20c#1.png")) == "a?b%20c#1.png"


def test_compare_makes_low_resolution_inputs_itself(tmp_path: Path) -> None:
    hr = tmp_path / "hr"
    hr.mkdir()
    photo(61, 47).save(hr / "a.png")  # not a multiple of 2: cropped
    out = tmp_path / "cmp"
    result = run_cli("compare", hr, "--factor", 2, "--backend", "bicubic", "-o", out, "--rgb-psnr")
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "report.json").read_text())
    scores = data["images"][0]["bicubic"]
    assert scores["psnr"] > 20 and scores["psnr_rgb"] > 20 and scores["psnr_rgb"] != scores["psnr"]
    assert data["summary"]["bicubic"]["psnr_rgb"] == scores["psnr_rgb"]


@pytest.mark.parametrize(("jobs", "sig"), [(1, "SIGINT"), (2, "SIGTERM")])
@pytest.mark.slow
def test_interrupted_batch_still_writes_its_report(tmp_path: Path, jobs: int, sig: str) -> None:
    import signal
    import time

    from conftest import upscaler_command

    src = tmp_path / "in"
    src.mkdir()
    for i in range(40):
        photo(240, 180, seed=i).save(src / f"p{i:02}.png")
    out, report = tmp_path / "out", tmp_path / "r.json"
    args = ["batch", str(src), "-o", str(out), "--report", str(report), "--jobs", str(jobs)]
    proc = subprocess.Popen([*upscaler_command(), *args], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(list(out.glob("*.png"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(getattr(signal, sig))
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + getattr(signal, sig)
    data = json.loads(report.read_text())
    assert 3 <= data["summary"]["done"] < 40
    names = sorted(p.name for p in out.iterdir())
    assert (
        names[0] == ".upscaler.lock" and len(names) == data["summary"]["done"] + 1
    )  # no partial files
    assert "done" in stderr.splitlines()[-1]


@pytest.mark.parametrize("factor", [2, 3, 4])
@pytest.mark.parametrize(("height", "width"), [(1, 1), (2, 3), (33, 7), (107, 160)])
def test_bicubic_shrink_equals_pillows_float_resize(factor: int, height: int, width: int) -> None:
    from PIL import Image

    from upscaler._pixels.metrics import BicubicShrink

    plane = np.random.default_rng(factor).random((height * factor, width * factor)) * 255
    plane = plane.astype(np.float32)
    pillow = Image.fromarray(plane, "F").resize((width, height), Image.Resampling.BICUBIC)
    shrink = BicubicShrink(factor, *plane.shape)
    ours = np.vstack(  # in two strips, as for large images
        [
            shrink.rows(
                plane[max(0, top * factor - shrink.reach) :],
                max(0, top * factor - shrink.reach),
                top,
                bottom,
            )
            for top, bottom in ((0, height // 2), (height // 2, height))
            if bottom > top
        ]
    )
    assert np.abs(ours - np.asarray(pillow)).max() < 1e-3


@pytest.mark.slow
def test_compare_that_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    empty, broken = tmp_path / "empty", tmp_path / "broken"
    empty.mkdir()
    broken.mkdir()
    photo(32, 32).save(broken / "a.png")
    (broken / "b.png").write_bytes(b"not a png")
    for hr, reason in ((empty, "no images in"), (broken, "b.png")):
        out = tmp_path / f"cmp-{hr.name}"
        result = run_cli("compare", hr, "--factor", 2, "--backend", "bicubic", "-o", out)
        assert result.returncode == 1 and reason in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and not out.exists()


@pytest.mark.slow
def test_reports_survive_reruns_name_their_run_and_follow_the_umask(tmp_path: Path) -> None:
    """A nightly `--report 'reports/{started:%Y-%m-%d}-{host}.json'` keeps each night's report;
    every report says when, where and with what it ran; its mode follows the umask (0644)."""
    import os
    import socket
    from datetime import date

    umask = os.umask(0)
    os.umask(umask)
    mode = 0o666 & ~umask  # as the images get (0o644 under the usual umask 022)
    src = tmp_path / "in"
    src.mkdir()
    photo(24, 16).save(src / "a.png")
    pattern = tmp_path / "reports" / "{started:%Y-%m-%d}-{host}.json"
    first = run_cli("batch", src, "--backend", "bicubic", "--report", pattern)
    assert first.returncode == 0, first.stderr
    path = tmp_path / "reports" / f"{date.today():%Y-%m-%d}-{socket.gethostname()}.json"
    summary = json.loads(path.read_text())["summary"]
    assert summary["done"] == 1 and summary["factor"] == 3 and summary["backend"] == "bicubic"
    assert summary["host"] == socket.gethostname() and summary["version"]
    assert summary["started"] <= summary["ended"] and summary["precision"] == "fp32"
    assert (
        path.stat().st_mode & 0o777
        == mode
        == (src.parent / "in-x3" / "a.png").stat().st_mode & 0o777
    )
    for suffix in (".csv", ".html"):
        other = run_cli("batch", src, "--backend", "bicubic", "--report", tmp_path / f"r{suffix}")
        assert other.returncode == 0 and (tmp_path / f"r{suffix}").stat().st_mode & 0o777 == mode
    rows = list(csv.DictReader((tmp_path / "r.csv").read_text().splitlines()))
    assert rows[0]["status"] == "skipped" and rows[0]["run_host"] == socket.gethostname()
    assert f"host {socket.gethostname()}" in (tmp_path / "r.html").read_text()
    bad = run_cli("batch", src, "--report", tmp_path / "{nope}.json")
    assert (
        bad.returncode == 2
        and "bad placeholder" in bad.stderr
        and not list(tmp_path.glob("*.json"))
    )


@pytest.mark.slow
def test_compare_takes_the_benchmark_layout_of_hr_and_lr_pairs(
    shared: Path, tmp_path: Path
) -> None:
    """Pointed at Set5 itself (image_SRF_N/*_HR.png beside *_LR.png), compare pairs the files
    of the factor asked for, recursively, and scores what the batch scores."""
    out = tmp_path / "cmp"
    result = run_cli("compare", SET5, "--factor", 3, "--backend", "onnx", "-o", out)
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "report.json").read_text())
    names = [i["name"] for i in data["images"]]
    assert names == [f"image_SRF_3/img_00{i}_SRF_3_HR.png" for i in range(1, 6)]
    listed = next(m for m in manifest()["models"] if m["factor"] == 3)["set5_psnr_y"]
    assert data["summary"]["onnx"]["psnr"] == pytest.approx(listed, abs=0.005)
    none = run_cli(
        "compare",
        SET5 / "image_SRF_2",
        "--factor",
        3,
        "--backend",
        "bicubic",
        "-o",
        tmp_path / "none",
    )
    assert none.returncode == 1 and "no *_HR/*_LR image pairs at x3" in none.stderr
    assert not (tmp_path / "none").exists()


BLACKOUT = """
import numpy as np

class Backend:
    halo = 0
    channels = "color"
    default_tile = 64
    factor = 2

    def upscale(self, tiles):
        if tiles.shape[2] == 13:  # any image 13 pixels wide comes out black
            return np.zeros((tiles.shape[0], tiles.shape[1] * 2, 26, tiles.shape[3]), np.float32)
        return tiles.repeat(2, axis=1).repeat(2, axis=2)

class Plugin:
    factors = (2,)

    def unavailable_reason(self):
        return None

    def create(self, factor, options):
        return Backend()

plugin = Plugin()
"""


@pytest.mark.slow
def test_suspect_outputs_are_named_in_the_summary_and_the_report(tmp_path: Path) -> None:
    """A black output among healthy ones is flagged (18 dB under the run's median, for a
    backend with no measured floor); a shipped model's healthy outputs are not."""
    from conftest import install_plugin

    env = install_plugin(tmp_path / "site", "blackout_backend", BLACKOUT, {"blackout": "plugin"})
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        photo(24, 16, seed=i).save(src / f"ok{i}.png")
    photo(13, 9).save(src / "bad.png")
    report = tmp_path / "r.json"
    args = ("batch", src, "--factor", 2, "--backend", "blackout", "--report", report)
    result = run_cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "1 suspect (consistency PSNR under " in line and line.endswith(str(src / "bad.png"))
    data = json.loads(report.read_text())
    assert data["summary"]["suspect"] == [str(src / "bad.png")]
    assert {Path(r["src"]).name for r in data["images"] if r["suspect"]} == {"bad.png"}
    healthy = run_cli("batch", src, "--factor", 2, "--backend", "onnx", "-o", tmp_path / "o")
    assert healthy.returncode == 0 and "suspect" not in healthy.stderr, healthy.stderr


@pytest.mark.slow
def test_html_report_is_a_page_to_read_at_a_glance(tmp_path: Path) -> None:
    """Summary first, then what needs a look (the failure with its reason, the suspect image
    with its input beside it), the histogram with the floor, the table with failures first;
    thumbnails are files beside the report; every link and picture resolves; it renders."""
    from urllib.parse import unquote

    from conftest import install_plugin

    env = install_plugin(tmp_path / "site", "blackout_backend", BLACKOUT, {"blackout": "plugin"})
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        photo(24, 16, seed=i).save(src / f"ok {i}#.png")  # names that need quoting
    photo(13, 9).save(src / "bad.png")
    (src / "broken.png").write_bytes(b"not a png")
    report = tmp_path / "reports" / "night.html"
    args = ("batch", src, "--factor", 2, "--backend", "blackout", "--report", report)
    assert run_cli(*args, env=env).returncode == 1
    page = report.read_text()
    order = [page.index(s) for s in ('class="summary"', "Needs a look", "<svg", "<table")]
    assert order == sorted(order)
    look = page[page.index("Needs a look") : page.index("<svg")]
    assert "broken.png</a>: not a recognised image file" in look and "bad.png" in look
    assert look.count("<img") == 2  # the suspect's input beside its output
    assert "suspect under" in page and "<line" in page  # the floor on the histogram
    table = page[page.index("<tbody>") :]
    assert table.index("broken.png") < table.index("bad.png") < table.index("ok 0#.png")
    assert "psnr</th>" not in table and "reference" not in page  # no empty columns
    targets = re.findall(r'(?:href|src)="([^"]+)"', page)
    assert len(targets) >= 5 + 6 + 7  # thumbnails, outputs, inputs
    for target in targets:
        assert (report.parent / unquote(target)).exists(), target
    assert len(list((tmp_path / "reports" / "night-thumbs").glob("*.jpg"))) == 12
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    dom = _dump_dom(browser, _chromium_flags(tmp_path), report)
    loaded = re.search(r'data-images="(\d+)" data-loaded="(\d+)"', dom)
    assert loaded is not None and loaded.group(1) == loaded.group(2) == "8", dom[-500:]
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            browser,
            *_chromium_flags(tmp_path),
            "--window-size=1200,1400",
            f"--screenshot={shot}",
            report.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 20_000


def test_credentials_are_masked_wherever_they_appear(monkeypatch: pytest.MonkeyPatch) -> None:
    from upscaler._images.redact import redact

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEJr//token")
    presigned = (
        "https://b.s3.amazonaws.com/a.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7%2F20261203&X-Amz-Signature=fe5f80f77d5fa3beca038a24"
    )
    texts = {
        "ftp://backup:hunter2pass@nas/photos/a.jpg: timed out": "ftp://***@nas/photos/a.jpg",
        presigned: "a.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***&X-Amz-Signature=***",
        "SignatureDoesNotMatch: key wJalrXUtnFEMI/K7MDENG, token FwoGZXIvYXdzEJr//token": "key ***, token ***",
    }
    for text, expected in texts.items():
        masked = redact(text)
        assert expected in masked
        for secret in ("hunter2pass", "AKIAIOSFODNN7", "fe5f80f77d", "wJalrXUtnFEMI", "FwoGZXI"):
            assert secret not in masked
    assert redact("s3://photos/2026/a.jpg: no such file") == "s3://photos/2026/a.jpg: no such file"
