"""fuse_pad_and_conv, judged by TensorFlow: MirrorPad -> Conv2D graphs built with
tf.compat.v1 become FusedPadConv2D, and both graphs run in a Session (TF's CPU kernel for
the fused op) on the same random inputs, compared at GTT's 1e-5."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from ._graphs import transform_one_input, values

TOL = 1e-5
PADDINGS = [[0, 0], [1, 2], [2, 1], [0, 0]]


# Build `body(x)`, run the spec, compare both graphs in TF; returns (stats, op counts, output GraphDef).
fuse = partial(transform_one_input, spec="fuse_pad_and_conv", input_shape=(1, 6, 7, 3), tol=TOL)


@pytest.mark.parametrize("mode", ["REFLECT", "SYMMETRIC"])
@pytest.mark.parametrize("padding,strides", [("VALID", 1), ("SAME", 1), ("SAME", 2)])
def test_mirror_pad_then_conv_is_fused(tf, mode, padding, strides):
    filt = values((3, 3, 3, 4), seed=1)

    def body(x):
        padded = tf.pad(x, PADDINGS, mode=mode)
        return tf.nn.conv2d(padded, filt, strides, padding, name="conv")

    stats, ops, graph_def = fuse(tf, body)
    assert stats["fused"] == 1
    assert ops["MirrorPad"] == ops["Conv2D"] == 0
    node = next(n for n in graph_def.node if n.op == "FusedPadConv2D")
    assert node.name == "conv"
    assert node.input[0] == "x"
    assert node.attr["mode"].s.decode() == mode
    assert node.attr["padding"].s.decode() == padding
    assert list(node.attr["strides"].list.i) == [1, strides, strides, 1]


def test_int64_paddings_become_int32(tf):
    filt = values((2, 2, 3, 2), seed=2)
    stats, ops, graph_def = fuse(
        tf, lambda x: tf.nn.conv2d(tf.pad(x, tf.constant(PADDINGS, tf.int64), mode="REFLECT"), filt, 1, "VALID"))
    assert stats["fused"] == 1
    node = next(n for n in graph_def.node if n.op == "FusedPadConv2D")
    paddings = next(n for n in graph_def.node if n.name == node.input[1])
    assert paddings.attr["dtype"].type == tf.int32.as_datatype_enum


def test_batch_padding_is_left_alone(tf):
    """The fused kernel pads only height and width."""
    filt = values((2, 2, 3, 2), seed=4)
    stats, ops, _ = fuse(
        tf, lambda x: tf.nn.conv2d(tf.pad(x, [[1, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC"), filt, 1, "VALID"),
        input_shape=(None, 6, 7, 3))
    assert stats["fused"] == 0
    assert stats["skipped"] == {"MirrorPad pads more than height and width": 1}
    assert ops["MirrorPad"] == ops["Conv2D"] == 1


def test_pad_used_elsewhere_is_left_alone(tf):
    filt = values((2, 2, 3, 2), seed=5)

    def body(x):
        padded = tf.pad(x, PADDINGS, mode="REFLECT")
        return tf.reduce_sum(tf.nn.conv2d(padded, filt, 1, "VALID")) + tf.reduce_sum(padded)

    stats, ops, _ = fuse(tf, body)
    assert stats["fused"] == 0
    assert ops["FusedPadConv2D"] == 0


def test_dilated_conv_is_left_alone(tf):
    filt = values((2, 2, 3, 2), seed=6)
    stats, ops, _ = fuse(tf, lambda x: tf.nn.conv2d(tf.pad(x, PADDINGS, mode="REFLECT"), filt, 1, "VALID",
                                                    dilations=2))
    assert stats["skipped"] == {"conv is dilated": 1}


def test_known_batch_above_one_is_left_alone(tf):
    filt = values((2, 2, 3, 2), seed=7)
    stats, ops, _ = fuse(tf, lambda x: tf.nn.conv2d(tf.pad(x, PADDINGS, mode="REFLECT"), filt, 1, "VALID"),
                         input_shape=(2, 6, 7, 3))
    assert stats["skipped"] == {"batch is larger than 1 (TF's fused kernels get that wrong)": 1}
    assert ops["FusedPadConv2D"] == 0


def test_tf_fused_kernel_is_wrong_past_the_first_batch_element(tf):
    """Why batches above one are skipped: TF's FusedPadConv2D gives every batch element the
    first one's result. If this starts failing, TF fixed its kernel and the skip can go."""
    x, filt = values((2, 6, 7, 3), seed=8), values((3, 3, 3, 4), seed=9)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        fused = tf.raw_ops.FusedPadConv2D(input=x, paddings=PADDINGS, filter=filt, mode="REFLECT",
                                          strides=[1, 1, 1, 1], padding="VALID")
        plain = tf.nn.conv2d(tf.pad(x, PADDINGS, mode="REFLECT"), filt, 1, "VALID")
        fused, plain = session.run([fused, plain])
    np.testing.assert_allclose(fused[0], plain[0], atol=TOL)
    np.testing.assert_array_equal(fused[1], fused[0])
    assert np.abs(fused[1] - plain[1]).max() > 0.1
