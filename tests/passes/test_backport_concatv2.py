"""backport_concatv2, judged by TensorFlow: ConcatV2 nodes built with tf.compat.v1 become
Concat (axis first, no Tidx), and both graphs give identical outputs in a Session."""
from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np
import pytest

import graphtool
from graphtool.formats import graphdef
from graphtool.passes import transform


def values(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def run(tf, data: bytes, feeds: dict, fetches: list[str]) -> list[np.ndarray]:
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(tf.compat.v1.GraphDef.FromString(data), name="")
        with tf.compat.v1.Session(graph=graph) as session:
            return session.run(fetches, feeds)


def backport(tf, body: Callable, extra_feeds: dict | None = None):
    """Build `body(a, b)`, backport, check outputs are identical in TF; returns (stats, op
    counts, output GraphDef)."""
    with tf.Graph().as_default() as built:
        a = tf.compat.v1.placeholder(tf.float32, (2, 3, 4), name="a")
        b = tf.compat.v1.placeholder(tf.float32, (2, 3, 4), name="b")
        out = tf.identity(body(a, b), name="out")
    original = built.as_graph_def().SerializeToString()
    graph = graphtool.load(original)
    report = transform(graph, "backport_concatv2", inputs=["a", "b"], outputs=["out"])
    written = graphdef.write(graph)
    feeds = {"a:0": values((2, 3, 4), 1), "b:0": values((2, 3, 4), 2), **(extra_feeds or {})}
    want, got = run(tf, original, feeds, ["out:0"])[0], run(tf, written, feeds, ["out:0"])[0]
    np.testing.assert_array_equal(got, want)
    graph_def = tf.compat.v1.GraphDef.FromString(written)
    return report.passes[0].stats, Counter(n.op for n in graph_def.node), graph_def


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
    graph = graphtool.load(built.as_graph_def().SerializeToString())
    transform(graph, "backport_concatv2")
    node = concat_node(tf.compat.v1.GraphDef.FromString(graphdef.write(graph)))
    assert node.input[-1] == "^first"
    assert node.device == "/device:CPU:0"
