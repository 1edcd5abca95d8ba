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


@pytest.mark.litert
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
    # LiteRT's XNNPACK leaves the int8 AVERAGE_POOL_2D and SOFTMAX on the CPU (test_check_partitions.py)
    assert [(f.op, f.index) for f in report.findings] == [("AVERAGE_POOL_2D", 4), ("SOFTMAX", 8)]
    assert all("int8" in f.reason for f in report.findings)


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


# -- float16 weights behind DEQUANTIZE (FP16GraphPartitionHelper, tensorflow/lite/delegates/utils.cc) --

FP16_CONSUMERS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}


def _float16_graph():
    return graphtool.load(TFLITE_FIXTURES / "float16.tflite")


def test_gpu_takes_the_float16_model():
    """The delegate checks each consumer with the float16 constant in place of the DEQUANTIZE
    output (RemapFp16InputTensors) and does not check the DEQUANTIZE itself: all 19
    operators are delegated."""
    report = check(_float16_graph(), "gpu")
    assert report.findings == [] and report.compatible and report.operators == 19
    assert any("delegates/utils.cc" in s for s in report.sources)


def test_gpu_consumers_see_the_float16_constant():
    from graphtool.analysis.compat.signature import operators
    from graphtool.ir import DType

    graph = _float16_graph()
    plain = {s.name: s for s in operators(graph) if s.op in FP16_CONSUMERS}
    folded = {s.name: s for s in operators(graph, frozenset({DType.FLOAT16})) if s.op in FP16_CONSUMERS}
    assert len(folded) == 5
    for name, sig in folded.items():
        assert plain[name].runtime_inputs == 3  # the old verdict: weights and bias counted as runtime inputs
        assert sig.runtime_inputs == 1 and sig.const_inputs == 2
        assert [s.dtype for s in sig.inputs[1:]] == [DType.FLOAT16, DType.FLOAT16]


def test_gpu_float16_dequantize_of_a_runtime_tensor_is_not_folded():
    """Only a DEQUANTIZE of a *constant* float16 tensor is remapped: with the first conv's
    weights and bias fed from graph inputs, it has three runtime inputs again; the model is
    partly delegated, so the set-aside DEQUANTIZEs are reported as staying on the CPU."""
    from graphtool.ir import INPUT_OP, Node, Tensor

    graph = _float16_graph()
    conv = next(n for n in graph if n.op == "CONV_2D")
    for slot, ref in enumerate(graph.inputs_of(conv.name)[1:], 1):
        tensor = graph.node(graph.inputs_of(ref.node)[0].node).outputs[0]
        name = f"runtime_{slot}"
        graph.add_node(Node(name, INPUT_OP, outputs=[Tensor(name, tensor.dtype, tensor.shape)]))
        graph.set_input(ref.node, 0, name)
    report = check(graph, "gpu")
    errors = [(f.op, f.index, f.reason) for f in report.findings if f.severity == "error"]
    assert errors == [("CONV_2D", 10, "the GPU delegate does not take this CONV_2D: expects 1 or 2 non-constant "
                                      "inputs, the operator has 3; it runs on the CPU")]
    infos = [f for f in report.findings if f.severity == "info"]
    assert len(infos) == 8 and {f.op for f in infos} == {"DEQUANTIZE"}
    assert all("float16 constant" in f.reason and "stays on the CPU" in f.reason for f in infos)
    assert [f.index for f in report.findings] == sorted(f.index for f in report.findings)


def test_gpu_int8_dequantize_of_a_constant_is_not_folded():
    """The partitioner remaps FLOAT16 constants only: int8 weights and bias behind
    DEQUANTIZE are runtime inputs to gpu_compatibility.cc, so the conv is refused."""
    from graphtool.ir import DType, Quantization

    graph = _float16_graph()
    conv = next(n for n in graph if n.op == "CONV_2D")
    for ref in graph.inputs_of(conv.name)[1:]:
        const = graph.node(graph.inputs_of(ref.node)[0].node).outputs[0]
        const.data = np.zeros(const.shape, np.int8)
        const.dtype = DType.INT8
        const.quantization = Quantization(np.array([0.01]), np.array([0]))
    errors = [(f.op, f.index) for f in check(graph, "gpu").findings if f.severity == "error"]
    assert errors == [("CONV_2D", 10)]


def test_float16_folding_is_gpu_only():
    """micro and edgetpu still refuse every float16 DEQUANTIZE: the float16 rule is the GPU
    delegate's alone."""
    graph = _float16_graph()
    dequantizes = sum(1 for n in graph if n.op == "DEQUANTIZE")
    assert dequantizes == 10
    for target in ("micro", "edgetpu"):
        errors = [f for f in check(graph, target).findings if f.severity == "error" and f.op == "DEQUANTIZE"]
        assert len(errors) == dequantizes, target
