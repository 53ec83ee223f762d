"""The Python API gives what the CLI writes, through the same engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import upscaler
from conftest import photo, run_cli


def test_upscale_image_matches_the_cli(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    photo(45, 31, "RGBA").save(src / "a.png")
    assert run_cli("batch", src, "-o", tmp_path / "out", "--factor", 2, "-q").returncode == 0
    with Image.open(src / "a.png") as im:
        api = upscaler.upscale_image(im, factor=2)  # the same default backend as the CLI
    assert isinstance(api, Image.Image) and api.mode == "RGBA" and api.size == (90, 62)
    with Image.open(tmp_path / "out" / "a.png") as cli:
        assert np.array_equal(np.asarray(api), np.asarray(cli))


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
@pytest.mark.slow
def test_images_processed_at_the_same_time_match_the_api_one_by_one(
    tmp_path: Path, backend: str
) -> None:
    """`upscaler batch` runs one image per core on threads; each output is still exact."""
    src = tmp_path / "in"
    src.mkdir()
    sizes = [(300, 200), (31, 45), (257, 129), (64, 64), (120, 90), (7, 300)]
    for i, (w, h) in enumerate(sizes):
        photo(w, h, seed=i).save(src / f"p{i}.png")
    report = tmp_path / "r.json"
    ran = run_cli("batch", src, "-o", tmp_path / "out", "--report", report, "--backend", backend)
    assert ran.returncode == 0, ran.stderr
    for i in range(len(sizes)):
        with Image.open(src / f"p{i}.png") as im:
            api = upscaler.upscale_image(im, factor=3, backend=backend)
        with Image.open(tmp_path / "out" / f"p{i}.png") as cli:
            assert np.array_equal(np.asarray(api), np.asarray(cli)), f"p{i}.png"
    order = [Path(r["src"]).name for r in json.loads(report.read_text())["images"]]
    assert order == [f"p{i}.png" for i in range(len(sizes))]  # input order in the report


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "I;16"])
def test_upscale_image_modes(mode: str) -> None:
    im = (
        photo(20, 10).convert(mode)
        if mode != "I;16"
        else Image.fromarray(np.asarray(photo(20, 10).convert("L")).astype(np.uint16) * 257)
    )
    out = upscaler.upscale_image(im, factor=3, backend="bicubic")
    assert out.size == (60, 30)
    assert out.mode == {"L": "L", "I;16": "I;16"}.get(mode, "RGB")


def test_upscale_array_dtypes() -> None:
    rgb = np.asarray(photo(16, 12))
    for arr in (rgb, rgb.astype(np.uint16) * 257, rgb.astype(np.float32) / 255):
        out = upscaler.upscale_array(arr, factor=2, backend="onnx")
        assert out.shape == (24, 32, 3) and out.dtype == arr.dtype
    with pytest.raises(TypeError, match="uint8, uint16 or float32"):
        upscaler.upscale_array(rgb.astype(np.int64), factor=2, backend="bicubic")
    with pytest.raises(upscaler.BackendError, match="unknown backend"):
        upscaler.upscale_array(rgb, backend="nope")


@pytest.mark.parametrize(
    ("option", "api", "cli"),
    [
        ("scale", {"scale": 2.5}, ["--scale", "2.5"]),
        ("width", {"width": 170}, ["--width", "170"]),
        ("fit", {"fit": (30, 30), "shrink": True}, ["--fit", "30x30", "--shrink"]),
    ],
)
@pytest.mark.slow
def test_the_api_takes_the_sizes_of_the_cli(
    tmp_path: Path, option: str, api: dict[str, object], cli: list[str]
) -> None:
    """scale=, width=, fit= with shrink=: the pixels `upscaler batch` writes for the same
    option; a factor with a size, or a scale beyond what is served, is a ValueError."""
    src = photo(64, 48, seed=5)
    src.save(tmp_path / "p.png")
    ran = run_cli("batch", tmp_path / "p.png", "-o", tmp_path / "out", *cli, "--backend", "onnx")
    assert ran.returncode == 0, ran.stderr
    with Image.open(tmp_path / "out" / "p.png") as im:
        expected = np.asarray(im)
    got = upscaler.upscale_image(src, backend="onnx", **api)  # type: ignore[arg-type]
    assert np.array_equal(np.asarray(got), expected), option
    with pytest.raises(ValueError):
        upscaler.upscale_array(np.asarray(src), 2, scale=2.0)
    with pytest.raises(ValueError):
        upscaler.upscale_array(np.asarray(src), scale=9.0)


def test_a_jpeg_image_gets_the_weights_the_command_would_pick(tmp_path: Path) -> None:
    """upscale_image reads a JPEG's quantisation tables as `upscaler batch` does: q90 runs
    jpeg-high, q75 jpeg, a PNG the clean weights; arrays take `jpeg_quality`; `model` and
    `weights` override it."""
    im = photo(48, 32)
    paths = {"q90": tmp_path / "q90.jpg", "q75": tmp_path / "q75.jpg", "png": tmp_path / "a.png"}
    im.save(paths["q90"], quality=90)
    im.save(paths["q75"], quality=75)
    im.save(paths["png"])

    def up(name: str, **options: object) -> np.ndarray:
        with Image.open(paths[name]) as opened:
            return np.asarray(upscaler.upscale_image(opened, backend="onnx", **options))

    for name, model in (("q90", "jpeg-high"), ("q75", "jpeg"), ("png", "clean")):
        assert np.array_equal(up(name), up(name, model=model)), name
    assert not np.array_equal(up("q90"), up("q90", model="clean"))
    assert np.array_equal(up("q90", jpeg_quality=None), up("q90", model="clean"))
    with Image.open(paths["q75"]) as opened:
        pixels = np.asarray(opened.convert("RGB"))
    by_quality = upscaler.upscale_array(pixels, backend="onnx", jpeg_quality=75)
    assert np.array_equal(by_quality, upscaler.upscale_array(pixels, backend="onnx", model="jpeg"))
    plain = upscaler.upscale_array(pixels, backend="onnx")
    assert np.array_equal(plain, upscaler.upscale_array(pixels, backend="onnx", model="clean"))
    assert not np.array_equal(plain, by_quality)
