"""The docs: the command-line help in docs/reference.md, and every relative link and anchor."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "cli_reference.py"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCED = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)  # a fenced code block


def _cli_reference(*args: str | Path, columns: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, SCRIPT, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": columns},
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


@pytest.mark.parametrize("columns", ["40", "250"])
def test_reference_has_the_help_that_the_commands_print(columns: str) -> None:
    """Whatever the terminal's width, `--check` finds docs/reference.md as it would write it."""
    ran = _cli_reference("--check", columns=columns)
    assert ran.returncode == 0, ran.stderr + ran.stdout


def test_a_stale_help_section_fails_the_check_in_one_line(tmp_path: Path) -> None:
    page = tmp_path / "reference.md"
    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    page.write_text(text.replace("Upscaling factor.", "Upscale factor.", 1), encoding="utf-8")
    ran = _cli_reference("--check", "--file", page, columns="100")
    assert ran.returncode == 1, ran.stderr + ran.stdout
    assert len(ran.stderr.splitlines()) == 1 and "cli_reference.py" in ran.stderr, ran.stderr
    assert page.read_text(encoding="utf-8") != text, "--check must not write"

    fixed = _cli_reference("--file", page, columns="100")
    assert fixed.returncode == 0, fixed.stderr
    assert page.read_text(encoding="utf-8") == text


def _prose(text: str) -> str:
    """TEXT without fenced code blocks and inline code spans (their brackets are not links)."""
    text = FENCED.sub("", text)
    return re.sub(r"(`+)(?!`).+?(?<!`)\1(?!`)", "", text, flags=re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of PAGE's headings, a repeated one numbered as GitHub numbers it (-1, -2...)."""
    text = FENCED.sub("", page.read_text(encoding="utf-8"))
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", text, re.M):
        base = slug(heading)
        name, n = base, 0
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def test_slugs_follow_github() -> None:
    assert slug("`upscaler batch --help`") == "upscaler-batch---help"
    assert slug("Memory: `large_image_memory.py`") == "memory-large_image_memorypy"
    assert slug("Precision: bfloat16 and int8") == "precision-bfloat16-and-int8"
    assert slug("Quick start on a fresh machine") == "quick-start-on-a-fresh-machine"


def links(page: Path) -> list[str]:
    """The targets of PAGE's inline links and images, outside code."""
    return re.findall(
        r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)",
        _prose(page.read_text(encoding="utf-8")),
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_files_and_headings_that_exist(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):
            continue  # https:, mailto: ...
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no such heading in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_link_check_sees_links_and_headings() -> None:
    """Guards against a check that passes because it finds nothing."""
    readme = links(ROOT / "README.md")
    assert "docs/reference.md#command-line-help" in readme and "docs/dask.md" in readme
    assert {"upscaler-batch---help", "any-output-size", "install"} <= anchors(
        ROOT / "docs" / "reference.md"
    )
