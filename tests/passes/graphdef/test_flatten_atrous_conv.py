"""flatten_atrous_conv, judged by TensorFlow: atrous convolutions built with tf.compat.v1
(SpaceToBatchND -> conv -> BatchToSpaceND) are flattened, and both graphs run in a Session
on the same random inputs, compared at GTT's 1e-5."""
from __future__ import annotations

from collections import Counter
from typing import Callable

import pytest

from ._graphs import transform_one_input, values

TOL = 1e-5


def flatten(tf, body: Callable, input_shape=(2, 9, 9, 3)):
    """Build `body(x)`, flatten it, compare both in TF; returns (stats, output GraphDef)."""
    stats, _, graph_def = transform_one_input(tf, body, "flatten_atrous_conv", input_shape, TOL)
    return stats, graph_def


def node_by_op(graph_def, op: str):
    found = [n for n in graph_def.node if n.op == op]
    assert len(found) == 1, [n.op for n in graph_def.node]
    return found[0]


def const_shape(graph_def, name: str) -> tuple:
    node = next(n for n in graph_def.node if n.name == name)
    return tuple(d.size for d in node.attr["value"].tensor.tensor_shape.dim)


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("size", [9, 8])  # 9: not a multiple of the rate, so paddings and crops grow
def test_atrous_conv2d_becomes_one_conv(tf, padding, size):
    filt = values((3, 3, 3, 4), seed=1)
    stats, out = flatten(tf, lambda x: tf.compat.v1.nn.atrous_conv2d(x, filt, rate=2, padding=padding),
                         input_shape=(2, size, size, 3))
    assert stats["flattened"] == 1
    ops = Counter(n.op for n in out.node)
    assert ops["SpaceToBatchND"] == ops["BatchToSpaceND"] == 0
    conv = node_by_op(out, "Conv2D")
    assert conv.attr["padding"].s.decode() == padding
    assert const_shape(out, conv.input[1].split(":")[0]) == (5, 5, 3, 4)  # (3 - 1) * 2 + 1


def test_rectangular_rates(tf):
    filt = values((3, 2, 3, 5), seed=2)

    def body(x):
        return tf.compat.v1.nn.with_space_to_batch(
            x, dilation_rate=[2, 3], padding="SAME", filter_shape=filt.shape[:2],
            op=lambda inp, num_spatial_dims, padding: tf.nn.conv2d(inp, filt, 1, padding))

    stats, out = flatten(tf, body, input_shape=(1, 10, 11, 3))
    assert stats["flattened"] == 1
    conv = node_by_op(out, "Conv2D")
    assert const_shape(out, conv.input[1].split(":")[0]) == (5, 4, 3, 5)


def test_depthwise(tf):
    filt = values((3, 3, 3, 2), seed=4)

    def body(x):
        return tf.compat.v1.nn.with_space_to_batch(
            x, dilation_rate=[2, 2], padding="SAME", filter_shape=filt.shape[:2],
            op=lambda inp, num_spatial_dims, padding: tf.nn.depthwise_conv2d(inp, filt, [1, 1, 1, 1], padding))

    stats, out = flatten(tf, body)
    assert stats["flattened"] == 1
    node_by_op(out, "DepthwiseConv2dNative")
    assert not [n for n in out.node if n.op in ("SpaceToBatchND", "BatchToSpaceND")]


def test_inner_same_conv_is_left_alone(tf):
    """A SAME conv between the two reshuffles is not a dilated SAME or VALID conv."""
    filt = values((3, 3, 3, 4), seed=5)

    def body(x):
        spread = tf.space_to_batch_nd(x, [2, 2], [[1, 1], [1, 1]])
        return tf.compat.v1.batch_to_space_nd(tf.nn.conv2d(spread, filt, 1, "SAME"), [2, 2], [[0, 0], [0, 0]])

    stats, out = flatten(tf, body, input_shape=(1, 8, 8, 3))
    assert stats["flattened"] == 0
    assert stats["skipped"] == {"inner conv padding is not VALID": 1}
    node_by_op(out, "SpaceToBatchND")


def test_other_crops_are_left_alone(tf):
    """Paddings minus crops that are neither SAME nor VALID padding are not flattened."""
    filt = values((3, 3, 3, 4), seed=6)

    def body(x):
        spread = tf.space_to_batch_nd(x, [2, 2], [[4, 0], [0, 0]])
        return tf.compat.v1.batch_to_space_nd(tf.nn.conv2d(spread, filt, 1, "VALID"), [2, 2], [[0, 0], [0, 0]])

    stats, _ = flatten(tf, body, input_shape=(1, 8, 8, 3))
    assert stats["skipped"] == {"paddings and crops match neither SAME nor VALID": 1}
