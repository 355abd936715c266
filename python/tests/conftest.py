"""Shared fixtures: the repository's paths, the reference DCGAN's model definitions (from
examples/dcgan/train.py) and the built qgan tool (QGAN_TOOL, set by CTest)."""
import importlib.util
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
WEIGHTS = pathlib.Path(os.environ.get("QGAN_DCGAN_WEIGHTS", ROOT / "examples" / "dcgan" / "weights"))


def load_script(name):
    path = ROOT / "examples" / "dcgan" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"dcgan_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def train_py():
    return load_script("train")


@pytest.fixture(scope="session")
def tool():
    path = os.environ.get("QGAN_TOOL")
    if not path:
        pytest.skip("QGAN_TOOL is not set (a build without the examples); CTest sets it")
    return path


@pytest.fixture(scope="session")
def weights_dir():
    return WEIGHTS
