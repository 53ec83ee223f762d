"""The shipped ESPCN weights, found through importlib.resources and checked by sha256."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from upscaler._errors import BackendError

__all__ = ["manifest", "shipped_weights"]

_MANIFEST = "manifest.json"


def manifest() -> dict[str, Any]:
    """The parsed manifest: training facts and one entry per shipped model."""
    try:
        text = resources.files(__name__).joinpath(_MANIFEST).read_text(encoding="utf-8")
    except OSError as exc:
        raise BackendError(f"the weights manifest is missing ({exc.strerror}): reinstall upscaler") from exc
    return dict(json.loads(text))


def shipped_weights(factor: int, kind: str) -> Path:
    """Path of the shipped `kind` ("onnx" or "keras") model for `factor`, verified."""
    entry = next((m for m in manifest()["models"] if m["factor"] == factor), None)
    if entry is None:
        raise BackendError(f"no shipped weights for x{factor}")
    name, expected = entry[kind]["file"], entry[kind]["sha256"]
    resource = resources.files(__name__).joinpath(name)
    if not resource.is_file():
        raise BackendError(f"shipped weights {name} are missing: reinstall upscaler")
    digest = hashlib.sha256(resource.read_bytes()).hexdigest()
    if digest != expected:
        raise BackendError(f"shipped weights {name} are corrupt (sha256 {digest[:12]}…, expected {expected[:12]}…): reinstall upscaler")
    return Path(str(resource))
