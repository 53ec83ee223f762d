"""Animated GIF, WebP and PNG, multi-page TIFF through the installed command."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLES, run_cli

DURATIONS = [80, 200, 450]


def _sample_frames(size: tuple[int, int] = (96, 64)) -> list[Image.Image]:
    """Three real photos (the bundled samples), RGB."""
    paths = sorted(SAMPLES.glob("*.png"))[:3]
    return [Image.open(p).convert("RGB").resize(size, Image.Resampling.BICUBIC) for p in paths]


def _frames(path: Path) -> list[tuple[Image.Image, dict[str, object]]]:
    """(frame as RGBA, its facts) for every frame of an image file."""
    out = []
    with Image.open(path) as im:
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            im.load()
            facts = {"duration": im.info.get("duration"), "loop": im.info.get("loop")}
            facts["disposal"] = getattr(im, "disposal_method", None)
            out.append((im.convert("RGBA"), facts))
    return out


def _psnr(a: Image.Image, b: Image.Image) -> float:
    """PSNR of the colours as shown over black (transparent pixels count as black)."""
    diff = _over_black(a) - _over_black(b)
    return float(10 * np.log10(255**2 / np.mean(diff * diff)))


def _over_black(im: Image.Image) -> np.ndarray:
    rgba = np.asarray(im.convert("RGBA"), float)
    return rgba[..., :3] * rgba[..., 3:] / 255


@pytest.fixture()
def animations(tmp_path: Path) -> Path:
    frames = _sample_frames()
    root = tmp_path / "in"
    root.mkdir()
    clear = []
    for i, frame in enumerate(frames):  # a transparent band on the left that grows
        alpha = np.full((64, 96), 255, np.uint8)
        alpha[:, : 10 * (i + 1)] = 0
        clear.append(frame.convert("RGBA"))
        clear[-1].putalpha(Image.fromarray(alpha))
    save = {"save_all": True, "duration": DURATIONS}
    frames[0].save(root / "photos.gif", append_images=frames[1:], loop=3, **save)
    clear[0].save(root / "clear.gif", append_images=clear[1:], loop=0, disposal=2, **save)
    frames[0].save(root / "photos.webp", append_images=frames[1:], loop=0, **save)
    frames[0].save(root / "photos.png", append_images=frames[1:], loop=2, **save)
    frames[0].save(root / "pages.tif", save_all=True, append_images=frames[1:])
    return root


@pytest.mark.slow
def test_every_frame_is_upscaled_with_its_timing(animations: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    ran = run_cli("batch", animations, "-o", tmp_path / "o", "--factor", 2, "--report", report)
    assert ran.returncode == 0, ran.stderr
    loops = {"photos.gif": 3, "clear.gif": 0, "photos.webp": 0, "photos.png": 2}
    for name in ("photos.gif", "clear.gif", "photos.webp", "photos.png", "pages.tif"):
        src, out = _frames(animations / name), _frames(tmp_path / "o" / name)
        assert len(out) == 3, name
        for i, ((a, _), (b, b_facts)) in enumerate(zip(src, out, strict=True)):
            assert b.size == (192, 128), name
            # each output frame is its own input frame upscaled (not the first one's)
            shrunk = b.resize(a.size, Image.Resampling.BICUBIC)
            assert _psnr(shrunk, a) > 30 and all(
                _psnr(shrunk, c) < 25 for c, _ in src if c is not a
            )
            if name != "pages.tif":
                assert b_facts["duration"] == DURATIONS[i], (name, i)
        if name in loops:
            assert out[0][1]["loop"] == loops[name], name
    clear = _frames(tmp_path / "o" / "clear.gif")
    for i, (frame, facts) in enumerate(clear):  # transparency and disposal kept
        alpha = np.asarray(frame)[..., 3]
        assert facts["disposal"] == 2
        assert (alpha[:, : 20 * (i + 1) - 2] == 0).all() and (
            alpha[:, 20 * (i + 1) + 2 :] == 255
        ).all()
    images = {Path(r["src"]).name: r for r in json.loads(report.read_text())["images"]}
    assert {r["frames"] for r in images.values()} == {3}
    assert all(r["consistency_psnr"] > 30 for r in images.values())


@pytest.mark.slow
def test_gif_frames_are_quantised_better_than_pillows_default(tmp_path: Path) -> None:
    """PSNR of each GIF output frame against the same frame upscaled without quantising
    (an APNG output of the same run), ours against Pillow's default quantiser."""
    frames = _sample_frames((160, 107))
    (tmp_path / "in").mkdir()
    frames[0].save(tmp_path / "in" / "a.gif", save_all=True, append_images=frames[1:])
    for fmt in ("same", "png"):
        ran = run_cli("batch", tmp_path / "in", "-o", tmp_path / fmt, "--format", fmt, "-q")
        assert ran.returncode == 0, ran.stderr
    exact = [f for f, _ in _frames(tmp_path / "png" / "a.png")]
    ours = [f for f, _ in _frames(tmp_path / "same" / "a.gif")]
    pillows = []
    for frame in exact:
        buf = io.BytesIO()
        frame.convert("RGB").save(buf, "GIF")
        pillows.append(Image.open(buf).convert("RGB"))
    gains = [_psnr(o, e) - _psnr(p, e) for o, p, e in zip(ours, pillows, exact, strict=True)]
    assert min(gains) > -0.05 and max(gains) > 0.3, gains  # never worse (one colour fewer)


@pytest.mark.slow
def test_a_still_gif_becomes_png_and_gif_can_be_asked_for(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    _sample_frames()[0].save(tmp_path / "in" / "still.gif")
    ran = run_cli("batch", tmp_path / "in", "-o", tmp_path / "o", "--factor", 2, "-q")
    assert ran.returncode == 0 and (tmp_path / "o" / "still.png").is_file(), ran.stderr
    ran = run_cli("batch", tmp_path / "in", "-o", tmp_path / "g", "--format", "gif", "-q")
    assert ran.returncode == 0, ran.stderr
    with Image.open(tmp_path / "g" / "still.gif") as im:
        assert im.format == "GIF" and im.size == (288, 192)


@pytest.mark.slow
def test_an_animation_asked_as_jpeg_is_a_reason(animations: Path, tmp_path: Path) -> None:
    ran = run_cli("batch", animations / "photos.gif", "-o", tmp_path / "o", "--format", "jpg")
    assert ran.returncode == 1
    assert "photos.gif: 3 frames cannot be written as JPEG: use --format png" in ran.stderr
