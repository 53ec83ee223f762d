"""The per-user cache folder: what a run may keep for the next one (OpenVINO's compiled models,
the backends' entry points). Everything in it can be rebuilt: a folder that cannot be made or
written means no cache, never a failure."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(name: str) -> Path | None:
    """The cache subfolder `name` (made, owner-only, where missing): under
    $UPSCALER_CACHE_DIR (set but empty: no cache at all), else $XDG_CACHE_HOME/upscaler or
    ~/.cache/upscaler; None where it cannot be made or written."""
    base = os.environ.get("UPSCALER_CACHE_DIR")
    if base is None:
        home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(home, "upscaler")
    if not base:
        return None
    folder = Path(base, name)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK | os.X_OK) else None
