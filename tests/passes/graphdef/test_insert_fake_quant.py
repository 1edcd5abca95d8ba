"""insert_fake_quant: fake-quant placed where TFLite's int8 kernels quantize, proven by
TensorFlow's converter turning the graph into a fully int8 model, by TensorFlow running the
fake-quant graph and by LiteRT running the int8 model on the same inputs.

The end-to-end model is a CNN with batch norm and ReLU6 trained on scikit-learn's digits
(seeded, a few seconds), frozen to a GraphDef: fold_old_batch_norms + fold_batch_norms →
insert_fake_quant(calibration=train samples .npz) → tf.compat.v1.lite.TFLiteConverter
(inference_type int8)."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import graphtool
from graphtool.runtime.calibrate import calibrate
from graphtool.formats.graphdef import write
from graphtool.passes import PassError, transform
from graphtool.runtime.litert import TfliteModel, TfliteTensors
from graphtool.runtime.tensorflow import convert_fake_quant_graphdef, run_graphdef

from ...conftest import GRAPHDEF_FIXTURES, TFLITE_FIXTURES
from ...tf_runtime import build_graphdef

EPOCHS = 20
CALIBRATION_SAMPLES = 256
FOLD = ("remove_nodes(op=Identity) remove_control_dependencies fold_constants(ignore_errors=true) "
        "fold_batch_norms fold_old_batch_norms strip_unused_nodes sort_by_execution_order")
KERNELS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
ACCURACY_POINTS = 0.01        # the int8 model's test accuracy within 1 point of the float model's
KERNEL_STEPS = 2.0            # each conv/FC output: TF's fake-quant value vs LiteRT's, in its int8 steps
OUTPUT_STEPS = 4.0            # the softmax output (int8 softmax uses a lookup table for exp)
ROUNDING = 1e-3               # of a step: float error in comparing dequantized values
FQ = "FakeQuantWithMinMaxVars"
FQ_CHANNEL = "FakeQuantWithMinMaxVarsPerChannel"


# -- the digits CNN, trained once -------------------------------------------------------------------

@dataclass
class Digits:
    frozen: bytes        # the float GraphDef as frozen
    input: str
    output: str
    x_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    samples: Path        # CALIBRATION_SAMPLES training images, keyed by the input name


@pytest.fixture(scope="session")
def digits(tf, tmp_path_factory) -> Digits:
    """Conv+BN+ReLU6, depthwise+BN+ReLU6, 1x1 conv+BN+ReLU6, max pool, Dense+BN+ReLU6, Dense+softmax
    trained EPOCHS epochs on the digits' train split, frozen (inference mode, constants)."""
    from demo.digits import digits_split, frozen_bn_relu6_cnn

    frozen, input_name, output_name = frozen_bn_relu6_cnn(EPOCHS)
    (x_train, _), (x_test, y_test) = digits_split()
    samples = tmp_path_factory.mktemp("digits") / "calibration.npz"
    np.savez(samples, image=x_train[:CALIBRATION_SAMPLES])
    return Digits(frozen, input_name, output_name, x_train, x_test, y_test, samples)


@dataclass
class Converted:
    folded: bytes         # after batch-norm folding (the float reference)
    fake_quant: bytes     # after insert_fake_quant
    stats: dict
    tflite: bytes         # the converter's int8 model


@pytest.fixture(scope="session")
def converted(digits) -> Converted:
    graph = graphtool.load(digits.frozen)
    transform(graph, FOLD, inputs=[digits.input], outputs=[digits.output])
    folded = write(graph)
    report = transform(graph, f"insert_fake_quant(calibration={digits.samples})",
                       inputs=[digits.input], outputs=[digits.output])
    stats = report.passes[-1].stats
    fake_quant = write(graph)
    tflite = convert_fake_quant_graphdef(fake_quant, stats["quantized_input_stats"], [digits.output])
    return Converted(folded, fake_quant, stats, tflite)


def schema_model(data: bytes):
    """TensorFlow's own parse of a .tflite (the flatc object API)."""
    from tensorflow.lite.python import schema_py_generated as schema

    return schema, schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def kernels(data: bytes) -> list[dict]:
    """Each conv/FC operator: op, input and weight types, weight scale count and quantized axis."""
    schema, model = schema_model(data)
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    graph = model.subgraphs[0]
    found = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = builtin[max(code.builtinCode, code.deprecatedBuiltinCode)]
        if name in KERNELS:
            data_in, weights = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
            found.append({"op": name, "input": types[data_in.type], "weights": types[weights.type],
                          "weight_scales": len(weights.quantization.scale),
                          "weight_axis": weights.quantization.quantizedDimension,
                          "weight_zero_points": set(weights.quantization.zeroPoint.tolist()),
                          "weight_shape": list(weights.shape), "output": int(op.outputs[0])})
    return found


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == labels).mean())


# -- end to end: the digits CNN -----------------------------------------------------------------------

@pytest.mark.litert
@pytest.mark.tf_keras
@pytest.mark.sklearn
@pytest.mark.slow
def test_digits_cnn_becomes_a_fully_int8_model(digits, converted):
    found = kernels(converted.tflite)
    assert Counter(k["op"] for k in found) == {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 2}
    for kernel in found:
        assert (kernel["input"], kernel["weights"]) == ("INT8", "INT8"), kernel
        assert kernel["weight_zero_points"] == {0}
    per_channel = {k["op"]: (k["weight_scales"], k["weight_axis"], k["weight_shape"]) for k in found
                   if k["op"] != "FULLY_CONNECTED"}
    assert per_channel["DEPTHWISE_CONV_2D"] == (16, 3, [1, 3, 3, 16])  # one scale per output channel
    assert all(k["weight_scales"] == k["weight_shape"][0] for k in found if k["op"] == "CONV_2D")
    assert all(k["weight_scales"] == 1 for k in found if k["op"] == "FULLY_CONNECTED")
    schema, model = schema_model(converted.tflite)
    assert {t.type for t in model.subgraphs[0].tensors} <= {schema.TensorType.INT8, schema.TensorType.INT32}

    stats = converted.stats
    assert stats["weights_per_channel"] == 3 and stats["weights_per_tensor"] == 2
    assert stats["input_ranges"] == {digits.input: [0.0, 1.0]}  # pixel values in [0, 1]
    assert stats["quantized_input_stats"] == {digits.input: [-128.0, 255.0]}
    assert stats["left_float"] == {} and stats["fixed_range"] == 1  # the softmax

    (float_probs,) = run_graphdef(digits.frozen, {digits.input: digits.x_test}, [digits.output])
    int8 = TfliteModel(converted.tflite)
    assert (int8.inputs[0].scale[0], int8.inputs[0].zero_point[0]) == (pytest.approx(1 / 255), -128)
    (int8_probs,) = int8.run_real([digits.x_test])
    float_accuracy, int8_accuracy = accuracy(float_probs, digits.y_test), accuracy(int8_probs, digits.y_test)
    assert float_accuracy > 0.95, "the float model did not train"
    assert int8_accuracy >= float_accuracy - ACCURACY_POINTS, (float_accuracy, int8_accuracy)


@pytest.mark.litert
@pytest.mark.tf_keras
@pytest.mark.sklearn
@pytest.mark.slow
def test_fake_quant_graph_in_tensorflow_agrees_with_the_int8_model(tf, digits, converted):
    """Each conv/FC output and the final output, TensorFlow's fake-quant graph against LiteRT's
    int8 model dequantized, on the test images, measured in the int8 tensor's steps."""
    found = kernels(converted.tflite)
    graph_def = tf.compat.v1.GraphDef.FromString(converted.fake_quant)
    activations = [n.name for n in graph_def.node if n.op == FQ and "weights_fake_quant" not in n.name]
    # in graph order: the input's, one after each conv/FC kernel, the softmax's
    assert len(activations) == len(found) + 2 and activations[0] == f"{digits.input}/fake_quant"
    fetches = activations[1:-1] + [digits.output]
    expected = run_graphdef(converted.fake_quant, {digits.input: digits.x_test}, fetches)
    interpreter = TfliteTensors(converted.tflite)
    interpreter.run([interpreter.inputs[0].from_real(digits.x_test)])
    _, model = schema_model(converted.tflite)
    tensors = model.subgraphs[0].tensors
    outputs = [k["output"] for k in found] + [model.subgraphs[0].outputs[0]]
    limits = [(KERNEL_STEPS, 0.001)] * len(found) + [(OUTPUT_STEPS, 0.01)]  # (max, share beyond one step)
    for index, want, (limit, share) in zip(outputs, expected, limits):
        quantization = tensors[index].quantization
        scale, zero_point = quantization.scale[0], quantization.zeroPoint[0]
        got = (interpreter.tensor(index).astype(np.float64) - zero_point) * scale
        steps = np.abs(got.reshape(want.shape) - want) / scale
        assert steps.max() <= limit + ROUNDING, (tensors[index].name, steps.max())
        assert np.mean(steps > 1 + ROUNDING) < share, tensors[index].name  # nearly all within one step


@pytest.mark.tf_keras
@pytest.mark.sklearn
@pytest.mark.slow
def test_fake_quant_graph_stays_close_to_the_float_graph(digits, converted):
    """TensorFlow runs the fake-quant graph; its probabilities stay near the float ones."""
    feeds = {digits.input: digits.x_test[:64]}
    (before,) = run_graphdef(converted.folded, feeds, [digits.output])
    (after,) = run_graphdef(converted.fake_quant, feeds, [digits.output])
    assert 0 < np.abs(after - before).max() < 0.1


# -- placement, on small graphs --------------------------------------------------------------------

def values(shape, low=-1.0, high=1.0, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def samples_file(tmp_path: Path, **arrays) -> str:
    path = tmp_path / "samples.npz"
    np.savez(path, **arrays)
    return str(path)


def fake_quants(graph_def) -> dict[str, object]:
    return {n.name: n for n in graph_def.node if n.op.startswith("FakeQuant")}


def conv_bias_relu6(tf):
    """x -> Conv2D -> BiasAdd -> Relu6 -> MaxPool -> Reshape -> MatMul -> BiasAdd "logits" -> Softmax "probs"."""
    def body():
        x = tf.compat.v1.placeholder(tf.float32, (None, 6, 6, 3), name="x")
        y = tf.nn.conv2d(x, tf.constant(values((3, 3, 3, 4), seed=1), name="conv_w"), 1, "SAME", name="conv")
        y = tf.nn.relu6(tf.nn.bias_add(y, tf.constant(values(4, seed=2), name="conv_b"), name="conv_bias"), name="act")
        y = tf.reshape(tf.nn.max_pool2d(y, 2, 2, "VALID", name="pool"), [-1, 36], name="flat")
        y = tf.matmul(y, tf.constant(values((36, 5), seed=3), name="fc_w"), name="fc")
        logits = tf.nn.bias_add(y, tf.constant(values(5, seed=4), name="fc_b"), name="logits")
        return tf.nn.softmax(logits, name="probs")
    return build_graphdef(tf, body)[0]


def inserted(tf, data: bytes, spec: str, inputs=("x",), outputs=("logits", "probs")):
    graph = graphtool.load(data)
    report = transform(graph, spec, inputs=list(inputs), outputs=list(outputs))
    written = write(graph)
    return graph, written, tf.compat.v1.GraphDef.FromString(written), report.passes[-1]


def test_conv_bias_and_relu6_are_quantized_once_after_the_activation(tf, tmp_path):
    data = conv_bias_relu6(tf)
    feeds = values((16, 6, 6, 3), 0, 1, seed=5)
    _, written, graph_def, report = inserted(tf, data, f"insert_fake_quant(calibration={samples_file(tmp_path, x=feeds)})")
    nodes = {n.name: n for n in graph_def.node}
    fqs = fake_quants(graph_def)
    # inputs of the quantized ops, as the converter will see them
    assert nodes["conv"].input[1] == "conv/weights_fake_quant" and nodes["conv"].input[0] == "x/fake_quant"
    assert fqs["conv/weights_fake_quant"].op == FQ_CHANNEL
    assert fqs["fc/weights_fake_quant"].op == FQ  # MatMul weights: per tensor
    assert nodes["conv_bias"].input[0] == "conv"  # nothing between the conv and its bias...
    assert nodes["act"].input[0] == "conv_bias"   # ...nor between the bias and the activation
    assert nodes["pool"].input[0] == "act/fake_quant"
    assert nodes["flat"].input[0] == "pool"       # MaxPool and Reshape keep their input's scale
    assert nodes["fc"].input[0] == "flat"
    assert sorted(fqs) == ["act/fake_quant", "conv/weights_fake_quant", "fc/weights_fake_quant",
                           "logits", "probs", "x/fake_quant"]
    # declared outputs keep their names: the fake-quant took them
    assert nodes["logits"].op == FQ and nodes["logits"].input[0] == "logits/float"
    assert nodes["logits/float"].op == "BiasAdd"
    assert nodes["probs"].op == FQ and nodes["probs"].input[0] == "probs/float"
    assert report.stats["activations"] == 3 and report.stats["fixed_range"] == 1
    for fq in fqs.values():
        assert fq.attr["num_bits"].i == 8
        assert fq.attr["narrow_range"].b == ("weights" in fq.name)

    softmax_range = run_graphdef(written, {}, ["probs/min:0", "probs/max:0"])
    np.testing.assert_allclose(softmax_range, [0.0, 255 / 256])  # int8 softmax: scale 1/256, zero point -128
    (before,), (after,) = run_graphdef(data, {"x": feeds}, ["probs"]), run_graphdef(written, {"x": feeds}, ["probs"])
    np.testing.assert_allclose(after, before, atol=0.05)
    assert len(np.unique(after)) <= 256 and not np.array_equal(after, before)


def test_calibrated_ranges_are_the_tensor_ranges_widened_to_zero(tf, tmp_path):
    data = conv_bias_relu6(tf)
    feeds = values((16, 6, 6, 3), 0.5, 1, seed=5)  # inputs never reach 0
    graph, written, _, _ = inserted(tf, data, f"insert_fake_quant(calibration={samples_file(tmp_path, x=feeds)})")
    act, logits = run_graphdef(data, {"x": feeds}, ["act", "logits"])

    def const(name):
        return float(graph.node(name).outputs[0].data)

    assert (const("x/fake_quant/min"), const("x/fake_quant/max")) == (0.0, pytest.approx(feeds.max()))
    assert (const("act/fake_quant/min"), const("act/fake_quant/max")) == (0.0, pytest.approx(act.max()))
    assert (const("logits/min"), const("logits/max")) == (pytest.approx(min(logits.min(), 0)),
                                                          pytest.approx(max(logits.max(), 0)))


def test_weight_ranges_are_symmetric_per_output_channel(tf, tmp_path):
    data = conv_bias_relu6(tf)
    graph, _, _, _ = inserted(tf, data, "insert_fake_quant(activations=false)")
    conv_w, fc_w = values((3, 3, 3, 4), seed=1), values((36, 5), seed=3)
    channel = np.abs(conv_w).max(axis=(0, 1, 2))
    np.testing.assert_array_equal(graph.node("conv/weights_fake_quant/max").outputs[0].data, channel)
    np.testing.assert_array_equal(graph.node("conv/weights_fake_quant/min").outputs[0].data, -channel)
    assert float(graph.node("fc/weights_fake_quant/max").outputs[0].data) == np.abs(fc_w).max()
    assert float(graph.node("fc/weights_fake_quant/min").outputs[0].data) == -np.abs(fc_w).max()


def test_per_channel_false_gives_per_tensor_conv_weights(tf):
    _, _, graph_def, report = inserted(tf, conv_bias_relu6(tf), "insert_fake_quant(per_channel=false, activations=false)")
    assert {n.op for n in fake_quants(graph_def).values()} == {FQ}
    assert (report.stats["weights_per_channel"], report.stats["weights_per_tensor"]) == (0, 2)


def test_without_calibration_activation_ranges_are_a_clear_error(tf):
    graph = graphtool.load(conv_bias_relu6(tf))
    with pytest.raises(PassError, match=r"3 activation\(s\) need a range \(x, act, logits\).*calibration="):
        transform(graph, "insert_fake_quant", inputs=["x"], outputs=["logits", "probs"])


def test_activations_false_fake_quantizes_the_weights_only(tf):
    data = conv_bias_relu6(tf)
    _, written, graph_def, report = inserted(tf, data, "insert_fake_quant(activations=false)")
    assert sorted(fake_quants(graph_def)) == ["conv/weights_fake_quant", "fc/weights_fake_quant"]
    assert report.stats["activations"] == 0 and report.stats["input_ranges"] == {}
    feeds = {"x": values((4, 6, 6, 3), seed=6)}
    (before,), (after,) = run_graphdef(data, feeds, ["probs"]), run_graphdef(written, feeds, ["probs"])
    np.testing.assert_allclose(after, before, atol=0.02)


def test_ranges_from_a_calibration_file_match_calibrating_in_the_pass(tf, tmp_path):
    data = conv_bias_relu6(tf)
    feeds = values((16, 6, 6, 3), 0, 1, seed=5)
    samples = samples_file(tmp_path, x=feeds)
    from_samples, _, _, _ = inserted(tf, data, f"insert_fake_quant(calibration={samples})")
    ranges = tmp_path / "ranges.json"
    calibrate(graphtool.load(data), samples).save(ranges)
    from_ranges, _, _, _ = inserted(tf, data, f"insert_fake_quant(calibration={ranges})")
    assert [n.name for n in from_ranges] == [n.name for n in from_samples]
    for node in from_samples:  # TensorFlow may fuse differently for other fetches: float rounding apart
        if node.op == "Const":
            np.testing.assert_allclose(from_ranges.node(node.name).outputs[0].data, node.outputs[0].data, rtol=1e-5)

    stored = json.loads(ranges.read_text())
    del stored["ranges"]["act:0"]
    ranges.write_text(json.dumps(stored))
    with pytest.raises(PassError, match=r"has no range for 1 tensor\(s\) \(act\)"):
        inserted(tf, data, f"insert_fake_quant(calibration={ranges})")


@pytest.mark.parametrize("content, message", [
    (None, "No such file"),
    (b"neither", "neither an .npz of samples nor a .json of ranges"),
    (b'{"format": "other"}', "not a calibration file"),
    (b"PK\x03\x04 truncated zip", "not an .npz file"),
])
def test_bad_calibration_files_are_pass_errors(tf, tmp_path, content, message):
    path = tmp_path / "calibration.bin"
    if content is not None:
        path.write_bytes(content)
    graph = graphtool.load(conv_bias_relu6(tf))
    with pytest.raises(PassError, match=message):
        transform(graph, f"insert_fake_quant(calibration={path})", inputs=["x"], outputs=["probs"])


def test_calibration_data_must_fit_the_inputs(tf, tmp_path):
    graph = graphtool.load(conv_bias_relu6(tf))
    wrong = samples_file(tmp_path, x=values((4, 6, 6, 2)))
    with pytest.raises(PassError, match=r"has shape \[4, 6, 6, 2\]; input 'x' takes \[N, 6, 6, 3\]"):
        transform(graph, f"insert_fake_quant(calibration={wrong})", inputs=["x"], outputs=["probs"])


@pytest.mark.parametrize("spec, message", [
    ("insert_fake_quant(num_bits=9)", "num_bits must be 2..8"),
    ("insert_fake_quant(method=median)", "method must be one of"),
])
def test_bad_parameters(tf, spec, message):
    with pytest.raises(PassError, match=message):
        transform(graphtool.load(conv_bias_relu6(tf)), spec)


def test_running_twice_changes_nothing_more(tf, tmp_path):
    samples = samples_file(tmp_path, x=values((8, 6, 6, 3), 0, 1))
    graph = graphtool.load(conv_bias_relu6(tf))
    spec = f"insert_fake_quant(calibration={samples})"
    transform(graph, spec, inputs=["x"], outputs=["probs"])
    once = write(graph)
    report = transform(graph, spec, inputs=["x"], outputs=["probs"])
    assert not report.changed and write(graph) == once
    assert report.passes[0].stats["skipped"] == {"already fake-quantized": 6}


def test_add_concat_and_mean_are_requantized_after_a_following_relu(tf, tmp_path):
    def body():
        x = tf.compat.v1.placeholder(tf.float32, (None, 4, 4, 2), name="x")
        a = tf.nn.conv2d(x, tf.constant(values((1, 1, 2, 2), seed=1)), 1, "SAME", name="a")
        b = tf.nn.conv2d(x, tf.constant(values((1, 1, 2, 2), seed=2)), 1, "SAME", name="b")
        added = tf.nn.relu(tf.add(a, b, name="add"), name="add_relu")
        joined = tf.concat([added, b], axis=3, name="concat")
        mean = tf.reduce_mean(joined, axis=[1, 2], name="mean")
        return tf.math.erf(mean, name="erf")
    data = build_graphdef(tf, body)[0]
    samples = samples_file(tmp_path, x=values((8, 4, 4, 2)))
    _, _, graph_def, report = inserted(tf, data, f"insert_fake_quant(calibration={samples})", outputs=["erf"])
    nodes = {n.name: n for n in graph_def.node}
    assert nodes["add_relu"].input[0] == "add"  # Add + Relu: one int8 kernel
    assert nodes["concat"].input[:2] == ["add_relu/fake_quant", "b/fake_quant"]
    assert nodes["mean"].input[0] == "concat/fake_quant"
    assert nodes["erf"].input[0] == "mean/fake_quant"
    assert nodes["a"].op == "Conv2D" and "a/fake_quant" in nodes["add"].input
    assert report.stats["left_float"] == {"Erf": 1}  # not an op placement knows: left float, counted


def test_depthwise_multiplier_two_is_per_channel_through_reshapes_and_converts(tf, tmp_path):
    """[3, 3, 3, 2] weights → Reshape [3, 3, 6] → per-channel fake-quant (6 ranges) → Reshape
    back: the converter turns it into a DEPTHWISE_CONV_2D with 6 int8 weight scales."""
    weights = values((3, 3, 3, 2), seed=1) * np.array([0.1, 1.0], np.float32)  # channels of unlike size

    def body():
        x = tf.compat.v1.placeholder(tf.float32, (None, 5, 5, 3), name="x")
        y = tf.nn.depthwise_conv2d(x, tf.constant(weights, name="dw_w"), [1, 1, 1, 1], "SAME", name="dw")
        return tf.nn.relu6(tf.nn.bias_add(y, tf.constant(values(6, seed=2)), name="dw_bias"), name="out")
    data = build_graphdef(tf, body)[0]
    feeds = values((16, 5, 5, 3), seed=3)
    _, written, graph_def, report = inserted(tf, data, f"insert_fake_quant(calibration={samples_file(tmp_path, x=feeds)})",
                                             outputs=["out"])
    nodes = {n.name: n for n in graph_def.node}
    assert nodes["dw"].input[1] == "dw/weights_fake_quant/reshape_back"
    assert nodes["dw/weights_fake_quant"].op == FQ_CHANNEL
    channel = np.abs(weights).max(axis=(0, 1)).reshape(-1)  # [in, m] flattened: TFLite's channel order
    np.testing.assert_array_equal(run_graphdef(written, {}, ["dw/weights_fake_quant/max:0"])[0], channel)
    (before,), (after,) = run_graphdef(data, {"x": feeds}, ["out"]), run_graphdef(written, {"x": feeds}, ["out"])
    np.testing.assert_allclose(after, before, atol=0.05)

    model = convert_fake_quant_graphdef(written, report.stats["quantized_input_stats"], ["out"])
    (kernel,) = kernels(model)
    assert (kernel["op"], kernel["input"], kernel["weights"]) == ("DEPTHWISE_CONV_2D", "INT8", "INT8")
    assert (kernel["weight_scales"], kernel["weight_axis"], kernel["weight_shape"]) == (6, 3, [1, 3, 3, 6])
    (int8_out,) = TfliteModel(model).run_real([feeds])
    (fq_out,) = run_graphdef(written, {"x": feeds}, ["out"])
    step = float(run_graphdef(written, {}, ["out/max:0"])[0]) / 255
    assert np.abs(int8_out - fq_out).max() <= KERNEL_STEPS * step


def test_unfolded_batch_norms_are_an_error(tf):
    def body():
        x = tf.compat.v1.placeholder(tf.float32, (None, 4, 4, 2), name="x")
        y = tf.nn.conv2d(x, tf.constant(values((1, 1, 2, 3))), 1, "SAME", name="conv")
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(y, tf.constant(values(3, 0.5, 1)), tf.constant(values(3)),
                                                   tf.constant(values(3)), tf.constant(values(3, 0.5, 1)),
                                                   is_training=False, name="bn")
        return tf.multiply(tf.nn.conv2d(y, tf.constant(values((1, 1, 3, 3))), 1, "SAME", name="conv2"),
                           tf.constant(values(3)), name="scale")
    graph = graphtool.load(build_graphdef(tf, body)[0])
    with pytest.raises(PassError, match=r"2 batch norm\(s\) not folded into weights \(bn, scale\): run "
                                        "fold_old_batch_norms and fold_batch_norms first"):
        transform(graph, "insert_fake_quant(activations=false)")
    transform(graph, "fold_old_batch_norms fold_batch_norms insert_fake_quant(activations=false)", outputs=["scale"])


def test_committed_keras2_cnn_fixture_converts_to_int8(tf, tmp_path):
    """fixtures/graphdef/keras2_cnn.pb (Conv2D+BiasAdd+FusedBatchNormV3, depthwise+BN, global
    average pooling as Mean, Dense+softmax) through docs/commands.md's pipeline and converter call."""
    images = np.load(TFLITE_FIXTURES / "digits_test.npz")["images"]
    samples = samples_file(tmp_path, input=images[:128])
    graph = graphtool.load(GRAPHDEF_FIXTURES / "keras2_cnn.pb")
    report = transform(graph, "remove_nodes(op=Identity) remove_control_dependencies fold_old_batch_norms "
                              f"fold_batch_norms strip_unused_nodes insert_fake_quant(calibration={samples})",
                       outputs=["Identity"])
    stats = report.passes[-1].stats
    assert (stats["weights_per_channel"], stats["weights_per_tensor"], stats["left_float"]) == (2, 1, {})
    path = tmp_path / "fake_quant.pb"
    graphtool.save(graph, path)

    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(  # as docs/commands.md shows it
        str(path), input_arrays=["input"], output_arrays=["Identity"], input_shapes={"input": [1, 8, 8, 1]})
    converter.inference_type = tf.int8
    converter.quantized_input_stats = {"input": tuple(stats["quantized_input_stats"]["input"])}
    model = converter.convert()
    found = kernels(model)
    assert sorted(k["op"] for k in found) == ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"]
    assert all((k["input"], k["weights"]) == ("INT8", "INT8") for k in found)

    int8 = TfliteModel(model)
    batch = images[128:160]
    (expected,) = run_graphdef(path.read_bytes(), {"input": batch}, ["Identity"])
    got = np.concatenate([int8.run_real([image[None]])[0] for image in batch])
    assert np.abs(got - expected).max() <= OUTPUT_STEPS * int8.outputs[0].scale[0] + 1e-6
