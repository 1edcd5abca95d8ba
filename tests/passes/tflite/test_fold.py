"""TFLite fold_batch_norms and fold_constants, checked by running LiteRT before and after.

Tolerances: folding reorders float32 arithmetic (weights * scale instead of (x * w) *
scale; constants evaluated in numpy instead of by LiteRT's kernels), so outputs agree up to
float rounding: relative 1e-5, absolute 1e-5 of the largest output. Ops that only move or
widen values (RESHAPE, TRANSPOSE, DEQUANTIZE of float16, ...) must give identical bits.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import graphtool
from graphtool.formats import tflite
from graphtool.ir import DType, Graph, Node, Quantization, Ref, Tensor, make_const
from graphtool.passes import transform

from ...conftest import TFLITE_FIXTURES, random_inputs, run_litert, tflite_manifest

RTOL = 1e-5
LINEAR = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"


def assert_close(expected: list, actual: list, rtol: float = RTOL) -> None:
    assert len(expected) == len(actual)
    for x, y in zip(expected, actual):
        np.testing.assert_allclose(y, x, rtol=rtol, atol=rtol * float(np.abs(x).max()))


def digit_batch(count: int = 4) -> list[np.ndarray]:
    """Inputs for float_cnn: [0, 1] pixels like the digits it was trained on."""
    return [np.random.default_rng(7).uniform(0, 1, (count, 8, 8, 1)).astype(np.float32)]


def histogram(graph: Graph) -> Counter:
    return Counter(n.op for n in graph if n.op not in ("Const", "Input"))


def stats_of(graph: Graph, spec: str) -> dict:
    (report,) = transform(graph, spec).passes
    return report.stats


def add_op(graph: Graph, name: str, op: str, inputs: list, dtype: DType, shape: tuple,
           options: str | None = None, attrs: dict | None = None, version: int = 1) -> str:
    meta = {"version": version, **({"tflite.options_type": options} if options else {})}
    graph.add_node(Node(name, op, attrs or {}, outputs=[Tensor(name, dtype, shape)], meta=meta), inputs=inputs)
    return name


def const(graph: Graph, name: str, value: np.ndarray, quantization: Quantization | None = None) -> str:
    node = make_const(name, value)
    node.outputs[0].quantization = quantization
    graph.add_node(node)
    return name


def feed(graph: Graph, consumer: str, slot: int, new: str) -> None:
    """Make `new` input `slot` of `consumer`, dropping the constant it had there."""
    old = graph.inputs_of(consumer)[slot]
    graph.set_input(consumer, slot, Ref(new))
    if old is not None and not graph.is_used(old.node):
        graph.remove_node(old.node)


def first(graph: Graph, op: str) -> Node:
    return next(n for n in graph if n.op == op)


# -- fold_batch_norms -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def affine_model(tf) -> bytes:
    """tf_keras Conv2D, DepthwiseConv2D and Dense (ReLU), each followed by a Keras 3-style
    batch norm written out as x * scale + offset, then ReLU; converted without optimizations."""
    import tf_keras

    layers = tf_keras.layers
    rng = np.random.default_rng(3)
    tf_keras.utils.set_random_seed(3)

    def batch_norm(x, channels: int):
        scale = tf.constant(rng.uniform(0.5, 2.0, channels).astype(np.float32))
        offset = tf.constant(rng.standard_normal(channels).astype(np.float32))
        return layers.ReLU()(layers.Lambda(lambda t: t * scale + offset)(x))

    image = tf_keras.Input((8, 8, 3))
    x = batch_norm(layers.Conv2D(4, 3, padding="same", activation="relu")(image), 4)
    x = batch_norm(layers.DepthwiseConv2D(3, padding="same", activation="relu")(x), 4)
    x = batch_norm(layers.Dense(5, activation="relu")(layers.Flatten()(x)), 5)
    model = tf_keras.Model(image, x)
    function = tf.function(model).get_concrete_function(tf.TensorSpec([None, 8, 8, 3], tf.float32))
    return bytes(tf.lite.TFLiteConverter.from_concrete_functions([function], model).convert())


@pytest.mark.tf_keras
def test_the_converter_leaves_mul_add_only_behind_an_activation(affine_model):
    graph = graphtool.load(affine_model)
    assert histogram(graph)["MUL"] == histogram(graph)["ADD"] == 3
    assert all(n.attrs["fused_activation_function"] == 1 for n in graph if n.op in LINEAR)
    stats = stats_of(graph, "fold_batch_norms")
    assert stats["folded"] == 0 and stats["skipped"] == {"activation_before": 3}
    assert tflite.write(graph) == affine_model


@pytest.mark.litert
@pytest.mark.tf_keras
def test_mul_add_fold_into_conv_depthwise_and_fully_connected(affine_model):
    graph = graphtool.load(affine_model)
    for node in graph:  # the model the converter would have fused: no activation before the MUL
        if node.op in LINEAR:
            node.attrs["fused_activation_function"] = 0
    before = tflite.write(graph)
    fc = first(graph, "FULLY_CONNECTED").name
    assert graph.inputs_of(fc)[2] is None
    output_name = graph.node(graph.outputs[0].node).outputs[0].name

    stats = stats_of(graph, "fold_batch_norms")
    assert stats["folded"] == 6 and stats["folded_ops"] == {"ADD": 3, "MUL": 3}
    assert stats["operator_codes_dropped"] == 2
    after = tflite.write(graph)
    reread = graphtool.load(after)
    assert histogram(reread) == Counter({"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "RESHAPE": 1})
    for node in reread:
        if node.op in LINEAR:
            assert node.attrs["fused_activation_function"] == 1  # the ADD's ReLU moved here
            assert graph.inputs_of(node.name)[2] is not None  # FULLY_CONNECTED got a bias
    assert reread.node(reread.outputs[0].node).outputs[0].name == output_name
    assert len(after) < len(before)
    inputs = [np.random.default_rng(0).standard_normal((3, 8, 8, 3)).astype(np.float32)]
    assert_close(run_litert(before, inputs), run_litert(after, inputs))


def insert_after(graph: Graph, producer: str, op: str, value: np.ndarray, activation: int = 0,
                 constant_first: bool = False) -> str:
    """producer -> op(producer, Const value) -> producer's former consumers (op(Const value,
    producer) when `constant_first`)."""
    tensor = graph.node(producer).outputs[0]
    users = graph.consumers(Ref(producer))
    operand = const(graph, f"{producer}/{op.lower()}_operand", np.asarray(value, np.float32))
    options = {"MUL": "MulOptions", "ADD": "AddOptions", "SUB": "SubOptions"}[op]
    operands = [Ref(producer), Ref(operand)]
    name = add_op(graph, f"{producer}/{op.lower()}", op, operands[::-1] if constant_first else operands,
                  DType.FLOAT32, tensor.shape, options, {"fused_activation_function": activation})
    for user, slot in users:
        graph.set_input(user, slot, Ref(name))
    graph.toposort()
    return name


@pytest.mark.litert
def test_the_activation_moves_and_a_shared_bias_is_copied():
    graph = graphtool.load(FLOAT_CNN)
    conv = first(graph, "CONV_2D")
    x, weights, bias = graph.inputs_of(conv.name)
    original_bias = graph.node(bias.node).outputs[0].data
    const(graph, "bias_user", np.zeros(1, np.float32))
    user = add_op(graph, "bias_user_out", "ADD", [bias, Ref("bias_user")], DType.FLOAT32, (16,), "AddOptions",
                  {"fused_activation_function": 0})
    graph.outputs.append(Ref(user))
    conv.attrs["fused_activation_function"] = 0
    rng = np.random.default_rng(1)
    mul = insert_after(graph, conv.name, "MUL", rng.uniform(0.5, 2, (1, 1, 1, 16)))
    add = insert_after(graph, mul, "ADD", rng.standard_normal(16), activation=3)
    sub = insert_after(graph, add, "SUB", rng.standard_normal(16))  # after the ReLU6: stays
    before = tflite.write(graph)

    stats = stats_of(graph, "fold_batch_norms")
    assert stats["folded_ops"] == {"ADD": 1, "MUL": 1}
    assert stats["skipped"] == {"activation_before": 1}
    assert sub in graph and mul not in graph and add in graph
    folded = graph.node(add)
    assert folded.op == "CONV_2D" and folded.attrs["fused_activation_function"] == 3
    new_bias = graph.inputs_of(add)[2]
    assert new_bias != bias and graph.node(new_bias.node).outputs[0].shape == (16,)
    np.testing.assert_array_equal(graph.node(bias.node).outputs[0].data, original_bias)
    after = tflite.write(graph)
    assert_close(run_litert(before, digit_batch()), run_litert(after, digit_batch()))


@pytest.mark.litert
@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"])
def test_a_chain_of_constant_sums_and_scales_ends_in_one_bias(op):
    """After a conv with a bias: ADD of a scalar (Keras 3's hard sigmoid adds 3.0), SUB of a
    per-channel constant, c - x (the weights are negated), MUL by a scalar, ADD [1, 1, 1, C]."""
    graph = graphtool.load(FLOAT_CNN)
    linear = first(graph, op)
    linear.attrs["fused_activation_function"] = 0
    channels = linear.outputs[0].shape[-1]
    rng = np.random.default_rng(2)
    rank = len(linear.outputs[0].shape)
    name = insert_after(graph, linear.name, "ADD", np.float32(3.0))
    name = insert_after(graph, name, "SUB", rng.standard_normal(channels))
    name = insert_after(graph, name, "SUB", rng.standard_normal(channels), constant_first=True)
    name = insert_after(graph, name, "MUL", np.float32(0.25))
    last = insert_after(graph, name, "ADD", rng.standard_normal((1,) * (rank - 1) + (channels,)), activation=1)
    before = tflite.write(graph)

    stats = stats_of(graph, "fold_batch_norms")
    assert stats["folded_ops"] == {"ADD": 2, "MUL": 1, "SUB": 2} and stats["skipped"] == {}
    folded = graph.node(last)
    assert folded.op == op and folded.attrs["fused_activation_function"] == 1
    assert histogram(graph)[op] == histogram(graphtool.load(before))[op]
    assert not {"ADD", "SUB", "MUL"} & set(histogram(graph))
    after = tflite.write(graph)
    assert_close(run_litert(before, digit_batch()), run_litert(after, digit_batch()))


def test_what_cannot_be_folded_is_left_alone():
    graph = graphtool.load(FLOAT_CNN)
    depthwise, pointwise = first(graph, "DEPTHWISE_CONV_2D"), first(graph, "CONV_2D")
    for node in (depthwise, pointwise):
        node.attrs["fused_activation_function"] = 0
    insert_after(graph, depthwise.name, "MUL", np.full((1, 8, 1, 16), 2.0))  # varies along width
    pointwise_out = graph.consumers(Ref(pointwise.name))
    insert_after(graph, pointwise.name, "ADD", np.ones(16))
    graph.set_input(*pointwise_out[0], Ref(pointwise.name))  # the conv output is used twice now
    graph.outputs.append(Ref(pointwise.name))
    before = tflite.write(graph)
    stats = stats_of(graph, "fold_batch_norms")
    assert stats["folded"] == 0
    assert stats["skipped"] == {"not_per_channel": 1, "intermediate_used_elsewhere": 1}
    assert tflite.write(graph) == before


# -- fold_constants ---------------------------------------------------------------------------

FLOAT16 = TFLITE_FIXTURES / "float16.tflite"


def test_dequantize_is_kept_by_default():
    graph = graphtool.load(FLOAT16)
    stats = stats_of(graph, "fold_constants")
    assert stats["folded"] == 0 and stats["skipped"] == {"dequantize_kept": 10}
    assert tflite.write(graph) == FLOAT16.read_bytes()


@pytest.mark.litert
def test_float16_weights_fold_to_float32(tf):
    from tensorflow.lite.python import schema_py_generated as schema

    original = FLOAT16.read_bytes()
    graph = graphtool.load(original)
    stats = stats_of(graph, "fold_constants(fold_dequantize=true)")
    assert stats["folded_ops"] == {"DEQUANTIZE": 10}
    assert stats["removed"] == 10 and stats["buffers_dropped"] == 10 and stats["operator_codes_dropped"] == 1
    after = tflite.write(graph)
    reread = graphtool.load(after)
    assert "DEQUANTIZE" not in histogram(reread)
    assert {t.dtype for n in reread for t in n.outputs if t.is_constant} == {DType.FLOAT32, DType.INT32}
    model = schema.ModelT.InitFromPackedBuf(bytearray(after), 0)
    assert len(model.operatorCodes) == 7 and len(model.buffers) == 25
    assert len(after) == 43980  # 25540 bytes before: float16 weights (19924 bytes) now float32
    inputs = digit_batch()
    assert_close(run_litert(original, inputs), run_litert(after, inputs), rtol=1e-6)


def test_exclusions_and_the_size_limit():
    graph = graphtool.load(FLOAT16)
    assert stats_of(graph, "fold_constants(fold_dequantize=true, exclude_op=DEQUANTIZE)")["folded"] == 0
    fc_weights = graph.inputs_of(first(graph, "FULLY_CONNECTED").name)[1].node
    stats = stats_of(graph, f"fold_constants(fold_dequantize=true, exclude_node=\"{fc_weights}\")")
    assert stats["folded"] == 9 and stats["skipped"] == {"excluded_node": 1}
    graph = graphtool.load(FLOAT16)
    stats = stats_of(graph, "fold_constants(fold_dequantize=true, max_constant_size_in_bytes=4096)")
    assert stats["folded"] == 9 and stats["skipped"] == {"too_big": 1}  # fc: 32x256 float32
    assert graph.node(fc_weights).op == "DEQUANTIZE"


def constant_chains() -> tuple[Graph, dict[str, np.ndarray]]:
    """float_cnn with weights and biases computed from other constants by the ops
    fold_constants evaluates; returns the graph and the values the chains compute."""
    graph = graphtool.load(FLOAT_CNN)
    rng = np.random.default_rng(5)
    conv, pointwise = [n.name for n in graph if n.op == "CONV_2D"]
    depthwise = first(graph, "DEPTHWISE_CONV_2D").name
    fc, probs = [n.name for n in graph if n.op == "FULLY_CONNECTED"]
    f32 = DType.FLOAT32
    expected = {}

    # conv weights [16, 3, 3, 1] = TRANSPOSE(RESHAPE(weights in HWIO order, flat), [3, 0, 1, 2])
    weights = graph.node(graph.inputs_of(conv)[1].node).outputs[0].data
    flat = const(graph, "hwio_flat", np.ascontiguousarray(weights.transpose(1, 2, 3, 0)).reshape(-1))
    hwio = add_op(graph, "hwio", "RESHAPE", [flat, const(graph, "hwio_shape", np.array([3, 3, 1, 16], np.int32))],
                  f32, (3, 3, 1, 16))
    ohwi = add_op(graph, "ohwi", "TRANSPOSE", [hwio, const(graph, "perm", np.array([3, 0, 1, 2], np.int32))],
                  f32, (16, 3, 3, 1))
    feed(graph, conv, 1, ohwi)
    expected[ohwi] = weights

    # depthwise bias [16] = SQUEEZE(EXPAND_DIMS(NEG(-bias), 0), [0])
    bias = graph.node(graph.inputs_of(depthwise)[2].node).outputs[0].data
    negated = add_op(graph, "negated", "NEG", [const(graph, "minus_bias", -bias)], f32, (16,))
    expanded = add_op(graph, "expanded", "EXPAND_DIMS", [negated, const(graph, "axis0", np.array(0, np.int32))],
                      f32, (1, 16))
    squeezed = add_op(graph, "squeezed", "SQUEEZE", [expanded], f32, (16,), "SqueezeOptions",
                      {"squeeze_dims": np.array([0], np.int32)})
    feed(graph, depthwise, 2, squeezed)
    expected[squeezed] = bias

    # pointwise bias [64] = RSQRT(MAXIMUM(variance, 1e-3)) * gamma
    variance = rng.uniform(-0.1, 2, 64).astype(np.float32)
    gamma = rng.standard_normal(64).astype(np.float32)
    floor = add_op(graph, "floor", "MAXIMUM", [const(graph, "variance", variance),
                                               const(graph, "epsilon", np.array(1e-3, np.float32))], f32, (64,))
    rsqrt = add_op(graph, "rsqrt", "RSQRT", [floor], f32, (64,))
    scaled = add_op(graph, "scaled", "MUL", [rsqrt, const(graph, "gamma", gamma)], f32, (64,), "MulOptions",
                    {"fused_activation_function": 0})
    feed(graph, pointwise, 2, scaled)
    root = np.sqrt(np.maximum(variance, np.float32(1e-3)).astype(np.float64))
    expected[scaled] = (1 / root).astype(np.float32) * gamma  # RSQRT rounds to float32, then MUL

    # fc bias [32] = CONCATENATION(ADD(a, b) with RELU, CAST(int32 k))
    a, b = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    k = rng.integers(-5, 5, 16).astype(np.int32)
    relu = add_op(graph, "relu_sum", "ADD", [const(graph, "a", a), const(graph, "b", b)], f32, (16,),
                  "AddOptions", {"fused_activation_function": 1})
    cast = add_op(graph, "cast", "CAST", [const(graph, "k", k)], f32, (16,))
    joined = add_op(graph, "joined", "CONCATENATION", [relu, cast], f32, (32,), "ConcatenationOptions",
                    {"axis": 0, "fused_activation_function": 0})
    feed(graph, fc, 2, joined)
    expected[joined] = np.concatenate([np.maximum(a + b, 0), k.astype(np.float32)])

    # probs weights [10, 32] = DEQUANTIZE(int8, per channel along axis 0)
    q = rng.integers(-127, 128, (10, 32)).astype(np.int8)
    scale = rng.uniform(0.001, 0.01, 10).astype(np.float32)
    quantized = const(graph, "q", q, Quantization(scale, np.zeros(10, np.int64), 0))
    dequantized = add_op(graph, "dequantized", "DEQUANTIZE", [quantized], f32, (10, 32), version=2)
    feed(graph, probs, 1, dequantized)
    expected[dequantized] = q.astype(np.float32) * scale[:, None]

    # probs bias [10] = DIV(SUB(x, y), 4)
    x, y = rng.standard_normal(10).astype(np.float32), rng.standard_normal(10).astype(np.float32)
    difference = add_op(graph, "difference", "SUB", [const(graph, "x", x), const(graph, "y", y)], f32, (10,),
                        "SubOptions", {"fused_activation_function": 0})
    quotient = add_op(graph, "quotient", "DIV", [difference, const(graph, "four", np.array(4, np.float32))],
                      f32, (10,), "DivOptions", {"fused_activation_function": 0})
    feed(graph, probs, 2, quotient)
    expected[quotient] = (x - y) / np.float32(4)

    graph.toposort()
    return graph.validate(), expected


FOLD_CHAINS = "fold_constants(fold_dequantize=true)"


def test_constant_chains_fold_to_their_values():
    graph, expected = constant_chains()
    before = tflite.write(graph)
    stats = stats_of(graph, FOLD_CHAINS)
    assert stats["folded_ops"] == {"ADD": 1, "CAST": 1, "CONCATENATION": 1, "DEQUANTIZE": 1, "DIV": 1,
                                   "EXPAND_DIMS": 1, "MAXIMUM": 1, "MUL": 1, "NEG": 1, "RESHAPE": 1, "RSQRT": 1,
                                   "SQUEEZE": 1, "SUB": 1, "TRANSPOSE": 1}
    assert stats["skipped"] == {}
    assert histogram(graph) == histogram(graphtool.load(FLOAT_CNN))
    for name, value in expected.items():
        folded = graph.node(name)
        assert folded.op == "Const" and folded.outputs[0].name == name
        np.testing.assert_allclose(folded.outputs[0].data, value, rtol=1e-7)
    for exact in ("ohwi", "squeezed", "dequantized"):  # moved, negated twice, or exactly widened
        np.testing.assert_array_equal(graph.node(exact).outputs[0].data, expected[exact])
    assert len(tflite.write(graph)) < len(before)


@pytest.mark.litert
def test_constant_chains_fold_to_what_litert_computes():
    graph, _ = constant_chains()
    before = tflite.write(graph)
    transform(graph, FOLD_CHAINS)
    assert_close(run_litert(before, digit_batch()), run_litert(tflite.write(graph), digit_batch()))


EXCLUDE_RSQRT = "fold_constants(exclude_op=RSQRT)"


def test_excluded_ops_stay_with_what_needs_them():
    graph, _ = constant_chains()
    stats = stats_of(graph, EXCLUDE_RSQRT)
    assert stats["skipped"] == {"dequantize_kept": 1, "excluded_op": 1}
    assert {"DEQUANTIZE", "RSQRT", "MUL"} <= set(histogram(graph))  # MUL needs RSQRT's value
    assert "MAXIMUM" not in histogram(graph)  # RSQRT's input still folds
    assert stats["folded"] == 11


@pytest.mark.litert
def test_folding_around_excluded_ops_computes_the_same():
    graph, _ = constant_chains()
    transform(graph, EXCLUDE_RSQRT)
    assert_close(run_litert(tflite.write(constant_chains()[0]), digit_batch()),
                 run_litert(tflite.write(graph), digit_batch()))


def per_tensor(scale: float, zero_point: int) -> Quantization:
    return Quantization(np.array([scale], np.float32), np.array([zero_point], np.int64))


@pytest.mark.litert
def test_quantized_values_fold_only_when_they_just_move():
    # A per-channel weight stored transposed: TRANSPOSE would move its quantized dimension.
    path = TFLITE_FIXTURES / "full_int8.tflite"
    graph = graphtool.load(path)
    probs = [n.name for n in graph if n.op == "FULLY_CONNECTED"][-1]
    weights = graph.node(graph.inputs_of(probs)[1].node).outputs[0]
    q = weights.quantization
    stored = const(graph, "stored_transposed", np.ascontiguousarray(weights.data.T),
                   Quantization(q.scale, q.zero_point, 1))
    back = add_op(graph, "transposed_back", "TRANSPOSE", [stored, const(graph, "perm", np.array([1, 0], np.int32))],
                  DType.INT8, (10, 32))
    graph.node(back).outputs[0].quantization = q
    feed(graph, probs, 1, back)
    graph.toposort()
    stats = stats_of(graph, "fold_constants")
    assert stats["folded"] == 0 and stats["skipped"] == {"quantized": 1}
    inputs = [np.random.default_rng(2).integers(-128, 127, (2, 8, 8, 1)).astype(np.int8)]
    np.testing.assert_array_equal(run_litert(path.read_bytes(), inputs)[0], run_litert(tflite.write(graph), inputs)[0])

    # int8 values with the per-tensor quantization of their RESHAPE: folded, bit for bit;
    # the quantized ADD they feed is not.
    graph = Graph(name="main", format="tflite")
    quantization = per_tensor(0.5, -3)
    graph.add_node(Node("x", "Input", outputs=[Tensor("x", DType.INT8, (1, 4), quantization=quantization)]))
    values = const(graph, "values", np.array([[1, -7], [100, -128]], np.int8), quantization)
    offset = const(graph, "offset", np.array([[5, 6, 7, 8]], np.int8), quantization)
    reshaped = add_op(graph, "reshaped", "RESHAPE", [values, const(graph, "shape", np.array([1, 4], np.int32))],
                      DType.INT8, (1, 4))
    graph.node(reshaped).outputs[0].quantization = quantization
    shifted = add_op(graph, "shifted", "ADD", [reshaped, offset], DType.INT8, (1, 4), "AddOptions",
                     {"fused_activation_function": 0}, version=2)
    graph.node(shifted).outputs[0].quantization = per_tensor(1.0, 0)
    y = add_op(graph, "y", "ADD", ["x", shifted], DType.INT8, (1, 4), "AddOptions",
               {"fused_activation_function": 0}, version=2)
    graph.node(y).outputs[0].quantization = per_tensor(1.0, 0)
    graph.inputs, graph.outputs = ["x"], [Ref(y)]
    before = tflite.write(graph.validate())
    stats = stats_of(graph, "fold_constants")
    assert stats["folded_ops"] == {"RESHAPE": 1} and stats["skipped"] == {"quantized": 1}
    np.testing.assert_array_equal(graph.node(reshaped).outputs[0].data, [[1, -7, 100, -128]])
    x = [np.array([[0, 10, -50, 127]], np.int8)]
    np.testing.assert_array_equal(run_litert(before, x)[0], run_litert(tflite.write(graph), x)[0])


@pytest.mark.litert
@pytest.mark.parametrize("name", [n for n, m in tflite_manifest().items() if m["runs_in_litert"]])
def test_every_runnable_fixture_still_runs_after_folding(name):
    from ai_edge_litert.interpreter import Interpreter

    original = (TFLITE_FIXTURES / name).read_bytes()
    graph = graphtool.load(original)
    transform(graph, "fold_constants(fold_dequantize=true) fold_batch_norms")
    inputs = random_inputs(Interpreter(model_content=original))
    for x, y in zip(run_litert(original, inputs), run_litert(tflite.write(graph), inputs)):
        if x.dtype == object:
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-6 * float(np.abs(x).max(initial=1)))
