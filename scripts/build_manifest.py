"""Write weights/manifest.json: sha256 of each shipped model and its Set5 PSNR.

Usage: python scripts/build_manifest.py [SHARED_DIR]   (run after training and export)
The PSNR comes from the real engine with the onnx backend and the shared protocol.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from upscaler import upscale_array
from upscaler._codec import decode
from upscaler._metrics import psnr_y

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights"


def set5_psnr(shared: Path, factor: int, model: Path) -> float:
    folder = shared / "data" / "Set5" / f"image_SRF_{factor}"
    scores = []
    for lr_path in sorted(folder.glob("*_LR.png")):
        lr = decode(lr_path).pixels
        hr = decode(Path(str(lr_path).replace("_LR", "_HR"))).pixels
        scores.append(psnr_y(upscale_array(lr, factor, "onnx", weights=model), hr, factor))
    return round(float(np.mean(scores)), 3)


def entry(shared: Path, factor: int) -> dict[str, object]:
    stem = WEIGHTS / f"espcn_x{factor}"
    files = {kind: stem.with_suffix(f".{kind}") for kind in ("onnx", "keras")}
    facts = (
        json.loads(stem.with_suffix(".json").read_text())
        if stem.with_suffix(".json").exists()
        else {}
    )
    return {
        "factor": factor,
        **{
            kind: {"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
            for kind, p in files.items()
        },
        "steps": facts.get("config", {}).get("steps"),
        "set5_psnr_y": set5_psnr(shared, factor, files["onnx"]),
    }


def main() -> None:
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared"
    old = (
        json.loads((WEIGHTS / "manifest.json").read_text())
        if (WEIGHTS / "manifest.json").exists()
        else {}
    )
    manifest = {
        "training": old.get("training", {}),
        "models": [entry(shared, f) for f in (2, 3, 4)],
    }
    (WEIGHTS / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest["models"], indent=2))


if __name__ == "__main__":
    main()
