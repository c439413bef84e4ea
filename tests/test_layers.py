"""Layers, bottom to top: runtime (torch-free) -> models -> data_synthesis -> train -> export ->
eval. A module imports only from its own layer or below; lazy imports inside functions count."""

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

LAYERS = ["runtime", "models", "data_synthesis", "train", "export", "eval"]
RANK = {name: i for i, name in enumerate(LAYERS)}
# configs holds YAML only; homeloc/__init__.py holds the version. Neither may import a layer.
FOLDERS = [*LAYERS, "configs"]


def homeloc_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of homeloc.* in a file, at any depth (functions too).

    Relative imports are resolved against the file's package; `import homeloc.x.y as z` and
    `from homeloc.x import y` both count as imports of homeloc.x.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ["homeloc", *path.parent.relative_to(ROOT).parts]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            out.append((node.lineno, module))
    return [(line, m) for line, m in out if m == "homeloc" or m.startswith("homeloc.")]


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def upward_edges() -> list[str]:
    edges = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT)
            for line, module in homeloc_imports(path):
                target = layer_of(module)
                if folder == "configs" or (target is not None and RANK[target] > RANK[folder]):
                    edges.append(f"{rel}:{line}: {folder} imports {module} ({target} is above {folder})")
    return edges


def test_no_module_imports_a_higher_layer():
    edges = upward_edges()
    assert not edges, "upward imports:\n" + "\n".join(edges)


def test_no_module_imports_the_old_top_level_names():
    old = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                old += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: {n}"
                    for n in names
                    if n.split(".")[0] in FOLDERS
                ]
    assert not old, "imports of generic top-level names (use homeloc.<name>):\n" + "\n".join(old)


@pytest.mark.parametrize(
    "source, folder, expected",
    [
        ("from homeloc.eval.metrics import x", "train", ["eval"]),
        ("def f():\n    import homeloc.export.timing as t", "models", ["export"]),
        ("from homeloc.runtime.io import x", "eval", []),
        ("from ...eval import x", "train/sub", ["eval"]),
        ("from ..eval import x", "train/sub", []),  # homeloc.train.eval, not homeloc.eval
        ("from . import y", "runtime", []),
    ],
)
def test_the_checker_sees_lazy_and_relative_imports(tmp_path, monkeypatch, source, folder, expected):
    # Run the checker over a fake tree so that it is itself tested (it must see what it guards).
    import tests.test_layers as layers

    (tmp_path / folder).mkdir(parents=True)
    (tmp_path / folder / "m.py").write_text(source)
    monkeypatch.setattr(layers, "ROOT", tmp_path)
    found = [layer_of(m) for _, m in homeloc_imports(tmp_path / folder / "m.py")]
    assert [f for f in found if f and RANK[f] > RANK[folder.split("/")[0]]] == expected
