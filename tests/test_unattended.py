"""Unattended runs: hostile inputs, inputs never modified, SIGKILL, concurrent runs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
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
    "long.gif": "5 frames: more than --max-frames 4",
    "animated.gif": None,
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
    frames = [photo(20, 20, seed=i) for i in range(5)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:3])
    frames[0].save(root / "long.gif", save_all=True, append_images=frames[1:])
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
        [*upscaler_command(), "batch", str(hostile), "-o", str(out), "--max-pixels", "12000000"]
        + ["--max-frames", "4"],
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
    assert "4 done, 0 skipped, 10 failed" in result.stderr


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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: two 1024x1024 noisy PNG outputs (1.8 MB each) fit, a third does not."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
            capture_output=True,
            text=True,
        )
        problem = mounted.stderr.strip() if mounted.returncode else None
    except FileNotFoundError:
        problem = "no mount command"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the tests as root and must test a full disk: {problem}")
        pytest.skip(f"cannot mount a small tmpfs (needs root): {problem}")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(disk)], check=True)


@contextmanager
def _on_cores(count: int) -> Iterator[None]:
    """Children started inside see at most `count` cores, so that at most `count` images are
    in flight at once (one per core), however many cores the machine has."""
    every = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(every)[:count])
    try:
        yield
    finally:
        os.sched_setaffinity(0, every)


DISK_FULL = " is full (No space left on device): the run stopped with "


@pytest.mark.parametrize(
    "engine",
    [
        pytest.param(("--jobs", "1"), id="threads"),
        pytest.param(("--jobs", "2"), id="processes"),
        pytest.param(("--engine", "dask", "--workers", "2"), id="dask"),
    ],
)
@pytest.mark.slow
def test_full_disk_stops_the_run_once_and_a_rerun_resumes(
    small_disk: Path, tmp_path: Path, engine: tuple[str, ...]
) -> None:
    if "dask" in engine:
        pytest.importorskip("distributed")
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        photo(512, 512, seed=i).save(src / f"p{i}.png")
    before = _digests(src)
    out, report = small_disk / "out", tmp_path / "report.json"
    args = ("batch", src, "-o", out, "--factor", 2, "--backend", "bicubic", *engine)
    with _on_cores(2):
        result = run_cli(*args, "--report", report)
    assert result.returncode == 4, result.stderr
    assert result.stderr.count(DISK_FULL) == 1, result.stderr
    assert f"upscaler: error: output folder {out}{DISK_FULL}" in result.stderr
    assert "No space left on device" not in result.stderr.replace(DISK_FULL, "")  # no per-image
    assert "free some space and run the same command again" in result.stderr.lower()
    assert "Traceback" not in result.stderr
    written = sorted(p.name for p in out.glob("*.png"))
    # Two fit (two were in flight at a time); after them, each of the two images in flight
    # fails at most once, then nothing new starts. One only if two writes raced for the space.
    assert 1 <= len(written) <= 2, written
    assert sorted(p.name for p in out.iterdir()) == [".upscaler.lock", *written]  # no .tmp
    data = json.loads(report.read_text())
    statuses = {Path(r["src"]).name: r["status"] for r in data["images"]}
    assert sorted(name for name, status in statuses.items() if status == "done") == written
    assert all(status in ("done", "failed") for status in statuses.values())
    failed = [r for r in data["images"] if r["status"] == "failed"]
    assert failed and all(r["error"] == "No space left on device" for r in failed)
    assert "disk_full" not in data["images"][0]  # not a report column
    assert len(failed) <= 2
    not_started = 6 - len(data["images"])
    assert not_started >= 2  # the run stopped taking new images
    done = f"{len(written)} of 6 images done (0 skipped as already done), {len(failed)} failed "
    assert done in result.stderr
    assert f"and {not_started} not started." in result.stderr
    summary = f"{len(written)} done, 0 skipped, {len(failed)} failed"
    assert result.stderr.splitlines()[-1].startswith(summary)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    with _on_cores(2):
        rerun = run_cli(*args, "--report", report)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.glob("*.png")) == [f"p{i}.png" for i in range(6)]
    assert {p: (out / p).stat().st_mtime_ns for p in mtimes} == mtimes  # skipped, not redone
    statuses = {Path(r["src"]).name: r["status"] for r in json.loads(report.read_text())["images"]}
    assert statuses == {
        f"p{i}.png": "skipped" if f"p{i}.png" in mtimes else "done" for i in range(6)
    }
    assert not list(out.glob(".*.tmp"))
    assert _digests(src) == before  # inputs never modified


@pytest.mark.slow
def test_report_on_the_full_disk_is_one_line_and_exit_4(small_disk: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        photo(64, 64, seed=i).save(src / f"p{i}.png")
    out, report = small_disk / "out", small_disk / "report.html"
    out.mkdir()
    fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
    with pytest.raises(OSError, match="No space left"):  # fill the disk to the last byte
        while True:
            os.write(fd, bytes(1 << 16))
    os.close(fd)
    result = run_cli(
        "batch", src, "-o", out, "--factor", 2, "--backend", "bicubic", "--report", report, "-q"
    )
    assert result.returncode == 4, result.stderr
    assert result.stderr.count(DISK_FULL) == 1, result.stderr
    line = f"upscaler: error: cannot write the report {report}: No space left on device"
    assert result.stderr.count(line) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "out"]  # no .tmp
    assert [p.name for p in out.iterdir()] == [".upscaler.lock"]


@pytest.mark.parametrize(
    "given",
    [
        "relative",
        pytest.param("absolute", marks=pytest.mark.slow),
        pytest.param("root file", marks=pytest.mark.slow),
        "dangling link",
    ],
)
def test_a_missing_input_creates_nothing_and_is_a_usage_error(tmp_path: Path, given: str) -> None:
    """An unmounted share or a typo: one line, exit 2 (not 1, failed images), no folder and
    no lock anywhere, no traceback."""
    work = tmp_path / "cwd"
    work.mkdir()
    link = work / "link"
    link.symlink_to(tmp_path / "gone")
    name = {
        "relative": "nosuch",
        "absolute": str(tmp_path / "mnt" / "photos"),
        "root file": "/nonexistent-upscaler-input.jpg",
        "dangling link": "link",
    }[given]
    before = sorted(tmp_path.rglob("*"))
    result = run_cli("batch", name, cwd=work)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"upscaler: error: {name}: "), lines
    assert sorted(tmp_path.rglob("*")) == before  # nothing made, here or beside a parent
    assert not Path("/nonexistent-upscaler-input-x3").exists()


@pytest.mark.slow
def test_cron_runs_print_one_line_or_only_what_failed(tmp_path: Path) -> None:
    """As cron runs it (`env -i`, no terminal): a night with nothing new prints the summary
    line alone, a night with a broken image prints that image's line and the summary."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        photo(24, 16, seed=i).save(src / f"{i}.png")
    command = [*upscaler_command(), "batch", str(src), "--backend", "bicubic"]
    env = {"PATH": "/usr/bin:/bin"}

    def cron(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *extra], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )

    first = cron()
    assert first.returncode == 0 and first.stdout == "", first.stderr
    assert first.stderr.splitlines() == [first.stderr.strip()] and "3 done" in first.stderr
    nothing_new = cron()
    assert nothing_new.stderr.count("\n") == 1 and "0 done, 3 skipped" in nothing_new.stderr
    assert cron("-q").stderr == ""
    (src / "broken.png").write_bytes(b"not a png")
    broken = cron()
    lines = broken.stderr.strip().splitlines()
    assert broken.returncode == 1 and len(lines) == 2, lines
    assert lines[0] == f"{src / 'broken.png'}: not a recognised image file"
    assert lines[1].startswith("0 done, 3 skipped, 1 failed")
    assert cron("-q").stderr.strip() == lines[0]
