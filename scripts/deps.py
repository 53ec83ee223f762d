"""The locked environments: refresh the locks, or test against the newest releases.

    python scripts/deps.py refresh   # requirements/constraints.txt, peer.txt: newest releases
    python scripts/deps.py add       # the same, keeping every existing pin (a new dependency)
    python scripts/deps.py newest    # the test suite in a fresh venv without the lock

`refresh` resolves pyproject.toml (every extra) and requirements/peer.in with `uv pip compile`
for this interpreter's Python version and platform. `newest` installs `.[keras,test]` into
`.venv-newest` with no lock, prints every package whose version differs from the lock, runs the
test suite there and prints what failed. An upgrade is: refresh, run the test command, commit.
uv is taken from PATH, or installed with pip into `.venv-tools` on first use.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "constraints.txt"
PEER_IN = ROOT / "requirements" / "peer.in"
PEER_LOCK = ROOT / "requirements" / "peer.txt"
TOOLS = ROOT / ".venv-tools"
NEWEST = ROOT / ".venv-newest"
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)")


def uv() -> str:
    """The uv executable: on PATH, or installed into .venv-tools."""
    found = shutil.which("uv")
    if found:
        return found
    exe = TOOLS / "bin" / "uv"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True)
        subprocess.run(
            [str(TOOLS / "bin" / "python"), "-m", "pip", "install", "-q", "uv"], check=True
        )
    return str(exe)


def compile_lock(source: Path, out: Path, *extra: str) -> None:
    """`uv pip compile` for this Python version and platform (`extra`: more uv options)."""
    target = f"{platform.machine()}-unknown-linux-gnu" if sys.platform == "linux" else sys.platform
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run(
        [
            uv(),
            "pip",
            "compile",
            str(source.relative_to(ROOT)),
            *extra,
            "--quiet",
            "--python-version",
            python,
            "--python-platform",
            target,
            "--custom-compile-command",
            "python scripts/deps.py refresh",
            "-o",
            str(out.relative_to(ROOT)),
        ],
        cwd=ROOT,
        check=True,
    )


def pins(text: str) -> dict[str, str]:
    """name -> version of every `name==version` line (names normalised as pip does)."""
    found = {}
    for line in text.splitlines():
        match = PIN.match(line.strip())
        if match:
            found[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return found


def refresh(keep: bool = False) -> int:
    """Both locks from the newest releases; with `keep`, only what is not pinned yet moves."""
    before = pins(LOCK.read_text()) if LOCK.exists() else {}
    upgrade = [] if keep else ["--upgrade"]
    compile_lock(ROOT / "pyproject.toml", LOCK, "--all-extras", *upgrade)
    compile_lock(PEER_IN, PEER_LOCK, *upgrade)
    print_changes(before, pins(LOCK.read_text()), "requirements/constraints.txt")
    return 0


def print_changes(old: dict[str, str], new: dict[str, str], what: str) -> None:
    names = sorted(n for n in old.keys() | new.keys() if old.get(n) != new.get(n))
    print(f"{len(names)} packages differ from {what}" + (":" if names else ""))
    for n in names:
        print(f"  {n}: {old.get(n, '-')} -> {new.get(n, '-')}")


def newest(pytest_args: list[str]) -> int:
    """Install without the lock into a fresh venv, show what moved, run the tests there."""
    shutil.rmtree(NEWEST, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}
    subprocess.run([sys.executable, "-m", "venv", str(NEWEST)], check=True)
    python = str(NEWEST / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "-e", ".[keras,test]"], cwd=ROOT, env=env, check=True
    )
    frozen = subprocess.run(
        [python, "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    )
    installed = {k: v for k, v in pins(frozen.stdout).items() if k not in ("upscaler", "pip")}
    print_changes(
        pins(LOCK.read_text()), installed, "requirements/constraints.txt (lock -> newest)"
    )
    done = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    lines = done.stdout.strip().splitlines() or ["pytest printed nothing"]
    for line in [*(x for x in lines if x.startswith(("FAILED", "ERROR"))), lines[-1]]:
        print(line)
    verdict = "passed" if done.returncode == 0 else f"broke (pytest exited {done.returncode})"
    print(f"newest releases: the test suite {verdict}")
    return done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("refresh", help="rewrite the lock files from the newest releases")
    sub.add_parser("add", help="lock a new dependency, keeping every existing pin")
    test = sub.add_parser("newest", help="run the test suite against the newest releases, no lock")
    test.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = parser.parse_args()
    if args.command == "newest":
        return newest(args.pytest_args)
    return refresh(keep=args.command == "add")


if __name__ == "__main__":
    sys.exit(main())
