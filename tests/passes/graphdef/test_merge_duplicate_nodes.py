"""merge_duplicate_nodes, judged by TensorFlow: graphs built with tf.compat.v1 that repeat
constants and ops lose the repeats, keep their stateful ops and declared outputs, and give
identical outputs in a Session. The stateful-op name rules are checked against TF's own op
registry."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from graphtool.passes.graphdef.merge_duplicate_nodes import is_stateful

from ...tf_runtime import run_graphdef, transform_graphdef


def merge(tf, built, inputs=(), outputs=(), drop_attr: str | None = None):
    """Merge duplicates in `built` (less attr `drop_attr` everywhere); returns (stats,
    output GraphDef, bytes before, after)."""
    graph_def = built.as_graph_def()
    for node in graph_def.node:
        if drop_attr is not None and drop_attr in node.attr:
            del node.attr[drop_attr]
    original = graph_def.SerializeToString()
    result = transform_graphdef(tf, original, "merge_duplicate_nodes", inputs, outputs)
    return result.stats, result.graph_def, original, result.data


def test_duplicate_consts_and_adds_merge(tf):
    with tf.Graph().as_default() as built:
        x = tf.compat.v1.placeholder(tf.float32, (2, 3), name="x")
        first = tf.add(x, tf.constant([1.0, 2.0, 3.0], name="c1"), name="add1")
        second = tf.add(x, tf.constant([1.0, 2.0, 3.0], name="c2"), name="add2")
        other = tf.add(x, tf.constant([1.0, 2.0, 4.0], name="c3"), name="add3")  # different value: stays
        tf.identity(first * second + other, name="out")
    stats, out, original, written = merge(tf, built, ["x"], ["out"])
    names = {n.name for n in out.node}
    assert {"c1", "add1", "c3", "add3"} <= names
    assert not {"c2", "add2"} & names
    assert stats == {"merged": 2, "rounds": 2}  # the Adds only match once the Consts merged
    mul = next(n for n in out.node if n.op == "Mul")
    assert list(mul.input) == ["add1", "add1"]
    feeds = {"x:0": np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)}
    np.testing.assert_array_equal(run_graphdef(tf, written, feeds, ["out:0"])[0],
                                  run_graphdef(tf, original, feeds, ["out:0"])[0])


def test_random_ops_stay_apart(tf):
    with tf.Graph().as_default() as built:
        shape = [2, 3]
        first = tf.raw_ops.RandomUniform(shape=tf.constant(shape, name="s1"), dtype=tf.float32, seed=1, seed2=2)
        second = tf.raw_ops.RandomUniform(shape=tf.constant(shape, name="s2"), dtype=tf.float32, seed=1, seed2=2)
        tf.identity(first - second, name="out")
    stats, out, _, _ = merge(tf, built, outputs=["out"])
    ops = Counter(n.op for n in out.node)
    assert ops["RandomUniform"] == 2
    assert stats["merged"] == 1  # only the shape Consts
    assert len({tuple(n.input) for n in out.node if n.op == "RandomUniform"}) == 1


def test_placeholders_stay_apart(tf):
    with tf.Graph().as_default() as built:
        a = tf.compat.v1.placeholder(tf.float32, (2,), name="a")
        b = tf.compat.v1.placeholder(tf.float32, (2,), name="b")
        tf.identity(a - b, name="out")
    stats, out, _, _ = merge(tf, built)
    assert stats["merged"] == 0
    assert {"a", "b"} <= {n.name for n in out.node}


def test_declared_outputs_are_kept(tf):
    with tf.Graph().as_default() as built:
        x = tf.compat.v1.placeholder(tf.float32, (2,), name="x")
        tf.identity(x, name="first")
        tf.identity(x, name="second")
        tf.identity(x, name="third")
    stats, out, _, _ = merge(tf, built, ["x"], ["second", "third"])
    names = {n.name for n in out.node}
    assert {"second", "third"} <= names and "first" not in names  # merged into the declared one
    assert stats["merged"] == 1


def test_control_consumers_are_rewired(tf):
    with tf.Graph().as_default() as built:
        x = tf.compat.v1.placeholder(tf.float32, (2,), name="x")
        first = tf.square(x, name="sq1")
        second = tf.square(x, name="sq2")
        with tf.control_dependencies([second]):
            after = tf.identity(x, name="after")
        tf.identity(first + after, name="out")
    # TF marks sq2 with _has_manual_control_dependencies, which would tell the two apart
    stats, out, original, written = merge(tf, built, ["x"], ["out"], drop_attr="_has_manual_control_dependencies")
    after = next(n for n in out.node if n.name == "after")
    assert list(after.input) == ["x", "^sq1"]
    feeds = {"x:0": np.array([1.5, -2.0], np.float32)}
    np.testing.assert_array_equal(run_graphdef(tf, written, feeds, ["out:0"])[0],
                                  run_graphdef(tf, original, feeds, ["out:0"])[0])


def test_different_devices_or_attrs_stay_apart(tf):
    with tf.Graph().as_default() as built:
        x = tf.compat.v1.placeholder(tf.float32, (1, 4, 4, 1), name="x")
        with tf.device("/device:CPU:0"):
            first = tf.nn.relu(x, name="r1")
        second = tf.nn.relu(x, name="r2")
        third = tf.nn.max_pool2d(x, 2, 2, "SAME", name="p1")
        fourth = tf.nn.max_pool2d(x, 2, 2, "VALID", name="p2")
        tf.identity(tf.reduce_sum(first) + tf.reduce_sum(second) + tf.reduce_sum(third) + tf.reduce_sum(fourth),
                    name="out")
    stats, out, _, _ = merge(tf, built, ["x"], ["out"])
    assert {"r1", "r2", "p1", "p2"} <= {n.name for n in out.node}


def test_stateful_rules_cover_tf_registry(tf):
    """Every op TF registers as stateful is kept apart; common pure ops are not."""
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session

    buffer = pywrap_tf_session.TF_GetAllOpList()
    ops = op_def_pb2.OpList.FromString(pywrap_tf_session.TF_GetBuffer(buffer)).op
    missed = sorted(op.name for op in ops if op.is_stateful and not is_stateful(op.name))
    assert missed == []
    pure = ["Const", "Add", "AddV2", "Mul", "MatMul", "BatchMatMulV2", "Conv2D", "DepthwiseConv2dNative",
            "Identity", "IdentityN", "Relu", "Reshape", "ConcatV2", "StridedSlice", "Shape", "Cast", "Pack",
            "Transpose", "Softmax", "BiasAdd", "FusedBatchNormV3", "BatchNormWithGlobalNormalization",
            "ResizeBilinear", "Tanh", "Sigmoid", "Pad", "MirrorPad", "Mean", "Squeeze", "ExpandDims", "GatherV2",
            "SelectV2", "StatelessIf", "StatelessWhile", "StatelessRandomUniformV2", "MaxPool", "Rsqrt",
            "DynamicStitch", "DynamicPartition", "IsFinite", "TopKV2", "Switch", "Merge", "Enter", "Exit",
            "NextIteration", "LoopCond", "Dequantize", "QuantizeV2", "FakeQuantWithMinMaxVars", "ScatterNd",
            "TensorScatterUpdate", "NonMaxSuppressionV5", "Einsum", "Where", "NoOp"]
    assert [op for op in pure if is_stateful(op)] == []
    assert all(is_stateful(op) for op in ["Placeholder", "PlaceholderWithDefault", "RandomUniform", "VarHandleOp"])


@pytest.mark.parametrize("value", [np.float32("nan"), np.float32(-0.0)])
def test_consts_merge_by_bytes(tf, value):
    """NaN equals NaN and -0.0 differs from 0.0: constants compare as stored bytes."""
    with tf.Graph().as_default() as built:
        first = tf.constant([value, 1.0], name="c1")
        second = tf.constant([value, 1.0], name="c2")
        zero = tf.constant([0.0, 1.0], name="c3")
        tf.identity(first + second + zero, name="out")
    stats, out, _, _ = merge(tf, built, outputs=["out"])
    names = {n.name for n in out.node}
    assert "c2" not in names
    assert "c3" in names
