"""quantize_nodes: full-integer post-training quantization of float TFLite models, calibrated
in LiteRT. Proven by running the models in LiteRT before and after (bounds measured and
written here), by comparing with what TensorFlow's converter writes in full-integer and 16x8
mode for the same model and samples (every difference explained), and by refusing bad models
and bad calibration data with one-line errors and no output.

The models come from the converter in the test run (tests/passes/tflite/quantize_models.py)
and from the committed fixtures; the structure tests build graphs through the IR and give
ranges as a .json, so they need no runtime."""
from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphtool
from graphtool.errors import GraphtoolError
from graphtool.formats import tflite
from graphtool.formats.tflite import versions
from graphtool.ir import DType, Graph, Node, Ref, Tensor, make_const
from graphtool.ir.quantization import activation_params, bias_scales, quantize_bias
from graphtool.passes import PassError, get, transform
from graphtool.passes.helpers.integer_ops import RULES
from graphtool.runtime.calibrate import Calibration, Mse, calibrate

from ...conftest import TFLITE_FIXTURES, run_litert
from . import quantize_models
from .test_quantize_weights import accuracy, digits_test_split

FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
KERNELS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
# Bounds, measured (lowest seen, then a margin):
DIGITS_POINTS = 0.6  # the bound: graphtool's int8 accuracy >= the converter's - 0.6 points (2 of 360)
FLOAT_POINTS = 1.0  # ... and within 1 point of the float model (measured: equal on the fixture)
INT16_GAIN_DB = 10.0  # the bound: 16x8 over int8 (measured on MobileNetV2: 43 and 18 dB; attention: 18 dB)
FLOOR_DB = 1.0  # 16x8 within this of the same model with int8 weights only (measured 0.3 dB)
CONVERTER_DB = 0.5  # graphtool's SQNR at least the converter's minus this (measured +0.1 dB)
# Per operator, int8 / 16x8, SQNR against the float model on random normal inputs (measured
# lowest int8 23 dB (LOG: its lookup table), 16x8 42 dB (TRANSPOSE_CONV: int8 weights)):
OP_INT8_DB = 20.0
OP_INT16_DB = 40.0
# Outputs that jump (argmax, a comparison): the share of elements equal to the float model's.
DISCONTINUOUS = {"argmax", "argmin", "select", "select_v2"}
AGREEMENT = 0.75


# -- helpers -------------------------------------------------------------------------------------

def quantize(model: bytes | Graph, spec, **kwargs) -> tuple[bytes, dict]:
    graph = model if isinstance(model, Graph) else graphtool.load(model)
    (report,) = transform(graph, spec, **kwargs).passes
    return tflite.write(graph), report.stats


def sqnr_db(reference: np.ndarray, actual: np.ndarray) -> float:
    reference = np.asarray(reference, np.float64)
    noise = float(((reference - np.asarray(actual, np.float64)) ** 2).sum())
    return float("inf") if noise == 0 else 10 * np.log10(float((reference ** 2).sum()) / noise)


def operators(data: bytes) -> list[tuple[str, int, list[Tensor], list[Tensor]]]:
    """(op, version, input tensors, output tensors) in execution order, as read back."""
    graph = graphtool.load(data)
    found = []
    for node in graph:
        if node.op in ("Input", "Const"):
            continue
        inputs = [None if ref is None else graph.node(ref.node).outputs[ref.port] for ref in graph.inputs_of(node.name)]
        found.append((node.op, node.meta["version"], inputs, node.outputs))
    return found


def min_runtime(data: bytes) -> str:
    return versions.decode_runtime(graphtool.load(data).meta["metadata"]["min_runtime_version"])


def run_signature(data: bytes, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=data).get_signature_runner()(**inputs)


def single_op_graph(op: str, options: str | None, attrs: dict, inputs: list, out_shape: tuple,
                    outputs: int = 1) -> Graph:
    """x [1, 4, 4, 8] -> `op`(inputs: "x", a numpy constant or None) -> y; through the IR."""
    graph = Graph("main", format="tflite")
    graph.add_node(Node("x", "Input", outputs=[Tensor("x", DType.FLOAT32, (1, 4, 4, 8))]))
    graph.inputs = ["x"]
    refs = []
    for i, value in enumerate(inputs):
        if isinstance(value, np.ndarray):
            graph.add_node(make_const(f"c{i}", value))
            value = f"c{i}"
        refs.append(value)
    meta = {"version": 1, **({"tflite.options_type": options} if options else {})}
    tensors = [Tensor("y" if i == 0 else f"y{i}", DType.FLOAT32, out_shape) for i in range(outputs)]
    graph.add_node(Node("y", op, attrs, outputs=tensors, meta=meta), inputs=refs)
    graph.outputs = [Ref("y", i) for i in range(outputs)]
    return graph


def chain(graph: Graph, name: str, op: str, options: str | None, attrs: dict, inputs: list, shape: tuple) -> str:
    """Append an operator reading `inputs` (node names); returns its name."""
    meta = {"version": 1, **({"tflite.options_type": options} if options else {})}
    graph.add_node(Node(name, op, attrs, outputs=[Tensor(name, DType.FLOAT32, shape)], meta=meta), inputs=inputs)
    return name


def ranges_file(tmp_path, ranges: dict[str, tuple[float, float]]) -> str:
    path = tmp_path / "ranges.json"
    Calibration("minmax", 1, 1, {k if ":" in k else f"{k}:0": v for k, v in ranges.items()}).save(path)
    return str(path)


def scale_zp(tensor: Tensor) -> tuple[float, int]:
    return float(tensor.quantization.scale[0]), int(tensor.quantization.zero_point[0])


# -- the arithmetic -------------------------------------------------------------------------------

def test_activation_parameters_as_the_converter_picks_them():
    """int8: (max - min) / 255 with the zero point nudged onto the grid (values the converter
    wrote for the digits CNN: input [0, 1] -> 1/255, -128; logits in [-5.96, 10.75] -> zero
    point -37); ranges widened to hold 0; int16 symmetric; tiny ranges widened to +-1e-6."""
    assert activation_params(0.0, 1.0, np.int8) == (np.float32(1 / 255), -128)
    scale, zero_point = activation_params(-5.9625, 10.745, np.int8)
    assert scale == np.float32(16.7075 / 255) and zero_point == round(-128 + 5.9625 / float(scale)) == -37
    assert activation_params(0.5, 2.0, np.int8) == activation_params(0.0, 2.0, np.int8)  # holds 0
    assert activation_params(-4.0, -1.0, np.int8)[1] == 127
    assert activation_params(-1.0, 3.0, np.int16, symmetric=True) == (np.float32(3 / 32767), 0)
    assert activation_params(0.0, 0.0, np.int8) == activation_params(-1e-6, 1e-6, np.int8)
    assert activation_params(0.0, 0.0, np.int16, symmetric=True) == (np.float32(1e-6 / 32767), 0)
    assert activation_params(0.0, 1e-3, np.int8, min_scale=1e-4)[0] >= np.float32(1e-4)  # widened


def test_biases_round_half_away_from_zero_in_float64():
    scales = bias_scales(np.float32(0.5), np.array([1.0, 2.0], np.float32))
    np.testing.assert_array_equal(scales, [0.5, 1.0])
    q, clipped = quantize_bias(np.array([0.25, -0.5]), scales, np.int32)  # 0.5 -> 1, -0.5 -> -1
    np.testing.assert_array_equal(q, [1, -1])
    assert clipped == 0
    q, clipped = quantize_bias(np.array([1e12, 1.0]), np.float32([1.0]), np.int32)
    assert clipped == 1 and q[0] == np.iinfo(np.int32).max


def test_mse_range_beats_minmax_on_a_heavy_tail():
    """On Laplace values with a few far outliers, the MSE-optimal int8 range clips them: its
    quantization error over the values is below the min/max range's, and below a range half
    or twice its width (so it is a minimum, not an accident)."""
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.laplace(0, 1, 200_000), [60.0, -45.0]]).astype(np.float32)
    statistic = Mse(bits=8)
    for part in np.array_split(values, 7):
        statistic.update(part, float(part.min()), float(part.max()))
    low, high = statistic.result()

    def mse(lo: float, hi: float) -> float:
        scale, zero_point = activation_params(lo, hi, np.int8)
        q = np.clip(np.round(values / scale) + zero_point, -128, 127)
        return float(((q - zero_point) * scale - values).var() + ((q - zero_point) * scale - values).mean() ** 2)

    assert -45 < low < 0 < high < 60
    assert mse(low, high) < mse(float(values.min()), float(values.max()))
    assert mse(low, high) <= min(mse(low / 2, high / 2), mse(low * 2, high * 2))


# -- the registry and parameters --------------------------------------------------------------------

def test_registered_for_tflite():
    entry = get("quantize_nodes", "tflite")
    assert entry.guarantee == "quantization error"
    assert {name for name, *_ in entry.parameters()} == {"calibration", "activations", "per_channel", "method",
                                                          "percentile", "rounding", "keep", "keep_op", "only", "batch_size",
                                                          "memory_mb", "target_sqnr", "fallback"}


@pytest.mark.parametrize("spec, message", [
    ("quantize_nodes", "needs calibration=SAMPLES.npz"),
    ("quantize_nodes(calibration=x.npz, activations=int4)", "activations must be int8 or int16"),
    ("quantize_nodes(calibration=x.npz, method=moving_average)", "method must be"),
    ("quantize_nodes(calibration=x.npz, percentile=20)", "percentile must be"),
    ("quantize_nodes(calibration=x.npz, batch_size=0)", "batch_size"),
    ("quantize_nodes(calibration=x.npz, memory_mb=0)", "memory_mb"),
    ("quantize_nodes(calibration=x.npz, keep_op=SOFTMAXX)", "keep_op=SOFTMAXX is not an operator type"),
    ("quantize_nodes(calibration=x.npz, keep=nope)", "keep='nope' names no operator"),
    ("quantize_nodes(calibration=nothing_here.npz)", "nothing_here.npz: no such file"),
])
def test_bad_parameters_are_one_line_errors_and_change_nothing(spec, message):
    graph = graphtool.load(FLOAT_CNN)
    before = tflite.write(graph)
    with pytest.raises(PassError, match=message) as caught:
        transform(graph, spec)
    assert "\n" not in str(caught.value)
    assert tflite.write(graph) == before


@pytest.mark.parametrize("fixture, message", [
    ("full_int8.tflite", "already \\(partly\\) quantized"),
    ("dynamic_range.tflite", "already \\(partly\\) quantized: tensor '.*' is int8"),
    ("float16.tflite", "DEQUANTIZE .* \\(float16 weights: run fold_constants\\(fold_dequantize=true\\) first\\)"),
    ("custom_op.tflite", "custom operator 'AudioSpectrogram'"),
    ("multi_signature.tflite", "2 signatures \\(decode, encode\\)"),
    ("control_flow.tflite", "control flow \\(WHILE\\)"),
])
def test_models_it_does_not_quantize_are_refused_with_the_reason(fixture, message, tmp_path):
    graph = graphtool.load(TFLITE_FIXTURES / fixture)
    before = tflite.write(graph)
    with pytest.raises(PassError, match=message):
        transform(graph, f"quantize_nodes(calibration={tmp_path / 'unused.npz'})")
    assert tflite.write(graph) == before


# -- the plan, on graphs built through the IR (ranges from a .json: no runtime) ------------------------

CONV_OPTIONS = {"padding": 0, "stride_w": 1, "stride_h": 1, "fused_activation_function": 3}


def conv_softmax_graph() -> Graph:
    """x -> CONV_2D (relu6) -> RESHAPE -> SOFTMAX -> y, with a bias."""
    rng = np.random.default_rng(0)
    graph = single_op_graph("CONV_2D", "Conv2DOptions", CONV_OPTIONS,
                            ["x", rng.standard_normal((4, 1, 1, 8)).astype(np.float32),
                             np.array([0.5, -0.25, 0.0, 1.0], np.float32)], (1, 4, 4, 4))
    graph.add_node(make_const("shape", np.array([1, 64], np.int32)))
    chain(graph, "flat", "RESHAPE", None, {}, ["y", "shape"], (1, 64))
    chain(graph, "probs", "SOFTMAX", "SoftmaxOptions", {"beta": 1.0}, ["flat"], (1, 64))
    graph.outputs = [Ref("probs")]
    return graph


def test_the_integer_spec_on_a_small_graph(tmp_path):
    """Weights int8 per channel, bias int32 = input scale x weight scale, activations int8 with
    the calibrated ranges, RESHAPE sharing its input's parameters, SOFTMAX's fixed output, a
    QUANTIZE after the float input and a DEQUANTIZE before the float output, op versions as
    op_version.cc says (the ones the converter writes for int8) and min_runtime_version."""
    ranges = ranges_file(tmp_path, {"x": (-1.0, 1.0), "y": (0.0, 6.0), "flat": (0.0, 6.0), "probs": (0.0, 0.9)})
    data, stats = quantize(conv_softmax_graph(), f"quantize_nodes(calibration={ranges})")
    ops = operators(data)
    assert [(op, version) for op, version, _, _ in ops] == [
        ("CONV_2D", 3), ("RESHAPE", 1), ("SOFTMAX", 2), ("QUANTIZE", 1), ("DEQUANTIZE", 2)] or \
        [(op, version) for op, version, _, _ in ops] == [
        ("QUANTIZE", 1), ("CONV_2D", 3), ("RESHAPE", 1), ("SOFTMAX", 2), ("DEQUANTIZE", 2)]
    by_op = {op: (inputs, outputs) for op, _, inputs, outputs in ops}
    (x, weights, bias), (conv_out,) = by_op["CONV_2D"]
    assert x.dtype is DType.INT8 and scale_zp(x) == (pytest.approx(2 / 255), -1)  # -128 + 127.5: std::round
    assert weights.dtype is DType.INT8 and weights.quantization.axis == 0 and weights.quantization.scale.size == 4
    assert not weights.quantization.zero_point.any() and np.abs(weights.data).max() == 127
    assert bias.dtype is DType.INT32
    np.testing.assert_array_equal(bias.quantization.scale, bias_scales(x.quantization.scale[0],
                                                                      weights.quantization.scale))
    assert scale_zp(conv_out) == (pytest.approx(6 / 255), -128)
    (flat_in, _), (flat,) = by_op["RESHAPE"]
    assert scale_zp(flat) == scale_zp(flat_in) == scale_zp(conv_out)
    assert scale_zp(by_op["SOFTMAX"][1][0]) == (1 / 256, -128)
    assert by_op["DEQUANTIZE"][1][0].name == "probs" and by_op["DEQUANTIZE"][1][0].dtype is DType.FLOAT32
    assert stats["quantized"] == {"CONV_2D": 1, "RESHAPE": 1, "SOFTMAX": 1} and stats["float"] == {}
    assert (stats["quantize_added"], stats["dequantize_added"], stats["weights"], stats["biases"]) == (1, 1, 1, 1)
    assert min_runtime(data) == stats["min_runtime_version"] == "1.14.0"


def test_16x8_spec_on_a_small_graph(tmp_path):
    """int16 activations symmetric (zero point 0), int8 weights, int64 bias with
    quantized_bias_type INT64, SOFTMAX fixed at 1/32768; versions as op_version.cc says for the
    16x8 signatures (CONV_2D 8: int16 input, int8 weights, quantized_bias_type)."""
    ranges = ranges_file(tmp_path, {"x": (-1.0, 1.0), "y": (0.0, 6.0), "flat": (0.0, 6.0), "probs": (0.0, 0.9)})
    data, stats = quantize(conv_softmax_graph(), f"quantize_nodes(calibration={ranges}, activations=int16)")
    by_op = {op: (version, inputs, outputs) for op, version, inputs, outputs in operators(data)}
    version, (x, weights, bias), (out,) = by_op["CONV_2D"]
    assert (x.dtype, weights.dtype, bias.dtype, out.dtype) == (DType.INT16, DType.INT8, DType.INT64, DType.INT16)
    assert scale_zp(x) == (pytest.approx(1 / 32767), 0) and scale_zp(out) == (pytest.approx(6 / 32767), 0)
    assert scale_zp(by_op["SOFTMAX"][2][0]) == (1 / 32768, 0)
    graph = graphtool.load(data)
    assert next(n for n in graph if n.op == "CONV_2D").attrs["quantized_bias_type"] == 4
    assert (version, by_op["SOFTMAX"][0], by_op["QUANTIZE"][0], by_op["DEQUANTIZE"][0]) == (8, 3, 2, 3)
    assert stats["min_runtime_version"] == "2.15.0"


def test_per_tensor_weights(tmp_path):
    ranges = ranges_file(tmp_path, {"x": (-1.0, 1.0), "y": (0.0, 6.0), "flat": (0.0, 6.0), "probs": (0.0, 0.9)})
    data, _ = quantize(conv_softmax_graph(), f"quantize_nodes(calibration={ranges}, per_channel=false)")
    (_, _, (_, weights, bias), _), = [op for op in operators(data) if op[0] == "CONV_2D"]
    assert weights.quantization.scale.size == bias.quantization.scale.size == 1


def two_fixed_outputs_concatenated() -> Graph:
    """x -> LOGISTIC, x -> TANH, CONCATENATION of both: two fixed scales that cannot share one."""
    graph = single_op_graph("LOGISTIC", None, {}, ["x"], (1, 4, 4, 8))
    chain(graph, "t", "TANH", None, {}, ["x"], (1, 4, 4, 8))
    chain(graph, "cat", "CONCATENATION", "ConcatenationOptions", {"axis": 3}, ["y", "t"], (1, 4, 4, 16))
    graph.outputs = [Ref("cat")]
    return graph


def test_fixed_scales_that_must_meet_are_requantized(tmp_path):
    """CONCATENATION takes LOGISTIC's output (1/256, -128) as its scale; TANH's (1/128, 0)
    cannot join, so it is requantized by a QUANTIZE int8 -> int8 in front of the concatenation."""
    ranges = ranges_file(tmp_path, {"x": (-4.0, 4.0), "y": (0.0, 1.0), "t": (-1.0, 1.0), "cat": (-1.0, 1.0)})
    data, stats = quantize(two_fixed_outputs_concatenated(), f"quantize_nodes(calibration={ranges})")
    assert stats["requantize_added"] == 1
    ops = operators(data)
    (requantize,) = [o for o in ops if o[0] == "QUANTIZE" and o[2][0].dtype is DType.INT8]
    assert scale_zp(requantize[2][0]) == (1 / 128, 0) and scale_zp(requantize[3][0]) == (1 / 256, -128)
    (concat,) = [o for o in ops if o[0] == "CONCATENATION"]
    assert {scale_zp(t) for t in concat[2] + concat[3]} == {(1 / 256, -128)}


def test_shared_scales_take_the_union_of_ranges(tmp_path):
    """A concatenation of two computed tensors: both inputs and the output share the union of
    their ranges (the converter gives the producers the concatenation's scale)."""
    graph = single_op_graph("ADD", "AddOptions", {}, ["x", "x"], (1, 4, 4, 8))
    chain(graph, "m", "MUL", "MulOptions", {}, ["x", "x"], (1, 4, 4, 8))
    chain(graph, "cat", "CONCATENATION", "ConcatenationOptions", {"axis": 3}, ["y", "m"], (1, 4, 4, 16))
    graph.outputs = [Ref("cat")]
    ranges = ranges_file(tmp_path, {"x": (-1.0, 1.0), "y": (-2.0, 2.0), "m": (0.0, 1.0), "cat": (-2.0, 2.0)})
    data, _ = quantize(graph, f"quantize_nodes(calibration={ranges})")
    (concat,) = [o for o in operators(data) if o[0] == "CONCATENATION"]
    assert {scale_zp(t) for t in concat[2] + concat[3]} == {activation_params(-2.0, 2.0, np.int8)}


def test_kept_operators_stay_float_with_quantize_and_dequantize_around(tmp_path):
    ranges = ranges_file(tmp_path, {"x": (-1.0, 1.0), "y": (0.0, 6.0), "flat": (0.0, 6.0), "probs": (0.0, 0.9)})
    for spec, reason in (("keep_op=SOFTMAX", "keep_op"), ("keep=probs", "keep")):
        data, stats = quantize(conv_softmax_graph(), f"quantize_nodes(calibration={ranges}, {spec})")
        assert stats["float"] == {"SOFTMAX": {reason: 1}}
        by_op = {op: (inputs, outputs) for op, _, inputs, outputs in operators(data)}
        assert by_op["SOFTMAX"][0][0].dtype is DType.FLOAT32 and by_op["DEQUANTIZE"][1][0].name == "flat"
    data, stats = quantize(conv_softmax_graph(), f"quantize_nodes(calibration={ranges}, keep_op=CONV_2D)")
    assert stats["float"] == {"CONV_2D": {"keep_op": 1}}
    assert stats["quantized"] == {"RESHAPE": 1, "SOFTMAX": 1}  # RESHAPE feeds an integer SOFTMAX


def test_an_operator_without_an_integer_kernel_stays_float(tmp_path):
    graph = single_op_graph("NEG", None, {}, ["x"], (1, 4, 4, 8))
    chain(graph, "r", "RELU", None, {}, ["y"], (1, 4, 4, 8))
    graph.outputs = [Ref("r")]
    ranges = ranges_file(tmp_path, {"x": (-1.0, 1.0), "y": (-1.0, 1.0), "r": (0.0, 1.0)})
    data, stats = quantize(graph, f"quantize_nodes(calibration={ranges})")
    assert stats["float"] == {"NEG": {"no integer kernel": 1}} and stats["quantized"] == {"RELU": 1}
    assert [op for op, *_ in operators(data)] == ["NEG", "RELU", "QUANTIZE", "DEQUANTIZE"] or \
        [op for op, *_ in operators(data)] == ["NEG", "QUANTIZE", "RELU", "DEQUANTIZE"]


def test_operators_that_only_move_values_between_float_ones_stay_float(tmp_path):
    """A RESHAPE from the float input straight to the float output: quantizing it would only
    add a QUANTIZE and a DEQUANTIZE around it."""
    graph = single_op_graph("RESHAPE", None, {}, ["x", np.array([1, 128], np.int32)], (1, 128))
    ranges = ranges_file(tmp_path, {"x": (-1.0, 1.0), "y": (-1.0, 1.0)})
    (report,) = transform(graph, f"quantize_nodes(calibration={ranges})").passes
    assert not report.changed and report.stats["float"] == {"RESHAPE": {"only float neighbours": 1}}


def test_nothing_to_quantize_changes_nothing(tmp_path):
    graph = single_op_graph("NEG", None, {}, ["x"], (1, 4, 4, 8))
    ranges = ranges_file(tmp_path, {"x": (-1.0, 1.0), "y": (-1.0, 1.0)})
    (report,) = transform(graph, f"quantize_nodes(calibration={ranges})").passes
    assert not report.changed and report.stats["float"] == {"NEG": {"no integer kernel": 1}}


def test_keep_and_keep_op_on_quantize_weights():
    """The same parameters leave layers out of quantize_weights."""
    _, stats = quantize(graphtool.load(FLOAT_CNN), "quantize_weights(minimum_size=1, keep_op=CONV_2D)")
    assert stats["hybrid"] == {"DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 2}
    assert stats["skipped"]["keep_op"] == 2
    graph = graphtool.load(FLOAT_CNN)
    fc = next(n.name for n in graph if n.op == "FULLY_CONNECTED")
    _, stats = quantize(graph, f'quantize_weights(minimum_size=1, keep="{fc}")')
    assert stats["hybrid"]["FULLY_CONNECTED"] == 1 and stats["skipped"]["keep"] == 1
    with pytest.raises(PassError, match="keep_op=SOFT is not an operator type"):
        quantize(graphtool.load(FLOAT_CNN), "quantize_weights(keep_op=SOFT)")


# -- in LiteRT: the committed digits CNN ------------------------------------------------------------

@pytest.fixture(scope="module")
def samples_npz(tmp_path_factory):
    """120 of the held-out digits keyed by the fixture's signature input key, "image"."""
    path = tmp_path_factory.mktemp("samples") / "samples.npz"
    np.savez(path, image=digits_test_split()[0][:120])
    return path


@pytest.mark.litert
def test_the_digits_cnn_runs_in_integers_in_litert(samples_npz):
    """Every CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED reads int8 inputs and weights and
    writes int8; float only at the boundary (one QUANTIZE, one DEQUANTIZE); samples keyed by
    the signature's input key; the test accuracy within a point of the float model's; the same
    input gives the same bytes."""
    data, stats = quantize(FLOAT_CNN.read_bytes(), f"quantize_nodes(calibration={samples_npz})")
    ops = operators(data)
    kernels = [(inputs, outputs) for op, _, inputs, outputs in ops if op in KERNELS]
    assert len(kernels) == 5
    for inputs, outputs in kernels:
        assert [t.dtype for t in inputs[:2] + outputs] == [DType.INT8] * 3 and inputs[2].dtype is DType.INT32
    assert Counter(op for op, *_ in ops)["QUANTIZE"] == Counter(op for op, *_ in ops)["DEQUANTIZE"] == 1
    assert stats["float"] == {} and stats["samples"] == 120
    images, labels = digits_test_split()
    before, after = accuracy(FLOAT_CNN.read_bytes(), images, labels), accuracy(data, images, labels)
    assert before > 95.0 and abs(after - before) <= FLOAT_POINTS, (before, after)
    assert quantize(FLOAT_CNN.read_bytes(), f"quantize_nodes(calibration={samples_npz})")[0] == data


GPTQ_16X8_DB = 3.0  # rounding=gptq gains at least this over nearest rounding in 16x8 (measured +5.2 dB)


@pytest.mark.litert
def test_gptq_rounding_lowers_the_output_error_in_litert(samples_npz):
    """rounding=gptq: the same integer model (every scale and zero point as with nearest
    rounding, only weight values differ), a higher SQNR against the float model on held-out
    digits in LiteRT (int8: no lower, measured +1.0 dB; 16x8, where weights dominate the
    error: GPTQ_16X8_DB more), and the same bytes twice."""
    images = digits_test_split()[0][120:]
    (reference,) = run_litert(FLOAT_CNN.read_bytes(), [images])
    for activations, gain in (("int8", 0.0), ("int16", GPTQ_16X8_DB)):
        spec = f"quantize_nodes(calibration={samples_npz},activations={activations}"
        nearest, _ = quantize(FLOAT_CNN.read_bytes(), spec + ")")
        ours, stats = quantize(FLOAT_CNN.read_bytes(), spec + ",rounding=gptq)")
        assert stats["gptq_layers"] == 5
        assert quantize(FLOAT_CNN.read_bytes(), spec + ",rounding=gptq)")[0] == ours
        pairs = list(zip(operators(nearest), operators(ours)))
        assert all(a[0] == b[0] and grids(a[2] + a[3]) == grids(b[2] + b[3]) for a, b in pairs)
        changed = [a[0] for a, b in pairs if a[0] in KERNELS and not np.array_equal(a[2][1].data, b[2][1].data)]
        assert len(changed) == 5
        sqnrs = [sqnr_db(reference, run_litert(model, [images])[0]) for model in (nearest, ours)]
        assert sqnrs[1] >= sqnrs[0] + gain, (activations, sqnrs)


def grids(tensors: list[Tensor]) -> list:
    return [(t.dtype, t.quantization.scale.tolist(), t.quantization.zero_point.tolist()) if t.quantization
            else t.dtype for t in tensors]


def test_gptq_needs_samples_not_ranges(tmp_path):
    ranges = ranges_file(tmp_path, {})
    with pytest.raises(PassError, match="rounding=gptq needs calibration samples"):
        quantize(FLOAT_CNN.read_bytes(), f"quantize_nodes(calibration={ranges},rounding=gptq)")


@pytest.mark.litert
def test_samples_from_python(samples_npz):
    """A mapping, a list of feed dicts, a generator and a callable (TFLite's
    representative_dataset) give the bytes the .npz gives; feed dicts may use the input tensor
    name or the signature key."""
    expected, _ = quantize(FLOAT_CNN.read_bytes(), f"quantize_nodes(calibration={samples_npz})")
    images = np.load(samples_npz)["image"]
    name = graphtool.load(FLOAT_CNN).inputs[0]
    batches = [{"image": images[i:i + 40]} for i in range(0, 120, 40)]
    for data in ({name: images}, batches, (b for b in batches), lambda: iter([{name: images}])):
        assert quantize(FLOAT_CNN.read_bytes(), [("quantize_nodes", {"calibration": data})])[0] == expected


@pytest.mark.litert
def test_calibration_keeps_a_bounded_batch_in_memory(samples_npz):
    """LiteRT keeps every tensor of a run: with memory_mb below one sample's tensors the batch
    shrinks to one sample, and min/max ranges come out the same."""
    from graphtool.runtime import calibrate as calibration

    one_sample = calibration._sample_bytes(graphtool.load(FLOAT_CNN))
    assert 8 * 8 * 16 * 4 < one_sample < 64 * 1024
    wide = calibrate(FLOAT_CNN, str(samples_npz), batch_size=64)
    narrow = calibrate(FLOAT_CNN, str(samples_npz), batch_size=64, memory_mb=one_sample / 2 / 2 ** 20)
    assert (wide.options["batch_size"], narrow.options["batch_size"], narrow.batches) == (64, 1, 120)
    assert narrow.ranges.keys() == wide.ranges.keys()
    for name, (low, high) in wide.ranges.items():
        assert narrow.ranges[name] == pytest.approx((low, high), rel=1e-6), name


@pytest.mark.litert
@pytest.mark.parametrize("arrays, message", [
    ({"pixels": np.zeros((4, 8, 8, 1), np.float32)}, "array 'pixels' names no input of the model"),
    ({"image": np.zeros((4, 8, 8, 3), np.float32)}, "array 'image' has shape \\[4, 8, 8, 3\\]"),
    ({"image": np.zeros((4, 8, 8, 1), np.int32)}, "array 'image' is int32"),
    ({"image": np.zeros((0, 8, 8, 1), np.float32)}, "holds no samples"),
    ({"image": np.full((4, 8, 8, 1), np.nan, np.float32)}, "array 'image' holds NaN"),
])
def test_bad_calibration_files_exit_2_naming_file_and_tensor(arrays, message, tmp_path):
    samples, out = tmp_path / "bad.npz", tmp_path / "int8.tflite"
    np.savez(samples, **arrays)
    result = subprocess.run([sys.executable, "-m", "graphtool", "transform", str(FLOAT_CNN), str(out), "--transforms",
                             f'quantize_nodes(calibration="{samples}")'], capture_output=True, text=True)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"graphtool: error: {FLOAT_CNN}: quantize_nodes") and str(samples) in line, line
    assert __import__("re").search(message, line), line
    assert not out.exists()


@pytest.mark.litert
@settings(max_examples=40)
@given(st.data())
def test_any_calibration_data_and_parameters_give_a_model_or_a_graphtool_error(data):
    """Random calibration sets and parameters, each valid or with one flaw (an unknown or
    missing input name, a wrong shape or dtype, no samples, NaN or infinity, an extra array, a
    bad parameter): quantize_nodes returns a model that LiteRT runs, or raises a GraphtoolError
    and leaves the graph as it was. Never anything else, never a partial result."""
    flaw = data.draw(st.sampled_from(["none"] * 6 + ["name", "missing", "shape", "dtype", "empty", "nan", "extra",
                                                     "activations", "method", "batch_size", "keep_op",
                                                     "rounding"]))
    key = data.draw(st.sampled_from(["image", "serving_default_image:0"]))
    count = data.draw(st.integers(1, 6))
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.float16]))
    shape = {"shape": data.draw(st.sampled_from([(count, 8, 8), (count, 4, 4, 1), (count, 8, 8, 3)])),
             "empty": (0, 8, 8, 1)}.get(flaw, (count, 8, 8, 1))
    values = np.random.default_rng(data.draw(st.integers(0, 9))).uniform(-2, 2, shape)
    values = values.astype(data.draw(st.sampled_from([np.int32, np.bool_])) if flaw == "dtype" else dtype)
    if flaw == "nan":
        values.flat[data.draw(st.integers(0, values.size - 1))] = data.draw(st.sampled_from([np.nan, np.inf]))
    arrays = {"images" if flaw == "name" else key: values} if flaw != "missing" else {}
    if flaw == "extra":
        arrays["labels"] = values
    params = {"calibration": [arrays] if data.draw(st.booleans()) else arrays,
              "activations": "int4" if flaw == "activations" else data.draw(st.sampled_from(["int8", "int16"])),
              "method": "median" if flaw == "method" else data.draw(st.sampled_from(["minmax", "percentile", "mse"])),
              "per_channel": data.draw(st.booleans()),
              "rounding": "stochastic" if flaw == "rounding" else data.draw(st.sampled_from(["away", "even", "gptq"])),
              "batch_size": 0 if flaw == "batch_size" else data.draw(st.integers(1, 8)),
              "keep_op": ["NOPE"] if flaw == "keep_op" else data.draw(st.sampled_from(
                  [[], ["SOFTMAX"], ["CONV_2D,FULLY_CONNECTED"]]))}
    graph = graphtool.load(FLOAT_CNN)
    before = tflite.write(graph)
    try:
        transform(graph, [("quantize_nodes", params)])
    except GraphtoolError:
        assert flaw != "none"
        assert tflite.write(graph) == before
        return
    assert flaw == "none"
    (probabilities,) = run_litert(tflite.write(graph), [digits_test_split()[0][:4]])
    assert probabilities.shape == (4, 10) and np.isfinite(probabilities).all()


# -- against the converter: the digits CNN trained here, MobileNetV2, an attention block ----------------

@pytest.fixture(scope="module")
def digits_models(tf):
    return quantize_models.digits(tf)


def by_name(data: bytes) -> dict[str, Tensor]:
    return {t.name: t for node in graphtool.load(data) for t in node.outputs}


@pytest.mark.slow
@pytest.mark.tf_keras
@pytest.mark.sklearn
@pytest.mark.litert
def test_digits_accuracy_against_the_converters_full_integer_model(digits_models):
    """Same Keras model, same calibration samples: graphtool's int8 model is at least as
    accurate on the 360 held-out digits as the converter's, less DIGITS_POINTS."""
    from demo.digits import digits_split

    _, (images, labels) = digits_split()
    ours, _ = quantize(digits_models.float, [("quantize_nodes", {"calibration": digits_models.samples})])
    theirs = accuracy(digits_models.int8, images, labels)
    assert accuracy(ours, images, labels) >= theirs - DIGITS_POINTS, theirs
    assert theirs > 95.0


def same_tensor_name(ours: str, theirs: str) -> bool:
    """The converter appends "1" to a tensor it gives an integer twin, and names its input
    QUANTIZE's output "tfl.quantize"; graphtool keeps names and adds "_int8" to the twin."""
    if ours.endswith("_int8"):
        return theirs in ("tfl.quantize", ours[:-len("_int8")] + "1")
    return ours in (theirs, theirs[:-1])


@pytest.mark.slow
@pytest.mark.tf_keras
@pytest.mark.sklearn
@pytest.mark.litert
def test_int8_tensors_and_scales_are_the_converters(digits_models):
    """graphtool's int8 model against the converter's, tensor by tensor. Equal: the operators
    and their versions, every weight (bytes and per-channel scales), the input's and every
    activation's zero point, min_runtime_version. The differences, each explained:
    - names: the converter renames the integer tensors it inserts a dequantize for ("x" ->
      "x1", its input QUANTIZE writes "tfl.quantize"); graphtool keeps every name and adds
      "_int8" only to the integer copy of a tensor also read as float;
    - activation scales: equal within 1e-6 relative: both take min/max over the same samples,
      the converter's calibration runs TensorFlow's TFLite interpreter, graphtool's LiteRT, and
      their fully connected kernels round the last float bit differently;
    - biases: scale = input scale x weight scale, so where an input scale differs in its last
      bit the bias scale does too, and the int32 values by at most one.
    """
    ours, _ = quantize(digits_models.float, [("quantize_nodes", {"calibration": digits_models.samples})])
    assert [(op, v) for op, v, _, _ in operators(ours)] == [(op, v) for op, v, _, _ in operators(digits_models.int8)]
    assert min_runtime(ours) == min_runtime(digits_models.int8) == "1.14.0"
    mine = [(inputs, outputs) for op, _, inputs, outputs in operators(ours)]
    theirs = [(inputs, outputs) for op, _, inputs, outputs in operators(digits_models.int8)]
    for (my_in, my_out), (their_in, their_out) in zip(mine, theirs):
        for a, b in zip([t for t in my_in + my_out if t is not None], [t for t in their_in + their_out if t is not None]):
            assert a.dtype == b.dtype, (a.name, b.name)
            assert same_tensor_name(a.name, b.name), (a.name, b.name)
            if a.quantization is None:
                assert b.quantization is None
                continue
            np.testing.assert_allclose(a.quantization.scale, b.quantization.scale, rtol=1e-6, err_msg=a.name)
            if a.dtype is DType.INT32:  # a bias
                assert np.abs(a.data.astype(np.int64) - b.data).max() <= 1, a.name
                continue
            np.testing.assert_array_equal(a.quantization.zero_point, b.quantization.zero_point, err_msg=a.name)
            if a.is_constant:  # a weight: the converter's bytes
                np.testing.assert_array_equal(a.quantization.scale, b.quantization.scale, err_msg=a.name)
                np.testing.assert_array_equal(a.data, b.data, err_msg=a.name)


@pytest.mark.slow
@pytest.mark.tf_keras
@pytest.mark.sklearn
@pytest.mark.litert
def test_16x8_against_the_converters(digits_models):
    """16x8: the same types as the converter's (int16 activations, int8 weights, int64 biases),
    the same weights and activation scales (within calibration's last bit), biases within one.
    Explained differences: the converter's 16x8 path writes its int8 operator versions (CONV_2D
    3, FULLY_CONNECTED 4, DEPTHWISE_CONV_2D 3, QUANTIZE 1, DEQUANTIZE 2, MAX_POOL_2D and
    SOFTMAX 2); graphtool writes what op_version.cc gives the 16x8 signatures (8, 11, 1, 2, 3,
    3, 3), and min_runtime_version 2.15.0 for CONV_2D 8. LiteRT runs both; both are within
    0.02 of the float model's probabilities, graphtool's closer than its int8 model."""
    ours, _ = quantize(digits_models.float, [("quantize_nodes", {"calibration": digits_models.samples,
                                                                  "activations": "int16"})])
    mine, theirs = operators(ours), operators(digits_models.int16)
    assert [op for op, *_ in mine] == [op for op, *_ in theirs]
    assert {op: v for op, v, _, _ in mine} == {"QUANTIZE": 2, "CONV_2D": 8, "DEPTHWISE_CONV_2D": 1, "MAX_POOL_2D": 3,
                                               "RESHAPE": 1, "FULLY_CONNECTED": 11, "SOFTMAX": 3, "DEQUANTIZE": 3}
    assert {op: v for op, v, _, _ in theirs} == {"QUANTIZE": 1, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "MAX_POOL_2D": 2,
                                                 "RESHAPE": 1, "FULLY_CONNECTED": 4, "SOFTMAX": 2, "DEQUANTIZE": 2}
    for (_, _, my_in, my_out), (_, _, their_in, their_out) in zip(mine, theirs):
        for a, b in zip([t for t in my_in + my_out if t is not None], [t for t in their_in + their_out if t is not None]):
            assert a.dtype == b.dtype, a.name
            if a.quantization is not None:
                np.testing.assert_allclose(a.quantization.scale, b.quantization.scale, rtol=1e-6, err_msg=a.name)
                if a.dtype is DType.INT64:
                    assert np.abs(a.data - b.data).max() <= 1, a.name
    images = digits_test_split()[0]
    (reference,) = run_litert(digits_models.float, [images])
    int8, _ = quantize(digits_models.float, [("quantize_nodes", {"calibration": digits_models.samples})])
    errors = [np.abs(run_litert(model, [images])[0] - reference).max() for model in (ours, digits_models.int16, int8)]
    assert max(errors[:2]) < 0.02 and errors[0] < errors[2], errors


@pytest.mark.slow
@pytest.mark.tf_keras
@pytest.mark.litert
def test_16x8_on_mobilenet_v2(tf):
    """Keras MobileNetV2 (weights=None, 96x96): every CONV_2D, DEPTHWISE_CONV_2D and
    FULLY_CONNECTED runs int8 (and int16 in 16x8), both models run in LiteRT, and 16x8's SQNR
    over the float model is at least INT16_GAIN_DB above int8's. With its initial batch-norm
    statistics the network's activations shrink towards 0 and the output is near the uniform
    1/1000: int8's softmax step (1/256) loses it, 16x8's (1/32768) does not."""
    models = quantize_models.mobilenet(tf)
    inputs = [np.random.default_rng(1).uniform(-1, 1, (8, 96, 96, 3)).astype(np.float32)]
    (reference,) = run_litert(models.float, inputs)
    scores = {}
    for mode in ("int8", "int16"):
        data, stats = quantize(models.float, [("quantize_nodes", {"calibration": models.samples, "activations": mode})])
        assert stats["float"] == {} and stats["quantized"]["CONV_2D"] == 35
        for op, _, inputs_, outputs in operators(data):
            if op in KERNELS:
                assert (inputs_[0].dtype, inputs_[1].dtype) == (DType[mode.upper()], DType.INT8), op
        scores[mode] = sqnr_db(reference, run_litert(data, inputs)[0])
    assert scores["int16"] >= scores["int8"] + INT16_GAIN_DB, scores


@pytest.mark.slow
@pytest.mark.tf_keras
@pytest.mark.litert
def test_16x8_adds_no_error_beyond_int8_weights_on_mobilenet_v2(tf):
    """MobileNetV2 with batch-norm statistics from a batch, so that activations keep their size
    through the network: the 16x8 model is within FLOOR_DB of the float model with only its
    weights int8 (int16 activations add next to nothing; measured 18.8 against 19.1 dB), and
    INT16_GAIN_DB above the int8 model (0.5 dB: int8's softmax step, 1/256, is most of a
    1/1000 probability). On MobileNetV2s trained on the digits (10 classes), measured while
    writing this, int8 weights cost about as much as int8 activations and 16x8 gains 3 to 8 dB."""
    models = quantize_models.mobilenet(tf, batch_statistics=True)
    inputs = [np.random.default_rng(1).uniform(-1, 1, (8, 96, 96, 3)).astype(np.float32)]
    (reference,) = run_litert(models.float, inputs)
    weights_only, _ = quantize(models.float, "quantize_weights(mode=weight_only, minimum_size=0)")
    floor = sqnr_db(reference, run_litert(weights_only, inputs)[0])
    scores = {mode: sqnr_db(reference, run_litert(quantize(models.float, [("quantize_nodes", {
        "calibration": models.samples, "activations": mode})])[0], inputs)[0]) for mode in ("int8", "int16")}
    assert scores["int16"] >= floor - FLOOR_DB, (floor, scores)
    assert scores["int16"] >= scores["int8"] + INT16_GAIN_DB, scores


@pytest.mark.tf_keras
@pytest.mark.litert
def test_an_attention_block(tf):
    """LayerNormalization, MultiHeadAttention, GELU MLP, residual adds: every
    FULLY_CONNECTED (keep_num_dims) and BATCH_MATMUL runs int8, the converter's operators and
    versions, an SQNR at least the converter's less CONVERTER_DB; in 16x8 SQUARED_DIFFERENCE
    has no int16 kernel and stays float (QUANTIZE/DEQUANTIZE around it), the rest int16."""
    models = quantize_models.attention(tf)
    inputs = {name: np.random.default_rng(3).standard_normal((1, 8, 16)).astype(np.float32)
              for name in models.samples}
    (reference,) = run_litert(models.float, list(inputs.values()))
    ours, stats = quantize(models.float, [("quantize_nodes", {"calibration": models.samples})])
    assert stats["float"] == {} and stats["quantized"]["FULLY_CONNECTED"] == 6 and stats["quantized"]["BATCH_MATMUL"] == 2
    assert [(op, v) for op, v, _, _ in operators(ours)] == [(op, v) for op, v, _, _ in operators(models.int8)]
    for op, _, inputs_, outputs in operators(ours):
        if op in ("FULLY_CONNECTED", "BATCH_MATMUL"):
            assert {t.dtype for t in inputs_[:2] + outputs} == {DType.INT8}, op
    ours_db = sqnr_db(reference, run_litert(ours, list(inputs.values()))[0])
    assert ours_db >= sqnr_db(reference, run_litert(models.int8, list(inputs.values()))[0]) - CONVERTER_DB
    int16, stats = quantize(models.float, [("quantize_nodes", {"calibration": models.samples, "activations": "int16"})])
    assert stats["float"] == {"SQUARED_DIFFERENCE": {"no int16 kernel": 2}}
    assert sqnr_db(reference, run_litert(int16, list(inputs.values()))[0]) >= ours_db + INT16_GAIN_DB


# -- the rule table, operator by operator ------------------------------------------------------------

@pytest.fixture(scope="module")
def ops_models(tf):
    return quantize_models.ops(tf)


@pytest.mark.litert
@pytest.mark.parametrize("mode", ["int8", "int16"])
def test_every_operator_of_the_rule_table_in_litert(ops_models, mode):
    """One model, a branch per operator: each operator of RULES with a kernel for the mode runs
    in integers (the rest stay float, counted with the reason), LiteRT runs the whole model,
    and each branch is within OP_INT8_DB / OP_INT16_DB of the float model (the branches that
    jump, argmax and a comparison's select, agree on AGREEMENT of their elements)."""
    data, stats = quantize(ops_models.float, [("quantize_nodes", {"calibration": ops_models.samples,
                                                                  "activations": mode})])
    present = {op for op, *_ in operators(ops_models.float)}
    integer = {op for op in present if op in RULES and RULES[op].supports(DType[mode.upper()])}
    assert set(stats["quantized"]) == integer - {"MUL"} | {"MUL"} & present
    assert set(stats["float"]) == present - integer
    inputs = {name: np.random.default_rng(7).standard_normal(quantize_models.OPS_SHAPE).astype(np.float32)
              for name in ops_models.samples}
    expected, actual = run_signature(ops_models.float, inputs), run_signature(data, inputs)
    bound = OP_INT8_DB if mode == "int8" else OP_INT16_DB
    low = {}
    for name in expected:
        if name in DISCONTINUOUS:
            assert np.mean(np.isclose(expected[name], actual[name], atol=0.05)) >= AGREEMENT, name
        elif sqnr_db(expected[name], actual[name]) < bound:
            low[name] = round(sqnr_db(expected[name], actual[name]), 1)
    assert not low, low


@pytest.mark.litert
def test_int8_versions_are_the_converters(ops_models):
    """Where both quantize an operator, graphtool writes the version the converter writes."""
    data, _ = quantize(ops_models.float, [("quantize_nodes", {"calibration": ops_models.samples})])

    def integer_versions(model: bytes) -> dict[str, int]:
        return {op: version for op, version, inputs, outputs in operators(model)
                if any(t is not None and t.dtype is DType.INT8 for t in inputs + outputs)}

    ours, theirs = integer_versions(data), integer_versions(ops_models.int8)
    shared = set(ours) & set(theirs)
    assert len(shared) >= 40
    assert {op: ours[op] for op in shared} == {op: theirs[op] for op in shared}
