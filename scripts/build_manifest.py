"""Write weights/manifest.json: sha256 of each shipped model and its Set5 PSNR.

Usage: python scripts/build_manifest.py [SHARED_DIR [FACTS_DIR]]   (after training and export)
FACTS_DIR holds the espcn_xN.json (and espcn_xN_jpeg.json, espcn_xN_jpeghigh.json) files that
`upscaler train` wrote (default: weights/); their steps, learning rate, branch scale, JPEG
qualities, starting model and best epoch are copied per model (a model without a facts file
keeps the recipe its entry in the old manifest had). Models for JPEG inputs
(weights/espcn_xN_jpeg.onnx and espcn_xN_jpeghigh.onnx, where present) go to "jpeg_models" and
"jpeg_high_models", scored on Set5's low-resolution images saved as JPEG at quality 75 and 90
(Pillow, 4:2:0) and as they are. Last, each model's unpadded twin is written and
listed (`scripts/unpadded_models.py`).
The PSNR comes from the real engine with the onnx backend and the shared protocol; the
manifest's "training" section is kept as it is.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import unpadded_models  # this folder's
from PIL import Image

from upscaler import upscale_array
from upscaler._images.codec import decode
from upscaler._pixels.metrics import psnr_y

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights"


def set5_psnr(shared: Path, factor: int, model: Path, jpeg: int | None = None) -> float:
    folder = shared / "data" / "Set5" / f"image_SRF_{factor}"
    scores = []
    for lr_path in sorted(folder.glob("*_LR.png")):
        lr = decode(lr_path).pixels
        if jpeg is not None:
            buf = io.BytesIO()
            Image.fromarray(lr).convert("RGB").save(buf, "JPEG", quality=jpeg)
            lr = np.asarray(Image.open(buf).convert("RGB"))
        hr = decode(Path(str(lr_path).replace("_LR", "_HR"))).pixels
        scores.append(psnr_y(upscale_array(lr, factor, "onnx", weights=model), hr, factor))
    return round(float(np.mean(scores)), 3)


def _read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def entry(
    shared: Path, factor: int, facts_dir: Path, before: dict[str, Any], suffix: str = ""
) -> dict[str, object]:
    """The manifest entry of one model; its recipe from FACTS_DIR's facts file, else as the
    manifest had it (`before`: the old entries by ONNX file name)."""
    stem = WEIGHTS / f"espcn_x{factor}{suffix}"
    files = {kind: stem.with_suffix(f".{kind}") for kind in ("onnx", "keras")}
    facts = _read_json(facts_dir / f"{stem.name}.json")
    kept = before.get(files["onnx"].name, {})
    recipe = _recipe(facts) if facts else {k: kept[k] for k in (*_CONFIG, *_RESULT) if k in kept}
    digests = {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in files.items()}
    scores: dict[str, object] = {"set5_psnr_y": set5_psnr(shared, factor, files["onnx"])}
    if suffix:  # a model for JPEG inputs: scored on JPEG inputs too
        for quality in (75, 90):
            scores[f"set5_psnr_y_q{quality}"] = set5_psnr(shared, factor, files["onnx"], quality)
    return {
        "factor": factor,
        **{kind: {"file": p.name, "sha256": digests[kind]} for kind, p in files.items()},
        **recipe,
        **scores,
    }


_CONFIG = ("steps", "learning_rate", "branch_scale", "jpeg_quality", "jpeg_variants", "init")
_RESULT = ("best_epoch", "best_val_whole_psnr")


def _recipe(facts: dict[str, Any]) -> dict[str, object]:
    """What differs between factors: steps, learning rate, branches, the epoch kept."""
    config = facts.get("config", {})
    found = {k: config[k] for k in _CONFIG if config.get(k) is not None}
    return found | {k: facts[k] for k in _RESULT if k in facts}


#: File name suffix -> manifest key prefix of each kind of weights: "models", "jpeg_models"...
_KEYS = {"": "", "_jpeg": "jpeg_", "_jpeghigh": "jpeg_high_"}


def main() -> None:
    shared = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared"
    facts_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else WEIGHTS
    old = _read_json(WEIGHTS / "manifest.json")
    before = {e["onnx"]["file"]: e for k, v in old.items() if k.endswith("models") for e in v}
    models = [entry(shared, f, facts_dir, before) for f in (2, 3, 4)]
    manifest = {"training": old.get("training", {}), "models": models}  # facts of FACTS_DIR
    every = list(models)
    for suffix, key in list(_KEYS.items())[1:]:
        found = [
            entry(shared, f, facts_dir, before, suffix)
            for f in (2, 3, 4)
            if (WEIGHTS / f"espcn_x{f}{suffix}.onnx").exists()
        ]
        if found:
            manifest[f"{key}training"] = old.get(f"{key}training", {})
            manifest[f"{key}models"] = found
            every += found
    (WEIGHTS / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(every, indent=2))
    unpadded_models.main()  # each model's unpadded twin, added to the manifest


if __name__ == "__main__":
    main()
