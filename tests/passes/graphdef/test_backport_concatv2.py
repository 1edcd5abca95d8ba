"""backport_concatv2, judged by TensorFlow: ConcatV2 nodes built with tf.compat.v1 become
Concat (axis first, no Tidx), and both graphs give identical outputs in a Session."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from ...tf_runtime import transform_graphdef, transform_placeholder_graph
from ._graphs import values


def backport(tf, body: Callable, extra_feeds: dict | None = None):
    """Build `body(a, b)`, backport, check outputs are identical in TF; returns (stats, op
    counts, output GraphDef)."""
    feeds = {"a:0": values((2, 3, 4), seed=1), "b:0": values((2, 3, 4), seed=2), **(extra_feeds or {})}
    result = transform_placeholder_graph(tf, body, "backport_concatv2", {"a": (2, 3, 4), "b": (2, 3, 4)}, feeds,
                                         exact=True)
    return result.stats, result.ops, result.graph_def


def concat_node(graph_def):
    (node,) = [n for n in graph_def.node if n.op == "Concat"]
    return node


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatv2_becomes_concat(tf, axis):
    stats, ops, graph_def = backport(tf, lambda a, b: tf.concat([a, b, a], axis, name="cat"))
    assert stats["backported"] == 1
    assert ops["ConcatV2"] == 0
    node = concat_node(graph_def)
    assert node.name == "cat"
    assert list(node.input)[1:] == ["a", "b", "a"]
    assert sorted(node.attr) == ["N", "T"]
    assert node.attr["N"].i == 3
    axis_node = next(n for n in graph_def.node if n.name == node.input[0])
    assert tf.make_ndarray(axis_node.attr["value"].tensor) == axis


def test_int64_constant_axis_becomes_int32(tf):
    stats, ops, graph_def = backport(tf, lambda a, b: tf.concat([a, b], tf.constant(2, tf.int64, name="axis64")))
    node = concat_node(graph_def)
    axis_node = next(n for n in graph_def.node if n.name == node.input[0])
    assert axis_node.op == "Const" and axis_node.attr["dtype"].type == tf.int32.as_datatype_enum
    assert "axis64" not in {n.name for n in graph_def.node}  # the int64 Const is no longer used
    assert stats["axis_casts"] == 0


def test_int64_fed_axis_is_cast(tf):
    def body(a, b):
        axis = tf.compat.v1.placeholder(tf.int64, (), name="axis")
        return tf.concat([a, b], axis)

    stats, ops, graph_def = backport(tf, body, {"axis:0": np.int64(1)})
    node = concat_node(graph_def)
    cast = next(n for n in graph_def.node if n.name == node.input[0])
    assert cast.op == "Cast" and list(cast.input) == ["axis"]
    assert stats["axis_casts"] == 1


def test_control_inputs_and_device_stay(tf):
    with tf.Graph().as_default() as built:
        a = tf.constant(values((2, 2)), name="a")
        axis = tf.constant(0, name="axis")
        with tf.control_dependencies([tf.no_op(name="first")]), tf.device("/device:CPU:0"):
            tf.concat([a, a], axis, name="cat")
    node = concat_node(transform_graphdef(tf, built.as_graph_def().SerializeToString(), "backport_concatv2").graph_def)
    assert node.input[-1] == "^first"
    assert node.device == "/device:CPU:0"
