"""The benchmark scripts keep working (a smoke run on tiny folders; timings are not asserted).

The throughput benchmark times the OpenCV peer from a virtual environment of its own
(requirements/peer.txt). Building it needs the package index, so the default test command
uses it only when it is already built and up to date; UPSCALER_BENCHMARK_PEER=1 (set by
.ci/run) builds it and runs the peer's tests too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from upscaler._plugins.registry import default_backend

WITH_PEER = os.environ.get("UPSCALER_BENCHMARK_PEER") == "1"
needs_peer = pytest.mark.skipif(
    not WITH_PEER, reason="builds the peer's venv: set UPSCALER_BENCHMARK_PEER=1 (CI does)"
)


def _run(
    script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )


def _quick_run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    out = _run(script, *args)
    assert out.returncode == 0, out.stderr
    return out


@pytest.mark.slow
def test_throughput_benchmark_runs_on_tiny_folders() -> None:
    peer = "yes" if WITH_PEER else "auto"
    out = _quick_run("throughput.py", "--ours-python", sys.executable, "--peer", peer)
    timed_peer = "peer: OpenCV 4." in out.stdout.splitlines()[0]
    assert timed_peer or not WITH_PEER, out.stdout
    rows = [line.split() for line in out.stdout.splitlines()]
    table = [r for r in rows if r and r[0] in ("small", "large") and len(r) == 9 and r[1] != "in"]
    names = {r[1] + " " + r[2] for r in table}
    ours = {"upscaler onnx", f"upscaler {default_backend()}"}
    assert names == ours | {"upscaler bicubic"} | ({"opencv peer"} if timed_peer else set())
    assert len(table) == 2 * len(names) * 2  # folders x contenders x formats, once each
    assert all(float(r[-2]) > 0 for r in table)  # megabytes of images written
    ratios = [r[-1] for r in table]
    if timed_peer:
        assert all(float(r[-1]) == 1.0 for r in table if r[1] == "opencv")
        assert all(float(x) > 0 for x in ratios)
    else:
        assert set(ratios) == {"-"}
    in_memory = [line for line in out.stdout.splitlines() if "in memory" in line]
    assert len(in_memory) == 2
    assert all(("peer upsample()" in line) == timed_peer for line in in_memory)
    assert sum(line.startswith("network only") for line in out.stdout.splitlines()) == 1
    assert f"default backend {default_backend()} (" in out.stdout.splitlines()[0]
    assert "GFLOP/s" in out.stdout and "upscaler --help:" in out.stdout
    (one,) = [line for line in out.stdout.splitlines() if "one image (PNG out):" in line]
    assert (re.search(r"onnx [\d.]+ s \([\d.]+x the peer\)", one) is not None) == timed_peer, one
    (fed,) = [line for line in out.stdout.splitlines() if "(--files-from -, PNG out)" in line]
    waits = re.findall(r"(\w+) ([\d.]+) s", fed.partition(": ")[2])
    assert {name for name, _ in waits} == {n.split()[1] for n in ours} and all(
        float(s) > 0 for _, s in waits
    ), fed
    (stages,) = [line for line in out.stdout.splitlines() if line.startswith("stages")]
    if "not measured" not in stages:  # py-spy is there: every stage named, in percent
        shares = re.findall(r"([a-z][^,:]*?) (\d+)%", stages.partition(": ")[2])
        assert [name for name, _ in shares][:3] == ["network", "encode", "decode"], stages
        assert 95 <= sum(int(p) for _, p in shares) <= 105, stages


@needs_peer
@pytest.mark.slow
def test_throughput_benchmark_names_a_peer_model_opencv_cannot_load(tmp_path: Path) -> None:
    shared = tmp_path / "shared"  # the peer is checked before any photo is read
    model = shared / "peers" / "opencv-espcn" / "ESPCN_x3.pb"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"not a TensorFlow graph")
    out = _run(
        "throughput.py",
        "--ours-python",
        sys.executable,
        env={**os.environ, "UPSCALER_SHARED": str(shared)},
    )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr  # one line, no traceback
    assert lines[0].startswith("benchmark: OpenCV 4.") and str(model) in lines[0], lines[0]


@pytest.mark.slow
def test_dask_scaling_benchmark_runs_on_a_tiny_folder() -> None:
    pytest.importorskip("distributed")
    out = _quick_run("dask_scaling.py")
    lines = out.stdout.splitlines()
    assert lines[0].startswith("10 images of about 160x107")
    names = [line.split(" median ")[0].strip() for line in lines[1:]]
    assert names == ["local", "local --jobs 2", "dask --workers 2"]
    assert " x1.00 " in lines[1]
