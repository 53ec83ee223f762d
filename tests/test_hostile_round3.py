"""Hostile inputs, round 3 (issue 28), through the installed command: the items fixed so far.
Frames of different sizes and identical GIF frames are in test_streaming.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import upscaler
from conftest import photo, run_cli


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("{started.nope}.json", marks=pytest.mark.slow),
        pytest.param("{started[0]}.json", marks=pytest.mark.slow),
        pytest.param("{host.__class__}.json", marks=pytest.mark.slow),
        pytest.param("{started:%Q}.json", marks=pytest.mark.slow),
        "{host!r}.json",
        pytest.param("{host:>20}.json", marks=pytest.mark.slow),
        "{nope}.json",
        pytest.param("{started:%Y}{.json", marks=pytest.mark.slow),
    ],
)
def test_report_placeholders_are_the_documented_ones_only(tmp_path: Path, pattern: str) -> None:
    """Anything but {started:STRFTIME} and {host} is a usage error in one line, before any
    output is made: no traceback, no file named after an evaluated expression."""
    photo(20, 10).save(tmp_path / "a.png")
    ran = run_cli(
        "batch",
        tmp_path / "a.png",
        "-o",
        tmp_path / "out",
        "--backend",
        "bicubic",
        "--report",
        tmp_path / "reports" / pattern,
    )
    assert ran.returncode == 2, ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1 and "bad placeholder" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "reports").exists()


def test_documented_report_placeholders_still_work(tmp_path: Path) -> None:
    import socket
    from datetime import date

    photo(20, 10).save(tmp_path / "a.png")
    pattern = "r-{started:%Y-%m-%d}-{host}.json"
    ran = run_cli(
        "batch",
        tmp_path / "a.png",
        "-o",
        tmp_path / "out",
        "--backend",
        "bicubic",
        "--report",
        tmp_path / pattern,
        "-q",
    )
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / f"r-{date.today():%Y-%m-%d}-{socket.gethostname()}.json").is_file()


@pytest.mark.parametrize("fit", ["²x100", "100x²", "١٠٠x100", " 100x100", "0x100", "100x", "x100"])
def test_fit_takes_ascii_digits_only(tmp_path: Path, fit: str) -> None:
    photo(20, 10).save(tmp_path / "a.png")
    ran = run_cli("batch", tmp_path / "a.png", "-o", tmp_path / "out", "--fit", fit)
    assert ran.returncode == 2 and "is not WxH" in ran.stderr and "Traceback" not in ran.stderr


def test_thumbnails_never_write_through_a_planted_link(tmp_path: Path) -> None:
    """The HTML report's thumbnails are written as outputs are (new file, then rename): a
    symbolic link planted at a thumbnail's name is replaced, its target left as it was."""
    photo(30, 20).save(tmp_path / "a.png")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    thumbs = tmp_path / "r-thumbs"
    thumbs.mkdir()
    key = hashlib.sha1(str(out / "a.png").encode()).hexdigest()[:16]
    for name in (f"{key}.jpg", f"{key}-in.jpg"):
        (thumbs / name).symlink_to(victim)
    ran = run_cli(
        "batch",
        tmp_path / "a.png",
        "-o",
        out,
        "--backend",
        "bicubic",
        "--report",
        tmp_path / "r.html",
    )
    assert ran.returncode == 0, ran.stderr
    assert victim.read_text() == "precious"
    for name in (f"{key}.jpg", f"{key}-in.jpg"):
        assert not (thumbs / name).is_symlink() and (thumbs / name).read_bytes()[:2] == b"\xff\xd8"


def test_truncated_and_corrupt_animations_fail_in_one_line_with_the_reason(tmp_path: Path) -> None:
    """A GIF and an APNG cut short, and a corrupt JPEG XL: each one line, the reason a file's
    (never "internal error"), the run goes on and exits 1."""
    src = tmp_path / "in"
    src.mkdir()
    frames = [photo(40, 30, seed=i) for i in range(3)]
    for suffix in ("gif", "png"):
        whole = tmp_path / f"whole.{suffix}"
        frames[0].save(whole, save_all=True, append_images=frames[1:], duration=100)
        data = whole.read_bytes()
        (src / f"cut_{suffix}.{suffix}").write_bytes(data[: len(data) * 2 // 3])
    (src / "bad.jxl").write_bytes(b"\xff\x0a" + b"\x00garbage" * 20)
    photo(20, 10).save(src / "good.png")
    ran = run_cli("batch", src, "-o", tmp_path / "out", "--backend", "bicubic")
    assert ran.returncode == 1, ran.stderr
    lines = {
        name: [line for line in ran.stderr.splitlines() if name in line]
        for name in ("cut_gif.gif", "cut_png.png", "bad.jxl")
    }
    assert "truncated image file" in lines["cut_gif.gif"][0]
    assert "truncated image file" in lines["cut_png.png"][0]
    if "pillow_jxl" in ran.stderr or "upscaler[jxl]" not in ran.stderr:
        assert "corrupt image data" in lines["bad.jxl"][0] or "pip install" in lines["bad.jxl"][0]
    assert all(len(found) == 1 for found in lines.values()), ran.stderr
    assert "internal error" not in ran.stderr and "Traceback" not in ran.stderr
    assert (tmp_path / "out" / "good.png").is_file()


def test_a_newline_in_a_name_stays_on_its_line(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "cut\nshort.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    ran = run_cli("batch", src, "-o", tmp_path / "out", "--backend", "bicubic")
    assert ran.returncode == 1
    (line,) = [line for line in ran.stderr.splitlines() if "short.png" in line]
    assert "cut\\nshort.png: " in line


def _ramp(width: int = 40, height: int = 30) -> np.ndarray:
    return np.tile(np.linspace(0.0, 1.0, width), (height, 1))


@pytest.mark.slow
def test_sixteen_bit_frames_to_gif_and_webp_keep_their_greys(tmp_path: Path) -> None:
    """A 2-page 16-bit grey TIFF ramp written as GIF and WebP: the ramp, not white."""
    src = tmp_path / "in"
    src.mkdir()
    ramp = (_ramp() * 65535).astype(np.uint16)
    pages = [Image.fromarray(ramp), Image.fromarray(np.ascontiguousarray(ramp[:, ::-1]))]
    pages[0].save(src / "ramp.tif", save_all=True, append_images=pages[1:])
    for fmt in ("gif", "webp"):
        ran = run_cli(
            "batch",
            src,
            "-o",
            tmp_path / fmt,
            "--factor",
            "2",
            "--backend",
            "bicubic",
            "--format",
            fmt,
        )
        assert ran.returncode == 0, ran.stderr
        with Image.open(tmp_path / fmt / f"ramp.{fmt}") as im:
            for i in range(2):
                im.seek(i)
                grey = np.asarray(im.convert("L"), float)
                dark = min(grey[:, :4].mean(), grey[:, -4:].mean())  # a ramp, one way or the other
                assert abs(grey.mean() - 127.5) < 6 and dark < 20, (fmt, grey.mean())


@pytest.mark.parametrize(
    ("mode", "values", "ok"),
    [
        ("F", _ramp(), True),
        pytest.param("F", _ramp() * 4, False, marks=pytest.mark.slow),
        pytest.param("I", (_ramp() * 65535).astype(np.int32), True, marks=pytest.mark.slow),
        ("I", (_ramp() * 70000).astype(np.int32), False),
    ],
)
def test_32_bit_greys_follow_one_range_rule(
    tmp_path: Path, mode: str, values: np.ndarray, ok: bool
) -> None:
    """Float greys from 0 to 1 and integer greys from 0 to 65535 become 16-bit greys, through
    the command and the API; other ranges are refused in one line, never clipped."""
    src = tmp_path / "in"
    src.mkdir()
    image = Image.fromarray(values.astype(np.float32 if mode == "F" else np.int32), mode)
    image.save(src / "wide.tif")
    ran = run_cli("batch", src, "-o", tmp_path / "out", "--factor", "2", "--backend", "bicubic")
    if not ok:
        assert ran.returncode == 1 and "Traceback" not in ran.stderr
        (line,) = [line for line in ran.stderr.splitlines() if "wide.tif" in line]
        assert "only 0 to" in line
        with pytest.raises(upscaler.ImageError if hasattr(upscaler, "ImageError") else Exception):
            upscaler.upscale_image(image, factor=2, backend="bicubic")
        return
    assert ran.returncode == 0, ran.stderr
    with Image.open(tmp_path / "out" / "wide.tif") as out:
        got = np.asarray(out).astype(float) / 65535
    assert out.size == (80, 60) and abs(got.mean() - 0.5) < 0.02 and got.max() > 0.95
    api = np.asarray(upscaler.upscale_image(image, factor=2, backend="bicubic")).astype(float)
    assert abs(api.mean() / 65535 - 0.5) < 0.02


@pytest.mark.slow
def test_links_to_nowhere_without_an_image_name_are_ignored(tmp_path: Path) -> None:
    """A dangling link to a non-image and a link loop without an image suffix are not images:
    ignored (exit 0 every night); a dangling link with an image name still fails."""
    src = tmp_path / "in"
    src.mkdir()
    photo(20, 10).save(src / "a.png")
    (src / "notes.txt").symlink_to("/nonexistent/notes.txt")
    (src / "loop").symlink_to("loop")
    ran = run_cli("batch", src, "-o", tmp_path / "out", "--backend", "bicubic")
    assert ran.returncode == 0, ran.stderr
    (src / "gone.png").symlink_to("/nonexistent/gone.png")
    ran = run_cli("batch", src, "-o", tmp_path / "out2", "--backend", "bicubic")
    assert ran.returncode == 1 and "gone.png: dangling symbolic link" in ran.stderr


@pytest.mark.parametrize("kind", [pytest.param("device", marks=pytest.mark.slow), "fifo"])
def test_an_input_that_is_not_a_file_is_a_usage_error(tmp_path: Path, kind: str) -> None:
    import os

    given = Path("/dev/zero") if kind == "device" else tmp_path / "fifo"
    if kind == "fifo":
        os.mkfifo(given)
    ran = run_cli("batch", given, "-o", tmp_path / "out")
    assert ran.returncode == 2 and "not a regular file or folder" in ran.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_usage_errors_are_one_line_and_animations_count_every_frame(tmp_path: Path) -> None:
    for args in (["batch", "x", "--fit", "2x"], ["batch"], ["nope"]):
        ran = run_cli(*args)
        assert ran.returncode == 2 and len(ran.stderr.strip().splitlines()) == 1, ran.stderr
        assert ran.stderr.startswith("upscaler: error: ") and "--help" in ran.stderr
    src = tmp_path / "in"
    src.mkdir()
    frames = [photo(50, 40, seed=i) for i in range(5)]
    frames[0].save(src / "a.png", save_all=True, append_images=frames[1:], duration=50)
    report = tmp_path / "r.json"
    ran = run_cli(
        "batch",
        src,
        "-o",
        tmp_path / "out",
        "--factor",
        "2",
        "--backend",
        "bicubic",
        "--report",
        report,
    )
    assert ran.returncode == 0, ran.stderr
    import json

    data = json.loads(report.read_text())
    (record,) = data["images"]
    assert data["summary"]["output_megapixels"] == round(5 * 100 * 80 / 1e6, 3)
    assert record["seconds"] == round(record["seconds"], 3)


def test_the_python_api_shows_itself_and_says_what_a_factor_is() -> None:
    import pydoc

    assert {"upscale_image", "upscale_array", "BackendOptions"} <= set(dir(upscaler))
    assert not {"Any", "TYPE_CHECKING", "annotations"} & set(dir(upscaler))
    text = pydoc.render_doc(upscaler, renderer=pydoc.plaintext)
    assert "upscale_image(" in text and "upscale_array(" in text
    with pytest.raises(TypeError, match="factor must be an int"):
        upscaler.upscale_array(np.zeros((4, 4), np.uint8), factor="2")  # type: ignore[arg-type]


@pytest.mark.slow
def test_jpeg_xl_at_quality_100_keeps_sixteen_bits_or_says_it_cannot(tmp_path: Path) -> None:
    """--format jxl --quality 100 is lossless: 16-bit grey stays 16-bit (the PNG output's very
    values); 16-bit colour, which the JPEG XL plugin cannot take, fails in one line naming
    the formats that keep it, and the run goes on."""
    pytest.importorskip("pillow_jxl")
    src = tmp_path / "in"
    src.mkdir()
    ramp = (_ramp() * 65535).astype(np.uint16)
    Image.fromarray(ramp).save(src / "grey.png")
    colour = np.dstack([ramp, ramp[:, ::-1], ramp[::-1]])
    assert cv2.imwrite(str(src / "colour.png"), colour[:, :, ::-1])  # 16-bit RGB: OpenCV writes it
    results = {}
    for fmt in ("png", "jxl"):
        results[fmt] = run_cli(
            "batch", src, "-o", tmp_path / fmt, "--backend", "bicubic", "--format", fmt,
            "--quality", "100",
        )  # fmt: skip
    assert results["png"].returncode == 0, results["png"].stderr
    assert results["jxl"].returncode == 1, results["jxl"].stderr
    import pillow_jxl  # noqa: F401

    with (
        Image.open(tmp_path / "jxl" / "grey.jxl") as a,
        Image.open(tmp_path / "png" / "grey.png") as b,
    ):
        assert a.mode == "I;16" and np.array_equal(np.asarray(a), np.asarray(b))
    line = [ln for ln in results["jxl"].stderr.splitlines() if "colour.png" in ln]
    assert len(line) == 1 and "16-bit colour cannot be written losslessly" in line[0], line
    assert not (tmp_path / "jxl" / "colour.jxl").exists()
