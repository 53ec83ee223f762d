"""upscaler against OpenCV's dnn_superres ESPCN, end to end and in memory, on one machine.

    python benchmarks/throughput.py [--runs 5] [--quick] [--peer yes|auto|no]

Folders: 100 photos of about 160x107 (BSDS500 test/ shrunk 3x) and 10 photos of about
2000x1500 (made from examples/). Contenders, alternated in each round, each a fresh process:
`upscaler batch --backend onnx` (PNG and JPEG out), the peer script (benchmarks/peer_opencv.py,
in a virtual environment of its own installed from requirements/peer.txt), and `upscaler batch
--backend bicubic` for scale. upscaler runs as a user installs it: this checkout is installed
(`pip install .`, not editable, with the versions of requirements/constraints.txt) into a virtual
environment of its own, refreshed on every invocation (`--ours-python` names another
interpreter, e.g. a development venv's). Both environments are rebuilt when their lock file
changes. Reported: median wall seconds, output megapixels per second, peak RSS, the ratio of
wall time to the peer's (<= 1.0 means we win) and the size of the files written (both write
JPEG at quality 95 with 4:2:0 chroma, libjpeg's defaults, and no optimised Huffman tables);
one small photo's run (a per-upload hook) and the wait for each photo fed to one running
`upscaler batch --files-from -`. A failure (a peer model that OpenCV cannot load, a contender
that exits non-zero) is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UPSCALER_SHARED", ROOT.parent / "shared"))
PEER_MODEL = SHARED / "peers" / "opencv-espcn" / "ESPCN_x3.pb"
PEER_VENV = ROOT / "benchmarks" / ".peer-venv"
OURS_VENV = ROOT / "benchmarks" / ".ours-venv"
LOCK = ROOT / "requirements" / "constraints.txt"
PEER_LOCK = ROOT / "requirements" / "peer.txt"
PEER = "opencv peer"
FACTOR = 3
GFLOP_PER_OUTPUT_MP = 7.07  # ESPCN x3: 31,977 multiply-adds per input pixel, 9 outputs each


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_bytes: int


def make_folders(work: Path, n_small: int, n_large: int) -> dict[str, Path]:
    """The two benchmark folders, made once per invocation."""
    small, large = work / "small", work / "large"
    small.mkdir()
    large.mkdir()
    for src in sorted((SHARED / "data" / "bsds500" / "test").glob("*.jpg"))[:n_small]:
        with Image.open(src) as im:
            im.convert("RGB").resize(
                (im.width // 3, im.height // 3), Image.Resampling.BICUBIC
            ).save(small / f"{src.stem}.png")
    samples = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".png", ".jpg"))
    for i in range(n_large):
        with Image.open(samples[i % len(samples)]) as im:
            big = im.convert("RGB").resize((2000, 1500), Image.Resampling.BICUBIC)
        (big if i < len(samples) else big.transpose(Image.Transpose.FLIP_LEFT_RIGHT)).save(
            large / f"photo{i:02}.jpg", quality=95
        )
    return {"small": small, "large": large}


class BenchmarkError(Exception):
    """Something the benchmark cannot go on without; reported as one line."""


def _venv(venv: Path, lock: Path, packages: list[str]) -> Path:
    """`venv`'s interpreter; the venv is (re)made with `packages` when `lock` has changed.

    PIP_CONSTRAINT (unlike -c) also pins the build backend in pip's isolated build.
    """
    python, stamp = venv / "bin" / "python", venv / "lock.sha256"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PIP_CONSTRAINT": str(lock)}
    pip = [str(python), "-m", "pip", "install", "-q", *packages]
    if subprocess.run(pip, env=env).returncode:
        raise BenchmarkError(f"could not install {' '.join(packages)} into {venv}")
    stamp.write_text(digest)
    return python


def peer_ready() -> bool:
    """True when the peer's environment exists and matches requirements/peer.txt."""
    stamp = PEER_VENV / "lock.sha256"
    digest = hashlib.sha256(PEER_LOCK.read_bytes()).hexdigest()
    return stamp.exists() and stamp.read_text() == digest


def peer_python() -> Path:
    """The peer's interpreter, in a virtual environment installed from requirements/peer.txt."""
    return _venv(PEER_VENV, PEER_LOCK, ["-r", str(PEER_LOCK)])


def check_peer() -> str:
    """The peer's OpenCV version, after checking that it loads the peer model."""
    python = peer_python()
    done = subprocess.run(
        [
            str(python),
            str(ROOT / "benchmarks" / "peer_opencv.py"),
            str(PEER_MODEL),
            str(FACTOR),
            "--check",
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise BenchmarkError(_last_line(done.stderr))
    version = subprocess.run(
        [str(python), "-c", "import cv2; print(cv2.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return version.stdout.strip()


def installed_upscaler() -> Path:
    """`upscaler` installed from this checkout into OURS_VENV with the locked dependencies."""
    python = _venv(OURS_VENV, LOCK, [str(ROOT)])
    # the checkout's current code, same dependencies
    pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall"]
    subprocess.run([*pip, str(ROOT)], check=True, env={**os.environ, "PIP_CONSTRAINT": str(LOCK)})
    return python.with_name("upscaler")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no message)"


def upscaler_cmd(script: Path, folder: Path, out: Path, backend: str, fmt: str) -> list[str]:
    return [
        str(script),
        "batch",
        str(folder),
        "-o",
        str(out),
        "--factor",
        str(FACTOR),
        "--backend",
        backend,
        "--format",
        fmt,
        "--overwrite",
        "-q",
    ]


def peer_cmd(folder: Path, out: Path, fmt: str) -> list[str]:
    return [
        str(peer_python()),
        str(ROOT / "benchmarks" / "peer_opencv.py"),
        str(PEER_MODEL),
        str(FACTOR),
        str(folder),
        str(out),
        "." + fmt,
    ]


def timed(cmd: list[str]) -> Run:
    """Wall time and peak RSS of one command, from /usr/bin/time -v."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise BenchmarkError(
            f"{Path(cmd[0]).name} exited {done.returncode}: {_last_line(done.stderr)}"
        )
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))  # type: ignore[union-attr]
    return Run(seconds, kib * 1024)


def output_bytes(folder: Path) -> int:
    """Bytes of the image files a contender wrote (its reports and lock file left out)."""
    return sum(
        p.stat().st_size
        for p in folder.rglob("*")
        if p.suffix in (".png", ".jpg") and not p.name.startswith(".")
    )


def output_megapixels(folder: Path) -> float:
    total = 0
    for p in folder.iterdir():
        with Image.open(p) as im:
            total += im.width * im.height
    return total * FACTOR**2 / 1e6


def end_to_end(
    folders: dict[str, Path], work: Path, runs: int, script: Path, ours: list[str], with_peer: bool
) -> list[str]:
    names = [f"upscaler {b}" for b in ours] + ([PEER] if with_peer else []) + ["upscaler bicubic"]
    contenders = {
        (name, fmt): lambda f, o, fmt=fmt, name=name: (
            peer_cmd(f, o, fmt)
            if name == PEER
            else upscaler_cmd(script, f, o, name.split()[-1], fmt)
        )
        for name in names
        for fmt in ("png", "jpg")
    }
    lines = [
        f"{'folder':<6} {'contender':<17} {'fmt':<4} {'wall s':>8} {'out MP/s':>9} {'peak MB':>8} "
        f"{'files MB':>9} {'vs peer':>8}"
    ]
    for label, folder in folders.items():
        mp = output_megapixels(folder)
        results: dict[tuple[str, str], list[Run]] = {key: [] for key in contenders}
        sizes: dict[tuple[str, str], int] = {}
        for _ in range(runs):  # alternate the contenders within each round
            for key, make in contenders.items():
                out = work / "out"
                shutil.rmtree(out, ignore_errors=True)
                results[key].append(timed(make(folder, out)))
                sizes[key] = output_bytes(out)
        for (name, fmt), rs in results.items():
            wall = statistics.median(r.seconds for r in rs)
            peak = max(r.peak_bytes for r in rs) / 1e6
            ratio = "-"
            if with_peer:
                ratio = f"{wall / statistics.median(r.seconds for r in results[PEER, fmt]):.2f}"
            lines.append(
                f"{label:<6} {name:<17} {fmt:<4} {wall:8.3f} {mp / wall:9.2f} {peak:8.0f} "
                f"{sizes[name, fmt] / 1e6:9.2f} {ratio:>8}"
            )
    return lines


def in_memory(folders: dict[str, Path], ours: list[str], with_peer: bool) -> list[str]:
    """Per output megapixel: our engine on decoded images against the peer's upsample()."""
    lines = []
    for label, folder in folders.items():
        ms = {backend: _ours_in_memory(folder, backend) for backend in ours}
        parts = [
            f"upscaler {b} {s * 1e3:.1f} ms/MP ({GFLOP_PER_OUTPUT_MP / s:.0f} GFLOP/s)"
            for b, s in ms.items()
        ]
        if with_peer:
            peer = _peer_in_memory(folder)
            ratios = ", ".join(f"{b} {s / peer:.2f}" for b, s in ms.items())
            parts.append(f"peer upsample() {peer * 1e3:.1f} ms/MP, ratio {ratios}")
        lines.append(f"{label:<6} in memory: " + ", ".join(parts))
    return lines


def _ours_in_memory(folder: Path, backend: str) -> float:
    """Seconds per output megapixel of upscale_array on the folder's decoded images."""
    from upscaler import upscale_array
    from upscaler._images.codec import decode

    images = [decode(p).pixels for p in sorted(folder.iterdir())]
    upscale_array(images[0], FACTOR, backend)  # load and warm up
    started = time.perf_counter()
    pixels = sum(
        upscale_array(img, FACTOR, backend).shape[0] * img.shape[1] * FACTOR for img in images
    )
    return (time.perf_counter() - started) / (pixels / 1e6)


def network_only(ours: list[str]) -> str:
    """The network alone on 4x266x266 luma tiles, all cores, each backend in this process."""
    from upscaler._plugins.registry import load_backend
    from upscaler.plugin import BackendOptions

    tiles = np.random.default_rng(0).random((4, 266, 266, 1), dtype=np.float32)
    mp = tiles.size * FACTOR**2 / 1e6
    backends = {b: load_backend(b, FACTOR, BackendOptions(threads=os.cpu_count())) for b in ours}
    times: dict[str, list[float]] = {b: [] for b in ours}
    for _ in range(12):  # alternating
        for name, backend in backends.items():
            started = time.perf_counter()
            backend.upscale(tiles)
            times[name].append(time.perf_counter() - started)
    ms = {b: statistics.median(t[2:]) / mp * 1e3 for b, t in times.items()}
    parts = [f"{b} ({getattr(backends[b], 'precision', '?')}) {ms[b]:.1f} ms/MP" for b in ours]
    ratio = f", ratio {ms[ours[0]] / ms['onnx']:.2f} to onnx" if ours[0] != "onnx" else ""
    return f"network only, 4x266x266 tiles, {os.cpu_count()} threads: " + ", ".join(parts) + ratio


def _peer_in_memory(folder: Path) -> float:
    """Seconds per output megapixel of the peer's upsample() on the same images."""
    out = subprocess.run(
        [*peer_cmd(folder, folder, "png")[:5], "--in-memory"],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise BenchmarkError(f"peer --in-memory exited {out.returncode}: {_last_line(out.stderr)}")
    seconds, pixels = out.stdout.split()
    return float(seconds) / (float(pixels) / 1e6)


def matmul_gflops() -> str:
    """A large float32 matrix product, with OPENBLAS_CORETYPE/L2_SIZE unset (see env notes)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    }
    code = (
        "import numpy as np, time\n"
        "a = np.random.rand(4096, 4096).astype(np.float32); a @ a\n"
        "t = time.perf_counter(); [a @ a for _ in range(5)]; s = (time.perf_counter() - t) / 5\n"
        "print(2 * 4096**3 / s / 1e9)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return f"numpy float32 4096x4096 matrix product: {float(out.stdout):.0f} GFLOP/s"


def startup(
    folders: dict[str, Path], work: Path, script: Path, ours: list[str], with_peer: bool
) -> list[str]:
    """`upscaler --help`, and one small photo (PNG out: what a per-upload hook runs) by each
    backend of `ours` and the peer script, alternating, 5 rounds, medians and ratios; then
    the same photos fed to one run of each backend (`streamed`)."""
    help_runs = [timed([str(script), "--help"]).seconds for _ in range(5)]
    one = work / "one"
    one.mkdir()
    shutil.copy(next(folders["small"].iterdir()), one)
    cmds = {b: upscaler_cmd(script, one, work / "one-out", b, "png") for b in ours}
    if with_peer:
        cmds["peer"] = peer_cmd(one, work / "one-peer", "png")
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(5):
        for name, cmd in cmds.items():
            times[name].append(timed(cmd).seconds)
    medians = {name: statistics.median(t) for name, t in times.items()}
    line = f"upscaler --help: {statistics.median(help_runs):.3f} s; one image (PNG out):"
    for name, seconds in medians.items():
        line += f" {name} {seconds:.3f} s"
        if with_peer and name != "peer":
            line += f" ({seconds / medians['peer']:.2f}x the peer)"
        line += ","
    lines = [line.rstrip(",")]
    fed = min(STREAMED, sum(1 for _ in folders["small"].iterdir()))
    line = f"one run fed {fed} small photos one at a time (--files-from -, PNG out), "
    line += "median from a path written to its output in place:"
    for backend in ours:
        seconds = streamed(script, folders["small"], work / f"streamed-{backend}", backend)
        line += f" {backend} {seconds:.3f} s"
        if with_peer:
            line += f" ({seconds / medians['peer']:.2f}x the peer's one-image run)"
        line += ","
    return [*lines, line.rstrip(",")]


#: Photos fed to one streamed run (`streamed`).
STREAMED = 10


def streamed(script: Path, folder: Path, work: Path, backend: str) -> float:
    """What a per-upload hook waits for when one `upscaler batch --files-from -` serves every
    upload: the median time from a path written to its pipe to the output being in place,
    photo after photo (each sent when the one before is written)."""
    photos, out = sorted(folder.iterdir())[:STREAMED], work / "out"
    cmd = upscaler_cmd(script, folder, out, backend, "png")
    cmd.remove(str(folder))
    proc = subprocess.Popen([*cmd, "--files-from", "-"], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    waits = []
    try:
        for src in photos:
            dst = out / src.with_suffix(".png").name
            start = time.perf_counter()
            proc.stdin.write(os.fsencode(src) + b"\n")
            proc.stdin.flush()
            while not dst.exists():
                if proc.poll() is not None:
                    raise RuntimeError(f"upscaler batch --files-from ended early ({backend})")
                time.sleep(0.001)
            waits.append(time.perf_counter() - start)
    finally:
        proc.stdin.close()
        proc.wait()
    return statistics.median(waits)


#: Stages of a run, each recognised by a frame of a sample: (function or "", a piece of its
#: file's path or ""); the first stage that a frame names, from the innermost frame out, takes
#: the sample.
STAGES: list[tuple[str, list[tuple[str, str]]]] = [
    ("network", [("", "onnxruntime/"), ("", "openvino/"), ("upscale", "backends/")]),
    (
        "encode",
        [
            ("", "_images/jpegstrips.py"),
            ("", "_images/png.py"),
            ("_save", "PIL/"),
            ("encode_rows", ""),
            ("encode_frames", ""),
        ],
    ),
    (
        "decode",
        [
            ("open_rows", ""),
            ("decode", "_images/codec.py"),
            ("load", "PIL/ImageFile.py"),
            ("", "_images/vips.py"),
            ("read_frames", ""),
        ],
    ),
    ("consistency metric", [("", "_pixels/metrics.py"), ("_see", ""), ("_compare", "")]),
    ("colour and chroma", [("", "_pixels/color.py"), ("", "_pixels/resize.py")]),
    (
        "bands, tiling and stitching",
        [
            ("", "_pixels/upscale.py"),
            ("", "_pixels/tiling.py"),
            ("", "_pixels/canvas.py"),
            ("", "_pixels/stages.py"),
            ("", "_pixels/pipeline.py"),
            ("", "_pixels/rows.py"),
        ],
    ),
    ("model load", [("load_backend", "")]),
    ("start-up (imports)", [("<module>", "")]),
]
OTHER = "other (plan, engine, threads, reports)"


def _stage(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        func, _, where = frame.partition(" (")
        path = where.rpartition(":")[0]
        for name, rules in STAGES:
            if any((not f or f == func) and (not p or p in path) for f, p in rules):
                return name
    return OTHER


def stage_breakdown(folder: Path, work: Path, script: Path, backend: str) -> str:
    """Where the time of a run over `folder` (JPEG out) goes: py-spy samples every thread
    (100 a second) and each sample goes to the stage of its innermost frame that names one."""
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if spy is None:
        return "stages: not measured (needs py-spy: pip install py-spy)"
    raw = work / "stages.txt"
    cmd = [spy, "record", "-r", "100", "-t", "-f", "raw", "-o", str(raw), "--"]
    cmd += upscaler_cmd(script, folder, work / "stages-out", backend, "jpg")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode or not raw.exists():
        return f"stages: not measured (py-spy: {_last_line(done.stderr)})"
    counts = dict.fromkeys([*(name for name, _ in STAGES), OTHER], 0)
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        counts[_stage(stack)] += int(n)
    total = sum(counts.values()) or 1
    parts = ", ".join(f"{k} {v / total:.0%}" for k, v in counts.items())
    photos = len(list(folder.iterdir()))
    return f"stages, {photos} small photos, {backend}, JPEG out (py-spy, all threads): {parts}"


def _precision_of(backend: str) -> str:
    from upscaler._plugins.registry import auto_precision, load_plugin

    return auto_precision(load_plugin(backend)) or "?"


def cpu_model() -> str:
    """The processor's model name (every figure says where it was measured)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds of alternating runs")
    parser.add_argument(
        "--quick", action="store_true", help="tiny folders, one round (a smoke test)"
    )
    parser.add_argument(
        "--ours-python",
        type=Path,
        help="interpreter whose `upscaler` to time [default: a venv with this checkout installed]",
    )
    parser.add_argument(
        "--peer",
        choices=("yes", "auto", "no"),
        default="yes",
        help="time the OpenCV peer: yes (build its venv from requirements/peer.txt if needed), "
        "auto (only if that venv is already built and up to date), no [default: yes]",
    )
    args = parser.parse_args()
    try:
        return _run(args)
    except BenchmarkError as exc:
        print(f"benchmark: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    with_peer = args.peer == "yes" or (args.peer == "auto" and peer_ready())
    peer = f"OpenCV {check_peer()}" if with_peer else f"not timed (--peer {args.peer})"
    script = args.ours_python.with_name("upscaler") if args.ours_python else installed_upscaler()
    from upscaler._plugins.precision import bf16_features
    from upscaler._plugins.registry import default_backend

    # The default backend (openvino where bfloat16 is native), then the mission's onnx.
    ours = list(dict.fromkeys([default_backend(), "onnx"]))
    n_small, n_large, runs = (4, 1, 1) if args.quick else (100, 10, args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folders = make_folders(work, n_small, n_large)
        print(
            f"machine: {cpu_model()}, {os.cpu_count()} cores, native bfloat16: "
            f"{', '.join(bf16_features()) or 'none'}; default backend {ours[0]} "
            f"({_precision_of(ours[0])}); {runs} alternating rounds; median of each; "
            f"upscaler: {script}; peer: {peer}",
            flush=True,
        )
        for line in [
            *end_to_end(folders, work, runs, script, ours, with_peer),
            *in_memory(folders, ours, with_peer),
            network_only(ours),
            matmul_gflops(),
            *startup(folders, work, script, ours, with_peer),
            stage_breakdown(folders["small"], work, script, ours[0]),
        ]:
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
