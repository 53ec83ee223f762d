"""The README's two set-up commands and the locked environments they install."""

from __future__ import annotations

import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli, the same parser (the test extra installs it)
    import tomli as tomllib

README = (ROOT / "README.md").read_text(encoding="utf-8")
LOCK = ROOT / "requirements" / "constraints.txt"
# The lock is resolved for the project's machines, CPython 3.11 on x86_64 Linux
# (docs/development.md#maintaining): requirement markers are evaluated for them, whichever
# supported Python runs the tests.
LOCKED_FOR = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
}


def _marked(name: str) -> list[str]:
    """The lines of the fenced block between <!-- name --> and <!-- /name -->."""
    found = re.findall(rf"<!-- {name} -->\n```sh\n(.*?)```\n<!-- /{name} -->", README, re.S)
    assert len(found) == 1, f"README.md needs exactly one <!-- {name} --> block"
    return [line for line in found[0].splitlines() if line.strip()]


def _pins(text: str) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.M)
    return {canonicalize_name(name): version for name, version in pins}


def test_readme_marks_one_quickstart_and_one_test_command() -> None:
    for name in ("quickstart-command", "test-command"):
        lines = _marked(name)
        assert len(lines) == 1 and not lines[0].endswith("\\"), (name, lines)
        assert "PIP_CONSTRAINT=requirements/constraints.txt" in lines[0], "install through the lock"
    assert "upscaler batch examples" in _marked("quickstart-command")[0]
    assert "pytest" in _marked("test-command")[0]


def test_lock_pins_every_dependency_within_pyproject_ranges() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]
    wanted += tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    pins = _pins(LOCK.read_text())
    for text in wanted:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(LOCKED_FOR):
            continue  # e.g. Windows-only
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in {LOCK.name}: python scripts/deps.py refresh"
        assert req.specifier.contains(pins[name], prereleases=True), (text, pins[name])


def test_peer_lock_keeps_the_opencv_line_that_reads_the_peer_models() -> None:
    pins = _pins((ROOT / "requirements" / "peer.txt").read_text())
    assert pins["opencv-contrib-python-headless"].startswith("4."), pins
