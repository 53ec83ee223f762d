"""Unattended runs: hostile inputs, inputs never modified, SIGKILL, concurrent runs."""

from __future__ import annotations

import hashlib
import io
import os
import resource
import shutil
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from filelock import FileLock
from PIL import Image

from conftest import photo, run_cli, upscaler_command


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _encoded(fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    photo(64, 48).save(buf, fmt, **kwargs)
    return buf.getvalue()


#: name -> expected message (None: processed normally).
HOSTILE = {
    "empty.jpg": "not a recognised image file",
    "truncated.jpg": "truncated image file",
    "truncated.png": "truncated image file",
    "noise.jpg": "not a recognised image file",
    "text.png": "not a recognised image file",
    "loop.png": "bad symbolic link: Too many levels of symbolic links",
    "dangling.png": "dangling symbolic link",
    "bomb.png": "100000x100000 pixels: the 300000x300000 output would exceed --max-pixels 12,000,000",
    "big.png": "1200x1200 pixels: the 3600x3600 output would exceed --max-pixels 12,000,000",
    "animated.gif": "3 frames (animation or multi-page file): only still images are upscaled",
    "tiny.png": None,
    "ça va 東京.png": None,
    "x.jpg/inside.png": None,
}


@pytest.fixture()
def hostile(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "x.jpg").mkdir(parents=True)  # a folder named like an image
    (root / "empty.jpg").write_bytes(b"")
    jpeg, png = _encoded("JPEG"), _encoded("PNG")
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) * 3 // 4])
    (root / "truncated.png").write_bytes(png[: len(png) * 3 // 4])
    (root / "noise.jpg").write_bytes(os.urandom(5000))
    (root / "text.png").write_text("this is not a picture\n")
    os.symlink("loop.png", root / "loop.png")
    os.symlink("nowhere.png", root / "dangling.png")
    (root / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    photo(1200, 1200).save(root / "big.png")  # fine alone, too big with --max-pixels below
    frames = [photo(20, 20, seed=i) for i in range(3)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:])
    photo(1, 1).save(root / "tiny.png")
    photo(30, 20).save(root / "ça va 東京.png")
    photo(30, 20).save(root / "x.jpg" / "inside.png")
    return root


def _digests(root: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # 3 GiB: no bomb fits


def test_hostile_inputs_fail_alone_with_clear_messages(hostile: Path, tmp_path: Path) -> None:
    before = _digests(hostile)
    out = tmp_path / "out"
    result = subprocess.run(
        [*upscaler_command(), "batch", str(hostile), "-o", str(out), "--max-pixels", "12000000"],
        capture_output=True,
        text=True,
        preexec_fn=_limit_memory,
        timeout=300,
    )
    assert result.returncode == 1
    lines = [
        line for line in result.stderr.splitlines() if ": " in line and not line.startswith("done ")
    ]
    for name, message in HOSTILE.items():
        if message is None:
            assert (out / name).is_file(), name
            continue
        assert f"{hostile / name}: {message}" in lines, (name, result.stderr)
        assert not (out / name).exists(), name
    with Image.open(out / "tiny.png") as im:
        assert im.size == (3, 3)
    assert _digests(hostile) == before  # inputs never modified, not even touched
    assert "3 done, 0 skipped, 10 failed" in result.stderr


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    photo(20, 20).save(src / "ok.png")
    photo(20, 20).save(src / "secret.png")
    (src / "secret.png").chmod(0o000)
    prefix: list[str] = []
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that let it
        setpriv = shutil.which("setpriv")
        assert setpriv, "running as root needs util-linux's setpriv for this test"
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    result = subprocess.run(
        [
            *prefix,
            *upscaler_command(),
            "batch",
            str(src),
            "-o",
            str(tmp_path / "out"),
            "--backend",
            "bicubic",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert f"{src / 'secret.png'}: Permission denied" in result.stderr
    assert (tmp_path / "out" / "ok.png").is_file()


def test_sigkill_never_leaves_a_partial_output(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    photo(1400, 1000).save(src / "large.png")
    out = tmp_path / "out"
    args = [*upscaler_command(), "batch", str(src), "-o", str(out), "--backend", "bicubic", "-q"]
    proc = subprocess.Popen(args)
    deadline = time.monotonic() + 120
    while (
        not list(out.glob(".large.png.*.tmp"))
        and proc.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    visible = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert visible == [] or Image.open(out / "large.png").size == (4200, 3000)  # none, or whole
    assert list(out.glob(".large.png.*.tmp")), "the kill came too late to test anything"
    assert run_cli("batch", src, "-o", out, "--backend", "bicubic", "-q").returncode == 0
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))  # the leftover is cleaned
    with Image.open(out / "large.png") as im:
        im.load()
        assert im.size == (4200, 3000)


def test_second_run_on_the_same_output_waits_then_exits_3(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    photo(20, 20).save(src / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    with FileLock(out / ".upscaler.lock"):  # another run holds the folder
        started = time.monotonic()
        result = run_cli("batch", src, "-o", out, "--backend", "bicubic", "--lock-timeout", 1)
        waited = time.monotonic() - started
    assert result.returncode == 3 and waited >= 1
    assert "another upscaler run is writing to" in result.stderr
    assert not (out / "a.png").exists()
    assert run_cli("batch", src, "-o", out, "--backend", "bicubic").returncode == 0
