"""Any output size: --scale, --width, --height, --fit (the installed command, real photos)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT, SET5, photo, run_cli, shrunk_bsds
from upscaler._pixels.size import OutputSize, network_passes


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """Two BSDS500 photos shrunk by 3 (160x107 landscape and a portrait), with a DPI."""
    root = tmp_path / "in"
    root.mkdir()
    for i, (name, small) in enumerate(shrunk_bsds(2)):
        im = small if i == 0 else small.transpose(Image.Transpose.ROTATE_90)
        im.save(root / f"{name}.png", dpi=(72, 72))
    return root


def _sizes(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: Image.open(p).size for p in sorted(folder.glob("*.png"))}


def test_scale_gives_the_exact_size_and_reports_it(photos: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    ran = run_cli("batch", photos, "--scale", 2.5, "--report", report, "-q")
    assert ran.returncode == 0, ran.stderr
    out = photos.with_name("in-x2.5")  # the default output folder names the scale
    inputs = _sizes(photos)
    expected = {n: (int(w * 2.5 + 0.5), int(h * 2.5 + 0.5)) for n, (w, h) in inputs.items()}
    assert _sizes(out) == expected
    name, (w, h) = next(iter(inputs.items()))
    dpi = Image.open(out / name).info["dpi"]  # the true ratio of each side: same print size
    assert dpi == pytest.approx((72 * expected[name][0] / w, 72 * expected[name][1] / h), abs=0.05)
    data = json.loads(report.read_text())
    assert data["summary"]["size"] == "x2.5" and data["summary"]["factor"] is None
    assert [r["scale"] for r in data["images"]] == pytest.approx([2.5, 2.5], abs=0.01)
    assert all(r["consistency_psnr"] > 35 for r in data["images"])


@pytest.mark.slow
def test_width_height_and_fit_keep_the_aspect_ratio(photos: Path, tmp_path: Path) -> None:
    inputs = _sizes(photos)
    for option, value, name in (
        ("--width", 600, "w600"),
        ("--height", 500, "h500"),
        ("--fit", "600x600", "fit600x600"),
    ):
        ran = run_cli("batch", photos, option, value, "--backend", "bicubic", "-q")
        assert ran.returncode == 0, ran.stderr
        for file, (w, h) in _sizes(photos.with_name(f"in-{name}")).items():
            iw, ih = inputs[file]
            if option == "--width":
                assert (w, h) == (600, int(ih * 600 / iw + 0.5))
            elif option == "--height":
                assert (w, h) == (int(iw * 500 / ih + 0.5), 500)
            else:  # the longer side is 600
                assert max(w, h) == 600 and abs(w / h - iw / ih) < 0.01


@pytest.mark.slow
def test_width_1000_gives_exactly_1000(photos: Path, tmp_path: Path) -> None:
    landscape = sorted(photos.glob("*.png"))[0]  # 160x107
    ran = run_cli("batch", landscape, "-o", tmp_path / "o", "--width", 1000, "-q")
    assert ran.returncode == 0, ran.stderr
    assert Image.open(tmp_path / "o" / landscape.name).size == (1000, 669)  # 668.75 rounds up


@pytest.mark.slow
def test_images_already_larger_keep_their_size_unless_shrink(photos: Path, tmp_path: Path) -> None:
    kept = run_cli("batch", photos, "-o", tmp_path / "kept", "--width", 100, "--backend", "bicubic")
    assert kept.returncode == 0, kept.stderr
    assert _sizes(tmp_path / "kept") == _sizes(photos)
    shrunk = run_cli("batch", photos, "-o", tmp_path / "shrunk", "--width", 100, "--shrink", "-q")
    assert shrunk.returncode == 0, shrunk.stderr
    assert {w for w, _ in _sizes(tmp_path / "shrunk").values()} == {100}


@pytest.mark.slow
def test_scale_of_a_shipped_factor_is_that_factor(photos: Path, tmp_path: Path) -> None:
    for args in (("--scale", 3), ("--factor", 3)):
        ran = run_cli("batch", photos, "-o", tmp_path / args[0], *args, "-q")
        assert ran.returncode == 0, ran.stderr
    for p in sorted((tmp_path / "--factor").glob("*.png")):
        assert (tmp_path / "--scale" / p.name).read_bytes() == p.read_bytes()


def test_width_means_the_width_the_photo_is_shown_with(tmp_path: Path) -> None:
    """A portrait photo stored landscape with EXIF orientation 6 (as cameras write it)."""
    src = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    photo(120, 80).save(src, exif=exif, quality=95)
    ran = run_cli("batch", src, "-o", tmp_path / "o", "--width", 200, "--backend", "bicubic")
    assert ran.returncode == 0, ran.stderr
    with Image.open(tmp_path / "o" / "turned.jpg") as out:
        assert out.size == (300, 200) and out.getexif()[0x0112] == 6  # shown 200 wide


@pytest.mark.slow
def test_max_pixels_applies_to_the_final_size(tmp_path: Path) -> None:
    photo(100, 100).save(tmp_path / "a.png")
    args = ("batch", tmp_path / "a.png", "--scale", 2.5, "--backend", "bicubic")
    fits = run_cli(*args, "-o", tmp_path / "fits", "--max-pixels", 250 * 250)
    assert fits.returncode == 0, fits.stderr  # the x3 pass in between is larger: not counted
    over = run_cli(*args, "-o", tmp_path / "over", "--max-pixels", 250 * 250 - 1)
    assert over.returncode == 1
    assert "the 250x250 output would exceed --max-pixels 62,499" in over.stderr


def test_more_than_x8_is_a_reason_for_that_image(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    photo(100, 80).save(tmp_path / "in" / "small.png")
    photo(400, 300).save(tmp_path / "in" / "large.png")
    args = ("-o", tmp_path / "o", "--width", 1200, "--backend", "bicubic")
    ran = run_cli("batch", tmp_path / "in", *args)
    assert ran.returncode == 1
    assert "small.png: 100x80 pixels to 1200x960: needs x12, more than the x8 served" in ran.stderr
    assert Image.open(tmp_path / "o" / "large.png").size == (1200, 900)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--factor", "2", "--scale", "2.5"), "--factor and --scale do not go together"),
        pytest.param(
            ("--width", "10", "--fit", "5x5"),
            "--width and --fit do not go together",
            marks=pytest.mark.slow,
        ),
        (
            (
                "--fit",
                "10by10",
            ),
            "is not WxH",
        ),
        (("--scale", "9"), "9.0 is not in the range 1<=x<=8"),
        pytest.param(
            ("--shrink",), "--shrink is for --width, --height or --fit", marks=pytest.mark.slow
        ),
        (("--scale", "1.5", "--weights", "README.md"), "--weights is for --factor"),
    ],
)
def test_sizes_that_do_not_go_together(
    options: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    photo(8, 8).save(tmp_path / "a.png")
    ran = run_cli("batch", tmp_path / "a.png", "-o", tmp_path / "o", *options)
    assert ran.returncode == 2 and message in ran.stderr, ran.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("scale", "models"),
    [
        ("1.5", [2]),
        pytest.param("2.5", [3], marks=pytest.mark.slow),
        pytest.param("5", [2, 3], marks=pytest.mark.slow),
    ],
)
def test_a_scale_run_loads_only_the_models_it_uses(
    tmp_path: Path, scale: str, models: list[int]
) -> None:
    """The up-front load (which checks the backend and learns its precision) takes the factor
    the run will use, not --factor's default: no model is loaded for nothing."""
    photo(40, 30).save(tmp_path / "a.png")
    code = (
        "import sys\n"
        "from upscaler._cli import cli\n"
        "from upscaler._plugins.registry import _load_backend\n"
        "try:\n"
        "    cli(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    print(exc.code, _load_backend.cache_info().currsize)\n"
    )
    args = ["batch", tmp_path / "a.png", "-o", tmp_path / "out", "--scale", scale, "-q"]
    ran = subprocess.run(
        [sys.executable, "-c", code, *map(str, args), "--backend", "onnx"],
        capture_output=True,
        text=True,
    )
    assert ran.stdout.split() == ["0", str(len(models))], ran.stderr
    assert OutputSize(scale=float(scale)).first_factor() == models[0]


def test_passes_and_sizes() -> None:
    assert network_passes((10, 10), (15, 15)) == (2,)
    assert network_passes((10, 10), (40, 40)) == (4,)
    assert network_passes((10, 10), (41, 41)) == (2, 3)
    assert network_passes((10, 10), (80, 80)) == (2, 4)
    assert network_passes((10, 10), (10, 10)) == () and network_passes((10, 10), (5, 5)) == ()
    assert OutputSize(factor=4).first_factor() == 4 and OutputSize(scale=7).first_factor() == 2
    assert OutputSize(scale=1).first_factor() is None and OutputSize(width=9).first_factor() is None
    assert OutputSize(fit=(3840, 2160)).size_for(1000, 1000) == (2160, 2160)
    assert OutputSize(fit=(3840, 2160)).size_for(4000, 1000) == (4000, 1000)
    assert OutputSize(fit=(3840, 2160), shrink=True).size_for(4000, 1000) == (3840, 960)
    assert OutputSize(scale=2.5).size_for(101, 3) == (253, 8)  # 252.5 and 7.5 round up


@pytest.mark.slow
def test_set5_at_any_scale_keeps_the_floor_over_bicubic() -> None:
    """The reference's table (benchmarks/any_scale_quality.py) at x2.5 and x6: the gains over
    bicubic of the first recipe (x3 / x3 then x2, Pillow bicubic down) are the floor."""
    if not SET5.is_dir():
        pytest.fail(f"shared data not found at {SET5}")
    script = ROOT / "benchmarks" / "any_scale_quality.py"
    ran = run_python(script, "--scales", "2.5", "6")
    gains = [float(line.split("|")[5]) for line in ran.splitlines()[2:]]
    assert gains[0] >= 2.77 and gains[1] >= 1.60, ran


def run_python(*args: object) -> str:
    import subprocess

    done = subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, check=True
    )
    return done.stdout
