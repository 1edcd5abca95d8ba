"""GraphDef thin_channels on the frozen channel CNN (tests/channel_models.py), run in TensorFlow
before and after: outputs within 1e-5 relative; a graph with nothing to thin comes back
byte-identical."""
from __future__ import annotations

import numpy as np
import pytest

import graphtool
from graphtool.formats import dumps
from graphtool.passes import PassError, transform
from graphtool.pattern import constant_value

from ...conftest import GRAPHDEF_FIXTURES
from ...tf_runtime import run_graphdef

RTOL = 1e-5  # float rounding: constants folded into a bias after the next layer


@pytest.fixture(scope="module")
def models(tf):
    from ...channel_models import channel_models

    return channel_models()


def thin(data: bytes, spec: str = "thin_channels") -> tuple[bytes, dict]:
    graph = graphtool.load(data)
    (report,) = transform(graph, spec).passes
    return dumps(graph), report.stats


def run(tf, models, data: bytes) -> np.ndarray:
    return run_graphdef(tf, data, {f"{models.input_name}:0": models.images}, f"{models.output_name}:0")


@pytest.mark.tf_keras
@pytest.mark.sklearn
def test_frozen_graph_keeps_outputs_and_loses_a_third_of_its_weights(tf, models):
    thinned, stats = thin(models.graphdef)
    np.testing.assert_allclose(run(tf, models, thinned), run(tf, models, models.graphdef), rtol=RTOL, atol=1e-7)
    assert stats["weights_after"] <= 0.65 * stats["weights_before"]
    assert set(stats["layers"]) == {f"model/{name}" for name in
                                    ("stem/Conv2D", "dw/depthwise", "pw/Conv2D", "mid/Conv2D", "side/Conv2D",
                                     "hidden/MatMul")}
    assert stats["channels_removed"] == sum(stats["layers"].values())
    assert len(thinned) < len(models.graphdef)
    graph = graphtool.load(thinned)
    (bn,) = [n for n in graph if n.name == "model/stem_bn/FusedBatchNormV3"]
    assert constant_value(graph, graph.inputs_of(bn.name)[1])[1].shape == (8,)  # the batch norm lost them too


@pytest.mark.tf_keras
@pytest.mark.sklearn
def test_thinning_is_deterministic_and_a_second_run_changes_nothing(models):
    first, _ = thin(models.graphdef)
    assert thin(models.graphdef)[0] == first
    again, stats = thin(first)
    assert again == first and stats["channels_removed"] == 0


@pytest.mark.tf_keras
@pytest.mark.sklearn
def test_a_declared_output_keeps_its_channels(tf, models):
    graph = graphtool.load(models.graphdef)
    (report,) = transform(graph, "thin_channels", outputs=["model/add/add"]).passes
    assert "model/stem/Conv2D" not in report.stats["layers"] and report.stats["kept"]["model_output"] == 8
    assert "model/mid/Conv2D" in report.stats["layers"]


def test_a_graph_with_nothing_to_thin_comes_back_byte_identical(tf):
    from ...tf_runtime import build_graphdef

    def body():
        x = tf.compat.v1.placeholder(tf.float32, [1, 4, 4, 3], name="x")
        kernel = tf.constant(np.arange(1, 55, dtype=np.float32).reshape(3, 3, 3, 2))
        return tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"), name="y")

    data, _ = build_graphdef(tf, body)
    thinned, stats = thin(data)
    assert thinned == dumps(graphtool.load(data)) and stats["channels_removed"] == 0


@pytest.mark.parametrize("fixture", ["keras2_cnn.pb", "keras3_cnn.pb"])
def test_fixtures_with_nothing_to_thin_come_back_byte_identical(fixture):
    data = (GRAPHDEF_FIXTURES / fixture).read_bytes()
    thinned, stats = thin(data)
    assert thinned == dumps(graphtool.load(data)) and stats["channels_removed"] == 0


def test_bad_parameters_are_refused():
    with pytest.raises(PassError):
        transform(graphtool.load((GRAPHDEF_FIXTURES / "keras2_cnn.pb").read_bytes()), "thin_channels(criterion=l1)")


def test_a_flatten_before_a_dense_layer_loses_the_channels_at_every_position(tf):
    from ...tf_runtime import build_graphdef

    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 2, 6)).astype(np.float32)
    kernel[..., [1, 4]] = 0
    bias = rng.standard_normal(6).astype(np.float32)
    dense = rng.standard_normal((4 * 4 * 6, 3)).astype(np.float32)

    def body():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4, 4, 2], name="x")
        h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), bias))
        return tf.matmul(tf.reshape(h, [-1, 4 * 4 * 6]), dense, name="y")

    data, _ = build_graphdef(tf, body, add_shapes=True)  # stale _output_shapes would not import
    thinned, stats = thin(data)
    assert stats["layers"] == {"Conv2D": 2} and stats["weights_after"] == 3 * 3 * 2 * 4 + 4 * 4 * 4 * 3
    feeds = {"x:0": rng.standard_normal((5, 4, 4, 2)).astype(np.float32)}
    np.testing.assert_allclose(run_graphdef(tf, thinned, feeds, "y:0"), run_graphdef(tf, data, feeds, "y:0"),
                               rtol=RTOL, atol=1e-5)


def test_a_transpose_conv_loses_zero_filters_and_zero_input_channels(tf):
    from ...tf_runtime import build_graphdef

    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 3, 6)).astype(np.float32)
    kernel[..., ::2] = 0  # channels 0, 2, 4 of the conv: relu(0) = 0
    transposed = rng.standard_normal((3, 3, 5, 6)).astype(np.float32)  # [h, w, out, in]
    transposed[:, :, [1, 3]] = 0  # output channels 1 and 3: their bias
    bias = rng.standard_normal(5).astype(np.float32)
    pointwise = rng.standard_normal((1, 1, 5, 4)).astype(np.float32)

    def body():
        x = tf.compat.v1.placeholder(tf.float32, [1, 4, 4, 3], name="x")
        h = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"))
        h = tf.nn.bias_add(tf.nn.conv2d_transpose(h, transposed, (1, 8, 8, 5), 2, "SAME"), bias)
        return tf.nn.conv2d(h, pointwise, 1, "VALID", name="y")

    data, _ = build_graphdef(tf, body)
    thinned, stats = thin(data)
    assert stats["layers"] == {"Conv2D": 3, "conv2d_transpose": 2}
    feeds = {"x:0": rng.standard_normal((1, 4, 4, 3)).astype(np.float32)}
    np.testing.assert_allclose(run_graphdef(tf, thinned, feeds, "y:0"), run_graphdef(tf, data, feeds, "y:0"),
                               rtol=RTOL, atol=1e-5)
