"""TFLite thin_channels on the converter's models of the channel CNN (tests/channel_models.py),
run in LiteRT before and after: float outputs within 1e-5 relative, the full-integer model's
bit-identical; models with nothing to thin come back byte-identical."""
from __future__ import annotations

import numpy as np
import pytest

import graphtool
from graphtool.cli.main import main
from graphtool.formats import dumps
from graphtool.formats.tflite import keys
from graphtool.passes import PassError, transform

from ...conftest import TFLITE_FIXTURES, run_litert

RTOL = 1e-5  # float rounding: constants folded into the next layer's bias


@pytest.fixture(scope="module")
def models(tf):
    from ...channel_models import channel_models

    return channel_models()


def thin(data: bytes, spec: str = "thin_channels") -> tuple[bytes, dict]:
    graph = graphtool.load(data)
    (report,) = transform(graph, spec).passes
    return dumps(graph), report.stats


@pytest.mark.tf_keras
@pytest.mark.sklearn
@pytest.mark.litert
def test_float_model_keeps_outputs_and_loses_a_third_of_its_weights(models):
    thinned, stats = thin(models.float)
    before, after = run_litert(models.float, [models.images])[0], run_litert(thinned, [models.images])[0]
    np.testing.assert_allclose(after, before, rtol=RTOL, atol=1e-7)
    assert stats["weights_after"] <= 0.65 * stats["weights_before"]
    assert stats["channels_removed"] == sum(stats["layers"].values()) > 0
    assert len(thinned) < len(models.float)
    # the depthwise conv lost the stem's channels; the constant channels of mid and hidden
    # went into the next layer's bias
    assert any("dw" in name for name in stats["layers"]) and any("mid" in name for name in stats["layers"])
    assert any("hidden" in name for name in stats["layers"])


@pytest.mark.tf_keras
@pytest.mark.sklearn
@pytest.mark.litert
def test_thinning_is_deterministic_and_a_second_run_changes_nothing(models):
    first, _ = thin(models.float)
    second, _ = thin(models.float)
    assert first == second
    again, stats = thin(first)
    assert again == first and stats["channels_removed"] == 0


@pytest.mark.tf_keras
@pytest.mark.sklearn
@pytest.mark.litert
def test_shapes_follow_the_channels(models):
    thinned, _ = thin(models.float)
    graph = graphtool.load(thinned).validate()
    convs = [n for n in graph if n.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    for node in convs:
        weights = graph.tensor(graph.inputs_of(node.name)[1])
        axis = 3 if node.op == "DEPTHWISE_CONV_2D" else 0
        assert node.outputs[0].shape[-1] == weights.shape[axis]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=thinned)
    interpreter.allocate_tensors()  # LiteRT accepts every shape
    assert interpreter.get_output_details()[0]["shape"][-1] == 10
    # the operators, and their versions, are the ones the converter wrote
    before = graphtool.load(models.float)
    assert [(n.op, keys.op_version(n)) for n in graph if n.op not in ("Const", "Input")] == \
        [(n.op, keys.op_version(n)) for n in before if n.op not in ("Const", "Input")]


@pytest.mark.tf_keras
@pytest.mark.sklearn
@pytest.mark.litert
def test_int8_model_thins_bit_identically(models):
    thinned, stats = thin(models.int8)
    # the exact zeros: stem, pw and the residual add, the depthwise conv behind them, and the
    # filters under a RELU whose bias is negative; constants that are not zero stay
    assert stats["weights_after"] <= 0.65 * stats["weights_before"] and stats["kept"]
    before, after = run_litert(models.int8, [models.images])[0], run_litert(thinned, [models.images])[0]
    np.testing.assert_array_equal(after, before)
    graph = graphtool.load(thinned)
    for node in graph:
        if node.op in ("CONV_2D", "FULLY_CONNECTED"):
            weights = graph.tensor(graph.inputs_of(node.name)[1])
            assert weights.quantization.scale.size in (1, weights.shape[0])


@pytest.mark.parametrize("fixture", ["float_cnn.tflite", "full_int8.tflite"])
def test_a_model_with_nothing_to_thin_comes_back_byte_identical(fixture):
    data = (TFLITE_FIXTURES / fixture).read_bytes()
    graph = graphtool.load(data)
    (report,) = transform(graph, "thin_channels").passes
    assert not report.changed and report.stats["channels_removed"] == 0
    assert dumps(graph) == data


def test_bad_parameters_are_refused(tmp_path):
    graph = graphtool.load((TFLITE_FIXTURES / "float_cnn.tflite").read_bytes())
    with pytest.raises(PassError):
        transform(graph, "thin_channels(sparsity=0.5)")
    out = tmp_path / "out.tflite"
    code = main(["transform", str(TFLITE_FIXTURES / "float_cnn.tflite"), str(out),
                 "--transforms", "thin_channels(sparsity=0.5)"])
    assert code == 2 and not out.exists()


@pytest.mark.litert
def test_transpose_conv_loses_zero_filters_and_zero_input_channels(tf):
    from .quantize_models import convert, freeze

    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 3, 6)).astype(np.float32)
    kernel[..., ::2] = 0  # channels 0, 2, 4 of the conv: relu(0) = 0
    transposed = rng.standard_normal((3, 3, 5, 6)).astype(np.float32)  # [h, w, out, in]
    transposed[:, :, [1, 3]] = 0  # output channels 1 and 3 of the transpose conv: its bias
    bias = rng.standard_normal(5).astype(np.float32)
    pointwise = rng.standard_normal((1, 1, 5, 4)).astype(np.float32)

    def model(x):
        h = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"))
        h = tf.nn.conv2d_transpose(h, transposed, (1, 8, 8, 5), 2, "SAME") + bias
        return tf.nn.conv2d(h, pointwise, 1, "VALID")

    data = convert(tf, freeze(tf, model, [tf.TensorSpec([1, 4, 4, 3], tf.float32)]))
    thinned, stats = thin(data)
    assert stats["channels_removed"] == 3 + 2
    graph = graphtool.load(thinned)
    (node,) = [n for n in graph if n.op == "TRANSPOSE_CONV"]
    assert graph.tensor(graph.inputs_of(node.name)[1]).shape == (3, 3, 3, 3)
    assert list(graph.tensor(graph.inputs_of(node.name)[0]).data) == [1, 8, 8, 3]
    x = rng.standard_normal((1, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(run_litert(thinned, [x])[0], run_litert(data, [x])[0], rtol=RTOL, atol=1e-5)
