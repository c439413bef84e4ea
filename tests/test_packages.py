"""Generic package names (models, train, eval, ...) must resolve to this repository."""

import importlib
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PACKAGES = ["train", "models", "data_synthesis", "export", "eval", "runtime", "configs"]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_resolves_to_repo(name):
    mod = importlib.import_module(name)
    assert mod.__file__ is not None, f"{name} is a namespace package, not ours"
    assert mod.__file__.startswith(str(ROOT)), f"{name} resolves to {mod.__file__}, not this repo"



@pytest.mark.parametrize("name", PACKAGES)
def test_package_resolves_outside_repo_cwd(name, tmp_path):
    # From another folder (as an installed user would), the same packages must still be ours.
    code = f"import {name}, sys; print({name}.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith(str(ROOT)), out.stdout


def test_runtime_is_torch_free():
    code = "import runtime, runtime.io, sys; assert 'torch' not in sys.modules, 'runtime imported torch'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
