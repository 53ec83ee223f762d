"""Set5 with JPEG inputs: bicubic, the clean weights, the default command's choice of weights
(`--input-kind auto`) and candidate weights, per factor and JPEG quality, through `upscaler
batch --reference` (the shared protocol: Y of BT.601 studio-swing, uint8 output, border crop =
factor, mean over the five images).

The low-resolution inputs are Set5's own (`img_00N_SRF_s_LR.png`, MATLAB bicubic), saved by
Pillow as JPEG at each quality (default settings: 4:2:0), or kept as PNG ("clean"). Set5 is
an evaluation set: nothing is chosen on it.

    python benchmarks/jpeg_quality.py --factor 3 --quality 75 --quality 90 \
        --weights 3=runs/espcn_x3_jpeg.onnx --weights 3=runs/espcn_x3_jpeghigh.onnx
    python benchmarks/jpeg_quality.py --hr-dir HELD_OUT --factor 3 --quality 95   # choices
    python benchmarks/jpeg_quality.py --hr-dir HELD_OUT --codec webp --factor 3 \
        --weights 3=weights/espcn_x3_jpeg.onnx    # lossy WebP inputs instead

With `--hr-dir`, the photos of that folder are the ground truth instead (cropped to a multiple
of the factor, shrunk with Pillow's antialiased bicubic, then saved as JPEG): choices such as
the quality from which JPEGs count as clean are made on held-out photos, never on Set5.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UPSCALER_SHARED", ROOT.parent / "shared"))
SET5 = SHARED / "data" / "Set5"


#: --codec: the lossy format the low-resolution inputs are saved in, and its suffix.
CODECS = {"jpeg": "jpg", "webp": "webp"}


def held_inputs(
    folder: Path, photos: Path, factor: int, quality: int | None, suffix: str = "jpg"
) -> tuple[Path, Path]:
    """(LR folder, HR folder) made from the photos of `photos`."""
    lr, hr = folder / "lr", folder / "hr"
    lr.mkdir(parents=True)
    hr.mkdir()
    for path in sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".png")):
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        w, h = rgb.width // factor * factor, rgb.height // factor * factor
        truth = rgb.crop((0, 0, w, h))
        truth.save(hr / f"{path.stem}.png")
        small = truth.resize((w // factor, h // factor), Image.Resampling.BICUBIC)
        if quality is None:
            small.save(lr / f"{path.stem}.png")
        else:
            small.save(lr / f"{path.stem}.{suffix}", quality=quality)
    return lr, hr


def inputs(
    folder: Path, factor: int, quality: int | None, suffix: str = "jpg"
) -> tuple[Path, Path]:
    """(LR folder, HR folder) of Set5 at `factor`, LR as JPEG of `quality` (None: PNG)."""
    lr, hr = folder / "lr", folder / "hr"
    lr.mkdir(parents=True)
    hr.mkdir()
    for path in sorted((SET5 / f"image_SRF_{factor}").glob("*_HR.png")):
        stem = path.name.removesuffix("_HR.png")
        shutil.copy(path, hr / f"{stem}.png")
        with Image.open(path.with_name(f"{stem}_LR.png")) as im:
            if quality is None:
                im.save(lr / f"{stem}.png")
            else:
                im.convert("RGB").save(lr / f"{stem}.{suffix}", quality=quality)
    return lr, hr


def mean_psnr(lr: Path, hr: Path, out: Path, factor: int, args: list[str]) -> float:
    exe = shutil.which("upscaler", path=str(Path(sys.executable).parent)) or "upscaler"
    report = out.with_suffix(".json")
    cmd = [
        exe,
        "batch",
        str(lr),
        "-o",
        str(out),
        "--factor",
        str(factor),
        "--reference",
        str(hr),
        "--format",
        "png",
        "--report",
        str(report),
        "-q",
        *args,
    ]
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)
    records = json.loads(report.read_text())["images"]
    scores = [r["psnr"] for r in records]
    assert scores and None not in scores, records
    return sum(scores) / len(scores)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=int, action="append", choices=[2, 3, 4])
    parser.add_argument("--quality", type=int, action="append", help="JPEG quality (repeat)")
    parser.add_argument("--hr-dir", type=Path, help="photos to score on instead of Set5")
    parser.add_argument(
        "--codec", choices=sorted(CODECS), default="jpeg", help="lossy format of the inputs"
    )
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="FACTOR=PATH",
        help="candidate .onnx weights for a factor (repeat: one column each)",
    )
    args = parser.parse_args()
    factors = args.factor or [2, 3, 4]
    qualities: list[int | None] = [*(args.quality or [75, 90]), None]
    candidates: dict[str, list[str]] = {}
    for item in args.weights:
        factor_, path = item.split("=", 1)
        candidates.setdefault(factor_, []).append(path)
    where = args.hr_dir or "Set5"
    print(
        f"{where}, {args.codec} inputs, PSNR-Y dB (shared protocol) through upscaler batch"
        " --reference, onnx fp32; default: the weights --input-kind auto picks"
    )
    print("factor | input | bicubic | clean weights | default | candidates... (each - bicubic)")
    onnx = ["--backend", "onnx"]
    with tempfile.TemporaryDirectory() as tmp:
        for factor in factors:
            for quality in qualities:
                name = "clean" if quality is None else f"q{quality}"
                folder = Path(tmp) / f"x{factor}-{name}"
                suffix = CODECS[args.codec]
                if args.hr_dir:
                    lr, hr = held_inputs(folder, args.hr_dir, factor, quality, suffix)
                else:
                    lr, hr = inputs(folder, factor, quality, suffix)
                bicubic = mean_psnr(lr, hr, folder / "bicubic", factor, ["--backend", "bicubic"])
                scores = [
                    mean_psnr(lr, hr, folder / "clean", factor, [*onnx, "--input-kind", "clean"]),
                    mean_psnr(lr, hr, folder / "auto", factor, onnx),
                ]
                for i, weights in enumerate(candidates.get(str(factor), [])):
                    own = [*onnx, "--weights", weights]
                    scores.append(mean_psnr(lr, hr, folder / f"candidate{i}", factor, own))
                cells = " | ".join(f"{s:.3f} ({s - bicubic:+.3f})" for s in scores)
                print(f"x{factor} | {name} | {bicubic:.3f} | {cells}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
