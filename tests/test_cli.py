"""The installed `upscaler` command, run as a subprocess on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import photo, run_cli, upscaler_command


@pytest.fixture()
def mixed_tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "nested" / "deeper").mkdir(parents=True)
    photo(40, 30).save(root / "colour.jpg", quality=92)
    photo(33, 21).save(root / "nested" / "plain.png")
    photo(25, 19, "L").save(root / "nested" / "grey.png")
    photo(17, 23, "RGBA").save(root / "nested" / "deeper" / "alpha.png")
    return root


def test_batch_bicubic_writes_every_image_three_times_larger(
    mixed_tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "batch", mixed_tree, "-o", out, "--backend", "bicubic", "--factor", 3, "--format", "png"
    )
    assert result.returncode == 0, result.stderr
    for src in mixed_tree.rglob("*.*"):
        dst = (out / src.relative_to(mixed_tree)).with_suffix(".png")
        with Image.open(src) as a, Image.open(dst) as b:
            assert b.size == (a.width * 3, a.height * 3)
            assert b.mode == {"L": "L", "RGBA": "RGBA"}.get(a.mode, "RGB")
    assert "4 done, 0 skipped, 0 failed" in result.stderr


def test_one_corrupt_file_fails_alone_with_exit_1(mixed_tree: Path, tmp_path: Path) -> None:
    (mixed_tree / "nested" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is no jpeg")
    out = tmp_path / "out"
    result = run_cli(
        "batch", mixed_tree, "-o", out, "--backend", "bicubic", "--report", tmp_path / "r.json"
    )
    assert result.returncode == 1
    assert f"{mixed_tree / 'nested' / 'broken.jpg'}: " in result.stderr
    assert len(list(out.rglob("[!.]*.*"))) == 4 and not (out / "nested" / "broken.jpg").exists()
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["failed"] == 1 and report["summary"]["done"] == 4


@pytest.mark.slow
def test_rerun_skips_up_to_date_outputs_and_overwrite_redoes(
    mixed_tree: Path, tmp_path: Path
) -> None:
    args = ("batch", mixed_tree, "-o", tmp_path / "out", "--backend", "bicubic", "-q")
    assert run_cli(*args).returncode == 0
    again = run_cli(*args, "--report", tmp_path / "r.csv")
    assert again.returncode == 0
    assert (tmp_path / "r.csv").read_text().count(",skipped,") == 4
    changed = mixed_tree / "colour.jpg"
    photo(40, 30, seed=9).save(changed)  # a newer input is redone, the others skipped
    os.utime(changed, (time.time() + 5, time.time() + 5))
    assert run_cli(*args, "--report", tmp_path / "r1.csv").returncode == 0
    report = (tmp_path / "r1.csv").read_text()
    assert report.count(",skipped,") == 3 and report.count(",done,") == 1 and "colour.jpg" in report
    assert run_cli(*args, "--overwrite", "--report", tmp_path / "r2.csv").returncode == 0
    assert (tmp_path / "r2.csv").read_text().count(",done,") == 4


def test_dry_run_writes_nothing(mixed_tree: Path, tmp_path: Path) -> None:
    result = run_cli(
        "batch", mixed_tree, "-o", tmp_path / "out", "--dry-run", "--backend", "bicubic"
    )
    assert result.returncode == 0 and result.stdout.count(" -> ") == 4
    assert not (tmp_path / "out").exists()


def test_usage_errors_exit_2(mixed_tree: Path) -> None:
    inside = run_cli("batch", mixed_tree, "-o", mixed_tree / "out", "--backend", "bicubic")
    assert inside.returncode == 2 and "inside input folder" in inside.stderr
    unknown = run_cli("batch", mixed_tree, "--backend", "nope")
    assert unknown.returncode == 2 and "unknown backend 'nope'" in unknown.stderr
    assert run_cli("batch", mixed_tree, "--factor", "5").returncode == 2
    assert not (mixed_tree.parent / "in-x3").exists()


@pytest.mark.slow
def test_jobs_use_worker_processes_with_the_same_results(mixed_tree: Path, tmp_path: Path) -> None:
    assert (
        run_cli(
            "batch", mixed_tree, "-o", tmp_path / "one", "--backend", "bicubic", "-q"
        ).returncode
        == 0
    )
    assert (
        run_cli(
            "batch", mixed_tree, "-o", tmp_path / "two", "--backend", "bicubic", "-q", "--jobs", 2
        ).returncode
        == 0
    )
    for a in (tmp_path / "one").rglob("[!.]*.*"):
        b = tmp_path / "two" / a.relative_to(tmp_path / "one")
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


def test_backends_lists_builtins() -> None:
    result = run_cli("backends")
    assert result.returncode == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert {"bicubic", "onnx", "keras"} <= set(lines)
    assert "x2,x3,x4" in lines["onnx"] and "available" in lines["bicubic"]


def test_help_and_version_do_not_import_frameworks() -> None:
    code = (
        "import sys\nfrom upscaler._cli import cli\n"
        "for args in (['--help'], ['--version'], ['batch', '--help']):\n"
        "    try:\n        cli.main(args, standalone_mode=False)\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in ('onnxruntime', 'tensorflow', 'keras', 'numpy', 'PIL', 'dask', 'distributed', 'fsspec') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "HEAVY []" in out
    version = subprocess.run(
        [*upscaler_command(), "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("upscaler, version ")


@pytest.mark.parametrize(
    "engine", [(), ("--engine", "dask", "--workers", "2")], ids=["local", "dask"]
)
@pytest.mark.slow
def test_progress_bar_on_a_terminal_plain_lines_otherwise(
    engine: tuple[str, ...], mixed_tree: Path, tmp_path: Path
) -> None:
    if engine:
        pytest.importorskip("distributed")
    import fcntl
    import os
    import pty
    import struct
    import termios

    args = [
        *upscaler_command(),
        "batch",
        str(mixed_tree),
        "-o",
        str(tmp_path / "tty"),
        "--backend",
        "bicubic",
        *engine,
    ]
    pid, fd = pty.fork()
    if pid == 0:  # child: stdin, stdout and stderr are a 100-column terminal
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        os.execv(args[0], args)
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    screen = b"".join(chunks).decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0
    assert "4/4" in screen and "img" in screen and "done " not in screen  # tqdm, not log lines
    plain = run_cli("batch", mixed_tree, "-o", tmp_path / "plain", "--backend", "bicubic", *engine)
    assert plain.stderr.splitlines() == [plain.stderr.strip()]  # the summary line, nothing else
    assert plain.stderr.startswith("4 done, 0 skipped, 0 failed")
    verbose = run_cli(
        "batch", mixed_tree, "-o", tmp_path / "plain", "--backend", "bicubic", "-v", *engine
    )
    assert verbose.stderr.count("skipped ") == 4 and "4/4" not in verbose.stderr
    quiet = run_cli(
        "batch", mixed_tree, "-o", tmp_path / "quiet", "--backend", "bicubic", "-q", *engine
    )
    assert quiet.stderr == ""


def test_help_lists_every_command_without_cutting_it_short() -> None:
    """`upscaler --help` shows each command's whole description; `--device` its choices."""
    top = run_cli("--help")
    commands = top.stdout.split("Commands:")[1].strip().splitlines()
    assert len(commands) == 5 and not any(line.endswith("...") for line in commands), commands
    assert "--device [cpu|cuda]" in run_cli("batch", "--help").stdout
