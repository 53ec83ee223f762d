"""The benchmark scripts keep working (a smoke run on tiny folders; timings are not asserted)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


def _quick_run(script: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    return out


def test_throughput_benchmark_runs_on_tiny_folders() -> None:
    out = _quick_run("throughput.py")
    rows = [line.split() for line in out.stdout.splitlines()]
    contenders = {
        (r[0], r[1] + " " + r[2], r[3])
        for r in rows
        if r and r[0] in ("small", "large") and len(r) == 8
    }
    assert len(contenders) == 12  # 2 folders x 3 contenders x 2 formats
    assert all(
        float(r[-1]) == 1.0 for r in rows if len(r) == 8 and r[1] == "opencv"
    )  # the peer's own ratio
    assert sum("in memory" in line for line in out.stdout.splitlines()) == 2
    assert "GFLOP/s" in out.stdout and "upscaler --help:" in out.stdout


def test_dask_scaling_benchmark_runs_on_a_tiny_folder() -> None:
    pytest.importorskip("distributed")
    out = _quick_run("dask_scaling.py")
    lines = out.stdout.splitlines()
    assert lines[0].startswith("10 images of about 160x107")
    names = [line.split(" median ")[0].strip() for line in lines[1:]]
    assert names == ["local", "local --jobs 2", "dask --workers 2"]
    assert " x1.00 " in lines[1]
