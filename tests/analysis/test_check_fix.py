"""`check --target T --fix -o OUT [--data F.npz]`: the float digits CNN becomes a model the
Edge TPU check and the TFLite Micro check pass, with int8 input and output, and its accuracy
in LiteRT stays within 1 point of the float model's on the held-out digits (calibrated on
the first 64 test images, scored on the other 296)."""
from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

import graphtool
from graphtool.analysis.check import check
from graphtool.analysis.check_fix import FixReport, fix

from ..conftest import TFLITE_FIXTURES

cli_main = importlib.import_module("graphtool.cli.main")  # graphtool.cli.main is also a function
FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
CALIBRATION = 64
ACCURACY_POINTS = 1.0  # the most the fixed model's accuracy may drop, in percentage points


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    data = np.load(TFLITE_FIXTURES / "digits_test.npz")
    path = tmp_path_factory.mktemp("fix") / "calib.npz"
    np.savez(path, image=data["images"][:CALIBRATION])  # keyed by the signature's input key
    return path, data["images"][CALIBRATION:], data["labels"][CALIBRATION:]


def accuracy(model: bytes, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in LiteRT, one image per run, integer I/O through the tensors' own scales."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    hits = 0
    for image, label in zip(images, labels):
        value = image[None]
        if source["dtype"] != np.float32:
            scale, zero = source["quantization"]
            value = np.clip(np.round(value / scale + zero), -128, 127).astype(source["dtype"])
        interpreter.set_tensor(source["index"], value)
        interpreter.invoke()
        hits += int(np.argmax(interpreter.get_tensor(sink["index"])[0]) == label)
    return 100.0 * hits / len(labels)


@pytest.mark.litert
@pytest.mark.parametrize("target", ["edgetpu", "micro"])
def test_fix_makes_the_float_cnn_pass_with_integer_io_and_keeps_accuracy(target, digits, tmp_path, capsys):
    calib, images, labels = digits
    out = tmp_path / f"{target}.tflite"
    code = cli_main.main(["check", str(FLOAT_CNN), "--target", target, "--fix", "--data", str(calib), "-o", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "quantize_nodes" in text and "set_io_types" in text and f"passes check --target {target}" in text
    fixed = graphtool.load(out)
    assert check(fixed, target).compatible
    assert cli_main.main(["check", str(out), "--target", target]) == 0
    io = [fixed.node(name).outputs[0].dtype for name in fixed.inputs] + [fixed.tensor(r).dtype for r in fixed.outputs]
    assert {dtype.value for dtype in io} == {"int8"}
    before, after = accuracy(FLOAT_CNN.read_bytes(), images, labels), accuracy(out.read_bytes(), images, labels)
    assert after >= before - ACCURACY_POINTS, (before, after)


@pytest.mark.litert
def test_fix_for_gpu_stores_float16_weights_and_verifies(digits, tmp_path):
    fixed, result = fix(graphtool.load(FLOAT_CNN), "gpu", data=digits[0])
    assert isinstance(result, FixReport) and result.applied == ["quantize_weights(mode=float16)"]
    assert result.passed and result.after.delegated_ops == result.after.total_ops
    assert result.output_error is not None and result.output_error.max_abs_error < 1e-2  # float16 weights
    assert result.output_error.top1_agreement == 1.0
    assert any(node.op == "Const" and node.outputs[0].dtype.value == "float16" for node in fixed)


@pytest.mark.litert
def test_a_model_that_still_fails_is_written_said_so_and_exit_1(tmp_path, capsys):
    out = tmp_path / "still.tflite"
    code = cli_main.main(["check", str(TFLITE_FIXTURES / "custom_op.tflite"), "-t", "gpu", "--fix", "-o", str(out)])
    assert code == 1 and out.exists()
    assert "still FAILS check --target gpu" in capsys.readouterr().out


@pytest.mark.litert
def test_fix_output_is_byte_identical_and_json_is_the_dataclass(digits, tmp_path, capsys):
    outs = [tmp_path / "a.tflite", tmp_path / "b.tflite"]
    for out in outs:
        assert cli_main.main(["check", str(FLOAT_CNN), "-t", "edgetpu", "--fix", "--data", str(digits[0]),
                              "-o", str(out), "--json"]) == 0
    printed = capsys.readouterr().out
    assert outs[0].read_bytes() == outs[1].read_bytes()
    first = json.loads(printed[:len(printed) // 2])
    assert list(first) == ["target", "applied", "before", "after", "output_error", "passed"]
    assert first["before"]["verdict"] == "none" and first["after"]["verdict"] == "compatible" and first["passed"]


def test_fix_usage_errors(tmp_path, capsys):
    out = str(tmp_path / "x.tflite")
    assert cli_main.main(["check", str(FLOAT_CNN), "-t", "xnnpack", "--fix", "-o", out]) == 2
    assert cli_main.main(["check", str(FLOAT_CNN), "-t", "edgetpu", "--fix", "-o", out]) == 2  # needs --data
    assert cli_main.main(["check", str(FLOAT_CNN), "-t", "edgetpu", "--fix"]) == 2  # needs -o
    assert cli_main.main(["check", str(FLOAT_CNN), "-t", "edgetpu", "-o", out]) == 2  # -o without --fix
    errors = capsys.readouterr().err
    assert "--fix supports targets" in errors and "--data" in errors and "-o OUT" in errors
    assert not (tmp_path / "x.tflite").exists()


@pytest.mark.litert
def test_fix_rewrites_an_operator_the_edge_tpu_lacks(tf, tmp_path):
    """LEAKY_RELU is not on the Edge TPU's list: --fix decomposes it (MAXIMUM(x, MUL(x, alpha)))
    before quantizing, and the result passes."""
    kernel = tf.constant(np.random.default_rng(0).normal(0, 0.3, (3, 3, 3, 4)).astype(np.float32))
    function = tf.function(lambda x: tf.nn.leaky_relu(tf.nn.conv2d(x, kernel, 1, "SAME"), 0.2),
                           input_signature=[tf.TensorSpec((1, 6, 6, 3), tf.float32)]).get_concrete_function()
    graph = graphtool.load(tf.lite.TFLiteConverter.from_concrete_functions([function]).convert())
    assert "LEAKY_RELU" in {f.op for f in check(graph, "edgetpu").findings}
    name = graph.inputs[0]
    samples = tmp_path / "calib.npz"
    np.savez(samples, **{name: np.random.default_rng(1).normal(size=(16, 6, 6, 3)).astype(np.float32)})
    fixed, result = fix(graph, "edgetpu", data=samples)
    assert result.applied[0] == "decompose_ops(op=LEAKY_RELU)" and result.passed
    assert "LEAKY_RELU" not in {node.op for node in fixed}
