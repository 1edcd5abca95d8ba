"""fold_old_batch_norms, judged by TensorFlow: each graph is built with tf.compat.v1, folded,
and both versions run in a Session on the same random inputs (GTT's tolerances: 1e-5,
2e-5 for FusedBatchNorm). Ported in spirit from GTT's fold_old_batch_norms_test.cc, plus
what upstream does not fold (V2/V3, MatMul, BiasAdd in between, NCHW) and the fixtures."""
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

BN_OPS = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "BatchNormWithGlobalNormalization"}
FUSED_TOL = 2e-5


def bn_params(tf, channels: int, seed: int = 1) -> dict:
    """gamma (scale), beta (offset), mean and variance Consts of a batch norm."""
    return {"scale": tf.constant(values(channels, 0.5, 1.5, seed), name="gamma"),
            "offset": tf.constant(values(channels, -1, 1, seed + 1), name="beta"),
            "mean": tf.constant(values(channels, -1, 1, seed + 2), name="mean"),
            "variance": tf.constant(values(channels, 0.5, 2, seed + 3), name="variance")}


def fused(tf, x, op: str = "FusedBatchNormV3", data_format: str = "NHWC", channels: int | None = None,
          is_training: bool = False, name: str = "output"):
    """A fused batch norm op (tf.raw_ops, so V1/V2/V3 are each what the graph holds)."""
    channels = channels or x.shape[1 if data_format == "NCHW" else -1]
    p = bn_params(tf, channels)
    return getattr(tf.raw_ops, op)(x=x, scale=p["scale"], offset=p["offset"], mean=p["mean"],
                                   variance=p["variance"], epsilon=1e-3, data_format=data_format,
                                   is_training=is_training, name=name)[0]


def check(tf, body: Callable, tol: float, spec: str = "fold_old_batch_norms",
          edit: Callable | None = None) -> Transformed:
    """Build `body()` (it returns the output tensors), optionally edit the GraphDef (returns
    output names), fold with `spec`, run both in TensorFlow and compare at `tol` (absolute)."""
    return fold_and_compare(tf, body, tol, spec, edit)


# -- GTT's cases -----------------------------------------------------------------------------------

@pytest.mark.parametrize("scale_after_normalization", [False, True])
def test_batch_norm_with_global_normalization_after_conv(tf, scale_after_normalization):
    def body():
        x = conv_input(tf)
        return tf.nn.conv2d(x, tf.constant(values((2, 2, 3, 4)), name="weights"), 1, "VALID", name="conv")

    def edit(graph_def):
        # Deprecated since GraphDef version 9: TF builds it only in a version-8 GraphDef, as GTT's test does.
        with tf.Graph().as_default() as params:
            p = bn_params(tf, 4)
        graph_def.node.extend(params.as_graph_def().node)
        node = graph_def.node.add(name="output", op="BatchNormWithGlobalNormalization",
                                  input=["conv", p["mean"].op.name, p["variance"].op.name, p["offset"].op.name,
                                         p["scale"].op.name])
        node.attr["T"].type = tf.float32.as_datatype_enum
        node.attr["variance_epsilon"].f = 1e-5
        node.attr["scale_after_normalization"].b = scale_after_normalization
        graph_def.versions.producer = 8
        return ["output:0"]

    result = check(tf, body, 1e-5, edit=edit)
    assert result.stats["folded"] == 1 and result.stats["skipped"] == {}
    assert not BN_OPS & set(result.ops)
    assert result.graph.node("output").op == "BiasAdd"
    assert "conv_bn_offset" in result.graph


@pytest.mark.parametrize("op", ["FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"])
def test_fused_batch_norm_after_conv(tf, op):
    def body():
        x = conv_input(tf)
        conv = tf.nn.conv2d(x, tf.constant(values((3, 3, 3, 5)), name="weights"), 1, "SAME", name="conv")
        return fused(tf, conv, op)

    result = check(tf, body, FUSED_TOL)
    assert result.stats["folded"] == 1
    assert not BN_OPS & set(result.ops)
    node = result.graph.node("output")
    assert node.op == "BiasAdd" and [r.node for r in result.graph.inputs_of("output")] == ["conv", "conv_bn_offset"]
    # the scaled weights keep the original Const's name; the old values are gone
    assert "weights" in result.graph and "weights_bn_folded" not in result.graph


def test_fused_batch_norm_after_depthwise_conv_with_multiplier(tf):
    def body():
        x = conv_input(tf)
        conv = tf.nn.depthwise_conv2d(x, tf.constant(values((3, 3, 3, 2))), [1, 1, 1, 1], "SAME")
        return fused(tf, conv)  # 6 channels: input channel i, multiplier m -> i*2 + m

    result = check(tf, body, FUSED_TOL)
    assert result.stats["folded"] == 1 and not BN_OPS & set(result.ops)


def test_fused_batch_norm_after_matmul_through_reshape(tf):
    def body():
        x = tf.compat.v1.placeholder(tf.float32, (4, 6), name="input")
        dense = tf.linalg.matmul(x, tf.constant(values((6, 5))))
        return fused(tf, tf.reshape(dense, (4, 1, 1, 5)))

    result = check(tf, body, FUSED_TOL)
    assert result.stats["folded"] == 1 and not BN_OPS & set(result.ops)


def test_concat_of_two_convs_on_the_channel_axis_splits_the_scale(tf):
    def body():
        x = conv_input(tf)
        a = tf.nn.conv2d(x, tf.constant(values((1, 2, 3, 2), seed=3)), 1, "VALID", name="conv_a")
        b = tf.nn.conv2d(x, tf.constant(values((1, 2, 3, 3), seed=4)), 1, "VALID", name="conv_b")
        return fused(tf, tf.concat([a, b], axis=3, name="concat"), "FusedBatchNorm")

    result = check(tf, body, FUSED_TOL)
    assert result.stats["folded"] == 1 and not BN_OPS & set(result.ops)
    assert "concat_bn_offset" in result.graph


def test_concat_of_two_convs_on_a_spatial_axis_scales_both_fully(tf):
    def body():
        x = conv_input(tf)
        a = tf.nn.conv2d(x, tf.constant(values((1, 2, 3, 2), seed=3)), 1, "VALID")
        b = tf.nn.conv2d(x, tf.constant(values((1, 2, 3, 2), seed=4)), 1, "VALID")
        return fused(tf, tf.concat([a, b], axis=2), "FusedBatchNorm")

    result = check(tf, body, FUSED_TOL)
    assert result.stats["folded"] == 1 and not BN_OPS & set(result.ops)


def test_batch_to_space_after_conv_atrous(tf):
    def body():
        x = tf.compat.v1.placeholder(tf.float32, (2, 1, 3, 2), name="input")
        conv = tf.nn.conv2d(x, tf.constant(values((1, 2, 2, 2))), 1, "VALID")
        return fused(tf, tf.compat.v1.batch_to_space_nd(conv, [1, 2], [[0, 0], [0, 1]]), "FusedBatchNorm")

    result = check(tf, body, 1e-5)
    assert result.stats["folded"] == 1 and not BN_OPS & set(result.ops)
    assert result.ops["BatchToSpaceND"] == 1


# -- what GTT does not fold ------------------------------------------------------------------------

@pytest.mark.parametrize("depthwise", [False, True])
def test_bias_add_between_conv_and_batch_norm(tf, depthwise):
    def body():
        conv = same_conv(tf, conv_input(tf), depthwise, multiplier=1)
        biased = tf.nn.bias_add(conv, tf.constant(values(conv.shape[-1], seed=9)))
        return fused(tf, biased)

    result = check(tf, body, FUSED_TOL)
    assert result.stats["folded"] == 1 and not BN_OPS & set(result.ops)
    assert result.ops["BiasAdd"] == 1  # the old bias is merged into the new one


def test_nchw_conv_bias_add_and_batch_norm(tf):
    def body():
        x = tf.compat.v1.placeholder(tf.float32, (2, 3, 6, 6), name="input")
        conv = tf.nn.conv2d(x, tf.constant(values((3, 3, 3, 4))), 1, "SAME", data_format="NCHW")
        biased = tf.nn.bias_add(conv, tf.constant(values(4, seed=9)), data_format="NCHW")
        return fused(tf, biased, data_format="NCHW")

    result = check(tf, body, FUSED_TOL)
    assert result.stats["folded"] == 1 and not BN_OPS & set(result.ops)
    assert result.graph.node("output").attrs["data_format"] == "NCHW"


def test_weights_through_identity(tf):
    def body():
        x = conv_input(tf)
        weights = tf.identity(tf.constant(values((3, 3, 3, 4)), name="weights"), name="read")
        return fused(tf, tf.nn.conv2d(x, weights, 1, "SAME"))

    result = check(tf, body, FUSED_TOL)
    assert result.stats["folded"] == 1 and not BN_OPS & set(result.ops)
    assert "read" not in result.graph and "weights" in result.graph


def test_two_batch_norms_in_a_row(tf):
    def body():
        x = conv_input(tf)
        conv = same_conv(tf, x)
        return fused(tf, fused(tf, conv, name="first"))

    result = check(tf, body, FUSED_TOL)
    assert result.stats["folded"] == 2 and not BN_OPS & set(result.ops)


def test_shared_weights_stay_for_their_other_user(tf):
    def body():
        x = conv_input(tf)
        weights = tf.constant(values((3, 3, 3, 4)), name="weights")
        plain = tf.nn.conv2d(x, weights, 1, "SAME", name="plain")
        return [fused(tf, tf.nn.conv2d(x, weights, 1, "SAME", name="conv")), plain]

    result = check(tf, body, FUSED_TOL)
    assert result.stats["folded"] == 1
    assert [r.node for r in result.graph.inputs_of("plain")][1] == "weights"
    assert [r.node for r in result.graph.inputs_of("conv")][1] == "weights_bn_folded"


# -- left alone, with the reason in the stats ------------------------------------------------------

def test_is_training_is_not_folded(tf):
    def body():
        x = conv_input(tf)
        p = bn_params(tf, 4)
        conv = same_conv(tf, x)
        return tf.compat.v1.nn.fused_batch_norm(conv, p["scale"], p["offset"], is_training=True, name="output")[0]

    result = check(tf, body, 0)
    assert result.stats == {"folded": 0, "skipped": {"is_training=true": 1}, "constants_removed": 0}
    assert result.ops["FusedBatchNormV3"] == 1


def test_conv_output_used_elsewhere_is_not_folded(tf):
    def body():
        x = conv_input(tf)
        conv = same_conv(tf, x)
        return [fused(tf, conv), tf.nn.relu(conv)]

    result = check(tf, body, 0)
    assert result.stats["folded"] == 0
    assert result.stats["skipped"] == {"conv output used elsewhere": 1}
    assert result.ops["FusedBatchNormV3"] == 1


def test_other_outputs_used_or_variable_parameters_are_not_folded(tf):
    def body():
        x = conv_input(tf)
        conv = same_conv(tf, x)
        p = bn_params(tf, 4)
        y, batch_mean = tf.raw_ops.FusedBatchNormV3(x=conv, scale=p["scale"], offset=p["offset"], mean=p["mean"],
                                                    variance=p["variance"], is_training=False)[:2]
        conv2 = tf.nn.conv2d(x, tf.constant(values((3, 3, 3, 4), seed=5)), 1, "SAME")
        mean = tf.compat.v1.placeholder(tf.float32, (4,), name="mean_input")
        z = tf.raw_ops.FusedBatchNormV3(x=conv2, scale=p["scale"], offset=p["offset"], mean=mean,
                                        variance=p["variance"], is_training=False)[0]
        return [y, tf.identity(batch_mean), z]

    result = check(tf, body, 0)
    assert result.stats["skipped"] == {"batch norm outputs other than y are used": 1, "non-constant parameters": 1}
    assert result.ops["FusedBatchNormV3"] == 2


def test_declared_output_inside_the_match_is_not_folded(tf):
    def body():
        x = conv_input(tf)
        conv = tf.nn.conv2d(x, tf.constant(values((3, 3, 3, 4))), 1, "SAME", name="conv")
        return [fused(tf, conv), conv]

    result = check(tf, body, 0)
    assert result.stats["folded"] == 0 and result.ops["FusedBatchNormV3"] == 1


def test_input_not_a_conv_is_not_folded(tf):
    result = check(tf, lambda: fused(tf, tf.nn.relu(conv_input(tf))), 0)
    assert result.stats["skipped"] == {"input is not Conv2D/DepthwiseConv2dNative/MatMul": 1}


# -- the fixtures ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["keras2_cnn.pb", "keras3_cnn.pb"])
def test_fixtures_lose_every_batch_norm(tf, name):
    entry = graphdef_manifest()[name]
    data = (GRAPHDEF_FIXTURES / name).read_bytes()
    graph = graphtool.load(data)
    before = len(graph)
    outputs = [o.split(":")[0] for o in entry["outputs"]]
    report = transform(graph, "remove_nodes(op=Identity) fold_batch_norms fold_old_batch_norms",
                       inputs=[i.split(":")[0] for i in entry["inputs"]], outputs=outputs)
    folded = graphdef.write(graph)
    stats = {p.name: p.stats["folded"] for p in report.passes if p.name.startswith("fold")}
    assert sum(stats.values()) == 2
    ops = Counter(n.op for n in graph)
    assert not BN_OPS & set(ops) and not {"Rsqrt", "Mul", "Sub", "AddV2", "Squeeze", "Reshape"} & set(ops)
    for node in graph:  # after a conv or matmul comes at most one BiasAdd, then a non-linear op
        if node.op in ("Conv2D", "DepthwiseConv2dNative", "MatMul"):
            (consumer, _), = graph.consumers(node.name)
            assert graph.node(consumer).op == "BiasAdd"
            assert graph.node(graph.consumers(consumer)[0][0]).op in ("Relu", "Relu6", "Softmax")
    assert (before, len(graph)) == {"keras2_cnn.pb": (44, 20), "keras3_cnn.pb": (64, 20)}[name]
    feeds = {entry["inputs"][0]: values((3, 8, 8, 1), -1, 1, seed=11)}
    expected = run_graphdef(tf, data, feeds, entry["outputs"])
    actual = run_graphdef(tf, folded, feeds, entry["outputs"])
    np.testing.assert_allclose(actual[0], expected[0], rtol=1e-4, atol=1e-7)


def test_declared_output_on_another_port_is_not_folded(tf):
    with tf.Graph().as_default() as built:
        conv = same_conv(tf, conv_input(tf))
        fused(tf, conv)
    graph = graphtool.load(built.as_graph_def().SerializeToString())
    report = transform(graph, "fold_old_batch_norms", outputs=["output:0", "output:1"])
    assert report.passes[0].stats["skipped"] == {"batch norm outputs other than y are used": 1}
    assert graph.node("output").op == "FusedBatchNormV3"
