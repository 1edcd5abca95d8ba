"""Graphs the pass tests build with tf.compat.v1, and how they judge them in TensorFlow."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...tf_runtime import Transformed, build_graph, transform_and_compare, transform_placeholder_graph


def values(shape, low=-1.0, high=1.0, seed=0) -> np.ndarray:
    """Uniform float32 values in [low, high), seeded."""
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def conv_input(tf, shape=(2, 6, 6, 3)):
    """The float32 placeholder "input" the batch-norm tests convolve."""
    return tf.compat.v1.placeholder(tf.float32, shape, name="input")


def same_conv(tf, x, depthwise: bool = False, multiplier: int = 1):
    """A SAME, stride-1 conv of `x` (3 channels) with constant 3x3 weights: Conv2D to 4
    channels, or DepthwiseConv2dNative with channel `multiplier`."""
    if depthwise:
        return tf.nn.depthwise_conv2d(x, tf.constant(values((3, 3, 3, multiplier))), [1, 1, 1, 1], "SAME")
    return tf.nn.conv2d(x, tf.constant(values((3, 3, 3, 4))), 1, "SAME")


def transform_one_input(tf, body: Callable, spec: str, input_shape, tol: float):
    """Build `body(x)` on a float32 placeholder x of `input_shape`, run `spec`, compare both
    graphs in TF at `tol` (absolute); returns (stats, op counts, output GraphDef)."""
    feeds = {"x:0": values([d or 1 for d in input_shape], seed=3)}
    result = transform_placeholder_graph(tf, body, spec, {"x": input_shape}, feeds, atol=tol)
    return result.stats, result.ops, result.graph_def


def fold_and_compare(tf, body: Callable, tol: float, spec: str, edit: Callable | None = None) -> Transformed:
    """Build `body()` (it returns the output tensors), optionally edit the GraphDef (`edit`
    returns the output names), fold with `spec`, run both in TensorFlow on the same random
    placeholder values and compare at `tol` (absolute, as GTT's ExpectTensorNear)."""
    graph_def, names = build_graph(tf, body)
    if edit is not None:
        names = edit(graph_def)
    feeds = {f"{n.name}:0": values([d.size for d in n.attr["shape"].shape.dim], -2, 2, seed=7)
             for n in graph_def.node if n.op == "Placeholder"}
    return transform_and_compare(tf, graph_def.SerializeToString(), spec, feeds, names, atol=tol)
