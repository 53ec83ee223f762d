"""The shipped ESPCN weights (the data package `upscaler.weights`), checked by sha256: what
`upscaler.plugin` offers backends.

The files are found in the package's folder, not through `importlib.resources`: the backends
open them by path (ONNX Runtime, OpenVINO and Keras read files), so they must be files in a
folder anyway, and importing `importlib.resources` (with the `tempfile` and `zipfile` it
imports) was 9-11 ms of `python -X importtime` in every run (2-core AMD EPYC)."""

from __future__ import annotations

import hashlib
import importlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from .._errors import BackendError

__all__ = ["MODELS", "manifest", "shipped_models", "shipped_weights", "verify_file"]

#: Every kind of shipped weights, in this order: "clean" (photos as they are), "jpeg" (JPEGs,
#: trained on qualities 50-95) and "jpeg-high" (JPEGs, trained on qualities 86-95).
MODELS = ("clean", "jpeg", "jpeg-high")

#: The package that holds the files (the repository's top-level `weights/` folder).
PACKAGE = "upscaler.weights"
_MANIFEST = "manifest.json"


@cache
def _folder() -> Path:
    """The folder of the installed `upscaler.weights` package."""
    return Path(importlib.import_module(PACKAGE).__file__ or "").parent


def manifest() -> dict[str, Any]:
    """The parsed manifest: training facts and one entry per shipped model."""
    try:
        text = (_folder() / _MANIFEST).read_text(encoding="utf-8")
    except OSError as exc:
        raise BackendError(
            f"the weights manifest is missing ({exc.strerror}): reinstall upscaler"
        ) from exc
    return dict(json.loads(text))


def _entries(model: str) -> list[dict[str, Any]]:
    """The manifest's entries of `model`: "models" (clean), "jpeg_models", "jpeg_high_models"."""
    key = "models" if model == "clean" else f"{model.replace('-', '_')}_models"
    return list(manifest().get(key, []))


def shipped_models(factor: int) -> tuple[str, ...]:
    """The shipped models for `factor`, of `MODELS` those trained for it."""
    return tuple(m for m in MODELS if any(e["factor"] == factor for e in _entries(m)))


def shipped_weights(factor: int, kind: str, model: str = "clean") -> Path:
    """Path of the shipped `kind` ("onnx", "onnx_unpadded" or "keras") file of `model` (one
    of `MODELS`) for `factor`, verified."""
    entry = next((m for m in _entries(model) if m["factor"] == factor), None)
    if entry is None:
        raise BackendError(f"no shipped {model} weights for x{factor}")
    path = _folder() / str(entry[kind]["file"])
    verify_file(path, entry[kind]["sha256"])
    return path


def verify_file(path: Path, sha256: str) -> None:
    """Raise BackendError unless `path` exists with this sha256."""
    if not path.is_file():
        raise BackendError(f"shipped weights {path.name} are missing: reinstall upscaler")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise BackendError(
            f"shipped weights {path.name} are corrupt (sha256 {digest[:12]}..., "
            f"expected {sha256[:12]}...): reinstall upscaler"
        )
