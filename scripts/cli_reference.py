"""Write the `--help` of every `upscaler` command into docs/reference.md.

    python scripts/cli_reference.py           # rewrite the section between the markers
    python scripts/cli_reference.py --check   # exit 1, one line, if it would change anything

The section between `<!-- cli-help -->` and `<!-- /cli-help -->` is made by running the
installed console script (the `upscaler` beside this Python, else the one on PATH): `upscaler
--help`, then `--help` of every command its "Commands:" list names, and of theirs in turn. The
help is read with COLUMNS=100, so what it writes does not depend on the terminal (Click wraps at
78 columns from 80 up); lines lose their trailing spaces. Run it with the project's environment
(`.venv/bin/python scripts/cli_reference.py`): another Click version may wrap differently.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference.md"
BEGIN = "<!-- cli-help -->"
END = "<!-- /cli-help -->"
NOTE = (
    "<!-- Written by scripts/cli_reference.py from the installed CLI's --help: "
    "edit the commands' help, then run it. -->"
)
FENCE = "```"


def upscaler_command() -> str:
    """The installed `upscaler` script of the interpreter running this, else the one on PATH."""
    script = Path(sys.executable).with_name("upscaler")
    if script.exists():
        return str(script)
    found = shutil.which("upscaler")
    if found is None:
        sys.exit("cli_reference.py: no `upscaler` command beside this Python or on PATH")
    return found


def help_text(cli: str, words: list[str]) -> str:
    """`upscaler WORDS... --help` as a user sees it in a 100-column terminal."""
    env = {**os.environ, "COLUMNS": "100", "LINES": "50", "PYTHONIOENCODING": "utf-8"}
    ran = subprocess.run(
        [cli, *words, "--help"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    if ran.returncode != 0:
        command = " ".join(["upscaler", *words, "--help"])
        last = (ran.stderr.strip().splitlines() or ["no message"])[-1]
        sys.exit(f"cli_reference.py: `{command}` exited {ran.returncode}: {last}")
    lines = [line.rstrip() for line in ran.stdout.splitlines()]
    if any(line.startswith(FENCE) for line in lines):
        sys.exit(f"cli_reference.py: the help of `upscaler {' '.join(words)}` holds a ``` fence")
    return "\n".join(lines).strip("\n")


def subcommands(text: str) -> list[str]:
    """The names in the "Commands:" list of a group's help, in the order shown."""
    section = re.search(r"^Commands:\n((?:[ \t]+\S.*\n?|\n)*)", text, re.M)
    if section is None:
        return []
    return re.findall(r"^  (\S+)", section.group(1), re.M)


def every_help(cli: str) -> list[tuple[list[str], str]]:
    """(words, help) for `upscaler` and each command below it, depth first."""
    found: list[tuple[list[str], str]] = []
    pending: list[list[str]] = [[]]
    while pending:
        words = pending.pop(0)
        text = help_text(cli, words)
        found.append((words, text))
        pending[0:0] = [[*words, name] for name in subcommands(text)]
    return found


def section(helps: list[tuple[list[str], str]]) -> str:
    """The text between the markers: a heading and a fenced block per command."""
    parts = [NOTE]
    for words, text in helps:
        command = " ".join(["upscaler", *words, "--help"])
        parts.append(f"### `{command}`\n\n{FENCE}text\n{text}\n{FENCE}")
    return "\n\n".join(parts)


def rewritten(document: str, body: str, name: str) -> str:
    """DOCUMENT with BODY between its one pair of markers."""
    if document.count(BEGIN) != 1 or document.count(END) != 1:
        sys.exit(f"cli_reference.py: {name} needs exactly one {BEGIN} and one {END} line")
    head, rest = document.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{body}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the file would change"
    )
    parser.add_argument(
        "--file", type=Path, default=REFERENCE, help="the page to write (docs/reference.md)"
    )
    args = parser.parse_args(argv)
    path: Path = args.file
    try:
        name = str(path.resolve().relative_to(ROOT))
    except ValueError:
        name = str(path)
    document = path.read_text(encoding="utf-8")
    helps = every_help(upscaler_command())
    wanted = rewritten(document, section(helps), name)
    if wanted == document:
        if not args.check:
            print(f"{name}: the --help of {len(helps)} commands is up to date")
        return 0
    if args.check:
        print(
            f"{name}: the command-line help differs from `upscaler --help`: "
            "run python scripts/cli_reference.py",
            file=sys.stderr,
        )
        return 1
    path.write_text(wanted, encoding="utf-8")
    print(f"{name}: wrote the --help of {len(helps)} commands")
    return 0


if __name__ == "__main__":
    sys.exit(main())
