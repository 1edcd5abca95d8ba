"""prune_channels on the demo's trained digits CNN (fixtures/demo/float_cnn.tflite) in LiteRT and
on the frozen channel CNN (tests/channel_models.py) in TensorFlow: which channels go, that
the thinning after the zeroing is exact, and the parameters it refuses."""
from __future__ import annotations

import numpy as np
import pytest

import graphtool
from graphtool.cli.main import main
from graphtool.formats import dumps
from graphtool.passes import PassError, transform
from graphtool.pattern import constant_value

from ..conftest import ROOT, run_litert

DIGITS = ROOT / "fixtures" / "demo" / "float_cnn.tflite"
TEST_SPLIT = ROOT / "fixtures" / "tflite" / "digits_test.npz"
CONV = "digits_cnn/relu6_conv/Relu6;digits_cnn/bn_conv/FusedBatchNormV3;digits_cnn/conv/Conv2D1"
FC = "digits_cnn/fc/MatMul;digits_cnn/bn_fc/batchnorm/mul_1;digits_cnn/relu6_fc/Relu6;digits_cnn/bn_fc/batchnorm/add_1"


def prune(data: bytes, spec: str) -> tuple[graphtool.Graph, dict]:
    graph = graphtool.load(data)
    (report,) = transform(graph, spec).passes
    return graph, report.stats


def weights(graph, name: str) -> np.ndarray:
    return graph.tensor(graph.inputs_of(name)[1]).data


def test_each_layer_keeps_its_strongest_filters():
    data = DIGITS.read_bytes()
    original = graphtool.load(data)
    pruned, stats = prune(data, "prune_channels(sparsity=0.25)")
    # conv (with the depthwise conv after it) 16 -> 12, pw 32 -> 24, fc 64 -> 48
    assert stats["zeroed"] == 4 + 8 + 16 and stats["groups"] == 15 + 31 + 63  # a tensor keeps one channel
    assert stats["thin"]["weights_after"] < 0.65 * stats["thin"]["weights_before"]
    before, after = weights(original, FC), weights(pruned, FC)  # its channels are tied to no other layer's
    kept = np.sort(np.argsort(np.abs(before).sum(axis=1), kind="stable")[16:])
    assert after.shape == (48, before.shape[1] * 3 // 4)  # it lost a quarter of its inputs too (pw's channels)
    assert all(np.isin(row, source).all() for row, source in zip(after, before[kept]))
    assert weights(pruned, CONV).shape[0] == 12


@pytest.mark.litert
def test_zeroing_then_thinning_is_exact_up_to_float_rounding():
    """The pruned model computes what the zeroed one does: thinning loses nothing more."""
    from graphtool.passes.common.prune_channels import Params, zero_channels
    from graphtool.passes.registry import Context

    data = DIGITS.read_bytes()
    images = np.load(TEST_SPLIT)["images"]
    zeroed = graphtool.load(data)
    zero_channels(zeroed, Params(sparsity=0.25), Context())
    pruned, _ = prune(data, "prune_channels(sparsity=0.25)")
    assert len(dumps(pruned)) < len(dumps(zeroed))
    np.testing.assert_allclose(run_litert(dumps(pruned), [images])[0], run_litert(dumps(zeroed), [images])[0],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.litert
def test_an_int8_model_prunes_and_thins_bit_identically_to_zeroing():
    from graphtool.passes.common.prune_channels import Params, zero_channels
    from graphtool.passes.registry import Context

    data = (ROOT / "fixtures" / "tflite" / "full_int8.tflite").read_bytes()
    zeroed = graphtool.load(data)
    zero_channels(zeroed, Params(sparsity=0.25), Context())
    pruned, stats = prune(data, "prune_channels(sparsity=0.25)")
    assert stats["zeroed"] > 0 and stats["thin"]["weights_after"] < stats["thin"]["weights_before"]
    images = np.load(TEST_SPLIT)["images"]
    q = zeroed.node(zeroed.inputs[0]).outputs[0].quantization  # the model takes int8 images
    quantized = np.clip(np.round(images / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)
    np.testing.assert_array_equal(run_litert(dumps(pruned), [quantized])[0], run_litert(dumps(zeroed), [quantized])[0])


@pytest.mark.litert
def test_the_signature_def_still_runs_the_pruned_model():
    from ai_edge_litert.interpreter import Interpreter

    pruned = dumps(prune(DIGITS.read_bytes(), "prune_channels(sparsity=0.25)")[0])
    images = np.load(TEST_SPLIT)["images"][:4]
    interpreter = Interpreter(model_content=pruned)
    (key,) = interpreter.get_signature_list()
    runner = interpreter.get_signature_runner(key)
    (name,) = runner.get_input_details()
    (output,) = runner(**{name: images}).values()
    np.testing.assert_array_equal(output, run_litert(pruned, [images])[0])


def test_global_ranks_all_layers_together():
    data = DIGITS.read_bytes()
    _, per_layer = prune(data, "prune_channels(sparsity=0.25)")
    _, overall = prune(data, "prune_channels(sparsity=0.25, global=true)")
    assert overall["zeroed"] == int(0.25 * (16 + 32 + 64)) and overall["layers"] != per_layer["layers"]


def test_only_and_keep_choose_the_layers():
    data = DIGITS.read_bytes()
    _, only = prune(data, f"prune_channels(sparsity=0.5, only={FC!r})".replace("'", '"'))
    assert list(only["layers"]) == [FC] and only["left_out"]["only"] == 15 + 31
    _, kept = prune(data, "prune_channels(sparsity=0.5, keep_op=FULLY_CONNECTED)")
    assert FC not in kept["layers"] and kept["left_out"]["keep_op"] == 63


def test_pruning_is_deterministic_and_sparsity_0_changes_nothing():
    data = DIGITS.read_bytes()
    assert dumps(prune(data, "prune_channels(sparsity=0.3)")[0]) == dumps(prune(data, "prune_channels(sparsity=0.3)")[0])
    graph, stats = prune(data, "prune_channels(sparsity=0)")
    assert stats["zeroed"] == 0 and dumps(graph) == data


@pytest.mark.parametrize("spec, message", [
    ("prune_channels(sparsity=1.5)", "sparsity"),
    ("prune_channels(sparsity=-0.1)", "sparsity"),
    ("prune_channels(criterion=l3)", "l1, l2, bn_gamma"),
    ("prune_channels(criterion=bn_gamma)", "criterion=l1 or criterion=l2"),
    ("prune_channels(keep=nothing_here)", "nothing_here"),
    ("prune_channels(keep_op=NOT_AN_OP)", "NOT_AN_OP"),
    ("prune_channels(global=maybe)", "global"),
])
def test_bad_parameters_are_refused(spec, message, tmp_path):
    with pytest.raises(PassError, match=message):
        prune(DIGITS.read_bytes(), spec)
    out = tmp_path / "out.tflite"
    assert main(["transform", str(DIGITS), str(out), "--transforms", spec]) == 2 and not out.exists()


@pytest.mark.tf_keras
@pytest.mark.sklearn
def test_graphdef_bn_gamma_prunes_the_weakest_batch_norm_channels(tf):
    from ..channel_models import channel_models
    from ..tf_runtime import run_graphdef

    models = channel_models()
    graph, stats = prune(models.graphdef, "prune_channels(sparsity=0.5, criterion=bn_gamma)")
    # stem and pw (gamma zeroed on their even channels, tied by the residual add) and mid
    assert set(stats["layers"]) == {"model/stem/Conv2D", "model/pw/Conv2D", "model/dw/depthwise", "model/mid/Conv2D"}
    assert stats["left_out"] == {"no_batch_norm": 16 + 32 - 2}  # side and hidden, but the channel each keeps
    mid_gamma = constant_value(graph, graph.inputs_of("model/mid_bn/FusedBatchNormV3")[1])[1]
    assert mid_gamma.shape[0] <= 8  # half pruned; thin_channels also removes the constant channels zero_half left
    feeds = {f"{models.input_name}:0": models.images}
    out = run_graphdef(tf, dumps(graph), feeds, f"{models.output_name}:0")
    assert out.shape == (len(models.images), 10) and np.allclose(out.sum(axis=1), 1, atol=1e-5)


def test_graphdef_without_batch_norms_refuses_bn_gamma(tf):
    from ..tf_runtime import build_graphdef

    def body():
        x = tf.compat.v1.placeholder(tf.float32, [1, 4], name="x")
        h = tf.nn.relu(tf.matmul(x, tf.constant(np.ones((4, 8), np.float32))))
        return tf.matmul(h, tf.constant(np.ones((8, 2), np.float32)), name="y")

    data, _ = build_graphdef(tf, body)
    with pytest.raises(PassError, match="criterion=l1 or criterion=l2"):
        prune(data, "prune_channels(criterion=bn_gamma)")
    _, stats = prune(data, "prune_channels(sparsity=0.5)")
    assert stats["layers"] == {"MatMul": 4}
