"""Shared test helpers: fixture paths, and TensorFlow imported only where a test asks."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
GRAPHDEF_FIXTURES = FIXTURES / "graphdef"


def graphdef_manifest() -> dict[str, dict]:
    return json.loads((GRAPHDEF_FIXTURES / "MANIFEST.json").read_text())


def graphdef_fixture_paths() -> list[Path]:
    return sorted(p for p in GRAPHDEF_FIXTURES.iterdir() if p.suffix in (".pb", ".pbtxt"))


@pytest.fixture(scope="session")
def tf():
    """TensorFlow, imported lazily (the core must work without it)."""
    import tensorflow

    return tensorflow


@pytest.fixture(scope="session")
def tf_graph_pb2():
    from tensorflow.core.framework import graph_pb2

    return graph_pb2

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
