"""Two sets of weights for one factor, same process, same backend: is one slower?

    python benchmarks/weights_throughput.py OLD.onnx NEW.onnx --factor 3 [--rounds 41]

Retrained weights must cost what the old ones cost (issue 16: within 2%). Both models are
loaded once per backend (onnx fp32 and openvino, the default where bfloat16 is native) and
upscale the same photo (examples/astronaut.png, or --image) through `upscale_pixels` on one
thread (steadier on a shared machine; --threads 0: the backend's default), one warm-up each,
then old-new in even rounds and new-old in odd ones. Prints, per backend, each model's median
seconds and new/old (the median of the per-round ratios; 1.00 = same), the CPU and threads.
Also prints each model's multiply-adds per input pixel, counted from the ONNX Conv weights.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from upscaler._images.codec import decode  # noqa: E402
from upscaler._pixels.upscale import upscale_pixels  # noqa: E402
from upscaler._plugins.registry import load_backend  # noqa: E402
from upscaler.plugin import BackendOptions  # noqa: E402


def macs_per_input_pixel(model: Path) -> int:
    """Sum over the graph's Conv nodes of out x in x kh x kw (stride 1, same padding)."""
    import onnx

    graph = onnx.load(str(model)).graph
    dims = {t.name: list(t.dims) for t in graph.initializer}
    return sum(int(np.prod(dims[n.input[1]])) for n in graph.node if n.op_type == "Conv")


def _time(backend: object, pixels: np.ndarray) -> float:
    start = time.perf_counter()
    upscale_pixels(pixels, backend, None, None)  # type: ignore[arg-type]
    return time.perf_counter() - start


def compare(
    backend: str, factor: int, models: list[Path], pixels: np.ndarray, rounds: int, threads: int
) -> tuple[list[float], float]:
    """Per-model median seconds and the median NEW/OLD ratio of each round."""
    options = [BackendOptions(weights=m, threads=threads or None) for m in models]
    loaded = [load_backend(backend, factor, o) for o in options]
    for b in loaded:
        _time(b, pixels)
    times: list[list[float]] = [[], []]
    for r in range(rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for i in order:
            times[i].append(_time(loaded[i], pixels))
    ratios = [new / old for old, new in zip(*times, strict=True)]
    return [statistics.median(t) for t in times], statistics.median(ratios)


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--factor", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--image", type=Path, default=ROOT / "examples" / "astronaut.png")
    parser.add_argument("--backends", nargs="+", default=["onnx", "openvino"])
    parser.add_argument("--threads", type=int, default=1, help="0: the backend's default")
    args = parser.parse_args()
    pixels = decode(args.image).pixels
    size = f"{pixels.shape[1]}x{pixels.shape[0]}"
    print(f"{_cpu()}; {args.image.name} {size}, x{args.factor}, {args.threads or 'all'} threads")
    for name, model in (("old", args.old), ("new", args.new)):
        print(f"{name}: {model} {macs_per_input_pixel(model):,} multiply-adds per input pixel")
    for backend in args.backends:
        models = [args.old, args.new]
        (old, new), ratio = compare(backend, args.factor, models, pixels, args.rounds, args.threads)
        print(
            f"{backend}: old {old:.4f} s, new {new:.4f} s, new/old {ratio:.3f} ({args.rounds} rounds)"
        )


if __name__ == "__main__":
    main()
