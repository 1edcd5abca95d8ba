"""TFLite model surgery: remove_nodes (bypass, GTT semantics), rename_op (custom operator codes)
and decompose_ops (HARD_SWISH and LEAKY_RELU as builtins every delegate takes). Numbers are
proven in LiteRT, with and without its default XNNPACK delegate; structure and refusals on
graphs built through the IR, which need no runtime."""
from __future__ import annotations

import numpy as np
import pytest

import graphtool
from graphtool.formats import tflite
from graphtool.formats.tflite import keys
from graphtool.ir import DType, Graph, Node, Ref, Tensor, make_const
from graphtool.passes import PassError, transform

from ...conftest import TFLITE_FIXTURES, run_litert

FULL_INT8 = TFLITE_FIXTURES / "full_int8.tflite"
CUSTOM_OP = TFLITE_FIXTURES / "custom_op.tflite"
# HARD_SWISH decomposed vs LiteRT's kernel: |difference| <= RTOL * |output| + ATOL. Measured on
# 4,000 values in [-3500, 3500] (most in [-8, 8]): at most 1.8e-7 * max(1, |output|) — 2 ulp of
# the input's magnitude with the XNNPACK delegate, of the output's with the builtin kernel.
HARD_SWISH_RTOL = HARD_SWISH_ATOL = 1e-6


def stats_of(graph: Graph, spec: str, **kwargs) -> dict:
    (report,) = transform(graph, spec, **kwargs).passes
    return report.stats


def operators(graph: Graph) -> list[str]:
    return [n.op for n in graph if n.op not in ("Input", "Const")]


def chain(ops: list[tuple[str, dict, str | None]], shape=(2, 8), extra=None) -> Graph:
    """x -> op -> op -> ... -> the last is the output; each op (name, attrs, options) reads the
    previous one (and `extra[name]`, a constant, as its second input)."""
    graph = Graph("main", format="tflite")
    graph.add_node(Node("x", "Input", outputs=[Tensor("x", DType.FLOAT32, shape)]))
    graph.inputs = ["x"]
    previous = "x"
    for index, (op, attrs, options) in enumerate(ops):
        name = f"{op.lower()}{index}"
        inputs = [Ref(previous, 0)]
        if extra and name in extra:
            graph.add_node(make_const(f"{name}/c", extra[name]))
            inputs.append(Ref(f"{name}/c", 0))
        meta = {keys.VERSION: 1, **({keys.OPTIONS_TYPE: options} if options else {})}
        graph.add_node(Node(name, op, attrs, outputs=[Tensor(name, DType.FLOAT32, shape)], meta=meta), inputs=inputs)
        previous = name
    graph.outputs = [Ref(previous, 0)]
    return graph


def run_both(graph: Graph, x: np.ndarray, delegates: bool = True) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_content=tflite.write(graph), experimental_op_resolver_type=kind)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


# -- decompose_ops ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def activations(tf) -> bytes:
    """The converter's HARD_SWISH and LEAKY_RELU (alpha 0.2, 1.5 and -0.3), each an output."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    def model(x):
        return {"hard_swish": x * tf.nn.relu6(x + 3) / 6, "leaky": tf.nn.leaky_relu(x, 0.2),
                "steep": tf.nn.leaky_relu(x, 1.5), "negative": tf.nn.leaky_relu(x, -0.3)}

    frozen = convert_variables_to_constants_v2(tf.function(model, input_signature=[
        tf.TensorSpec([4, 1000], tf.float32, name="x")]).get_concrete_function())
    return bytes(tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert())


def samples(seed: int = 0) -> np.ndarray:
    """Values around HARD_SWISH's kinks (-3, 3) and far from them, and zeros of both signs."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.standard_normal(1000) * 4, rng.uniform(-3.5, 3.5, 1000), np.linspace(-8, 8, 1000),
                        rng.standard_normal(1000) * 1e3]).astype(np.float32)
    x[:4] = [0.0, -0.0, -3.0, 3.0]
    return x.reshape(4, 1000)


@pytest.mark.litert
@pytest.mark.parametrize("delegates", [True, False], ids=["xnnpack", "builtin_kernels"])
def test_decomposed_activations_compute_the_same_values_in_litert(activations, delegates):
    graph = graphtool.load(activations)
    stats = stats_of(graph, "decompose_ops(op=HARD_SWISH, op=LEAKY_RELU)")
    assert stats == {"decomposed": {"HARD_SWISH": 1, "LEAKY_RELU": 2}, "skipped": {"negative_alpha": 1}}
    assert operators(graph).count("HARD_SWISH") == 0 and operators(graph).count("LEAKY_RELU") == 1
    x = samples()
    kinds = [graphtool.load(activations).node(r.node).op for r in graph.outputs]
    before, after = run_both(graphtool.load(activations), x, delegates), run_both(graph, x, delegates)
    for kind, expected, got in zip(kinds, before, after):
        if kind == "HARD_SWISH":
            np.testing.assert_allclose(got, expected, rtol=HARD_SWISH_RTOL, atol=HARD_SWISH_ATOL)
        else:  # LEAKY_RELU: exact, zeros' signs too
            np.testing.assert_array_equal(got.view(np.int32), expected.view(np.int32))
    assert kinds.count("HARD_SWISH") == 1 and kinds.count("LEAKY_RELU") == 3


def test_hard_swish_becomes_add_relu6_mul_mul_with_shared_constants():
    graph = chain([("HARD_SWISH", {}, None), ("HARD_SWISH", {}, None)])
    stats = stats_of(graph, "decompose_ops(op=HARD_SWISH)")
    assert stats == {"decomposed": {"HARD_SWISH": 2}, "skipped": {}}
    assert operators(graph) == ["ADD", "MUL", "MUL", "ADD", "MUL", "MUL"]
    adds = [n for n in graph if n.op == "ADD"]
    assert all(n.attrs["fused_activation_function"] == 3 and n.meta[keys.OPTIONS_TYPE] == "AddOptions" for n in adds)
    constants = {n.name: float(n.outputs[0].data) for n in graph if n.op == "Const"}
    assert constants == {"hard_swish/three": 3.0, "hard_swish/one_sixth": np.float32(1 / 6)}
    assert graph.outputs == [Ref("hard_swish1", 0)] and graph.node("hard_swish1").op == "MUL"
    reread = graphtool.load(tflite.write(graph))
    assert operators(reread) == operators(graph)


def test_quantized_activations_are_left_with_the_reason():
    graph = chain([("LEAKY_RELU", {"alpha": 0.1}, "LeakyReluOptions")])
    graph.node("x").outputs[0].dtype = graph.node("leaky_relu0").outputs[0].dtype = DType.INT8
    assert stats_of(graph, "decompose_ops") == {"decomposed": {}, "skipped": {"not_float32": 1}}


def test_decompose_ops_refuses_an_op_it_cannot_decompose():
    with pytest.raises(PassError, match="no decomposition of 'GELU'; it decomposes HARD_SWISH, LEAKY_RELU"):
        transform(chain([("RELU", {}, None)]), "decompose_ops(op=GELU)")


# -- remove_nodes ---------------------------------------------------------------------------------------

def test_a_trailing_dequantize_goes_as_set_io_types_would_remove_it():
    original = FULL_INT8.read_bytes()
    floated = graphtool.load(original)
    transform(floated, "set_io_types(outputs=float32)")
    data = tflite.write(floated)
    removed, io = graphtool.load(data), graphtool.load(data)
    assert stats_of(removed, "remove_nodes(op=DEQUANTIZE)") == {"removed": {"DEQUANTIZE": 1}, "skipped": {}}
    transform(io, "set_io_types(outputs=int8)")
    assert tflite.write(removed) == tflite.write(io) == original


def reshapes() -> Graph:
    """x [2, 8] -> RESHAPE to [2, 8] -> RELU -> RESHAPE to [16] -> RELU."""
    graph = chain([("RESHAPE", {}, None), ("RELU", {}, None), ("RESHAPE", {}, None)],
                  extra={"reshape0": np.array([2, 8], np.int32), "reshape2": np.array([16], np.int32)})
    graph.node("reshape2").outputs[0].shape = (16,)
    graph.add_node(Node("relu3", "RELU", outputs=[Tensor("relu3", DType.FLOAT32, (16,))], meta={keys.VERSION: 1}),
                   inputs=[Ref("reshape2", 0)])
    graph.outputs = [Ref("relu3", 0)]
    return graph


def test_a_no_op_reshape_goes_with_its_shape_and_one_that_reshapes_stays():
    graph = reshapes()
    stats = stats_of(graph, "remove_nodes(op=RESHAPE)")
    assert stats == {"removed": {"RESHAPE": 1}, "skipped": {"changes_shape": 1}}
    assert "reshape0" not in graph and "reshape0/c" not in graph and "reshape2" in graph
    assert graph.inputs_of("relu1") == [Ref("x", 0)]


@pytest.mark.litert
def test_removing_a_no_op_reshape_is_exact_in_litert():
    graph = reshapes()
    before = tflite.write(graph)
    transform(graph, "remove_nodes(op=RESHAPE)")
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    np.testing.assert_array_equal(run_litert(tflite.write(graph), [x])[0], run_litert(before, [x])[0])


def test_bypasses_that_change_what_an_operator_reads_are_left_with_the_reason():
    graph = graphtool.load(FULL_INT8.read_bytes())
    transform(graph, "set_io_types(inputs=float32)")  # float input -> QUANTIZE -> CONV_2D
    stats = stats_of(graph, "remove_nodes(op=QUANTIZE, op=CONV_2D, op=MAX_POOL_2D)")
    assert stats == {"removed": {}, "skipped": {"changes_shape": 3, "changes_type": 1}}  # 2 CONV_2D, 1 pool


def test_max_inputs_counts_inputs_that_are_not_constants_and_outputs_named_stay():
    graph = chain([("RELU", {}, None), ("ADD", {"fused_activation_function": 0}, "AddOptions"),
                   ("RELU", {}, None)], extra={"add1": np.ones((2, 8), np.float32)})
    assert stats_of(graph.copy(), "remove_nodes(op=ADD)")["removed"] == {"ADD": 1}  # a constant input
    graph.set_input("add1", 1, Ref("x", 0))  # now x + relu(x): two computed inputs
    assert stats_of(graph.copy(), "remove_nodes(op=ADD)")["skipped"] == {"inputs": 1}
    assert stats_of(graph.copy(), "remove_nodes(op=ADD, max_inputs=2)")["removed"] == {"ADD": 1}
    assert stats_of(graph, "remove_nodes(op=RELU)", outputs=["relu2"])["removed"] == {"RELU": 1}
    assert "relu2" in graph and "relu0" not in graph


# -- rename_op ------------------------------------------------------------------------------------------

@pytest.mark.litert
def test_rename_op_renames_the_custom_code_in_place_and_litert_sees_it():
    from ai_edge_litert.interpreter import Interpreter

    original = CUSTOM_OP.read_bytes()
    graph = graphtool.load(original)
    codes = [dict(c) for c in graph.meta[keys.OPERATOR_CODES]]
    assert stats_of(graph, "rename_op(old_op_name=Mfcc, new_op_name=VendorMfcc)") == {"renamed": 1}
    renamed = tflite.write(graph)
    reread = graphtool.load(renamed)
    assert [c.get("custom_code") for c in reread.meta[keys.OPERATOR_CODES]] == [
        b"VendorMfcc" if c.get("custom_code") == b"Mfcc" else c.get("custom_code") for c in codes]
    Interpreter(model_content=original).allocate_tensors()  # LiteRT resolves Mfcc ...
    with pytest.raises(RuntimeError, match="VendorMfcc"):  # ... and has no kernel for VendorMfcc
        Interpreter(model_content=renamed).allocate_tensors()
    transform(reread, "rename_op(old_op_name=VendorMfcc, new_op_name=Mfcc)")
    assert tflite.write(reread) == original


@pytest.mark.parametrize("spec, message", [
    ("rename_op(old_op_name=Mfcc, new_op_name=HARD_SWISH)", "HARD_SWISH is a builtin operator"),
    ("rename_op(old_op_name=CONV_2D, new_op_name=MyConv)", "CONV_2D is a builtin operator"),
    ("rename_op(old_op_name=Mfcc)", "give old_op_name= and new_op_name="),
])
def test_rename_op_refuses_builtins_and_empty_names(spec, message):
    with pytest.raises(PassError, match=message):
        transform(graphtool.load(CUSTOM_OP.read_bytes()), spec)


def test_rename_op_of_a_code_no_operator_has_changes_nothing():
    graph = graphtool.load(CUSTOM_OP.read_bytes())
    assert stats_of(graph, "rename_op(old_op_name=Nope, new_op_name=Other)") == {"renamed": 0}
    assert tflite.write(graph) == CUSTOM_OP.read_bytes()
