"""Walking inputs and planning outputs, on a real folder tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import photo
from upscaler._run.plan import OutputInsideInput, discover


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "a" / "b").mkdir(parents=True)
    (root / ".hidden").mkdir()
    photo(8, 8).save(root / "top.jpg")
    photo(8, 8).save(root / "a" / "b" / "deep.png")
    photo(8, 8).save(root / ".hidden" / "secret.png")
    photo(8, 8).save(root / ".dot.png")
    (root / "notes.txt").write_text("not an image")
    os.symlink(root / "missing.png", root / "dangling.png")
    return root


def test_mirrors_relative_paths_under_out(tree: Path, tmp_path: Path) -> None:
    found = discover([tree], tmp_path / "out", "x3", "same")
    pairs = {
        (j.src.relative_to(tree).as_posix(), j.dst.relative_to(tmp_path / "out").as_posix())
        for j in found.jobs
    }
    assert pairs == {("top.jpg", "top.jpg"), ("a/b/deep.png", "a/b/deep.png")}
    assert [p.name for p in found.not_images] == ["notes.txt"]
    assert [(p.name, why) for p, why in found.problems] == [
        ("dangling.png", "dangling symbolic link")
    ]


def test_default_output_is_a_sibling_and_format_changes_suffix(tree: Path) -> None:
    found = discover([tree], None, "x2", "png")
    assert {j.dst for j in found.jobs} == {
        tree.with_name("photos-x2") / "top.png",
        tree.with_name("photos-x2") / "a/b/deep.png",
    }


def test_single_file_goes_beside_its_folder(tree: Path) -> None:
    found = discover([tree / "top.jpg"], None, "x4", "same")
    assert [j.dst for j in found.jobs] == [tree.with_name("photos-x4") / "top.jpg"]


def test_output_inside_input_is_refused(tree: Path) -> None:
    with pytest.raises(OutputInsideInput, match="inside input folder"):
        discover([tree], tree / "a" / "upscaled", "x3", "same")


def test_two_inputs_for_one_output_are_a_problem_not_an_overwrite(tmp_path: Path) -> None:
    photo(8, 8).save(tmp_path / "x.jpg")
    photo(8, 8).save(tmp_path / "x.png")
    found = discover([tmp_path / "x.jpg", tmp_path / "x.png"], tmp_path / "out", "x3", "png")
    assert len(found.jobs) == 1
    assert "already the output of" in found.problems[0][1]


def test_relative_paths_with_dot_dot_are_understood(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree)
    found = discover([Path(".")], Path("../photos-out"), "x3", "same")
    assert {j.dst for j in found.jobs} == {
        tree.parent / "photos-out" / "top.jpg",
        tree.parent / "photos-out" / "a/b/deep.png",
    }
    with pytest.raises(OutputInsideInput):
        discover([Path("../photos")], Path("a/../a/out"), "x3", "same")
