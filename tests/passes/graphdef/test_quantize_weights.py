"""quantize_weights: GTT's quint8 + Dequantize(MIN_FIRST) rewrite, and the per-channel int8
Cast+Mul extension, checked by running the graphs before and after in TensorFlow."""
from __future__ import annotations

import numpy as np
import pytest

import graphtool
from graphtool.formats.graphdef import write
from graphtool.ir import Graph
from graphtool.passes import Context, PassError, get, transform

from ...conftest import GRAPHDEF_FIXTURES
from ...tf_runtime import build_graphdef, run_graphdef, transform_graphdef

GTT_TOLERANCE = 0.5  # quantize_weights_test.cc compares outputs at 0.5


# -- helpers ---------------------------------------------------------------------------------

def quantized(tf, data: bytes, spec: str) -> tuple[Graph, bytes, dict]:
    result = transform_graphdef(tf, data, spec)
    return result.graph, result.data, result.stats


def node_defs(tf, data: bytes) -> dict:
    return {n.name: n for n in tf.compat.v1.GraphDef.FromString(data).node}


def relative_l2(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


def gtt_conv_graph(tf, inputs: list[float], input_shape, weights: list[float], weight_shape) -> bytes:
    """quantize_weights_test.cc's graph: Conv2D(Const input_op, Const weights_op) named output."""
    def body():
        x = tf.constant(np.array(inputs, np.float32).reshape(input_shape), name="input_op")
        w = tf.constant(np.array(weights, np.float32).reshape(weight_shape), name="weights_op")
        tf.nn.conv2d(x, w, strides=[1, 1, 1, 1], padding="VALID", name="output")
    return build_graphdef(tf, body)[0]


GTT_WEIGHTS = [1.0, 2.0, 3.0, 4.0, 0.1, 0.2, 0.3, 0.4] * 5  # shape 1x2x2x10, all positive


def channel_spread_conv(tf, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """A 3x3x8x32 conv whose output channels' weights span 1e-3 .. 10 in magnitude."""
    rng = np.random.default_rng(seed)
    magnitudes = np.logspace(-3, 1, 32).astype(np.float32)
    weights = (rng.standard_normal((3, 3, 8, 32)) * magnitudes).astype(np.float32)

    def body():
        x = tf.compat.v1.placeholder(tf.float32, (None, 8, 8, 8), name="x")
        tf.nn.conv2d(x, tf.constant(weights, name="w"), strides=[1, 1, 1, 1], padding="SAME", name="y")
    return build_graphdef(tf, body)[0], {"x:0": rng.standard_normal((2, 8, 8, 8)).astype(np.float32)}


# -- GTT mode --------------------------------------------------------------------------------

def test_gtt_port_structure_and_outputs_within_half(tf):
    original = gtt_conv_graph(tf, [1, 4, 2, 5, 3, 6, -1, -4, -2, -5, -3, -6], (1, 1, 6, 2), GTT_WEIGHTS, (1, 2, 2, 10))
    _, data, stats = quantized(tf, original, "quantize_weights(minimum_size=16)")
    nodes = node_defs(tf, data)
    assert nodes["input_op"].op == "Const"  # 12 elements < 16: untouched
    assert nodes["input_op"].attr["dtype"].type == tf.float32.as_datatype_enum
    weights = nodes["weights_op"]
    assert weights.op == "Dequantize"
    assert list(weights.input) == ["weights_op_quantized_const", "weights_op_quantized_min", "weights_op_quantized_max"]
    assert weights.attr["T"].type == tf.quint8.as_datatype_enum
    assert weights.attr["mode"].s == b"MIN_FIRST"
    assert nodes["weights_op_quantized_const"].attr["dtype"].type == tf.quint8.as_datatype_enum
    assert stats["quantized"] == 1 and stats["skipped"] == {"below minimum_size": 1}

    (before,), (after,) = run_graphdef(tf, original, None, ["output:0"]), run_graphdef(tf, data, None, ["output:0"])
    np.testing.assert_allclose(after, before, atol=GTT_TOLERANCE, rtol=0)
    assert not np.array_equal(after, before)  # the weights really are eight-bit now


def test_ranges_always_include_zero(tf):
    """GTT's RangesAlwaysIncludeZero: all-negative input [-5, -1] → [-5, 0]; weights [0.1, 4] → [0, 4]."""
    original = gtt_conv_graph(tf, [-1, -4, -2, -5] * 4, (1, 1, 4, 4), GTT_WEIGHTS, (1, 2, 2, 10))
    graph, data, _ = quantized(tf, original, "quantize_weights(minimum_size=16)")
    names = ("input_op_quantized_min", "input_op_quantized_max", "weights_op_quantized_min", "weights_op_quantized_max")
    scalar = {name: float(graph.node(name).outputs[0].data) for name in names}
    assert scalar == pytest.approx({"input_op_quantized_min": -5.0, "input_op_quantized_max": 0.0,
                                    "weights_op_quantized_min": 0.0, "weights_op_quantized_max": 4.0}, abs=1e-5)
    # 0 is one of the 256 levels, so the quint8 values use the whole range from 0 to 255
    weights_q = graph.node("weights_op_quantized_const").outputs[0].data
    assert weights_q.min() > 0 and weights_q.max() == 255
    assert graph.node("input_op_quantized_const").outputs[0].data.min() == 0
    (before,), (after,) = run_graphdef(tf, original, None, ["output:0"]), run_graphdef(tf, data, None, ["output:0"])
    np.testing.assert_allclose(after, before, atol=GTT_TOLERANCE, rtol=0)


def test_dequantized_weights_in_tensorflow_are_within_one_step(tf):
    """TF's own Dequantize kernel reads back each weight to within (max - min) / 255."""
    rng = np.random.default_rng(1)
    weights = (rng.standard_normal((4, 4, 8, 16)) * 0.7 + 0.2).astype(np.float32)
    original = build_graphdef(tf, lambda: tf.identity(tf.constant(weights, name="w"), name="out"))[0]
    graph, data, _ = quantized(tf, original, "quantize_weights")
    (read_back,) = run_graphdef(tf, data, None, ["w:0"])
    step = (weights.max() - min(weights.min(), 0)) / 255
    error = np.abs(read_back - weights).max()
    assert 0 < error <= step, (error, step)


def test_small_and_non_float_consts_untouched(tf):
    def body():
        x = tf.compat.v1.placeholder(tf.float32, (None, 1023), name="x")
        w = tf.constant(np.linspace(-1, 1, 1023 * 1, dtype=np.float32).reshape(1023, 1), name="w")
        y = tf.matmul(x, w, name="mm")
        tf.reshape(y, tf.constant([-1], dtype=tf.int32, name="shape"), name="out")
    original = build_graphdef(tf, body)[0]
    graph = graphtool.load(original)
    untouched = write(graph)
    report = transform(graph, "quantize_weights")  # default minimum_size=1024 > 1023 elements
    assert not report.changed and write(graph) == untouched
    assert report.passes[0].stats["skipped"] == {"below minimum_size": 1, "not float32": 1}
    # exactly at the threshold it is quantized; the int32 shape never is
    graph, data, _ = quantized(tf, original, "quantize_weights(minimum_size=1023)")
    nodes = node_defs(tf, data)
    assert nodes["w"].op == "Dequantize" and nodes["shape"].op == "Const"
    feeds = {"x:0": np.random.default_rng(0).standard_normal((3, 1023)).astype(np.float32)}
    (before,), (after,) = run_graphdef(tf, original, feeds, ["out:0"]), run_graphdef(tf, data, feeds, ["out:0"])
    np.testing.assert_allclose(after, before, atol=GTT_TOLERANCE, rtol=0)


def conv_matmul_graph(tf, seed: int = 0) -> tuple[bytes, dict]:
    rng = np.random.default_rng(seed)
    conv_w = (rng.standard_normal((3, 3, 4, 16)) * 0.3).astype(np.float32)
    dense_w = (rng.standard_normal((16 * 6 * 6, 24)) * 0.1).astype(np.float32)
    bias = rng.standard_normal(24).astype(np.float32)

    def body():
        x = tf.compat.v1.placeholder(tf.float32, (None, 8, 8, 4), name="x")
        y = tf.nn.relu(tf.nn.conv2d(x, tf.constant(conv_w, name="conv_w"), [1, 1, 1, 1], "VALID"))
        y = tf.reshape(y, [-1, 16 * 6 * 6])
        tf.nn.bias_add(tf.matmul(y, tf.constant(dense_w, name="dense_w")), tf.constant(bias, name="bias"), name="out")
    return build_graphdef(tf, body)[0], {"x:0": rng.standard_normal((4, 8, 8, 4)).astype(np.float32)}


def test_conv_matmul_outputs_within_gtt_tolerance(tf):
    original, feeds = conv_matmul_graph(tf)
    graph, data, stats = quantized(tf, original, "quantize_weights(minimum_size=16)")
    assert stats["quantized"] == 3  # conv_w (576), dense_w (13824), bias (24)
    assert [graph.node(n).op for n in ("conv_w", "dense_w", "bias")] == ["Dequantize"] * 3
    (before,), (after,) = run_graphdef(tf, original, feeds, ["out:0"]), run_graphdef(tf, data, feeds, ["out:0"])
    np.testing.assert_allclose(after, before, atol=GTT_TOLERANCE, rtol=0)
    assert relative_l2(after, before) < 2e-2


def test_device_and_control_inputs_kept(tf):
    def body():
        with tf.control_dependencies([tf.no_op(name="first")]):
            w = tf.constant(np.arange(32, dtype=np.float32), name="w")
        tf.identity(w, name="out")
    original = build_graphdef(tf, body)[0]
    graph = graphtool.load(original)
    graph.node("w").meta["device"] = "/device:CPU:0"
    transform(graph, "quantize_weights(minimum_size=16)")
    nodes = node_defs(tf, write(graph))
    assert nodes["w"].op == "Dequantize" and list(nodes["w"].input)[-1] == "^first"
    assert {nodes[n].device for n in ("w", "w_quantized_const", "w_quantized_min", "w_quantized_max")} == \
        {"/device:CPU:0"}
    (after,) = run_graphdef(tf, write(graph), None, ["out:0"])
    np.testing.assert_allclose(after, np.arange(32), atol=31 / 255)


def test_taken_names_get_a_suffix(tf):
    def body():
        a = tf.constant(np.ones(20, np.float32), name="w_quantized_const")
        b = tf.constant(np.linspace(0, 1, 20, dtype=np.float32), name="w")
        tf.add(a, b, name="out")
    original = build_graphdef(tf, body)[0]
    graph, data, _ = quantized(tf, original, "quantize_weights(minimum_size=16)")
    assert list(node_defs(tf, data)["w"].input)[0] == "w_quantized_const_1"
    (before,), (after,) = run_graphdef(tf, original, None, ["out:0"]), run_graphdef(tf, data, None, ["out:0"])
    np.testing.assert_allclose(after, before, atol=2 / 255)


# -- per-channel extension -------------------------------------------------------------------

def test_per_channel_pattern_parses_in_tensorflow(tf):
    original, _ = channel_spread_conv(tf)
    _, data, stats = quantized(tf, original, "quantize_weights(per_channel=true)")
    assert stats == {"quantized": 1, "per_channel": 1, "per_tensor": 0, "skipped": {}}
    nodes = node_defs(tf, data)
    mul = nodes["w"]
    assert mul.op == "Mul" and list(mul.input) == ["w_quantized_cast", "w_quantized_scale"]
    cast = nodes["w_quantized_cast"]
    assert cast.op == "Cast" and list(cast.input) == ["w_quantized_const"]
    assert cast.attr["SrcT"].type == tf.int8.as_datatype_enum and cast.attr["DstT"].type == tf.float32.as_datatype_enum
    const = tf.make_ndarray(nodes["w_quantized_const"].attr["value"].tensor)
    scale = tf.make_ndarray(nodes["w_quantized_scale"].attr["value"].tensor)
    assert const.dtype == np.int8 and const.shape == (3, 3, 8, 32)
    assert const.min() >= -127 and np.all(np.abs(const).max(axis=(0, 1, 2)) == 127)  # every channel's max is ±127
    assert scale.dtype == np.float32 and scale.shape == (1, 1, 1, 32)
    weights = tf.make_ndarray(node_defs(tf, original)["w"].attr["value"].tensor)
    np.testing.assert_allclose(scale.reshape(-1), np.abs(weights).max(axis=(0, 1, 2)) / 127, rtol=1e-6)
    (read_back,) = run_graphdef(tf, data, None, ["w:0"])
    assert np.all(np.abs(read_back - weights) <= scale / 2 * (1 + 1e-5))


def test_per_channel_beats_per_tensor_on_spread_channels(tf):
    """Channels spanning 1e-3..10: one scale drowns the small channels, per-channel keeps them."""
    original, feeds = channel_spread_conv(tf)
    (before,) = run_graphdef(tf, original, feeds, ["y:0"])
    _, per_tensor, _ = quantized(tf, original, "quantize_weights(minimum_size=16)")
    _, per_channel, _ = quantized(tf, original, "quantize_weights(minimum_size=16, per_channel=true)")
    (gtt,), (ours,) = run_graphdef(tf, per_tensor, feeds, ["y:0"]), run_graphdef(tf, per_channel, feeds, ["y:0"])
    assert relative_l2(ours, before) < 1e-2
    # judged per output channel (each normalised by its own size), per-channel is far better
    per_channel_errors = [relative_l2(ours[..., c], before[..., c]) for c in range(32)]
    per_tensor_errors = [relative_l2(gtt[..., c], before[..., c]) for c in range(32)]
    assert max(per_channel_errors) < 1e-2
    assert max(per_channel_errors) * 10 < max(per_tensor_errors)
    assert relative_l2(ours, before) < relative_l2(gtt, before)


def test_per_channel_axes_for_depthwise_transposed_matmul_and_bias(tf):
    rng = np.random.default_rng(3)
    depthwise = (rng.standard_normal((3, 3, 4, 2)) * np.logspace(-2, 0, 8).reshape(4, 2)).astype(np.float32)
    dense = (rng.standard_normal((5, 32)) * np.logspace(-2, 0, 5)[:, None]).astype(np.float32)  # [out, in]
    bias = rng.standard_normal(5).astype(np.float32)

    def body():
        x = tf.compat.v1.placeholder(tf.float32, (None, 4, 4, 4), name="x")
        y = tf.nn.depthwise_conv2d(x, tf.identity(tf.constant(depthwise, name="dw"), name="dw_read"),
                                   [1, 1, 1, 1], "VALID")
        y = tf.reshape(y, [-1, 32])
        y = tf.matmul(y, tf.constant(dense, name="dense"), transpose_b=True)
        tf.add(y, tf.constant(bias, name="bias"), name="out")
    original = build_graphdef(tf, body)[0]
    graph, data, stats = quantized(tf, original, "quantize_weights(minimum_size=1, per_channel=true)")
    assert stats["per_channel"] == 2 and stats["per_tensor"] == 1  # the bias feeds no weight input
    scale_shapes = {n: graph.node(f"{n}_quantized_scale").outputs[0].shape for n in ("dw", "dense", "bias")}
    assert scale_shapes == {"dw": (1, 1, 4, 2), "dense": (5, 1), "bias": ()}
    feeds = {"x:0": rng.standard_normal((3, 4, 4, 4)).astype(np.float32)}
    (before,), (after,) = run_graphdef(tf, original, feeds, ["out:0"]), run_graphdef(tf, data, feeds, ["out:0"])
    # two int8 layers with 9- and 32-element channels: about 0.5% weight error each
    assert relative_l2(after, before) < 2e-2


# -- real model ------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,tolerance", [("quantize_weights(minimum_size=1)", 5e-3),
                                            ("quantize_weights(minimum_size=1, per_channel=true)", 2e-3)])
def test_keras2_cnn_runs_after_quantization(tf, spec, tolerance):
    original = (GRAPHDEF_FIXTURES / "keras2_cnn.pb").read_bytes()
    graph, data, stats = quantized(tf, original, spec)
    float_consts = 14  # conv, depthwise and dense weights, biases and batch-norm parameters
    assert stats["quantized"] == float_consts and stats["skipped"] == {"not float32": 1}
    if "per_channel" in spec:
        assert stats["per_channel"] == 3  # conv, depthwise and dense weights, through their Identity
    feeds = {"input:0": np.random.default_rng(0).standard_normal((8, 8, 8, 1)).astype(np.float32)}
    (before,) = run_graphdef(tf, original, feeds, ["Identity:0"])
    (after,) = run_graphdef(tf, data, feeds, ["Identity:0"])
    np.testing.assert_allclose(after, before, atol=tolerance, rtol=0)
    assert not np.array_equal(after, before)


# -- errors ----------------------------------------------------------------------------------

def test_tflite_not_supported_yet_and_bad_minimum_size(tf):
    quantize = get("quantize_weights")
    with pytest.raises(PassError, match="tflite models are not supported yet"):
        quantize.function(Graph(format="tflite"), quantize.make_params({}), Context())
    with pytest.raises(PassError, match="minimum_size"):
        transform(graphtool.load(build_graphdef(tf, lambda: tf.constant(1.0, name="c"))[0]),
                  "quantize_weights(minimum_size=-1)")


def test_non_finite_consts_left_alone(tf):
    values = np.linspace(-1, 1, 32, dtype=np.float32)
    values[3] = np.nan
    original = build_graphdef(tf, lambda: tf.identity(tf.constant(values, name="w"), name="out"))[0]
    graph, data, stats = quantized(tf, original, "quantize_weights(minimum_size=1)")
    assert stats["skipped"] == {"non-finite": 1} and graph.node("w").op == "Const"
    (after,) = run_graphdef(tf, data, None, ["out:0"])
    np.testing.assert_array_equal(after, values)
