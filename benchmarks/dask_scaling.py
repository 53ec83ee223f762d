"""The same batch with `--engine local` and `--engine dask --workers 2`, on this machine.

    python benchmarks/dask_scaling.py [--runs 3] [--images 200] [--quick]

Folder: the first N photos of BSDS500 test/ shrunk 3x (about 160x107), PNG. Contenders, each
a fresh `upscaler batch --backend onnx --overwrite -q` process writing to an empty folder,
alternated in every round: the local engine (one process, ONNX Runtime on all cores), the
local engine with `--jobs 2` (its own process pool), and the dask engine on a LocalCluster of
two single-threaded workers (started and stopped inside the timed command). Reported: wall
seconds per run and their median, and the ratio to the local engine's median.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UPSCALER_SHARED", ROOT.parent / "shared"))
CONTENDERS = {
    "local": ["--engine", "local"],
    "local --jobs 2": ["--engine", "local", "--jobs", "2"],
    "dask --workers 2": ["--engine", "dask", "--workers", "2"],
}


def make_folder(folder: Path, count: int) -> None:
    """`count` BSDS500 test photos shrunk 3x, as PNG."""
    folder.mkdir()
    for src in sorted((SHARED / "data" / "bsds500" / "test").glob("*.jpg"))[:count]:
        with Image.open(src) as im:
            small = im.convert("RGB").resize((im.width // 3, im.height // 3), Image.BICUBIC)
            small.save(folder / f"{src.stem}.png")


def timed_run(folder: Path, out: Path, options: list[str]) -> float:
    """Wall seconds of one `upscaler batch` process, from start to exit."""
    shutil.rmtree(out, ignore_errors=True)
    upscaler = Path(sys.executable).with_name("upscaler")
    command = [str(upscaler), "batch", str(folder), "-o", str(out), "--overwrite", "-q", *options]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    """Run the rounds and print one line per contender."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds (contenders alternate)")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="10 images, 1 round (smoke run)")
    args = parser.parse_args()
    runs, images = (1, 10) if args.quick else (args.runs, args.images)
    with tempfile.TemporaryDirectory(prefix="dask-scaling-") as tmp:
        folder = Path(tmp, "in")
        make_folder(folder, images)
        times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        for _ in range(runs):
            for name, options in CONTENDERS.items():
                times[name].append(timed_run(folder, Path(tmp, "out"), options))
    base = statistics.median(times["local"])
    print(f"{images} images of about 160x107, x3, onnx, {os.cpu_count()} cores, {runs} rounds")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        runs_text = " ".join(f"{s:.2f}" for s in seconds)
        print(f"{name:<18} median {median:6.2f} s  x{median / base:.2f}  runs {runs_text}")


if __name__ == "__main__":
    main()
