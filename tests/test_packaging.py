"""The wheel holds the package and nothing else at the top level of site-packages."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_wheel_installs_everything_under_upscaler(tmp_path: Path) -> None:
    junk = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__", "runs")
    src = shutil.copytree(ROOT, tmp_path / "src", ignore=junk)  # build writes into its source
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(tmp_path),
            str(src),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("upscaler-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    outside = [n for n in names if not n.startswith(("upscaler/", "upscaler-"))]
    assert outside == []
    for needed in (
        "upscaler/backends/onnx.py",
        "upscaler/backends/bicubic.py",
        "upscaler/weights/manifest.json",
        "upscaler/weights/espcn_x3.onnx",
        "upscaler/weights/espcn_x3.unpadded.onnx",
        "upscaler/weights/espcn_x3.keras",
        "upscaler/py.typed",
    ):
        assert needed in names
    listed = json.loads((ROOT / "weights" / "manifest.json").read_text())
    files = {
        f"upscaler/weights/{entry[kind]['file']}"
        for key, entries in listed.items()
        if key.endswith("models")
        for entry in entries
        for kind in ("onnx", "onnx_unpadded", "keras")
    }
    assert len(files) == 27 and files <= set(names)  # 3 kinds x 3 factors x 3 files
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )
    assert "bicubic = upscaler.backends.bicubic:plugin" in entry_points
