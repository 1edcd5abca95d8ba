"""fuse_resize_and_conv, judged by TensorFlow: ResizeBilinear -> Conv2D graphs built with
tf.compat.v1 become FusedResizeAndPadConv2D with zero paddings, and both graphs run in a
Session (TF's CPU kernel for the fused op) on the same random inputs, compared at 1e-5."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from ._graphs import transform_one_input, values

TOL = 1e-5


# Build `body(x)`, run the spec, compare both graphs in TF; returns (stats, op counts, output GraphDef).
fuse = partial(transform_one_input, spec="fuse_resize_and_conv", input_shape=(1, 5, 6, 3), tol=TOL)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding,strides", [("VALID", 1), ("SAME", 2)])
def test_resize_then_conv_is_fused(tf, align_corners, padding, strides):
    filt = values((3, 3, 3, 4), seed=1)

    def body(x):
        resized = tf.compat.v1.image.resize_bilinear(x, [9, 11], align_corners=align_corners)
        return tf.nn.conv2d(resized, filt, strides, padding, name="conv")

    stats, ops, graph_def = fuse(tf, body)
    assert stats["fused"] == 1
    assert ops["ResizeBilinear"] == ops["Conv2D"] == ops["MirrorPad"] == 0
    node = next(n for n in graph_def.node if n.op == "FusedResizeAndPadConv2D")
    assert node.name == "conv"
    assert node.input[0] == "x"
    assert node.input[2] == "conv_dummy_paddings"
    assert node.attr["resize_align_corners"].b == align_corners
    assert node.attr["mode"].s == b"REFLECT"
    zeros = next(n for n in graph_def.node if n.name == "conv_dummy_paddings")
    assert tf.make_ndarray(zeros.attr["value"].tensor).tolist() == [[0, 0]] * 4


def test_half_pixel_centers_is_left_alone(tf):
    """tf.image.resize (TF 2) samples at pixel centers, which the fused op cannot."""
    filt = values((2, 2, 3, 2), seed=2)
    stats, ops, _ = fuse(tf, lambda x: tf.nn.conv2d(tf.image.resize(x, [8, 8]), filt, 1, "VALID"))
    assert stats["fused"] == 0
    assert stats["skipped"] == {"ResizeBilinear uses half_pixel_centers, which the fused op lacks": 1}
    assert ops["ResizeBilinear"] == ops["Conv2D"] == 1


def test_non_float32_conv_is_left_alone(tf):
    """TF registers the fused kernel for float32 only."""
    filt = values((2, 2, 3, 2), seed=3).astype(np.float64)

    def body(x):
        resized = tf.compat.v1.image.resize_bilinear(x, [7, 7])
        return tf.cast(tf.nn.conv2d(tf.cast(resized, tf.float64), filt, 1, "VALID"), tf.float32)

    stats, _, _ = fuse(tf, body)
    assert stats["fused"] == 0  # the Cast sits between: no match at all

    def direct(x):
        resized = tf.compat.v1.image.resize_bilinear(tf.cast(x, tf.float64), [7, 7])  # output is float32
        return tf.nn.conv2d(resized, filt.astype(np.float32), 1, "VALID")

    stats, _, _ = fuse(tf, direct)
    assert stats["skipped"] == {"ResizeBilinear input is not float32": 1}
