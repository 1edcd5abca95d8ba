"""Read -> write with no pass loses nothing: TensorFlow's schema object API reads back the
same model field for field, LiteRT computes bit-identical outputs, and the bytes are
identical wherever TensorFlow's own flatbuffer_utils round trip is."""
import numpy as np
import pytest

import graphtool
from graphtool.formats import tflite

from ...conftest import random_inputs, run_litert, tflite_fixture_paths, tflite_manifest

FIXTURES = tflite_fixture_paths()


def model_t(data: bytes):
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def assert_same(a, b, path="model"):
    """Field-for-field equality of two object-API trees."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=path)
    elif isinstance(a, list) or isinstance(b, list):
        assert isinstance(a, list) and isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif hasattr(a, "__dict__"):
        assert type(a) is type(b), path
        for key in vars(a):
            assert_same(getattr(a, key), getattr(b, key), f"{path}.{key}")
    else:
        assert a == b or (a != a and b != b), f"{path}: {a!r} != {b!r}"


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_schema_object_api_reads_back_the_same_model(tf, path):
    original = path.read_bytes()
    written = tflite.write(graphtool.load(path))
    assert_same(model_t(written), model_t(original))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_bytes_identical_where_flatbuffer_utils_round_trip_is(tf, path):
    from tensorflow.lite.tools import flatbuffer_utils

    original = path.read_bytes()
    theirs = bytes(flatbuffer_utils.convert_object_to_bytearray(
        flatbuffer_utils.read_model_from_bytearray(bytearray(original))))
    ours = tflite.write(graphtool.load(path))
    if theirs == original:
        assert ours == original
    assert ours == theirs


@pytest.mark.litert
@pytest.mark.parametrize("path", [p for p in FIXTURES if tflite_manifest()[p.name]["runs_in_litert"]],
                         ids=lambda p: p.name)
def test_litert_outputs_bit_identical_after_round_trip(path):
    original = path.read_bytes()
    written = tflite.write(graphtool.load(path))
    from ai_edge_litert.interpreter import Interpreter

    inputs = random_inputs(Interpreter(model_content=original))
    for before, after in zip(run_litert(original, inputs), run_litert(written, inputs)):
        np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_every_fixture_reads_into_a_valid_graph(path):
    graph = graphtool.load(path)
    graph.validate()
    assert graph.format == "tflite" and len(graph) > 0


def test_writing_is_deterministic():
    for path in FIXTURES:
        graph = graphtool.load(path)
        assert tflite.write(graph) == tflite.write(graph)
