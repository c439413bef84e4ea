"""One installed name: every package is homeloc.<folder>, and no generic top-level name is ours."""

import importlib
import importlib.util
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import ROOT

FOLDERS = ["train", "models", "data_synthesis", "export", "eval", "runtime", "configs"]


@pytest.mark.parametrize("folder", FOLDERS)
def test_folder_imports_as_homeloc_subpackage(folder):
    mod = importlib.import_module(f"homeloc.{folder}")
    assert mod.__file__ is not None, f"homeloc.{folder} is a namespace package, not ours"
    assert mod.__file__.startswith(str(ROOT / folder)), f"homeloc.{folder} resolves to {mod.__file__}"


def test_no_generic_top_level_names_outside_repo(tmp_path):
    # From another folder (as an installed user would): homeloc.* is ours, `models` etc. are not installed.
    code = (
        "import importlib.util, homeloc.runtime, homeloc.models; "
        f"print([n for n in {FOLDERS!r} if importlib.util.find_spec(n) is not None]); "
        "print(homeloc.runtime.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    found, runtime_file = out.stdout.strip().splitlines()
    assert found == "[]", f"generic top-level packages importable outside the repo: {found}"
    assert runtime_file.startswith(str(ROOT / "runtime"))


def test_pyproject_lists_every_package_folder():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping, listed = conf["package-dir"], set(conf["packages"])
    assert set(mapping) == {"homeloc", *(f"homeloc.{f}" for f in FOLDERS)}
    on_disk = {"homeloc"}
    for folder in FOLDERS:
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            on_disk.add(".".join(("homeloc", folder, *rel)))
    assert listed == on_disk, (
        f"pyproject packages vs folders: missing {on_disk - listed}, extra {listed - on_disk}"
    )


def test_console_scripts_point_into_homeloc():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"homeloc-synthesize", "homeloc-evaluate", "homeloc-train", "homeloc-export"}
    for name, target in scripts.items():
        module, _, func = target.partition(":")
        assert module.startswith("homeloc."), f"{name} -> {target}"
        assert callable(getattr(importlib.import_module(module), func))


def test_runtime_is_torch_free():
    code = (
        "import homeloc.runtime, homeloc.runtime.io, sys; "
        "from homeloc.runtime import Frontend, GlobalDescriptor, LoopClosureDetector; "
        "assert 'torch' not in sys.modules, 'homeloc.runtime imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_runtime_public_api_is_lazy():
    code = (
        "import sys, homeloc.runtime as r; "
        "assert 'homeloc.runtime.frontend' not in sys.modules; "
        "assert 'onnxruntime' not in sys.modules; "
        "from homeloc.runtime import Frontend; "
        "assert Frontend.__module__ == 'homeloc.runtime.frontend'; "
        "assert set(r.__all__) >= {'Frontend', 'GlobalDescriptor', 'LoopClosureDetector'}"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        importlib.import_module("homeloc.runtime").Nope  # noqa: B018
