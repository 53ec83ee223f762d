"""The package's folders are its layers (docs/design.md): every import goes down or sideways,
never up, and the plugins use only the public plugin API."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
#: Top to bottom; a module may import its own layer and the layers under it.
LAYERS = [
    "__main__",
    "_cli",
    "plugin",
    "_training",
    "_run",
    "__init__",
    "_api",
    "_images",
    "_pixels",
    "_plugins",
    "_errors _defaults _memory",
]
RANK = {name: len(LAYERS) - i for i, names in enumerate(LAYERS) for name in names.split()}


def _layer(module: str) -> str:
    """The layer of a module named under upscaler ("" is the package itself)."""
    return module.split(".")[0] if module else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module under upscaler) of every import of upscaler's own modules in `path`."""
    package = ".".join(path.relative_to(ROOT / "upscaler").parent.parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            base = base[: len(base) - node.level + 1] if node.level > 1 else base
            target = ".".join([*base, *([node.module] if node.module else [])])
            if node.module is None:  # from . import x: modules or names of the package
                found += [(node.lineno, f"{target}.{a.name}".strip(".")) for a in node.names]
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("upscaler."):
            found.append((node.lineno, node.module.removeprefix("upscaler.")))  # type: ignore[union-attr]
    return found


def test_every_import_goes_down_or_sideways() -> None:
    wrong = []
    modules = sorted((ROOT / "upscaler").rglob("*.py"))
    assert len(modules) > 40
    for path in modules:
        own = _layer(".".join(path.relative_to(ROOT / "upscaler").with_suffix("").parts))
        for line, target in _imports(path):
            layer = _layer(target)
            if layer not in RANK:  # a name of the package itself (__version__)
                layer = "__init__"
            if RANK[layer] > RANK[own]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({own}) imports {target} ({layer})")
    assert not wrong, "\n".join(wrong)


def test_backends_use_only_the_public_plugin_api_and_weights_nothing() -> None:
    private = []
    for path in sorted((ROOT / "backends").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            private += [
                f"{path.name}: {n}"
                for n in names
                if n.startswith("upscaler.") and n != "upscaler.plugin"
            ]
    assert not private, private
    assert "import" not in (ROOT / "weights" / "__init__.py").read_text(encoding="utf-8")
