"""Write the unpadded twin of every shipped ESPCN model and list it in weights/manifest.json.

Usage: python scripts/unpadded_models.py        (after scripts/build_manifest.py, which calls it)

A twin has the same layers and weights with unpadded ("VALID") convolutions, and the
nearest-neighbour residual cropped to match: given a tile with ESPCN's halo of context on every
side, it returns the output of the tile's core only, which equals the shipped model's output of
the same tile cropped (`tests/test_espcn.py` checks it), without computing the output of the
context around it. The backends run interior tiles through it (`Backend.upscale_core`).

Written here, at build time, because editing an ONNX graph needs the `onnx` package, which
takes about 2 s to import: the installed tool reads the twin as a file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights"
#: Context ESPCN needs around a pixel (5x5, 3x3, 3x3, 3x3): what the twin crops.
HALO = 5


def twin_path(model: Path) -> Path:
    return model.with_name(model.stem + ".unpadded.onnx")


def write_twin(model: Path) -> Path:
    """The unpadded twin of ESPCN `model` (.onnx), written beside it."""
    m = onnx.load(str(model))
    graph = m.graph
    convs = [n for n in graph.node if n.op_type == "Conv"]
    kernels = sum(
        int(helper.get_attribute_value(a)[0]) - 1
        for n in convs
        for a in n.attribute
        if a.name == "kernel_shape"
    )
    if kernels != 2 * HALO:
        raise ValueError(f"{model.name}: convolutions reach {kernels // 2} pixels, not {HALO}")
    for node in convs:
        for attr in node.attribute:
            if attr.name == "auto_pad":
                attr.s = b"VALID"
            if attr.name == "pads":
                raise ValueError(f"{model.name}: explicit pads are not expected")
    (add,) = [n for n in graph.node if n.op_type == "Add"]  # the nearest-neighbour residual
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([HALO, HALO], np.int64), "unpadded_starts"),
            numpy_helper.from_array(np.array([-HALO, -HALO], np.int64), "unpadded_ends"),
            numpy_helper.from_array(np.array([2, 3], np.int64), "unpadded_axes"),  # NCHW
        ]
    )
    crop = helper.make_node(
        "Slice",
        [add.input[1], "unpadded_starts", "unpadded_ends", "unpadded_axes"],
        ["unpadded_residual"],
    )
    graph.node.insert(list(graph.node).index(add), crop)
    add.input[1] = "unpadded_residual"
    onnx.checker.check_model(m)
    out = twin_path(model)
    onnx.save(m, str(out))
    return out


def main() -> None:
    path = WEIGHTS / "manifest.json"
    manifest = json.loads(path.read_text())
    for key in [k for k in manifest if k.endswith("models")]:  # models, jpeg_models...
        for entry in manifest[key]:
            twin = write_twin(WEIGHTS / entry["onnx"]["file"])
            digest = hashlib.sha256(twin.read_bytes()).hexdigest()
            entry["onnx_unpadded"] = {"file": twin.name, "sha256": digest}
            print(twin.name, digest)
    path.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
