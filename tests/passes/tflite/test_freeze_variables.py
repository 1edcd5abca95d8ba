"""TFLite freeze_variables: resource variables become constants. Checked with TensorFlow's
schema object API and by running the original (which keeps its state across invokes) and
the frozen model in LiteRT: freezing is exact, so outputs must be bit-identical."""
from __future__ import annotations

import tempfile

import numpy as np
import pytest

import graphtool
from graphtool.formats import tflite
from graphtool.ir import CONST_OP
from graphtool.passes import PassError, transform

from ...conftest import FIXTURES, TFLITE_FIXTURES

PRUNED_TFLITE = FIXTURES / "pruned" / "pruned_cnn.tflite"
VARIABLE_OPS = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"}


def images() -> np.ndarray:
    return np.load(FIXTURES / "pruned" / "reference.npz")["images"]


def invoke(data: bytes, inputs: list[np.ndarray], times: int = 1) -> list[list[np.ndarray]]:
    """Run the model `times` times on the same interpreter (variables persist in between)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data)
    details = interpreter.get_input_details()
    for detail, value in zip(details, inputs):
        if list(detail["shape"]) != list(value.shape):
            interpreter.resize_tensor_input(detail["index"], value.shape)
    interpreter.allocate_tensors()
    runs = []
    for _ in range(times):
        for detail, value in zip(details, inputs):
            interpreter.set_tensor(detail["index"], value)
        interpreter.invoke()
        runs.append([interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()])
    return runs


def model_t(data: bytes):
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def frozen(graph: graphtool.Graph) -> bytes:
    report = transform(graph, "freeze_variables")
    assert report.passes[0].changed
    return tflite.write(graph)


@pytest.mark.tf
@pytest.mark.litert
def test_pruned_cnn_variables_become_constants_with_bit_identical_outputs():
    original = PRUNED_TFLITE.read_bytes()
    graph = graphtool.load(original)
    data = frozen(graph)
    model = model_t(data)
    assert len(model.subgraphs) == 1
    codes = {max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes}
    from tensorflow.lite.python import schema_py_generated as schema

    assert not codes & {getattr(schema.BuiltinOperator, op) for op in VARIABLE_OPS}
    assert all(t.type != schema.TensorType.RESOURCE for t in model.subgraphs[0].tensors)
    assert len(data) < len(original)  # the init subgraph's copy of the kernels is gone
    x = [images()]
    first, second = invoke(original, x, times=2)
    (ours,) = invoke(data, x)
    for expected in (first, second):
        np.testing.assert_array_equal(ours[0], expected[0])


def noisy_pruned_cnn() -> bytes:
    """The pruned CNN with initial kernels holding values where their mask is 0 (saved before
    the mask update): the original masks them on its first invoke, and every read after the
    update sees the masked kernel."""
    graph = graphtool.load(PRUNED_TFLITE)
    (init,) = graph.subgraphs
    rng = np.random.default_rng(0)
    for node in init:
        if node.op == CONST_OP:
            tensor = node.outputs[0]
            tensor.data = np.where(tensor.data == 0, rng.normal(0, 1, tensor.data.shape), tensor.data).astype(np.float32)
    return tflite.write(graph)


def test_kernels_saved_before_their_mask_update_are_frozen_masked():
    folded = graphtool.load(frozen(graphtool.load(noisy_pruned_cnn())))
    transform(folded, "fold_constants strip_unused_nodes")
    pruned = [w for w in graphtool.inspect(folded).weights if w.zeros > 0.5]
    assert len(pruned) == 4 and all(w.zeros == 0.75 for w in pruned)


@pytest.mark.litert
def test_kernels_saved_before_their_mask_update_compute_as_the_original_does():
    noisy = noisy_pruned_cnn()
    data = frozen(graphtool.load(noisy))
    x = [images()]
    first, second = invoke(noisy, x, times=2)
    (ours,) = invoke(data, x)
    np.testing.assert_array_equal(ours[0], first[0])
    np.testing.assert_array_equal(ours[0], second[0])


def test_a_model_without_variables_is_left_alone():
    data = (TFLITE_FIXTURES / "float_cnn.tflite").read_bytes()
    graph = graphtool.load(data)
    assert transform(graph, "freeze_variables").passes[0].changed is False
    assert tflite.write(graph) == data


def test_state_computed_from_inputs_is_refused():
    graph = graphtool.load(TFLITE_FIXTURES / "resource_variables.tflite")
    with pytest.raises(PassError, match="depends on the model input"):
        transform(graph, "freeze_variables")


# -- models converted here, one behaviour each -------------------------------------------------------

def converted(tf, module) -> bytes:
    """`module.f` through a SavedModel and the converter with resource variables."""
    with tempfile.TemporaryDirectory() as folder:
        tf.saved_model.save(module, folder, signatures={"serving_default": module.f.get_concrete_function()})
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.experimental_enable_resource_variables = True
        data = bytes(converter.convert())
    assert VARIABLE_OPS <= set(graphtool.inspect(graphtool.load(data)).ops)
    return data


def module_class(tf, body):
    """A tf.Module with variable v = [1, 2, 3, 4], mask m = [1, 0, 1, 0] and f(x) = body."""
    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.v = tf.Variable([1.0, 2.0, 3.0, 4.0], name="v")
            self.m = tf.Variable([1.0, 0.0, 1.0, 0.0], name="m")

        @tf.function(input_signature=[tf.TensorSpec((4,), tf.float32, name="x")])
        def f(self, x):
            return {"y": body(self, x)}

    return Module()


@pytest.mark.litert
def test_an_idempotent_update_freezes_to_the_settled_value(tf):
    def masked(self, x):
        self.v.assign(self.v * self.m)
        return x * self.v

    data = converted(tf, module_class(tf, masked))
    out = frozen(graphtool.load(data))
    x = [np.array([1.0, 1.0, 1.0, 1.0], np.float32)]
    first, second = invoke(data, x, times=2)
    (ours,) = invoke(out, x)
    np.testing.assert_array_equal(ours[0], [1.0, 0.0, 3.0, 0.0])
    np.testing.assert_array_equal(first[0], ours[0])
    np.testing.assert_array_equal(second[0], ours[0])


def test_an_update_that_does_not_settle_is_refused(tf):
    def halving(self, x):
        self.v.assign(self.v * 0.5)
        return x * self.v

    graph = graphtool.load(converted(tf, module_class(tf, halving)))
    with pytest.raises(PassError, match="'v' does not settle"):
        transform(graph, "freeze_variables")


def test_a_read_before_the_first_update_that_reaches_an_output_is_refused(tf):
    def read_first(self, x):
        y = x * self.v.read_value()
        self.v.assign(self.v * self.m)
        return y

    graph = graphtool.load(converted(tf, module_class(tf, read_first)))
    with pytest.raises(PassError, match="first call would differ"):
        transform(graph, "freeze_variables")
