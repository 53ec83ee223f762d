"""A third-party backend distribution, installed on a path of its own, found by entry point."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import install_plugin, photo, run_cli

PLUGIN = """
import threading
import time

import numpy as np

class Nearest:
    # No `thread_safe = True`: the core must never call upscale from two threads at once.
    halo = 0
    channels = "color"
    default_tile = 64

    def __init__(self, factor):
        self.factor = factor
        self.calls = 0

    def upscale(self, tiles):
        self.calls += 1
        time.sleep(0.02)  # long enough for a second thread to come in
        busy, self.calls = self.calls, self.calls - 1
        if busy > 1:
            raise RuntimeError("called from two threads at once")
        return tiles.repeat(self.factor, axis=1).repeat(self.factor, axis=2)

class Plugin:
    factors = (2, 3)

    def unavailable_reason(self):
        return None

    def create(self, factor, options):
        return Nearest(factor)

plugin = Plugin()
"""


@pytest.fixture()
def plugin_env(tmp_path: Path) -> dict[str, str]:
    return install_plugin(tmp_path / "site", "thirdparty_nearest", PLUGIN, {"nearest": "plugin"})


def test_plugin_is_listed_with_its_distribution(plugin_env: dict[str, str]) -> None:
    result = run_cli("backends", env=plugin_env)
    line = next(x for x in result.stdout.splitlines() if x.startswith("nearest"))
    assert "x2,x3" in line and "available" in line and "thirdparty-nearest" in line


def test_a_backend_not_declared_thread_safe_is_called_by_one_thread_at_a_time(
    plugin_env: dict[str, str], tmp_path: Path
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(8):
        photo(150, 100, seed=i).save(src / f"p{i}.png")
    result = run_cli(
        "batch", src, "-o", tmp_path / "out", "--backend", "nearest", "--factor", 2, env=plugin_env
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 8


def test_plugin_runs_a_batch_without_importing_other_backends(
    plugin_env: dict[str, str], tmp_path: Path
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    photo(20, 14).save(src / "a.png")
    code = textwrap.dedent(f"""
        import sys
        from upscaler._cli import cli
        try:
            cli.main(["batch", {str(src)!r}, "-o", {str(tmp_path / "out")!r}, "--backend", "nearest", "--factor", "2", "-q"])
        except SystemExit as exc:
            print("EXIT", exc.code)
        print("LOADED", sorted(m for m in sys.modules if m.startswith(("upscaler.backends.", "onnxruntime", "tensorflow"))))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=plugin_env
    ).stdout
    assert "EXIT 0" in out and "LOADED []" in out
    expected = np.asarray(Image.open(src / "a.png")).repeat(2, 0).repeat(2, 1)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "a.png")), expected)


def test_plugin_factor_is_checked(plugin_env: dict[str, str], tmp_path: Path) -> None:
    photo(8, 8).save(tmp_path / "a.png")
    result = run_cli(
        "batch",
        tmp_path / "a.png",
        "-o",
        tmp_path / "o",
        "--backend",
        "nearest",
        "--factor",
        "4",
        env=plugin_env,
    )
    assert result.returncode == 2 and "supports factors (2, 3), not 4" in result.stderr


def test_the_plugin_of_the_docs_is_listed_runs_and_refuses_bf16(tmp_path: Path) -> None:
    """docs/plugins.md's example, installed as its text says, uses only `upscaler.plugin`."""
    text = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    (entry,) = re.findall(
        r'```toml\n\[project.entry-points."upscaler.backends"\]\n(.*?)\n```', text
    )
    name, module, obj = re.fullmatch(r'(\w+) = "(\w+):(\w+)"', entry).groups()  # type: ignore[union-attr]
    assert "upscaler._" not in code
    env = install_plugin(tmp_path / "site", module, code, {name: obj})
    listed = run_cli("backends", env=env).stdout
    assert re.search(rf"^{name} +x2,x3,x4 +fp32 +available", listed, re.M), listed
    photo(30, 20).save(tmp_path / "a.png")
    args = ("batch", tmp_path / "a.png", "-o", tmp_path / "o", "--backend", name, "--factor", 3)
    ran = run_cli(*args, env=env)
    assert ran.returncode == 0, ran.stderr
    expected = np.asarray(Image.open(tmp_path / "a.png")).repeat(3, 0).repeat(3, 1)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "a.png")), expected)
    refused = run_cli(*args, "--precision", "bf16", "--overwrite", env=env)
    assert refused.returncode == 2 and f"the {name} backend runs fp32 only" in refused.stderr


RANKED = """
from upscaler.plugin import BasePlugin

class Ranked(BasePlugin):
    name = "ranked"
    factors = (2,)

    def default_rank(self, device):
        return 5 if device == "cpu" else 0

    def create(self, factor, options):
        raise NotImplementedError

plugin = Ranked()
"""


def test_the_plugin_that_ranks_highest_is_the_default_and_a_broken_one_is_no_candidate(
    tmp_path: Path,
) -> None:
    env = install_plugin(tmp_path / "a", "ranked_plugin", RANKED, {"ranked": "plugin"})
    listed = run_cli("backends", env=env).stdout
    assert re.search(r"^ranked .*\(default\)$", listed, re.M), listed
    assert not re.search(r"^onnx .*\(default\)$", listed, re.M), listed
    broken = install_plugin(tmp_path / "b", "broken_plugin", "raise ImportError('no')", {"x": "p"})
    listed = run_cli("backends", env=broken).stdout
    assert re.search(r"^onnx .*\(default\)$", listed, re.M), listed
    assert re.search(r"^x .*failed to import: no", listed, re.M), listed


_LISTED = (
    "import sys\n"
    "from upscaler._plugins.registry import describe_backends\n"
    "print(sorted(b.name for b in describe_backends()))\n"
    "print('importlib.metadata' in sys.modules)\n"
)


def _listing(env: dict[str, str]) -> tuple[list[str], bool]:
    """The backends a fresh process lists, and whether it imported importlib.metadata."""
    done = subprocess.run(
        [sys.executable, "-c", _LISTED], capture_output=True, text=True, env=env, check=True
    )
    names, scanned = done.stdout.splitlines()
    return ast.literal_eval(names), scanned == "True"


def test_entry_points_come_from_the_cache_until_a_distribution_is_installed(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    env = install_plugin(site, "first_plugin", PLUGIN.replace("Nearest", "A"), {"first": "plugin"})
    env["UPSCALER_CACHE_DIR"] = str(tmp_path / "cache")
    assert _listing(env) == (["bicubic", "first", "keras", "onnx", "openvino"], True)
    cached = tmp_path / "cache" / "plugins" / "entry-points.json"
    assert '"first", "first_plugin:plugin", "first-plugin"' in cached.read_text()
    assert _listing(env) == (["bicubic", "first", "keras", "onnx", "openvino"], False)
    # A second distribution in the same folder: the folder's time changed, so read again.
    install_plugin(site, "second_plugin", PLUGIN, {"second": "plugin"})
    assert _listing(env) == (["bicubic", "first", "keras", "onnx", "openvino", "second"], True)
    assert _listing(env)[1] is False
    # Another environment (a path without the site folder) is read, not taken from the cache.
    other = {**env, "PYTHONPATH": str(tmp_path)}
    assert _listing(other) == (["bicubic", "keras", "onnx", "openvino"], True)
    # A damaged cache is no cache; the run reads the entry points and writes it again.
    cached.write_text('{"version": 1, "path": ')
    assert _listing(env) == (["bicubic", "first", "keras", "onnx", "openvino", "second"], True)
    assert _listing(env)[1] is False


def test_no_cache_when_the_cache_folder_is_off_or_unwritable(tmp_path: Path) -> None:
    env = install_plugin(tmp_path / "site", "first_plugin", PLUGIN, {"first": "plugin"})
    for setting in ("", str(tmp_path / "file" / "below")):
        (tmp_path / "file").write_text("a file, not a folder")
        env["UPSCALER_CACHE_DIR"] = setting
        for _ in range(2):
            assert _listing(env) == (["bicubic", "first", "keras", "onnx", "openvino"], True)
