"""fold_batch_norms, judged by TensorFlow: each graph is built with tf.compat.v1, folded, and
both versions run in a Session on the same random inputs, compared at GTT's 1e-5. Ported in
spirit from GTT's fold_batch_norms_test.cc (Mul after Conv2D, DepthwiseConv2dNative, MatMul),
plus the Mul/Add form tf.nn.batch_normalization and Keras 3 emit, which GTT does not fold."""
from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np
import pytest

import graphtool
from graphtool.formats import graphdef
from graphtool.passes import transform

from ...conftest import GRAPHDEF_FIXTURES, graphdef_manifest
from ...tf_runtime import Transformed, run_graphdef
from ._graphs import conv_input, fold_and_compare, same_conv, values

TOL = 1e-5
BN_FORM_OPS = {"Mul", "Add", "AddV2", "Sub", "Rsqrt"}


def check(tf, body: Callable, tol: float = TOL, spec: str = "fold_batch_norms") -> Transformed:
    """Build `body()` (it returns the output tensors), fold with `spec`, run both in
    TensorFlow and compare at `tol` (absolute, as GTT's ExpectTensorNear)."""
    return fold_and_compare(tf, body, tol, spec)


def batch_normalization(tf, x, channels: int, shape=None, name: str = "output"):
    """tf.nn.batch_normalization with constant statistics: x * scale + offset, the scale and
    offset computed from the constants at run time (AddV2, Rsqrt, Mul, Sub)."""
    def param(low, high, seed):
        value = values(channels, low, high, seed)
        return tf.constant(value if shape is None else value.reshape(shape))

    return tf.identity(tf.nn.batch_normalization(x, param(-1, 1, 2), param(0.5, 2, 3), param(-1, 1, 4),
                                                 param(0.5, 1.5, 5), 1e-3), name=name)


# -- GTT's cases: Mul(conv, Const) -----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["conv", "depthwise", "matmul", "matmul_transpose_b"])
def test_mul_after_linear_op_scales_the_weights(tf, kind):
    def body():
        if kind == "conv":
            out = tf.nn.conv2d(conv_input(tf), tf.constant(values((1, 2, 3, 4)), name="weights"), 1, "VALID")
        elif kind == "depthwise":  # multiplier 2: output channel = input channel * 2 + m
            out = tf.nn.depthwise_conv2d(conv_input(tf), tf.constant(values((1, 2, 3, 2)), name="weights"),
                                         [1, 1, 1, 1], "VALID")
        else:
            x = tf.compat.v1.placeholder(tf.float32, (3, 5), name="input")
            transpose = kind == "matmul_transpose_b"
            weights = tf.constant(values((4, 5) if transpose else (5, 4)), name="weights")
            out = tf.linalg.matmul(x, weights, transpose_b=transpose)
        return tf.multiply(out, tf.constant(values(out.shape[-1], 0.5, 2, seed=9)), name="output")

    result = check(tf, body)
    assert result.stats == {"folded": 1, "skipped": {}, "constants_removed": 2}  # weights, scale
    assert "Mul" not in result.ops
    # GTT's naming: the conv takes the Mul's name, the scaled weights the weights' name
    assert result.graph.node("output").op in ("Conv2D", "DepthwiseConv2dNative", "MatMul")
    assert [r.node for r in result.graph.inputs_of("output")][1] == "weights"


def test_mul_is_skipped_when_the_conv_output_is_used_elsewhere(tf):
    def body():
        conv = tf.nn.conv2d(conv_input(tf), tf.constant(values((1, 2, 3, 4))), 1, "VALID")
        return [tf.multiply(conv, tf.constant(values(4, seed=9)), name="output"), tf.nn.relu(conv)]

    result = check(tf, body, 0)
    assert result.stats["skipped"] == {"conv output used elsewhere": 1}
    assert result.ops["Mul"] == 1


def test_scale_not_per_channel_is_skipped(tf):
    def body():
        conv = tf.nn.conv2d(conv_input(tf), tf.constant(values((1, 2, 3, 4))), 1, "VALID")
        return tf.multiply(conv, tf.constant(values((6, 5, 4), seed=9)), name="output")

    result = check(tf, body, 0)
    assert result.stats["skipped"] == {"scale or offset not per channel": 1}


# -- the Mul/Add form (tf.nn.batch_normalization, Keras 3) -----------------------------------------

def test_batch_normalization_after_conv(tf):
    def body():
        conv = tf.nn.conv2d(conv_input(tf), tf.constant(values((3, 3, 3, 4))), 1, "SAME", name="conv")
        return batch_normalization(tf, conv, 4)

    result = check(tf, body)
    assert result.stats["folded"] == 1 and result.stats["skipped"] == {}
    assert not BN_FORM_OPS & set(result.ops)
    assert result.ops["BiasAdd"] == 1 and "conv_bn_offset" in result.graph


@pytest.mark.parametrize("depthwise", [False, True])
def test_bias_add_then_batch_normalization(tf, depthwise):
    def body():
        conv = same_conv(tf, conv_input(tf), depthwise, multiplier=2)
        channels = conv.shape[-1]
        return batch_normalization(tf, tf.nn.bias_add(conv, tf.constant(values(channels, seed=8))), channels)

    result = check(tf, body)
    assert result.stats["folded"] == 1 and not BN_FORM_OPS & set(result.ops)
    assert result.ops["BiasAdd"] == 1


def test_dense_then_batch_normalization(tf):
    def body():
        x = tf.compat.v1.placeholder(tf.float32, (3, 5), name="input")
        dense = tf.nn.bias_add(tf.linalg.matmul(x, tf.constant(values((5, 4)))), tf.constant(values(4, seed=8)))
        return batch_normalization(tf, dense, 4)

    result = check(tf, body)
    assert result.stats["folded"] == 1 and not BN_FORM_OPS & set(result.ops)


@pytest.mark.parametrize("offset_op", ["sub", "bias_add"])
def test_mul_then_sub_or_bias_add_offset(tf, offset_op):
    def body():
        conv = same_conv(tf, conv_input(tf))
        scaled = tf.multiply(tf.constant(values(4, 0.5, 2, seed=9)), conv)  # constant first
        offset = tf.constant(values(4, seed=10))
        if offset_op == "sub":
            return tf.subtract(scaled, offset, name="output")
        return tf.nn.bias_add(scaled, offset, name="output")

    result = check(tf, body)
    assert result.stats["folded"] == 1 and not BN_FORM_OPS & set(result.ops)
    assert result.graph.node("output").op == "BiasAdd"


def test_nchw_conv_then_batch_normalization(tf):
    def body():
        x = tf.compat.v1.placeholder(tf.float32, (2, 3, 6, 6), name="input")
        conv = tf.nn.conv2d(x, tf.constant(values((3, 3, 3, 4))), 1, "SAME", data_format="NCHW")
        return batch_normalization(tf, conv, 4, shape=(4, 1, 1))

    result = check(tf, body)
    assert result.stats["folded"] == 1 and not BN_FORM_OPS & set(result.ops)
    (bias_add,) = [n for n in result.graph if n.op == "BiasAdd"]
    assert bias_add.attrs["data_format"] == "NCHW"


def test_batch_normalization_on_the_wrong_axis_is_skipped(tf):
    def body():  # NCHW conv, statistics broadcast along the last (width) axis: not per channel
        x = tf.compat.v1.placeholder(tf.float32, (2, 3, 4, 4), name="input")
        conv = tf.nn.conv2d(x, tf.constant(values((3, 3, 3, 4))), 1, "SAME", data_format="NCHW")
        return batch_normalization(tf, conv, 4)

    result = check(tf, body, 0)
    assert result.stats["folded"] == 0
    assert result.stats["skipped"] == {"scale or offset not per channel": 1}


def test_weights_through_identity_and_concat_of_two_convs(tf):
    def body():
        x = conv_input(tf)
        a = tf.nn.conv2d(x, tf.identity(tf.constant(values((3, 3, 3, 2), seed=3))), 1, "SAME")
        b = tf.nn.conv2d(x, tf.identity(tf.constant(values((3, 3, 3, 3), seed=4))), 1, "SAME")
        return batch_normalization(tf, tf.concat([a, b], axis=-1), 5)

    result = check(tf, body)
    assert result.stats["folded"] == 1 and not BN_FORM_OPS & set(result.ops)
    assert "Identity" not in {n.op for n in result.graph if n.name != "output"}


def test_mul_used_elsewhere_still_folds_alone(tf):
    def body():
        conv = same_conv(tf, conv_input(tf))
        scaled = tf.multiply(conv, tf.constant(values(4, 0.5, 2, seed=9)), name="scaled")
        return [tf.add(scaled, tf.constant(values(4, seed=10)), name="output"), tf.nn.relu(scaled)]

    result = check(tf, body)
    assert result.stats["folded"] == 1 and result.ops["Mul"] == 0 and result.ops["AddV2"] == 1
    assert result.graph.node("scaled").op == "Conv2D"


def test_keras3_fixture_with_weights_through_identity(tf):
    """Without remove_nodes first: weights, biases and statistics all come through Identity."""
    entry = graphdef_manifest()["keras3_cnn.pb"]
    data = (GRAPHDEF_FIXTURES / "keras3_cnn.pb").read_bytes()
    graph = graphtool.load(data)
    report = transform(graph, "fold_batch_norms", inputs=["input"], outputs=["Identity"])
    assert report.passes[0].stats["folded"] == 2
    ops = Counter(n.op for n in graph)
    assert not {"Rsqrt", "Mul", "Sub", "AddV2", "Squeeze", "Reshape"} & set(ops)
    feeds = {entry["inputs"][0]: values((3, 8, 8, 1), seed=11)}
    expected = run_graphdef(tf, data, feeds, entry["outputs"])
    actual = run_graphdef(tf, graphdef.write(graph), feeds, entry["outputs"])
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-4, atol=1e-7)


# -- constant sums after a bias: one BiasAdd --------------------------------------------------------

def linear(tf, kind: str):
    """A conv, depthwise conv or matmul of the placeholder "input", with its BiasAdd."""
    if kind == "matmul":
        x = tf.compat.v1.placeholder(tf.float32, (3, 5), name="input")
        out = tf.linalg.matmul(x, tf.constant(values((5, 4))))
    else:
        out = same_conv(tf, conv_input(tf), kind == "depthwise", multiplier=2)
    return tf.nn.bias_add(out, tf.constant(values(out.shape[-1], seed=8)))


@pytest.mark.parametrize("kind", ["conv", "depthwise", "matmul"])
def test_a_constant_added_after_the_bias_joins_it(tf, kind):
    """Keras 3's hard sigmoid after a conv: BiasAdd then AddV2(3.0), a scalar."""
    result = check(tf, lambda: tf.add(linear(tf, kind), tf.constant(3.0), name="output"))
    assert result.stats["folded"] == 1 and result.stats["skipped"] == {}
    assert result.ops["BiasAdd"] == 1 and "AddV2" not in result.ops
    assert result.graph.node("output").op == "BiasAdd"


def test_a_chain_of_sums_ends_as_one_bias(tf):
    def body():
        x = linear(tf, "conv")
        x = tf.add(tf.constant(values(4, seed=20)), x)  # constant first
        x = tf.subtract(x, tf.constant(values((1, 1, 1, 4), seed=21)))
        x = tf.nn.bias_add(x, tf.constant(values(4, seed=22)))
        return tf.add(x, tf.constant(-0.5), name="output")

    result = check(tf, body)
    assert result.stats["folded"] == 1  # the last sum takes the whole chain in one round
    assert result.ops == Counter({"Const": 2, "Placeholder": 1, "Conv2D": 1, "BiasAdd": 1})


def test_constant_minus_the_conv_negates_the_weights(tf):
    result = check(tf, lambda: tf.subtract(tf.constant(values(4, seed=20)), linear(tf, "conv"), name="output"))
    assert result.stats["folded"] == 1 and "Sub" not in result.ops
    weights = result.graph.inputs_of(next(n.name for n in result.graph if n.op == "Conv2D"))[1]
    np.testing.assert_array_equal(result.graph.node(weights.node).outputs[0].data, -values((3, 3, 3, 4)))


def test_hard_sigmoid_keeps_its_activation(tf):
    def body():
        return tf.multiply(tf.nn.relu6(tf.add(linear(tf, "conv"), 3.0)), 1 / 6, name="output")

    result = check(tf, body)
    assert result.stats["folded"] == 1 and "AddV2" not in result.ops
    assert result.ops["Relu6"] == result.ops["Mul"] == 1  # after the activation: not the conv's to take


def test_a_sum_then_a_scale_fold_together(tf):
    result = check(tf, lambda: tf.multiply(tf.add(linear(tf, "conv"), 3.0), values(4, 0.5, 2, seed=9),
                                           name="output"))
    assert result.stats["folded"] == 1
    assert result.ops == Counter({"Const": 2, "Placeholder": 1, "Conv2D": 1, "BiasAdd": 1})


def test_a_sum_whose_bias_is_used_elsewhere_is_skipped(tf):
    """Keras 3's hard swish: x * relu6(x + 3) / 6 reads the BiasAdd twice."""
    def body():
        x = linear(tf, "conv")
        return tf.multiply(x, tf.nn.relu6(tf.add(x, 3.0)) / 6, name="output")

    result = check(tf, body, 0)
    assert result.stats["folded"] == 0 and result.stats["skipped"] == {"conv output used elsewhere": 1}
    assert result.ops["AddV2"] == 1 and result.ops["BiasAdd"] == 1


def test_a_sum_not_per_channel_is_skipped(tf):
    result = check(tf, lambda: tf.add(linear(tf, "conv"), values((6, 1, 4), seed=9), name="output"), 0)
    assert result.stats["folded"] == 0 and result.stats["skipped"] == {"scale or offset not per channel": 1}
