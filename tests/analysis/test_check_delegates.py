"""`gpu` and `xnnpack`: which operators a delegate takes.

XNNPACK is checked against LiteRT itself: its interpreter applies the XNNPACK delegate by
default and lists a DELEGATE node for each part it took, so a model is fully delegated
when one DELEGATE node computes all of its outputs from all of its inputs. The GPU rules
(gpu_compatibility.cc) cannot run here (no GPU); they are checked case by case against
that source.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphtool
from graphtool.analysis.check import check
from graphtool.formats import tflite

from ..conftest import TFLITE_FIXTURES


def fully_delegated(model: bytes) -> bool:
    """One DELEGATE node in LiteRT's plan, computing every model output from every input."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    delegates = [op for op in interpreter._get_ops_details() if op["op_name"] == "DELEGATE"]
    if len(delegates) != 1:
        return False
    outputs = {d["index"] for d in interpreter.get_output_details()}
    inputs = {d["index"] for d in interpreter.get_input_details()}
    return outputs == set(delegates[0]["outputs"].tolist()) and inputs <= set(delegates[0]["inputs"].tolist())


def _converted(tf) -> dict[str, bytes]:
    def convert(fn, shape=(1, 8, 8, 3)):
        concrete = tf.function(fn, input_signature=[tf.TensorSpec(shape, tf.float32)]).get_concrete_function()
        return tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert()

    kernel = tf.constant(np.linspace(-1, 1, 3 * 3 * 3 * 4, dtype=np.float32).reshape(3, 3, 3, 4))
    return {
        "conv_relu": convert(lambda v: tf.nn.relu(tf.nn.conv2d(v, kernel, 1, "SAME"))),
        "softmax": convert(lambda v: tf.nn.softmax(v), (1, 10)),
        "tanh_mean": convert(lambda v: tf.reduce_mean(tf.tanh(v), axis=[1, 2])),
        "top_k": convert(lambda v: tf.math.top_k(v, 3)[0], (1, 10)),
        "reverse": convert(lambda v: tf.reverse(v, axis=[1]), (1, 10)),
        "cumsum": convert(lambda v: tf.math.cumsum(v, axis=1), (1, 10)),
        "gather": convert(lambda v: tf.gather(v, [0, 3, 5], axis=1), (1, 10)),
        "conv_then_topk": convert(lambda v: tf.math.top_k(tf.reshape(tf.nn.conv2d(v, kernel, 1, "SAME"), [1, -1]), 2)[0]),
    }


@pytest.mark.slow
def test_xnnpack_verdicts_match_litert_delegation(tf):
    models = {name: (TFLITE_FIXTURES / f"{name}.tflite").read_bytes()
              for name in ("float_cnn", "full_int8", "float16", "dynamic_range", "multi_signature")}
    models.update(_converted(tf))
    verdicts = {name: check(graphtool.load(data), "xnnpack").compatible for name, data in models.items()}
    assert sum(verdicts.values()) >= 4 and len(verdicts) - sum(verdicts.values()) >= 4
    disagreements = [f"{name}: graphtool {verdicts[name]}, LiteRT fully delegated {fully_delegated(data)}"
                     for name, data in models.items() if verdicts[name] != fully_delegated(data)]
    assert not disagreements, "\n".join(disagreements)


def test_xnnpack_names_the_operators_left_on_the_cpu():
    report = check(graphtool.load(TFLITE_FIXTURES / "full_int8.tflite"), "xnnpack")
    assert [(f.op, f.index) for f in report.findings] == [("SOFTMAX", 8)]
    assert "int8" in report.findings[0].reason


def _gpu_findings(path: str) -> list[tuple[str, str]]:
    return [(f.op, f.reason) for f in check(graphtool.load(TFLITE_FIXTURES / path), "gpu").findings]


def test_gpu_accepts_the_float_and_quantized_cnns():
    assert _gpu_findings("float_cnn.tflite") == []
    assert _gpu_findings("full_int8.tflite") == []


def test_gpu_refuses_custom_control_flow_and_string_ops():
    assert {op for op, _ in _gpu_findings("custom_op.tflite")} == {"AudioSpectrogram", "Mfcc"}
    assert "WHILE" in {op for op, _ in _gpu_findings("control_flow.tflite")}
    assert all("does not support" in reason for _, reason in _gpu_findings("custom_op.tflite"))


def test_gpu_rules_follow_gpu_compatibility_cc():
    graph = graphtool.load(TFLITE_FIXTURES / "float_cnn.tflite")
    softmax = next(n for n in graph if n.op == "SOFTMAX")
    conv = next(n for n in graph if n.op == "CONV_2D")
    fc = next(n for n in graph if n.op == "FULLY_CONNECTED")
    softmax.attrs["beta"] = 2.0                   # CheckGpuDelegateCompatibility: Softmax.beta != 1
    conv.attrs["fused_activation_function"] = 5   # IsActivationSupported: SIGN_BIT
    fc.attrs["weights_format"] = 1                # FullyConnected: SHUFFLED4x16INT8
    findings = {f.op + str(f.index): f.reason for f in check(graph, "gpu").findings}
    assert set(findings) == {"SOFTMAX8", "CONV_2D0", "FULLY_CONNECTED6"}
    assert "beta" in findings["SOFTMAX8"] and "SIGN_BIT" in findings["CONV_2D0"]
    assert "weights format" in findings["FULLY_CONNECTED6"]
    model = tflite.write(graph)  # the edited options survive a write: the check read the real fields
    assert check(graphtool.load(model), "gpu").counts["error"] == 3
