"""Hostile files made by a generator, each class with several instances (issue 28): wide grey
modes (16-bit, 32-bit integer, 32-bit float) as stills, pages and frames to every output
format; animations of identical frames; animations cut short; symbolic links planted at every
path a run writes. Through the installed command, real files."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import photo, run_cli

#: Every --format a run writes (JPEG XL where its plugin is installed), and its suffix.
OUTPUTS = ["png", "jpg", "webp", "gif", "tiff"]
SUFFIX = {"tiff": "tif"}
#: Formats that hold several frames or pages.
MULTI = {"png", "webp", "gif", "tiff"}
W, H = 40, 30


def _ramp(flip: bool = False) -> np.ndarray:
    row = np.linspace(0.0, 1.0, W)
    return np.tile(row[::-1] if flip else row, (H, 1))


def _wide_grey(mode: str, flip: bool = False) -> Image.Image:
    """A grey ramp, 0 to full scale, in a wide mode: I;16, I (0-65535) or F (0-1)."""
    ramp = _ramp(flip)
    if mode == "I;16":
        return Image.fromarray((ramp * 65535).astype(np.uint16))
    if mode == "I":
        return Image.fromarray((ramp * 65535).astype(np.int32), "I")
    return Image.fromarray(ramp.astype(np.float32), "F")


def _generated(folder: Path) -> dict[str, int]:
    """The wide-grey inputs, each with its number of frames or pages."""
    made: dict[str, int] = {}
    for mode, tag in (("I;16", "i16"), ("I", "i32"), ("F", "f32")):
        _wide_grey(mode).save(folder / f"still_{tag}.tif")
        made[f"still_{tag}.tif"] = 1
        pages = [_wide_grey(mode), _wide_grey(mode, flip=True)]
        pages[0].save(folder / f"pages_{tag}.tif", save_all=True, append_images=pages[1:])
        made[f"pages_{tag}.tif"] = 2
    _wide_grey("I;16").save(folder / "png_i16.png")
    made["png_i16.png"] = 1
    frames = [_wide_grey("I;16"), _wide_grey("I;16", flip=True)]  # an APNG of 16-bit frames
    frames[0].save(folder / "frames_i16.png", save_all=True, append_images=frames[1:])
    made["frames_i16.png"] = 2
    return made


def _frames(path: Path) -> Iterator[Image.Image]:
    with Image.open(path) as im:
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            yield im.copy()


def _is_ramp(frame: Image.Image) -> bool:
    """A grey ramp one way or the other: mid-grey on average, dark at one end, light at the
    other (not the white or black of a clipped conversion)."""
    if frame.mode in ("I;16", "I", "F"):
        values = np.asarray(frame, float)
        grey = values / (1.0 if frame.mode == "F" else 65535.0) * 255.0
    else:
        grey = np.asarray(frame.convert("L"), float)
    ends = sorted((grey[:, :3].mean(), grey[:, -3:].mean()))
    return abs(grey.mean() - 127.5) < 8 and ends[0] < 25 and ends[1] > 230


def _plugins() -> list[str]:
    try:
        import pillow_jxl  # noqa: F401
    except ImportError:
        return []
    return ["jxl"]


@pytest.mark.parametrize(
    "fmt",
    [
        f if f in ("png", "jpg") else pytest.param(f, marks=pytest.mark.slow)
        for f in OUTPUTS + _plugins()
    ],
)
def test_wide_greys_keep_their_ramp_in_every_output_format(tmp_path: Path, fmt: str) -> None:
    """16-bit, 32-bit integer and 32-bit float greys, as stills and as two-page TIFFs, to
    `fmt`: every still and page written is the ramp it was (never clipped to white or black);
    pages to a format of one frame fail in one line naming the formats that hold them; never
    a traceback or an internal error."""
    src = tmp_path / "in"
    src.mkdir()
    made = _generated(src)
    ran = run_cli(
        "batch", src, "-o", tmp_path / "out", "--factor", "2", "--backend", "bicubic",
        "--format", fmt,
    )  # fmt: skip
    assert "internal error" not in ran.stderr and "Traceback" not in ran.stderr, ran.stderr
    several = [name for name, count in made.items() if count > 1]
    assert ran.returncode == (0 if fmt in MULTI else 1), ran.stderr
    for name, count in made.items():
        out = tmp_path / "out" / f"{Path(name).stem}.{SUFFIX.get(fmt, fmt)}"
        if count > 1 and fmt not in MULTI:
            lines = [line for line in ran.stderr.splitlines() if name in line]
            assert len(lines) == 1 and "frames cannot be written as" in lines[0], lines
            assert not out.exists()
            continue
        frames = list(_frames(out))
        assert len(frames) == count, (name, len(frames))
        assert all(frame.size == (2 * W, 2 * H) for frame in frames), name
        assert all(_is_ramp(frame) for frame in frames), name
    assert several  # the generator made pages


@pytest.mark.parametrize(
    "fmt",
    [
        "gif",
        pytest.param("webp", marks=pytest.mark.slow),
        pytest.param("png", marks=pytest.mark.slow),
    ],
)
def test_animations_of_identical_frames_keep_every_frame(tmp_path: Path, fmt: str) -> None:
    """Animations whose frames are all the same picture, as Pillow writes them (it merges
    such frames, adding their durations), to the same format (a GIF left with one frame is a
    still: PNG): done, the frames stored, the total duration kept."""
    src = tmp_path / "in"
    src.mkdir()
    frame = photo(40, 30, seed=3)
    frames = [frame.copy() for _ in range(4)]
    frames[0].save(src / f"same.{fmt}", save_all=True, append_images=frames[1:], duration=80)
    with Image.open(src / f"same.{fmt}") as im:
        stored = getattr(im, "n_frames", 1)
        total = _total_duration(im)
    ran = run_cli("batch", src, "-o", tmp_path / "out", "--factor", "2", "--backend", "bicubic")
    assert ran.returncode == 0, ran.stderr
    (out,) = (tmp_path / "out").glob("same.*")
    assert out.suffix == (".png" if fmt == "gif" and stored == 1 else f".{fmt}")
    with Image.open(out) as im:
        assert getattr(im, "n_frames", 1) == stored and im.size == (80, 60)
        if stored > 1:
            assert abs(_total_duration(im) - total) <= 10 * stored


def _total_duration(im: Image.Image) -> int:
    total = 0
    for index in range(getattr(im, "n_frames", 1)):
        im.seek(index)
        total += int(im.info.get("duration", 0))
    im.seek(0)
    return total


def _animation_bytes(fmt: str) -> bytes:
    frames = [photo(40, 30, seed=i) for i in range(4)]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


@pytest.mark.slow
def test_animations_cut_anywhere_fail_in_one_line(tmp_path: Path) -> None:
    """GIF, APNG and WebP animations cut at a third, a half and nine tenths of their bytes,
    JPEG XL stills at a half and nine tenths (with its plugin):
    each a one-line failure with a file's reason, never an internal error; the run goes on
    (a good image beside them is written) and exits 1."""
    src = tmp_path / "in"
    src.mkdir()
    names = []
    for fmt, suffix in (("GIF", "gif"), ("PNG", "png"), ("WEBP", "webp")):
        data = _animation_bytes(fmt)
        for cut in (3, 2, 10):
            keep = len(data) // cut if cut != 10 else len(data) * 9 // 10
            name = f"cut{cut}_{suffix}.{suffix}"
            (src / name).write_bytes(data[:keep])
            names.append(name)
    if _plugins():  # JPEG XL stills cut short too
        buf = io.BytesIO()
        photo(64, 48).save(buf, "JXL", quality=90)
        for cut in (2, 10):
            data = buf.getvalue()
            keep = len(data) // cut if cut != 10 else len(data) * 9 // 10
            (src / f"cut{cut}.jxl").write_bytes(data[:keep])
            names.append(f"cut{cut}.jxl")
    photo(20, 10).save(src / "good.png")
    ran = run_cli("batch", src, "-o", tmp_path / "out", "--backend", "bicubic")
    assert ran.returncode == 1, ran.stderr
    assert "internal error" not in ran.stderr and "Traceback" not in ran.stderr, ran.stderr
    for name in names:
        lines = [line for line in ran.stderr.splitlines() if name in line]
        assert len(lines) == 1, (name, ran.stderr)
        assert any(w in lines[0] for w in ("truncated", "corrupt", "cannot identify")), lines[0]
    assert (tmp_path / "out" / "good.png").is_file()


@pytest.mark.slow
def test_links_planted_at_every_path_a_run_writes_are_replaced_not_followed(
    tmp_path: Path,
) -> None:
    """Symbolic links at the output, its temporary file, the lock, the JSON, CSV and HTML
    reports and the thumbnails, each pointing at a file of the user's: the run writes its
    own files in their place, and every target keeps its bytes."""
    src = tmp_path / "in"
    src.mkdir()
    photo(30, 20).save(src / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    victims = []

    def plant(path: Path) -> None:
        victim = tmp_path / f"victim{len(victims)}.txt"
        victim.write_text("precious")
        victims.append(victim)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(victim)

    plant(out / "a.png")
    plant(out / ".a.png.upscaler.tmp")
    plant(out / ".upscaler.lock")
    for suffix in ("json", "csv", "html"):
        plant(tmp_path / f"report.{suffix}")
    plant(tmp_path / "report-thumbs" / "x.jpg")  # the folder exists; names are checked below
    for suffix in ("json", "csv", "html"):
        ran = run_cli(
            "batch", src, "-o", out, "--backend", "bicubic", "--overwrite",
            "--report", tmp_path / f"report.{suffix}",
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        report = tmp_path / f"report.{suffix}"
        assert not report.is_symlink() and report.stat().st_size > 0, suffix
    assert all(victim.read_text() == "precious" for victim in victims)
    assert not (out / "a.png").is_symlink() and (out / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / ".upscaler.lock").is_symlink()
    assert not os.path.lexists(out / ".a.png.upscaler.tmp")


def test_a_lock_linked_to_nowhere_creates_nothing_there(tmp_path: Path) -> None:
    """A dangling link at the output folder's lock: the run replaces it with its own lock
    file and creates nothing at the link's target."""
    photo(30, 20).save(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "elsewhere" / "created"
    target.parent.mkdir()
    (out / ".upscaler.lock").symlink_to(target)
    ran = run_cli("batch", tmp_path / "a.png", "-o", out, "--backend", "bicubic")
    assert ran.returncode == 0, ran.stderr
    assert not target.exists() and not (out / ".upscaler.lock").is_symlink()


def test_compare_writes_its_crops_and_reports_in_place_of_planted_links(tmp_path: Path) -> None:
    """`upscaler compare` writes its crops and its three reports as outputs are written: a
    link planted at any of them is replaced, its target keeps its bytes."""
    hr = tmp_path / "hr"
    hr.mkdir()
    photo(64, 64, seed=1).save(hr / "a.png")
    out = tmp_path / "cmp"
    (out / "crops").mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    planted = [out / name for name in ("report.json", "report.csv", "index.html")]
    planted += [out / "crops" / f"a_{label}.png" for label in ("ground_truth", "bicubic")]
    for path in planted:
        path.symlink_to(victim)
    ran = run_cli("compare", hr, "--factor", 2, "--backend", "bicubic", "-o", out)
    assert ran.returncode == 0, ran.stderr
    assert victim.read_text() == "precious"
    assert all(not path.is_symlink() and path.stat().st_size > 0 for path in planted)
