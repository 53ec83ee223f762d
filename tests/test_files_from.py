"""`upscaler batch --files-from`: one run fed paths while it goes (a per-upload hook's stream).

Every test runs the installed `upscaler` command with a pipe for its standard input, writes
paths into it over time, and looks at the outputs, the exit status and what was printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import photo, run_cli, upscaler_command

TIMEOUT = 120


def _start(*args: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*upscaler_command(), "batch", "--files-from", "-", *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _send(proc: subprocess.Popen[bytes], *lines: object) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"".join(os.fsencode(str(line)) + b"\n" for line in lines))
    proc.stdin.flush()


def _until(condition: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    """Wait for `condition` while the run is still going (it must not need the end of input)."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert proc.poll() is None, f"the run ended early: {proc.communicate()[1].decode()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _images(folder: Path, count: int, fmt: str = "png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"p{i}.{fmt}"
        photo(40 + 8 * i, 32, seed=i).save(path)
        paths.append(path)
    return paths


def test_each_path_is_upscaled_as_it_comes_and_the_run_ends_with_its_input(
    tmp_path: Path,
) -> None:
    a, b = _images(tmp_path / "in", 2)
    folder = tmp_path / "later"
    (c,) = _images(folder / "sub", 1, "jpg")
    (folder / "notes.txt").write_text("not an image")
    out, report = tmp_path / "out", tmp_path / "report.json"
    proc = _start("-o", out, "--report", report, "--backend", "onnx")
    _send(proc, a)
    _until((out / a.name).exists, proc)  # written while the input is still open
    with Image.open(out / a.name) as im:
        assert im.size == (120, 96)
    _send(proc, tmp_path / "missing.png", "", b, folder)
    _until(lambda: (out / b.name).exists() and (out / "sub" / c.name).exists(), proc)
    assert proc.poll() is None
    stdout, stderr = proc.communicate(b"", timeout=TIMEOUT)
    assert proc.returncode == 1, stderr.decode()  # one path failed; the others were written
    lines = stderr.decode().splitlines()
    assert lines[0] == f"{tmp_path / 'missing.png'}: no such file or folder"
    assert "3 done, 0 skipped, 1 failed, 1 non-image files ignored" in lines[-1]
    records = json.loads(report.read_text())["images"]  # in the order they came to an end
    assert sorted((r["src"], r["status"]) for r in records) == sorted(
        [
            (str(a), "done"),
            (str(b), "done"),
            (str(tmp_path / "missing.png"), "failed"),
            (str(c), "done"),
        ]
    )
    with Image.open(out / "sub" / c.name) as im:
        assert im.format == "JPEG" and im.size == (120, 96)


def test_a_path_given_again_waits_for_its_first_job(tmp_path: Path) -> None:
    """The same upload twice in a row: one output, written by one job at a time (two would
    share its temporary file), and done again with --overwrite."""
    (a,) = _images(tmp_path / "in", 1)
    out = tmp_path / "out"
    proc = _start("-o", out, "--overwrite", "--backend", "bicubic", "-v")
    _send(proc, a, a, a)
    stdout, stderr = proc.communicate(b"", timeout=TIMEOUT)
    assert proc.returncode == 0, stderr.decode()
    assert stderr.decode().count(f"done {a} -> {out / a.name}") == 3
    assert sorted(os.listdir(out)) == [".upscaler.lock", a.name]


def test_command_line_inputs_come_first_and_outputs_are_not_shared(tmp_path: Path) -> None:
    a, b = _images(tmp_path / "in", 2)
    other = tmp_path / "other"
    other.mkdir()
    clash = other / a.name  # another file with a's name: the same output
    photo(24, 24).save(clash)
    out = tmp_path / "out"
    proc = _start("-o", out, "--backend", "bicubic", a)
    _until((out / a.name).exists, proc)
    _send(proc, clash, b)
    _, stderr = proc.communicate(b"", timeout=TIMEOUT)
    assert proc.returncode == 1
    assert f"{clash}: its output {out / a.name} is already the output of {a}" in stderr.decode()
    with Image.open(out / a.name) as im:
        assert im.size == (120, 96)  # a's, not the clash's (72x72)
    assert (out / b.name).exists()


def test_a_folder_of_the_command_line_is_done_then_followed_into_one_tree(
    tmp_path: Path,
) -> None:
    """`upscaler batch uploads --files-from - -o out`: the backlog, then the uploads as they
    come, every output where a batch over the folder puts it."""
    uploads, out = tmp_path / "uploads", tmp_path / "out"
    (old,) = _images(uploads / "2026", 1)
    proc = _start("-o", out, "--backend", "bicubic", uploads)
    _until((out / "2026" / old.name).exists, proc)
    (new,) = _images(uploads / "2026" / "12", 1, "jpg")
    (elsewhere,) = _images(tmp_path / "elsewhere", 1, "jpg")
    (partial,) = _images(uploads / ".incoming", 1)  # hidden: the folder's walk skips it too
    _send(proc, new, partial, elsewhere, os.path.relpath(old))  # `old` named another way
    _, stderr = proc.communicate(b"", timeout=TIMEOUT)
    assert proc.returncode == 0, stderr.decode()
    assert "3 done, 1 skipped, 0 failed, 0 non-image files ignored" in stderr.decode()
    assert not (out / ".incoming").exists()
    for path in (out / "2026" / old.name, out / "2026" / "12" / new.name, out / elsewhere.name):
        with Image.open(path) as im:
            assert im.size == (120, 96)


def test_its_own_outputs_are_not_taken_again(tmp_path: Path) -> None:
    """A hook that watches the folder holding the output folder sees the outputs appear."""
    (a,) = _images(tmp_path, 1)
    out = tmp_path / "x3"
    proc = _start("-o", out, "--backend", "bicubic")
    _send(proc, a)
    _until((out / a.name).exists, proc)
    _send(proc, out / a.name)
    _, stderr = proc.communicate(b"", timeout=TIMEOUT)
    assert proc.returncode == 1
    assert stderr.decode().splitlines()[0] == (
        f"{out / a.name}: inside the output folder {out}: not read (an output?)"
    )
    assert sorted(os.listdir(out)) == [".upscaler.lock", a.name]


def test_a_signal_stops_a_run_that_waits_for_input(tmp_path: Path) -> None:
    (a,) = _images(tmp_path / "in", 1)
    out, report = tmp_path / "out", tmp_path / "r.json"
    proc = _start("-o", out, "--report", report, "--backend", "bicubic")
    _send(proc, a)
    _until((out / a.name).exists, proc)
    proc.send_signal(signal.SIGTERM)  # its input is still open: it waits for the next path
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr.decode()
    assert "Traceback" not in stderr.decode() and "Fatal" not in stderr.decode()
    assert json.loads(report.read_text())["summary"]["done"] == 1


def test_a_list_file_and_dry_run(tmp_path: Path) -> None:
    a, b = _images(tmp_path / "in", 2)
    listing = tmp_path / "list.txt"
    listing.write_bytes(f"{a}\n{b}".encode())  # no newline after the last path
    out = tmp_path / "out"
    dry = run_cli("batch", "--files-from", listing, "-o", out, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [f"{a} -> {out / a.name}", f"{b} -> {out / b.name}"]
    assert not out.exists()
    run = run_cli("batch", "--files-from", listing, "-o", out, "--backend", "bicubic")
    assert run.returncode == 0, run.stderr
    for path in (a, b):
        with Image.open(out / path.name) as im, Image.open(path) as src:
            assert im.size == (src.width * 3, src.height * 3)
            assert np.asarray(im).std() > 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Missing argument 'INPUTS...' (or --files-from)."),
        (["--files-from", "-"], "--files-from needs -o, a local folder"),
        (["--files-from", "-", "-o", "s3://bucket/out"], "--files-from needs -o, a local folder"),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli("batch", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert os.listdir(tmp_path) == []


def test_a_line_too_long_for_a_path_is_skipped_not_held(tmp_path: Path) -> None:
    (a,) = _images(tmp_path / "in", 1)
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"x" * (200_000) + b"\n" + os.fsencode(a) + b"\n")
    out = tmp_path / "out"
    run = run_cli("batch", "--files-from", listing, "-o", out, "--backend", "bicubic")
    assert run.returncode == 1
    assert run.stderr.splitlines()[0] == f"{listing}: a line of more than 65536 bytes"
    assert (out / a.name).exists()
