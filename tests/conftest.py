"""Shared fixtures: paths to the project's shared data and helpers to make test images."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UPSCALER_SHARED", ROOT.parent / "shared"))
SET5 = SHARED / "data" / "Set5"
BSDS = SHARED / "data" / "bsds500"
SAMPLES = ROOT / "examples"


def upscaler_command() -> list[str]:
    """The installed `upscaler` script of the interpreter running the tests."""
    script = Path(sys.executable).with_name("upscaler")
    return [str(script)] if script.exists() else [shutil.which("upscaler") or "upscaler"]


def run_cli(
    *args: object, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed `upscaler` command as a subprocess, with no standard input."""
    return subprocess.run(
        [*upscaler_command(), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )


def run_cli_without(module: str, *args: object) -> subprocess.CompletedProcess[str]:
    """The command line as `run_cli` runs it, in a Python where `module` cannot be imported
    (as if its extra were not installed)."""
    code = (
        f"import sys\nsys.modules[{module!r}] = None  # as if not installed\n"
        "from upscaler._cli import cli\n"
        f"cli.main({[str(a) for a in args]!r})\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )


def install_plugin(
    site: Path, module: str, source: str, backends: dict[str, str]
) -> dict[str, str]:
    """Install a one-module backend distribution under `site` (entry points name -> object).

    Returns the environment in which `upscaler` (and processes it starts) finds it.
    """
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / f"{module}.py").write_text(source)
    name = module.replace("_", "-")
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    points = "".join(f"{key} = {module}:{obj}\n" for key, obj in backends.items())
    (dist / "entry_points.txt").write_text(f"[upscaler.backends]\n{points}")
    return {**os.environ, "PYTHONPATH": str(site)}


def shrunk_bsds(count: int) -> Iterator[tuple[str, Image.Image]]:
    """(name, photo) for the first `count` BSDS500 test photos shrunk by 3 (about 160x107)."""
    for path in sorted((BSDS / "test").glob("*.jpg"))[:count]:
        with Image.open(path) as im:
            yield path.stem, im.resize((im.width // 3, im.height // 3), Image.Resampling.BICUBIC)


def photo(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A smooth, photo-like test image with some detail (gradients plus noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / max(width, 1), y / max(height, 1), (x + y) / max(width + height, 1)], -1)
    rgb = np.clip(base * 200 + 20 + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    im = Image.fromarray(rgb)
    if mode == "RGBA":
        alpha = Image.fromarray(np.clip(x / max(width, 1) * 255, 0, 255).astype(np.uint8))
        im.putalpha(alpha)
        return im
    return im.convert(mode)


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SET5.is_dir():
        pytest.fail(f"shared data not found at {SHARED} (set UPSCALER_SHARED)")
    return SHARED


@pytest.fixture(scope="session", autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The tests' runs keep what they cache (compiled models, entry points) in a folder of the
    session's, not in the user's cache; tests that check the cache set their own."""
    before = os.environ.get("UPSCALER_CACHE_DIR")
    os.environ["UPSCALER_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        del os.environ["UPSCALER_CACHE_DIR"]
    else:
        os.environ["UPSCALER_CACHE_DIR"] = before
