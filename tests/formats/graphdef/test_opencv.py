"""What `graphtool transform` writes loads in OpenCV's dnn importer, a GraphDef consumer no
one here wrote, and computes what TensorFlow computes.

OpenCV (4.x: OpenCV 5 dropped the TensorFlow importer) reads a non-scalar constant from
tensor_content only and a scalar axis from int_val: expand_constants writes every constant
so. Each model goes through the folding pipeline below, then OpenCV runs it (NCHW) and
TensorFlow runs the original; outputs agree to 1e-3 relative (atol 1e-3 of the largest
output: folding reorders float32 arithmetic and OpenCV has kernels of its own). Keras
application models are compared at their logits (the Softmax's input): with random weights
their softmax is uniform to 1e-7 and would hide any difference."""
from __future__ import annotations

import numpy as np
import pytest

import graphtool
from graphtool.formats import graphdef
from graphtool.passes import transform

from ...conftest import GRAPHDEF_FIXTURES, graphdef_manifest
from ...model_zoo import frozen_model, kinds, logits
from ...tf_runtime import run_graphdef

pytestmark = pytest.mark.opencv

FOLDING = ("strip_unused_nodes remove_nodes(op=Identity, op=IdentityN, max_inputs=3) remove_control_dependencies "
           "fold_constants(ignore_errors=true) fold_batch_norms fold_old_batch_norms strip_unused_nodes")
PIPELINE = f"{FOLDING} expand_constants"
RTOL = 1e-3

# Runnable fixtures whose ops OpenCV does not support, and which (test_unsupported_fixtures_
# fail_in_opencv holds each to it, so the list cannot go stale). Fixtures TensorFlow does not
# run either (MANIFEST.json: "runnable": false) are skipped saying so.
UNSUPPORTED = {
    "function_library.pb": "functional control flow (StatelessIf, StatelessWhile) and Sum over the "
                           "feature axis (\"Unsupported mode of reduce_mean or reduce_sum\")",
    "tf1_control_flow.pb": "TF1 control flow (Switch, Merge, Enter, Exit, NextIteration, LoopCond)",
}
FIXTURES = sorted(p.name for p in GRAPHDEF_FIXTURES.glob("*.pb"))


def folded(data: bytes | str, inputs: list[str], outputs: list[str], spec: str = PIPELINE) -> tuple[bytes, dict]:
    """The GraphDef after `spec` with those inputs and outputs, and each transform's stats."""
    graph = graphtool.load(data)
    report = transform(graph, spec, inputs=inputs, outputs=outputs)
    return graphdef.write(graph), {p.name: p.stats for p in report.passes}


def opencv_net(data: bytes):
    import cv2

    return cv2.dnn.readNetFromTensorflow(np.frombuffer(data, np.uint8))


def run_opencv(data: bytes, x: np.ndarray) -> np.ndarray:
    """Output of the GraphDef `data` in OpenCV for the input `x` (an image batch NHWC, as
    TensorFlow takes it; OpenCV's is NCHW), back in TensorFlow's layout."""
    net = opencv_net(data)
    net.setInput(np.ascontiguousarray(x.transpose(0, 3, 1, 2) if x.ndim == 4 else x))
    out = net.forward()
    return out.transpose(0, 2, 3, 1) if out.ndim == 4 else out


def assert_matches(got: np.ndarray, want: np.ndarray) -> float:
    """got == want to RTOL, absolute RTOL of the largest |want|; returns the largest error
    relative to that."""
    scale = float(np.abs(want).max())
    assert got.shape == want.shape and scale > 0
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * scale)
    return float(np.abs(got - want).max()) / scale


def folded_fixture(name: str) -> tuple[bytes, dict]:
    """The fixture `name` after PIPELINE, its manifest's inputs and outputs declared."""
    entry = graphdef_manifest()[name]
    return folded(GRAPHDEF_FIXTURES / name, [n.split(":")[0] for n in entry["inputs"]],
                  [n.split(":")[0] for n in entry["outputs"]])


def fixture_input(name: str, data: bytes) -> np.ndarray:
    """Random values for the one input of fixture `name` (folded to `data`), batch 2."""
    (input_name,) = graphdef_manifest()[name]["inputs"]
    shape = graphtool.load(data).node(input_name.split(":")[0]).outputs[0].shape
    return np.random.default_rng(0).uniform(-1, 1, (2, *shape[1:])).astype(np.float32)


@pytest.mark.parametrize("name", FIXTURES)
def test_folded_fixture_loads_in_opencv_and_matches_tensorflow(tf, name, record_property):
    entry = graphdef_manifest()[name]
    if not entry["runnable"]:
        pytest.skip(f"{name}: TensorFlow does not run it either (MANIFEST.json), nothing to compare")
    if name in UNSUPPORTED:
        pytest.skip(f"{name}: OpenCV does not support {UNSUPPORTED[name]}")
    data, _ = folded_fixture(name)
    x = fixture_input(name, data)
    (want,) = run_graphdef(tf, (GRAPHDEF_FIXTURES / name).read_bytes(), {entry["inputs"][0]: x}, entry["outputs"])
    error = assert_matches(run_opencv(data, x), want)
    record_property("max_relative_error", error)
    print(f"{name}: OpenCV vs TensorFlow, max relative error {error:.2e}")


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_fixtures_fail_in_opencv(name):
    import cv2

    data, _ = folded_fixture(name)
    with pytest.raises(cv2.error):
        run_opencv(data, fixture_input(name, data))


def test_a_folded_scalar_axis_is_read_from_int_val(tf):
    """fold_constants computes the concat axis 1 + 2: a new scalar, which graphtool writes as
    make_tensor_proto does (int_val: OpenCV reads a concat axis as int_val[0]); the new
    non-scalar Mul operand goes to tensor_content."""
    from ...tf_runtime import build_graphdef

    def body():  # a conv first: OpenCV learns the layout (NHWC) from it and moves the axis to NCHW
        x = tf.compat.v1.placeholder(tf.float32, (None, 4, 4, 2), name="x")
        conv = tf.nn.conv2d(x, np.random.default_rng(1).uniform(-1, 1, (1, 1, 2, 2)).astype(np.float32), 1, "SAME")
        axis = tf.add(tf.constant(1), tf.constant(2))
        scale = tf.constant(np.float32([0.5, 2.0])) * tf.constant(np.float32(3.0))
        return tf.identity(tf.concat([tf.nn.relu(conv) * scale, conv], axis), name="out")

    original, _ = build_graphdef(tf, body)
    data, stats = folded(original, ["x"], ["out"])
    assert stats["fold_constants"]["folded"] == 2
    new = {n.name: n.attr["value"].tensor for n in graphdef.GraphDef.FromString(data).node if n.op == "Const"}
    (axis,) = [t for t in new.values() if t.dtype == tf.int32.as_datatype_enum]
    assert list(axis.int_val) == [3] and not axis.tensor_content and axis.HasField("tensor_shape")
    assert all(t.tensor_content for t in new.values() if t.tensor_shape.dim)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 4, 4, 2)).astype(np.float32)
    assert_matches(run_opencv(data, x), run_graphdef(tf, original, {"x:0": x}, "out:0"))


@pytest.mark.slow
@pytest.mark.parametrize("kind", kinds())
def test_keras_application_loads_in_opencv_and_matches_tensorflow(tf, kind, record_property):
    """Batch 1: OpenCV cannot run EfficientNet's squeeze-excite Reshape (its shape read from
    the input's Shape) on more than one image."""
    path, input_name, _ = frozen_model(kind)
    original = graphtool.load(path)
    inputs, outputs = [input_name.split(":")[0]], [logits(original)]
    data, stats = folded(path, inputs, outputs)
    if kind == "efficientnetb0":  # its Normalization's mean holds no values: OpenCV reads it once expanded
        assert stats["expand_constants"]["forms"]["no values"] > 0
        import cv2

        with pytest.raises(cv2.error, match="empty"):
            opencv_net(folded(path, inputs, outputs, FOLDING)[0])
    shape = original.node(inputs[0]).outputs[0].shape
    x = np.random.default_rng(0).uniform(-1, 1, (1, *shape[1:])).astype(np.float32)
    want = run_graphdef(tf, path.read_bytes(), {input_name: x}, f"{outputs[0]}:0")
    error = assert_matches(run_opencv(data, x), want)
    record_property("max_relative_error", error)
    print(f"{kind}: OpenCV vs TensorFlow, max relative error {error:.2e}; {stats['fold_batch_norms']}")
