"""Shared test helpers: fixture paths, TensorFlow imported only where a test asks, and the
markers that skip a test when what it needs is not installed (the core lane: `make test-fast`)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# No test asserts elapsed time (speed lives in bench/): Hypothesis's per-example deadline and
# its too-slow health check would, so they are off everywhere.
settings.register_profile("graphtool", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("graphtool")

# marker -> the module a test so marked needs. setup.cfg registers each marker saying what it
# needs; where the module is not installed (the core lane) that is the test's skip reason. A
# test asking for the `tf` (or `tf_graph_pb2`) fixture is marked `tf` by itself.
REQUIRES = {
    "tf": "tensorflow",
    "litert": "ai_edge_litert",
    "tf_keras": "tf_keras",
    "tfmot": "tensorflow_model_optimization",
    "quantizer": "ai_edge_quantizer",
    "micro": "tflite_micro",
    "sklearn": "sklearn",
    "pydot": "pydot",
    "opencv": "cv2",
}
TF_FIXTURES = {"tf", "tf_graph_pb2"}
INSTALL_HINT = "pip install -e '.[test]'"
BUILD_REQUIREMENTS = ("setuptools", "wheel")  # pyproject.toml's [build-system] requires


@cache
def installed(module: str) -> bool:
    """Whether `module` can be imported; nothing is imported to find out."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # blocked (tests/test_core_lane.py) or a broken parent package
        return False


def _marker_descriptions(config: pytest.Config) -> dict[str, str]:
    """Registered marker -> its description ("tf: needs TensorFlow" in setup.cfg)."""
    pairs = (line.split(":", 1) for line in config.getini("markers") if ":" in line)
    return {name.strip(): text.strip() for name, text in pairs}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark `tf` what asks for TensorFlow; skip what needs a module that is not installed."""
    descriptions = _marker_descriptions(config)
    for item in items:
        if TF_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("tf")
        marks = {mark.name for mark in item.iter_markers()}
        missing = [descriptions[name].removeprefix("needs ") for name, module in REQUIRES.items()
                   if name in marks and not installed(module)]
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(missing)} ({INSTALL_HINT})"))


ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
GRAPHDEF_FIXTURES = FIXTURES / "graphdef"


def graphdef_manifest() -> dict[str, dict]:
    return json.loads((GRAPHDEF_FIXTURES / "MANIFEST.json").read_text())


def graphdef_fixture_paths() -> list[Path]:
    return sorted(p for p in GRAPHDEF_FIXTURES.iterdir() if p.suffix in (".pb", ".pbtxt"))


@pytest.fixture(scope="session")
def tf():
    """TensorFlow, imported lazily (the core must work without it); asking for it marks a test `tf`."""
    import tensorflow

    return tensorflow


@pytest.fixture(scope="session")
def tf_graph_pb2():
    from tensorflow.core.framework import graph_pb2

    return graph_pb2


@pytest.fixture(scope="session")
def non_editable_install(tmp_path_factory) -> Path:
    """A directory holding graphtool installed from this tree as a user gets it (`pip install .`,
    not editable); put it on PYTHONPATH to run that copy. Built offline (no build isolation),
    so the build requirements pyproject.toml names must be installed here."""
    missing = [module for module in BUILD_REQUIREMENTS if not installed(module)]
    if missing:
        pytest.skip(f"needs {' and '.join(missing)} to build graphtool offline (pip install {' '.join(missing)})")
    target = tmp_path_factory.mktemp("non_editable") / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                            "--target", str(target), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    return target


TFLITE_FIXTURES = FIXTURES / "tflite"


def tflite_manifest() -> dict[str, dict]:
    return json.loads((TFLITE_FIXTURES / "MANIFEST.json").read_text())


def tflite_fixture_paths() -> list[Path]:
    return sorted(TFLITE_FIXTURES.glob("*.tflite"))


def random_inputs(interpreter, seed: int = 0) -> list:
    """Random values for each input of a LiteRT interpreter, by dtype and shape."""
    import numpy as np

    rng = np.random.default_rng(seed)
    values = []
    for detail in interpreter.get_input_details():
        shape = [1 if d < 0 else d for d in detail["shape_signature"]] or list(detail["shape"])
        dtype = np.dtype(detail["dtype"])
        if dtype.kind == "f":
            values.append(rng.standard_normal(shape).astype(dtype))
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            low, high = (0, 5) if dtype == np.int32 else (max(info.min, -100), min(info.max, 100))
            values.append(rng.integers(low, high, shape).astype(dtype))
        elif dtype.kind == "b":
            values.append(rng.integers(0, 2, shape).astype(bool))
        else:
            count = int(np.prod(shape))
            values.append(np.array([b"graph" if i % 2 else b"tool" for i in range(count)], dtype=object)
                          .reshape(shape))
    return values


def run_litert(model: bytes, inputs: list) -> list:
    """Run a TFLite model in LiteRT on `inputs`; returns its outputs."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    for detail, value in zip(interpreter.get_input_details(), inputs):
        if list(detail["shape"]) != list(value.shape):
            interpreter.resize_tensor_input(detail["index"], value.shape)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]
