"""Peak memory of `upscaler batch` on a 6000x4000 JPEG at x3 (216 megapixels out).

Budget (issue 5): 1.5 x the output's raw 8-bit RGB size + 300 MB = 1.5 x 648 MB + 300 MB.
Measured with /usr/bin/time -v (maximum resident set size) around the installed command.

    python benchmarks/large_image_memory.py [--format jpg] [--format png] [--backend onnx]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, FACTOR = 6000, 4000, 3


def make_input(folder: Path) -> Path:
    src = folder / "in" / "large.jpg"
    src.parent.mkdir(parents=True)
    with Image.open(ROOT / "examples" / "astronaut.png") as im:
        im.convert("RGB").resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC).save(src, quality=92)
    return src


def peak_rss(folder: Path, fmt: str, backend: str | None) -> tuple[int, float, str]:
    """(max RSS in bytes, wall seconds, summary line) of one run."""
    upscaler = shutil.which("upscaler", path=str(Path(sys.executable).parent)) or "upscaler"
    cmd = [
        "/usr/bin/time",
        "-v",
        upscaler,
        "batch",
        str(folder / "in"),
        "-o",
        str(folder / f"out-{fmt}"),
        "--factor",
        str(FACTOR),
        *(["--backend", backend] if backend else []),
        "--format",
        fmt,
        "--overwrite",
    ]
    err = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))  # type: ignore[union-attr]
    wall = re.search(
        r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", err
    )
    assert wall
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    summary = next(line for line in err.splitlines() if " done, " in line)
    return kib * 1024, seconds, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", action="append", choices=["jpg", "png", "webp", "tiff"])
    parser.add_argument("--backend", help="backend to run [default: upscaler's default here]")
    args = parser.parse_args()
    formats = args.format or ["jpg", "png"]
    raw = WIDTH * FACTOR * HEIGHT * FACTOR * 3
    budget = 1.5 * raw + 300e6
    over = False
    with tempfile.TemporaryDirectory() as tmp:
        make_input(Path(tmp))
        for fmt in formats:
            peak, seconds, summary = peak_rss(Path(tmp), fmt, args.backend)
            over |= peak > budget
            print(
                f"{fmt}: peak RSS {peak / 1e9:.3f} GB (budget {budget / 1e9:.3f} GB, "
                f"{peak / budget:.0%} of it), {seconds:.1f} s wall; {summary}"
            )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
