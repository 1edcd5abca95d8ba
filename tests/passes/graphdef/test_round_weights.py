"""round_weights: float Consts snapped to num_steps levels, checked in TensorFlow."""
from __future__ import annotations

import numpy as np
import pytest

import graphtool
from graphtool.formats.graphdef import write
from graphtool.passes import PassError, transform

from ...conftest import GRAPHDEF_FIXTURES
from ...tf_runtime import build_graphdef, run_graphdef, transform_graphdef


def rounded(tf, data: bytes, spec: str) -> tuple[bytes, dict]:
    result = transform_graphdef(tf, data, spec)
    return result.data, result.stats


def const_values(tf, data: bytes) -> dict[str, np.ndarray]:
    return {n.name: tf.make_ndarray(n.attr["value"].tensor)
            for n in tf.compat.v1.GraphDef.FromString(data).node if n.op == "Const"}


def dense_graph(tf, seed: int = 0) -> tuple[bytes, dict, dict]:
    rng = np.random.default_rng(seed)
    weights = {"w1": (rng.standard_normal((32, 64)) * 0.2).astype(np.float32),
               "w2": -np.abs(rng.standard_normal((64, 10)) * 0.2).astype(np.float32),  # all negative
               "b1": rng.standard_normal(64).astype(np.float32),
               "small": rng.standard_normal(10).astype(np.float32)}  # under 16 elements

    def body():
        x = tf.compat.v1.placeholder(tf.float32, (None, 32), name="x")
        y = tf.nn.relu(tf.matmul(x, tf.constant(weights["w1"], name="w1")) + tf.constant(weights["b1"], name="b1"))
        tf.add(tf.matmul(y, tf.constant(weights["w2"], name="w2")), tf.constant(weights["small"], name="small"),
               name="out")
    return build_graphdef(tf, body)[0], weights, {"x:0": rng.standard_normal((16, 32)).astype(np.float32)}


@pytest.mark.parametrize("num_steps", [256, 16, 2])
def test_at_most_num_steps_levels_within_half_a_bucket(tf, num_steps):
    original, weights, feeds = dense_graph(tf)
    data, stats = rounded(tf, original, f"round_weights(num_steps={num_steps})")
    assert stats == {"rounded": 3, "skipped": {"below minimum_size": 1}}
    after = const_values(tf, data)
    for name in ("w1", "w2", "b1"):
        value, before = after[name], weights[name]
        assert value.dtype == np.float32 and value.shape == before.shape
        levels = np.unique(value)
        assert len(levels) <= num_steps
        half_bucket = (before.max() - before.min()) / num_steps / 2
        assert np.abs(value - before).max() <= half_bucket * (1 + 1e-5)
        assert before.min() <= levels.min() and levels.max() <= before.max()  # the range stays the tensor's own
    np.testing.assert_array_equal(after["small"], weights["small"])
    (out_before,), (out_after,) = run_graphdef(tf, original, feeds, ["out:0"]), run_graphdef(tf, data, feeds, ["out:0"])
    assert not np.array_equal(out_after, out_before)
    if num_steps == 256:  # weights off by under 0.2% of their range: outputs agree closely
        np.testing.assert_allclose(out_after, out_before, atol=0.05, rtol=0)
        assert np.linalg.norm(out_after - out_before) / np.linalg.norm(out_before) < 1e-2


def test_a_wide_tensor_uses_every_level(tf):
    """Evenly spread values hit all num_steps buckets, the maximum in the top one (GTT would
    add an extra level above the maximum)."""
    values = np.linspace(-3, 5, 4096, dtype=np.float32)
    original = build_graphdef(tf, lambda: tf.identity(tf.constant(values, name="w"), name="out"))[0]
    data, _ = rounded(tf, original, "round_weights(num_steps=64)")
    (after,) = run_graphdef(tf, data, None, ["out:0"])
    assert len(np.unique(after)) == 64
    width = 8 / 64
    np.testing.assert_allclose(after[[0, -1]], [-3 + width / 2, 5 - width / 2], rtol=1e-6)


def test_untouched_consts(tf):
    def body():
        same = tf.constant(np.full(32, 0.7, np.float32), name="same")
        ints = tf.constant(np.arange(32, dtype=np.int32), name="ints")
        tf.add(same, tf.cast(ints, tf.float32), name="out")
    original = build_graphdef(tf, body)[0]
    graph = graphtool.load(original)
    untouched = write(graph)
    report = transform(graph, "round_weights")
    assert not report.changed and report.passes[0].stats["skipped"] == {"single value": 1}
    assert write(graph) == untouched
    (before,), (after,) = run_graphdef(tf, original, None, ["out:0"]), run_graphdef(tf, untouched, None, ["out:0"])
    np.testing.assert_array_equal(after, before)


def test_minimum_size_extension_and_bad_params(tf):
    original, weights, feeds = dense_graph(tf)
    data, stats = rounded(tf, original, "round_weights(minimum_size=1, num_steps=4)")
    assert stats["rounded"] == 4
    assert len(np.unique(const_values(tf, data)["small"])) <= 4
    run_graphdef(tf, data, feeds, ["out:0"])
    for spec in ("round_weights(num_steps=0)", "round_weights(minimum_size=-1)"):
        with pytest.raises(PassError, match="must be >= "):
            transform(graphtool.load(original), spec)


def test_keras2_cnn_outputs_close(tf):
    original = (GRAPHDEF_FIXTURES / "keras2_cnn.pb").read_bytes()
    data, stats = rounded(tf, original, "round_weights(minimum_size=1)")
    assert stats["rounded"] == 14
    feeds = {"input:0": np.random.default_rng(0).standard_normal((8, 8, 8, 1)).astype(np.float32)}
    (before,) = run_graphdef(tf, original, feeds, ["Identity:0"])
    (after,) = run_graphdef(tf, data, feeds, ["Identity:0"])
    np.testing.assert_allclose(after, before, atol=5e-3, rtol=0)
    assert not np.array_equal(after, before)
