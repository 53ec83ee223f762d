"""`upscaler batch --engine dask`: a real Dask cluster on 127.0.0.1, driven by the real command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from PIL import Image

from conftest import install_plugin, photo, run_cli, run_cli_without, shrunk_bsds, upscaler_command

pytest.importorskip("distributed")

#: Test backends: nearest neighbour; `slow` sleeps in every call; any image 13 pixels wide
#: kills the process that upscales it (as a segfaulting native library would). Each load is
#: logged to $LOADS_LOG: process id and the threads asked for.
PLUGIN = """
import os, signal, time

class Nearest:
    halo = 0
    channels = "color"
    default_tile = 64

    def __init__(self, factor, delay):
        self.factor, self.delay = factor, delay

    def upscale(self, tiles):
        if tiles.shape[2] == 13:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.delay)
        return tiles.repeat(self.factor, axis=1).repeat(self.factor, axis=2)

class Plugin:
    factors = (2,)

    def __init__(self, delay):
        self.delay = delay

    def unavailable_reason(self):
        return None

    def create(self, factor, options):
        time.sleep(self.delay * 3)  # loading a model takes a while
        with open(os.environ["LOADS_LOG"], "a") as log:  # which process loaded it, how
            log.write(f"{os.getpid()} {options.threads}\\n")
        return Nearest(factor, self.delay)

crashy = Plugin(0.0)
slow = Plugin(0.1)
"""


@pytest.fixture()
def plugin_env(tmp_path: Path) -> dict[str, str]:
    env = install_plugin(
        tmp_path / "site", "dask_test_backends", PLUGIN, {"crashy": "crashy", "slow": "slow"}
    )
    return {**env, "LOADS_LOG": str(tmp_path / "loads.log")}


def _worker_loads(env: dict[str, str]) -> dict[str, list[str]]:
    """Threads asked for by each worker process's backend loads (the driver's, None, left out)."""
    loads: dict[str, list[str]] = {}
    for line in Path(env["LOADS_LOG"]).read_text().splitlines():
        pid, threads = line.split()
        loads.setdefault(pid, []).append(threads)
    driver = [pid for pid, threads in loads.items() if threads == ["None"]]
    assert len(driver) == 1, loads  # the driver checks the backend loads, with no thread count
    return {pid: threads for pid, threads in loads.items() if pid not in driver}


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """Real photos (BSDS500, shrunk by 3) in PNG and JPEG, odd modes, a subfolder, a bad file."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    for i, (name, small) in enumerate(shrunk_bsds(8)):
        small.save(root / ("sub" if i % 3 == 0 else "") / f"{name}{'.png' if i % 2 else '.jpg'}")
    photo(40, 30, "RGBA").save(root / "alpha.png")
    photo(40, 30, "L").save(root / "sub" / "grey.png")
    (root / "broken.png").write_bytes(b"not a picture")
    return root


def _records(report: Path, out: Path) -> list[dict[str, Any]]:
    """The report's records without timings, outputs relative to `out`, sorted by input."""
    images = json.loads(report.read_text())["images"]
    for r in images:
        r.pop("seconds")
        r["dst"] = r["dst"].replace(str(out), "OUT")
    return sorted(images, key=lambda r: r["src"])


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _leftovers(root: Path) -> list[Path]:
    """Temporary files of interrupted writes."""
    return [p for p in root.rglob(".*") if p.name.endswith(".tmp")]


def _tiny_photos(tmp_path: Path, count: int, prefix: str = "") -> tuple[Path, list[str]]:
    """`count` small photos in tmp_path/in, and their names."""
    src = tmp_path / "in"
    src.mkdir()
    names = [f"{prefix}{i:02}.png" for i in range(count)]
    for i, name in enumerate(names):
        photo(20, 14, seed=i).save(src / name)
    return src, names


def _assert_nearest_x2(src: Path, out: Path, names: list[str]) -> None:
    """Each output is its input enlarged twice by the test backend's nearest neighbour."""
    for name in names:
        expected = np.asarray(Image.open(src / name)).repeat(2, 0).repeat(2, 1)
        assert np.array_equal(np.asarray(Image.open(out / name)), expected), name


#: Options that run the test backends on a local cluster of two workers.
ON_TWO_WORKERS = ("--factor", 2, "--engine", "dask", "--workers", 2)


@pytest.mark.slow
def test_dask_gives_the_same_outputs_and_records_as_local(photos: Path, tmp_path: Path) -> None:
    local, dask = tmp_path / "local", tmp_path / "dask"
    ran_local = run_cli("batch", photos, "-o", local, "--report", tmp_path / "local.json")
    args = ("batch", photos, "-o", dask, "--engine", "dask", "--workers", 2)
    ran_dask = run_cli(*args, "--report", tmp_path / "dask.json")
    assert ran_local.returncode == ran_dask.returncode == 1, ran_dask.stderr
    assert f"{photos / 'broken.png'}: not a recognised image file" in ran_dask.stderr
    assert "10 done, 0 skipped, 1 failed" in ran_dask.stderr
    records = _records(tmp_path / "dask.json", dask)
    assert records == _records(tmp_path / "local.json", local)
    assert [r["status"] for r in records].count("done") == 10
    assert _files(dask) == _files(local) and len(_files(dask)) == 11  # 10 images + the lock
    assert not _leftovers(dask)


@pytest.mark.slow
def test_dask_rerun_skips_everything_without_submitting_it(photos: Path, tmp_path: Path) -> None:
    (photos / "broken.png").unlink()
    out = tmp_path / "out"
    args = ("batch", photos, "-o", out, "--engine", "dask", "--workers", 2)
    assert run_cli(*args).returncode == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.*")}
    rerun = run_cli(*args, "--report", tmp_path / "r.json")
    assert rerun.returncode == 0 and "0 done, 10 skipped, 0 failed" in rerun.stderr
    # workers never skip (the driver decided), so a submitted image would say "done"
    assert {r["status"] for r in _records(tmp_path / "r.json", out)} == {"skipped"}
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.*")} == before
    # nothing to submit: not even a scheduler to reach (nothing listens at this one)
    dead = f"tcp://127.0.0.1:{_free_port()}"
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}
    offline = run_cli("batch", photos, "-o", out, "--engine", "dask", "--scheduler", dead, env=env)
    assert offline.returncode == 0 and "0 done, 10 skipped" in offline.stderr, offline.stderr


@pytest.mark.slow
def test_image_that_always_kills_its_worker_fails_alone(
    plugin_env: dict[str, str], tmp_path: Path
) -> None:
    src, good = _tiny_photos(tmp_path, 64, "ok")
    photo(13, 9).save(src / "bad.png")  # 65 images: chunks of 3, so it first fails with two others
    out = tmp_path / "out"
    result = run_cli(
        *("batch", src, "-o", out, "--backend", "crashy", *ON_TWO_WORKERS),
        *("--report", tmp_path / "r.json"),
        env=plugin_env,
    )
    assert result.returncode == 1, result.stderr
    assert f"{src / 'bad.png'}: worker process died (3 attempts)" in result.stderr.splitlines()
    assert "64 done, 0 skipped, 1 failed" in result.stderr
    statuses = {Path(r["src"]).name: r["status"] for r in _records(tmp_path / "r.json", out)}
    assert statuses == {**dict.fromkeys(good, "done"), "bad.png": "failed"}
    _assert_nearest_x2(src, out, good)
    assert not (out / "bad.png").exists() and not _leftovers(out)


def _worker_pids(driver: int) -> list[int]:
    """The Dask worker processes of a LocalCluster started by process `driver`."""
    children = psutil.Process(driver).children()
    return [p.pid for p in children if "spawn_main" in " ".join(p.cmdline())]


@pytest.mark.slow
def test_worker_killed_mid_run_still_writes_every_image_once(
    plugin_env: dict[str, str], tmp_path: Path
) -> None:
    src, names = _tiny_photos(tmp_path, 30)
    out = tmp_path / "out"
    args = (
        "batch",
        src,
        "-o",
        out,
        "--backend",
        "slow",
        *ON_TWO_WORKERS,
        "--report",
        tmp_path / "r.json",
    )
    proc = subprocess.Popen(
        [*upscaler_command(), *map(str, args)],
        env=plugin_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    written = _wait_for_outputs(out, 4, proc)
    victim = _worker_pids(proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=300)
    assert len(written) < 30, "the run ended before the kill: nothing was tested"
    assert proc.returncode == 0, stderr
    assert "30 done, 0 skipped, 0 failed" in stderr
    records = _records(tmp_path / "r.json", out)
    assert sorted(Path(r["src"]).name for r in records) == names
    assert {r["status"] for r in records} == {"done"}
    assert sorted(p.name for p in out.iterdir()) == [".upscaler.lock", *names]  # no temp files
    _assert_nearest_x2(src, out, names)
    # the two workers, and the one that replaced the victim if a chunk was left for it (on a
    # busy machine the survivor may take them all)
    loads = _worker_loads(plugin_env)
    assert len(loads) in (2, 3) and all(threads == ["1"] for threads in loads.values()), loads


@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGTERM, True)],
    ids=["ctrl-c to the process group", "SIGTERM to upscaler", "SIGTERM to the group (systemd)"],
)
@pytest.mark.slow
def test_stopped_run_finishes_the_images_in_hand_and_reports(
    sig: signal.Signals, group: bool, plugin_env: dict[str, str], tmp_path: Path
) -> None:
    src, names = _tiny_photos(tmp_path, 120)  # chunks of 4
    out, report = tmp_path / "out", tmp_path / "r.json"
    args = ("batch", src, "-o", out, "--backend", "slow", *ON_TWO_WORKERS, "--report", report)
    proc = subprocess.Popen(
        [*upscaler_command(), *map(str, args)],
        env=plugin_env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal gives a command
    )
    _wait_for_outputs(out, 3, proc)
    os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)  # local workers ignore Ctrl-C: no restarts, no hang
    assert proc.returncode == 128 + sig, stderr
    summary = json.loads(report.read_text())["summary"]
    # workers stop between images: fewer than the 16 images of the 4 chunks in flight
    assert 3 <= summary["done"] < 14 and summary["failed"] == 0, stderr
    assert len(list(out.iterdir())) == summary["done"] + 1  # the lock; no partial files


def _wait_for_outputs(out: Path, count: int, proc: subprocess.Popen[str]) -> list[Path]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        written = list(out.glob("*.png")) if out.is_dir() else []
        if len(written) >= count:
            return written
        time.sleep(0.01)
    pytest.fail("the run wrote no outputs")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def cluster(plugin_env: dict[str, str]) -> Iterator[str]:
    """A scheduler and a worker (one process, two threads) started with the stock `dask`
    command, on 127.0.0.1."""
    dask_cli = str(Path(sys.executable).with_name("dask"))
    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":", 1)[1]
    procs = [
        subprocess.Popen(
            [dask_cli, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
            env=plugin_env,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [
                dask_cli,
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nworkers",
                "1",
                "--nthreads",
                "2",
            ],
            env=plugin_env,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=60)


@pytest.mark.slow
def test_joins_a_cluster_started_with_the_dask_commands(
    cluster: str, plugin_env: dict[str, str], tmp_path: Path
) -> None:
    src, names = _tiny_photos(tmp_path, 6)
    # relative paths: the workers run in another folder, and the report keeps them as given
    args = ("batch", "in", "-o", "out", "--backend", "slow", "--factor", 2, "--engine", "dask")
    result = run_cli(*args, "--scheduler", cluster, "-v", env=plugin_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "6 done, 0 skipped, 0 failed" in result.stderr
    assert f"done in/00.png -> {tmp_path / 'out' / '00.png'} (" in result.stderr
    _assert_nearest_x2(src, tmp_path / "out", names)
    # one load in the worker process, shared by its two threads, with two intra-op threads
    assert list(_worker_loads(plugin_env).values()) == [["2"]]


@pytest.mark.slow
def test_unreachable_scheduler_is_an_error(tmp_path: Path) -> None:
    photo(8, 8).save(tmp_path / "a.png")
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    args = ("batch", tmp_path / "a.png", "-o", tmp_path / "o", "--engine", "dask")
    result = run_cli(*args, "--scheduler", address, env=env)
    assert result.returncode == 2
    assert f"upscaler: error: cannot connect to the Dask scheduler at {address}" in result.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--workers", "2"), "--scheduler and --workers need --engine dask"),
        (("--engine", "dask", "--jobs", "2"), "--jobs is for --engine local"),
        (
            ("--engine", "dask", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"),
            "--workers starts a local cluster",
        ),
    ],
)
def test_engine_options_that_do_not_go_together(
    options: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    photo(8, 8).save(tmp_path / "a.png")
    result = run_cli("batch", tmp_path / "a.png", "-o", tmp_path / "o", *options)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "o").exists()


def test_engine_dask_without_the_extra_is_a_usage_error(tmp_path: Path) -> None:
    photo(8, 8).save(tmp_path / "a.png")
    result = run_cli_without("distributed", "batch", tmp_path / "a.png", "--engine", "dask")
    assert result.returncode == 2
    assert "needs `pip install upscaler[dask]` (distributed not installed)" in result.stderr
    assert not tmp_path.with_name(f"{tmp_path.name}-x3").exists()


@pytest.mark.slow
def test_compare_runs_on_dask_with_the_scores_of_a_local_run(tmp_path: Path) -> None:
    """`compare` goes through the batch layer, so any engine runs it."""
    hr = tmp_path / "hr"
    hr.mkdir()
    for seed in range(3):
        photo(48, 40, seed=seed).save(hr / f"p{seed}.png")
    args = ("compare", hr, "--factor", 2, "--backend", "bicubic", "--backend", "onnx")
    local = run_cli(*args, "-o", tmp_path / "local")
    dask = run_cli(*args, "-o", tmp_path / "dask", "--engine", "dask", "--workers", 2)
    assert local.returncode == dask.returncode == 0, dask.stderr
    on_dask = json.loads((tmp_path / "dask" / "report.json").read_text())
    here = json.loads((tmp_path / "local" / "report.json").read_text())
    assert on_dask["images"] == here["images"] and len(here["images"]) == 3
    assert {b: s["psnr"] for b, s in on_dask["summary"].items()} == {
        b: s["psnr"] for b, s in here["summary"].items()
    }


@pytest.mark.slow
def test_a_worker_loads_the_model_of_the_first_network_pass_only(tmp_path: Path) -> None:
    """Issue 29: workers pre-loaded the model at the run's --factor (3 by default), also for
    --scale 1.5, which runs the network at x2 only (the x3 model loaded for nothing)."""
    photo(40, 30).save(tmp_path / "a.png")
    code = f"""
from pathlib import Path
from distributed import Client, LocalCluster
from upscaler._run.engines.dask import run_chunk
from upscaler._plugins.registry import loaded_backends
from upscaler._pixels.size import OutputSize
from upscaler._run.spec import Job, Settings

job = Job(Path({str(tmp_path / "a.png")!r}), Path({str(tmp_path / "o.png")!r}), Path("a.png"))
settings = Settings("bicubic", OutputSize(scale=1.5), skip_existing=False)
with LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster:
    with Client(cluster) as client:  # a worker in this process: its loads are ours
        (record,) = client.submit(run_chunk, [job], settings, "r1").result()
print(record.status, record.output_size, [(n, f) for n, f, _ in loaded_backends()])
"""
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split("\n")[-2] == "done (60, 45) [('bicubic', 2)]", ran.stdout
