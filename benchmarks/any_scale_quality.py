"""Quality of `upscaler batch --scale S` on Set5 against plain bicubic at the same scale.

For each scale S: each Set5 HR image is cropped so that its size divided by S is whole (a
multiple of S's denominator), the low-resolution input is made from it with Pillow's
antialiased bicubic (as the benchmark sets are made), `upscaler batch --scale S` (the
installed command, onnx backend, fp32) upscales it back to the HR size, and the output is
scored with the shared protocol (Y of BT.601, border crop ceil(S)); the baseline is the same
input enlarged by Pillow's bicubic. Prints a Markdown table (means over the 5 images).

    .venv/bin/python benchmarks/any_scale_quality.py [--scales 1.5 2.5 3.5 6] [--backend onnx]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from upscaler._pixels.metrics import psnr_y  # noqa: E402

SET5 = ROOT.parent / "shared" / "data" / "Set5" / "image_SRF_2"


def make_pair(hr_path: Path, scale: float) -> tuple[Image.Image, Image.Image]:
    """(HR cropped to a size S divides, its bicubic low-resolution twin)."""
    step = Fraction(scale).limit_denominator(100).denominator
    with Image.open(hr_path) as im:
        hr = im.convert("RGB")
    lw, lh = (int(hr.width / scale) // step) * step, (int(hr.height / scale) // step) * step
    hr = hr.crop((0, 0, round(lw * scale), round(lh * scale)))
    return hr, hr.resize((lw, lh), Image.Resampling.BICUBIC)


def scores(scale: float, backend: str, work: Path) -> tuple[float, float]:
    """Mean Y-PSNR over Set5 of (upscaler --scale, bicubic) at `scale`."""
    lr_dir, out_dir = work / f"lr{scale:g}", work / f"out{scale:g}"
    lr_dir.mkdir()
    hrs = {}
    for path in sorted(SET5.glob("*_HR.png")):
        hrs[path.name], lr = make_pair(path, scale)
        lr.save(lr_dir / path.name)
    command = [str(Path(sys.executable).with_name("upscaler")), "batch", str(lr_dir)]
    command += ["-o", str(out_dir), "--scale", f"{scale:g}", "--backend", backend, "-q"]
    subprocess.run([*command, "--precision", "fp32"], check=True)
    ours, plain = [], []
    for name, hr in hrs.items():
        crop = math.ceil(scale)
        out = np.asarray(Image.open(out_dir / name).convert("RGB"))
        lr = Image.open(lr_dir / name)
        bicubic = np.asarray(lr.resize(hr.size, Image.Resampling.BICUBIC))
        ours.append(psnr_y(out, np.asarray(hr), crop))
        plain.append(psnr_y(bicubic, np.asarray(hr), crop))
    return float(np.mean(ours)), float(np.mean(plain))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.5, 2.5, 3.5, 6.0])
    parser.add_argument("--backend", default="onnx")
    args = parser.parse_args()
    print("| scale | network, then resize | upscaler (dB) | bicubic (dB) | gain |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for s in args.scales:
            ours, plain = scores(s, args.backend, Path(tmp))
            how = _how(s)
            print(f"| x{s:g} | {how} | {ours:.2f} | {plain:.2f} | {ours - plain:+.2f} |")


def _how(scale: float) -> str:
    from upscaler._pixels.size import network_passes

    passes = network_passes((100, 100), (round(100 * scale), round(100 * scale)))
    return " then ".join(f"x{f}" for f in passes) or "resize only"


if __name__ == "__main__":
    main()
