"""quantize_weights on TFLite models: compared with what the TFLite converter writes for the
same float model, and run in LiteRT before and after (SQNR bounds measured and written here)."""
from __future__ import annotations

import numpy as np
import pytest

import graphtool
from graphtool.formats import tflite
from graphtool.ir import DType, Graph, Node, Ref, Tensor, make_const
from graphtool.passes import PassError, get, transform
from graphtool.formats.tflite import versions
from graphtool.formats.tflite.ops import builtin_codes

from ...conftest import TFLITE_FIXTURES, random_inputs, run_litert, tflite_manifest

# Bounds measured on these models with standard-normal inputs (lowest seen, then a margin):
# int8 on the digits CNN 43.0 dB (dynamic, every weight), 45.2 (weight_only); the
# channel-spread single-op models 40-50 dB per-channel; INT4 weight-only 19.1 dB.
INT8_SQNR_DB = 38.0
INT4_SQNR_DB = 15.0
FLOAT16_RELATIVE = 1e-2
PER_CHANNEL_GAIN_DB = 3.0  # per-channel beats per-tensor by at least this on channel-spread weights
ACCURACY_POINTS = 0.5


# -- helpers ---------------------------------------------------------------------------------

def model_t(data: bytes):
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def op_names(model) -> list[str]:
    names = {code: name for name, code in builtin_codes().items()}
    return [names[max(c.builtinCode, c.deprecatedBuiltinCode)] for c in model.operatorCodes]


def operators(model, subgraph: int = 0) -> list[tuple[str, int, object]]:
    """(builtin name, version, Operator) in execution order."""
    names = op_names(model)
    return [(names[op.opcodeIndex], model.operatorCodes[op.opcodeIndex].version, op)
            for op in model.subgraphs[subgraph].operators]


def tensors_by_name(model, subgraph: int = 0) -> dict:
    return {t.name.decode(): t for t in model.subgraphs[subgraph].tensors}


def buffer_bytes(model, tensor) -> bytes:
    data = model.buffers[tensor.buffer].data
    return b"" if data is None else bytes(np.asarray(data, np.uint8))


def min_runtime(model) -> str:
    for entry in model.metadata or []:
        if entry.name == b"min_runtime_version":
            return bytes(np.asarray(model.buffers[entry.buffer].data, np.uint8)).rstrip(b"\0").decode()
    raise AssertionError("no min_runtime_version metadata")


def quantize(data: bytes, spec: str) -> tuple[bytes, dict]:
    graph = graphtool.load(data)
    report = transform(graph, spec)
    return tflite.write(graph), report.passes[0].stats


def sqnr_db(reference: np.ndarray, actual: np.ndarray) -> float:
    reference = reference.astype(np.float64)
    noise = float(((reference - actual) ** 2).sum())
    return float("inf") if noise == 0 else 10 * np.log10(float((reference ** 2).sum()) / noise)


def compare_float_outputs(before: bytes, after: bytes, inputs: list | None = None) -> list[float]:
    """Run both models in LiteRT on the same (default: random) inputs; SQNR of each float
    output (exact equality is required of the others)."""
    from ai_edge_litert.interpreter import Interpreter

    inputs = inputs if inputs is not None else random_inputs(Interpreter(model_content=before))
    scores = []
    for a, b in zip(run_litert(before, inputs), run_litert(after, inputs)):
        assert a.shape == b.shape and a.dtype == b.dtype
        if a.dtype.kind == "f":
            scores.append(sqnr_db(a, b))
        else:
            np.testing.assert_array_equal(a, b)
    return scores


def float_cnn() -> bytes:
    return (TFLITE_FIXTURES / "float_cnn.tflite").read_bytes()


def spread(shape: tuple[int, ...], axis: int, seed: int = 0) -> np.ndarray:
    """Weights whose slices along `axis` span 1e-2 .. 10 in magnitude."""
    rng = np.random.default_rng(seed)
    scale = np.logspace(-2, 1, shape[axis]).astype(np.float32)
    shape_of_scale = [1] * len(shape)
    shape_of_scale[axis] = -1
    return (rng.standard_normal(shape) * scale.reshape(shape_of_scale)).astype(np.float32)


def single_op_model(op: str, options: str | None, attrs: dict, x: Tensor, inputs: list, out_shape: tuple) -> bytes:
    """A TFLite model built through the IR: input `x`, one `op` reading `inputs` ("x", a
    numpy constant, or None), output y."""
    graph = Graph("main", format="tflite")
    graph.add_node(Node("x", "Input", outputs=[x]))
    graph.inputs = ["x"]
    refs = []
    for i, value in enumerate(inputs):
        if isinstance(value, np.ndarray):
            graph.add_node(make_const(f"c{i}", value))
            refs.append(f"c{i}")
        else:
            refs.append(value)
    meta = {"version": 1, **({"tflite.options_type": options} if options else {})}
    graph.add_node(Node("y", op, attrs, outputs=[Tensor("y", DType.FLOAT32, out_shape)], meta=meta), inputs=refs)
    graph.outputs = [Ref("y")]
    return tflite.write(graph)


def f32(name: str, shape: tuple) -> Tensor:
    return Tensor(name, DType.FLOAT32, shape)


CHANNEL_SPREAD_MODELS = {
    # op: (model builder, expected (per-channel, per-tensor) versions, quantized_dimension)
    "FULLY_CONNECTED": (lambda: single_op_model(
        "FULLY_CONNECTED", "FullyConnectedOptions", {}, f32("x", (4, 64)),
        ["x", spread((32, 64), 0), np.linspace(-1, 1, 32, dtype=np.float32)], (4, 32)), (12, 9), 0),
    "CONV_2D": (lambda: single_op_model(
        "CONV_2D", "Conv2DOptions", {"padding": 0, "stride_w": 1, "stride_h": 1}, f32("x", (1, 8, 8, 8)),
        ["x", spread((16, 3, 3, 8), 0), np.zeros(16, np.float32)], (1, 8, 8, 16)), (5, 2), 0),
    "DEPTHWISE_CONV_2D": (lambda: single_op_model(
        "DEPTHWISE_CONV_2D", "DepthwiseConv2DOptions",
        {"padding": 0, "stride_w": 1, "stride_h": 1, "depth_multiplier": 2}, f32("x", (1, 8, 8, 8)),
        ["x", spread((1, 3, 3, 16), 3), np.zeros(16, np.float32)], (1, 8, 8, 16)), (6, 6), 3),
    "TRANSPOSE_CONV": (lambda: single_op_model(
        "TRANSPOSE_CONV", "TransposeConvOptions", {"padding": 0, "stride_w": 2, "stride_h": 2}, f32("x", (1, 8, 8, 8)),
        [np.array([1, 16, 16, 16], np.int32), spread((16, 3, 3, 8), 0), "x",
         np.linspace(-1, 1, 16, dtype=np.float32)], (1, 16, 16, 16)), (3, 3), 0),
    "BATCH_MATMUL": (lambda: single_op_model(
        "BATCH_MATMUL", "BatchMatMulOptions", {}, f32("x", (2, 4, 64)),
        ["x", spread((64, 32), 1)], (2, 4, 32)), (4, 4), 1),
    "EMBEDDING_LOOKUP": (lambda: single_op_model(
        "EMBEDDING_LOOKUP", None, {}, Tensor("x", DType.INT32, (5,)),
        ["x", spread((300, 16), 0)], (5, 16)), (4, 1), 0),
}
# Rows from across the table (random ids would all be small rows).
SPREAD_INPUTS = {"EMBEDDING_LOOKUP": [np.array([0, 75, 150, 225, 299], np.int32)]}


# -- the converter's dynamic-range and float16 output ------------------------------------------

@pytest.mark.tf
@pytest.mark.litert
def test_dynamic_matches_the_converter():
    """float_cnn in dynamic mode gives what the converter gave for the same float model
    (dynamic_range.tflite): op versions, int8 tensors (type, quantized_dimension, scales,
    data), asymmetric_quantize_inputs, min_runtime_version."""
    ours, stats = quantize(float_cnn(), "quantize_weights")
    mine, theirs = model_t(ours), model_t((TFLITE_FIXTURES / "dynamic_range.tflite").read_bytes())

    assert [(name, version) for name, version, _ in operators(mine)] == \
           [(name, version) for name, version, _ in operators(theirs)]
    assert [name for name, _, _ in operators(mine)][:3] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"]
    for (name, _, a), (_, _, b) in zip(operators(mine), operators(theirs)):
        if name == "FULLY_CONNECTED":
            assert a.builtinOptions.asymmetricQuantizeInputs == b.builtinOptions.asymmetricQuantizeInputs

    mine_tensors, their_tensors = tensors_by_name(mine), tensors_by_name(theirs)
    int8 = sorted(name for name, t in their_tensors.items() if t.type == 9)
    assert int8 == ["digits_cnn/fc/MatMul", "digits_cnn/pwconv/Conv2D"]
    assert sorted(name for name, t in mine_tensors.items() if t.type == 9) == int8
    for name in int8:
        a, b = mine_tensors[name], their_tensors[name]
        assert a.quantization.quantizedDimension == b.quantization.quantizedDimension == 0
        assert len(a.quantization.scale) == len(b.quantization.scale) == a.shape[0]
        assert not np.any(a.quantization.zeroPoint)
        np.testing.assert_array_equal(a.quantization.scale, b.quantization.scale)
        assert buffer_bytes(mine, a) == buffer_bytes(theirs, b)
    assert min_runtime(mine) == min_runtime(theirs) == "2.17.0"
    assert stats["tensors"] == 2 and stats["hybrid"] == {"CONV_2D": 1, "FULLY_CONNECTED": 1}
    assert stats["skipped"] == {"too small": 3}
    assert (stats["bytes_before"], stats["bytes_after"]) == (4 * (1024 + 8192), 1024 + 8192)
    assert min(compare_float_outputs(float_cnn(), ours)) >= INT8_SQNR_DB


def near_tie_weights(rows: int = 4, columns: int = 256, seed: int = 0) -> np.ndarray:
    """FC weights whose w / scale lie within a few float32 steps of k + 1/2: computed in
    float32 many are exact halves, computed in float64 (as the converter does) few are."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((rows, columns), np.float32)
    step = float(np.float32(1) / np.float32(127))
    for row in range(rows):
        weights[row, 0] = 1.0  # max |w| = 1: the scale is 1/127
        halves = rng.integers(-126, 126, columns - 1) + 0.5
        weights[row, 1:] = (halves * step * (1 + rng.uniform(-3e-8, 3e-8, columns - 1))).astype(np.float32)
    return weights


def float64_half_away(weights: np.ndarray, axis: int) -> np.ndarray:
    """The converter's int8 values, written out plainly: w / (max|w| / 127) in float64,
    |q| rounded up from a half, sign restored."""
    others = tuple(a for a in range(weights.ndim) if a != axis)
    absmax = np.abs(weights).max(axis=others, keepdims=True).astype(np.float64)
    quotient = weights.astype(np.float64) / np.where(absmax > 0, absmax / 127, 1.0)
    whole = np.floor(np.abs(quotient))
    return (np.sign(quotient) * (whole + (np.abs(quotient) - whole >= 0.5))).astype(np.int8)


@pytest.mark.parametrize("seed", range(5))
def test_away_rounding_is_float64_exact(seed):
    """symmetric() works in float32 and decides quotients near a half again in float64: on
    weights with 30% planted within 3e-7 (relative) of a half, it equals the plain float64
    computation, on either axis and over several row blocks."""
    from graphtool.passes.tflite.quantize_weights import QUANTIZE_CHUNK, symmetric

    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(20, 40)), QUANTIZE_CHUNK // 16)  # 16 rows a block: two or three blocks
    weights = rng.standard_normal(shape).astype(np.float32)
    step = np.abs(weights).max(axis=1, keepdims=True) / 127
    halves = rng.integers(-126, 126, shape) + 0.5
    near = (halves * step * (1 + rng.uniform(-3e-7, 3e-7, shape))).astype(np.float32)
    planted = np.where(rng.random(shape) < 0.3, near, weights)
    for axis in (0, 1):
        quantized, _ = symmetric(planted, axis, 127, rounding="away")
        np.testing.assert_array_equal(quantized, float64_half_away(planted, axis))


@pytest.mark.slow
def test_dynamic_matches_the_converter_at_near_ties(tf):
    """Where float32 and float64 division disagree on which side of a half w / scale lies,
    the default rounding gives the converter's int8 values: it divides in float64 as the
    converter does (with float32 division 455 of these 1,024 values differed)."""
    weights = near_tie_weights()
    quotients = weights / (np.float32(1) / np.float32(127))
    assert np.count_nonzero(np.abs(quotients - np.rint(quotients)) == 0.5) > 500  # float32 sees ties

    class Dense(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, weights.shape[1]], tf.float32)])
        def __call__(self, x):
            return tf.matmul(x, tf.constant(weights), transpose_b=True)

    module = Dense()

    def convert(dynamic: bool) -> bytes:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
        if dynamic:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return converter.convert()

    ours = model_t(quantize(convert(False), "quantize_weights(minimum_size=0)")[0])
    theirs = model_t(convert(True))
    (mine,) = [t for t in ours.subgraphs[0].tensors if t.type == 9]
    (their,) = [t for t in theirs.subgraphs[0].tensors if t.type == 9]
    np.testing.assert_array_equal(mine.quantization.scale, their.quantization.scale)
    assert buffer_bytes(ours, mine) == buffer_bytes(theirs, their)


@pytest.mark.tf
@pytest.mark.litert
def test_float16_matches_the_converter():
    """float16 mode converts every float32 constant (biases too) to FLOAT16 read through
    DEQUANTIZE, as float16.tflite from the converter: same tensors, same bits, same versions."""
    ours, stats = quantize(float_cnn(), "quantize_weights(mode=float16)")
    mine, theirs = model_t(ours), model_t((TFLITE_FIXTURES / "float16.tflite").read_bytes())

    def float16_tensors(model):
        return {name: t for name, t in tensors_by_name(model).items() if t.type == 1}

    assert sorted(float16_tensors(mine)) == sorted(float16_tensors(theirs))
    assert len(float16_tensors(mine)) == stats["tensors"] == 10
    for name, tensor in float16_tensors(mine).items():
        assert buffer_bytes(mine, tensor) == buffer_bytes(theirs, float16_tensors(theirs)[name])
    assert sorted((n, v) for n, v, _ in operators(mine)) == sorted((n, v) for n, v, _ in operators(theirs))
    dequantized = {op.inputs[0] for name, _, op in operators(mine) if name == "DEQUANTIZE"}
    assert {mine.subgraphs[0].tensors[i].name.decode() for i in dequantized} == set(float16_tensors(mine))
    tensors = mine.subgraphs[0].tensors
    for name, _, op in operators(mine):  # named as the converter names them: the weight's name + a number
        if name == "DEQUANTIZE":
            stored, value = tensors[op.inputs[0]].name.decode(), tensors[op.outputs[0]].name.decode()
            assert value[len(stored):].isdigit() and value.startswith(stored), (stored, value)
    assert min_runtime(mine) == min_runtime(theirs) == "1.15.0"
    a, b = run_both(float_cnn(), ours)
    assert np.abs(a - b).max() <= FLOAT16_RELATIVE * np.abs(a).max()


def run_both(before: bytes, after: bytes) -> tuple[np.ndarray, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    inputs = random_inputs(Interpreter(model_content=before))
    return run_litert(before, inputs)[0], run_litert(after, inputs)[0]


# -- every fixture, every mode ---------------------------------------------------------------

MODES = {
    "dynamic": ("quantize_weights(minimum_size=1)", INT8_SQNR_DB),
    "dynamic_default": ("quantize_weights", INT8_SQNR_DB),
    "per_tensor": ("quantize_weights(minimum_size=1, per_channel=false)", INT8_SQNR_DB - 6),
    "weight_only": ("quantize_weights(mode=weight_only, minimum_size=1)", INT8_SQNR_DB),
    "int4": ("quantize_weights(mode=weight_only, bits=4, minimum_size=1)", INT4_SQNR_DB),
    "float16": ("quantize_weights(mode=float16)", None),
}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name", sorted(tflite_manifest()))
def test_every_fixture_quantizes_and_reads_back(name, mode):
    original = (TFLITE_FIXTURES / name).read_bytes()
    written, stats = quantize(original, MODES[mode][0])
    graphtool.load(written).validate()
    if stats["tensors"] == 0:
        assert written == original  # nothing to do: the model is written back as it was


@pytest.mark.tf
@pytest.mark.litert
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name", sorted(tflite_manifest()))
def test_every_fixture_loads_and_runs(name, mode):
    spec, bound = MODES[mode]
    original = (TFLITE_FIXTURES / name).read_bytes()
    written, stats = quantize(original, spec)
    model_t(written)  # TensorFlow's own parser reads it
    if not tflite_manifest()[name]["runs_in_litert"]:
        from ai_edge_litert.interpreter import Interpreter

        Interpreter(model_content=written)  # parses; its Flex ops cannot run anywhere here
        return
    if bound is not None:
        assert all(score >= bound for score in compare_float_outputs(original, written)), stats
    else:
        from ai_edge_litert.interpreter import Interpreter

        inputs = random_inputs(Interpreter(model_content=original))
        for a, b in zip(run_litert(original, inputs), run_litert(written, inputs)):
            if a.dtype.kind == "f":
                assert np.abs(a - b).max() <= FLOAT16_RELATIVE * np.abs(a).max()
            else:
                np.testing.assert_array_equal(a, b)


def test_dynamic_range_model_is_left_alone():
    """Its large weights are int8 already; the small float ones are below minimum_size."""
    original = (TFLITE_FIXTURES / "dynamic_range.tflite").read_bytes()
    graph = graphtool.load(original)
    report = transform(graph, "quantize_weights")
    assert not report.passes[0].changed
    assert report.passes[0].stats["skipped"] == {"not float": 2, "too small": 3}
    assert tflite.write(graph) == original


@pytest.mark.tf
@pytest.mark.litert
def test_dynamic_range_model_small_weights_on_request():
    original = (TFLITE_FIXTURES / "dynamic_range.tflite").read_bytes()
    written, stats = quantize(original, "quantize_weights(minimum_size=1)")
    assert stats["tensors"] == 3 and stats["skipped"] == {"not float": 2}
    model = model_t(written)
    assert [(n, v) for n, v, _ in operators(model) if n in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")] == \
           [("CONV_2D", 5), ("DEPTHWISE_CONV_2D", 6), ("CONV_2D", 5), ("FULLY_CONNECTED", 12), ("FULLY_CONNECTED", 12)]
    assert min(compare_float_outputs(original, written)) >= INT8_SQNR_DB


@pytest.mark.tf
@pytest.mark.litert
def test_float16_model_weights_count_as_float():
    """A published float16 model (FLOAT16 constants behind DEQUANTIZE) in dynamic mode: the
    float16 weights become int8 read by the hybrid kernels directly, their DEQUANTIZE goes,
    and the hybrid ops' float16 biases go back to float32 (XNNPACK refuses a hybrid op whose
    bias is a dequantized float16)."""
    original = (TFLITE_FIXTURES / "float16.tflite").read_bytes()
    written, stats = quantize(original, "quantize_weights")
    assert stats["tensors"] == 2 and stats["hybrid"] == {"CONV_2D": 1, "FULLY_CONNECTED": 1}
    assert stats["float16_restored"] == 2
    model = model_t(written)
    tensors = tensors_by_name(model)
    assert tensors["digits_cnn/fc/MatMul"].type == tensors["digits_cnn/pwconv/Conv2D"].type == 9
    assert tensors["digits_cnn/fc/Relu;digits_cnn/fc/BiasAdd"].type == 0
    assert sum(name == "DEQUANTIZE" for name, _, _ in operators(model)) == 10 - 4
    fc = next(op for name, _, op in operators(model) if name == "FULLY_CONNECTED")
    assert model.subgraphs[0].tensors[fc.inputs[1]].name == b"digits_cnn/fc/MatMul"
    assert min_runtime(model) == "2.17.0"
    assert min(compare_float_outputs(original, written)) >= INT8_SQNR_DB

    everything, _ = quantize(original, "quantize_weights(minimum_size=1)")
    assert min(compare_float_outputs(original, everything)) >= INT8_SQNR_DB


# -- per-channel ------------------------------------------------------------------------------

@pytest.mark.tf
@pytest.mark.litert
@pytest.mark.parametrize("op", sorted(CHANNEL_SPREAD_MODELS))
def test_per_channel_beats_per_tensor(op):
    """Weights whose output channels span three decades: one scale per channel is strictly
    more accurate, for every op, in LiteRT's hybrid kernels and through DEQUANTIZE."""
    build, (channel_version, tensor_version), axis = CHANNEL_SPREAD_MODELS[op]
    original = build()
    scores = {}
    for mode in ("dynamic", "weight_only"):
        for per_channel in (True, False):
            written, stats = quantize(original, f"quantize_weights(mode={mode}, minimum_size=1, "
                                                f"per_channel={str(per_channel).lower()})")
            (score,) = compare_float_outputs(original, written, SPREAD_INPUTS.get(op))
            scores[mode, per_channel] = score
            model = model_t(written)
            (weight,) = [t for t in model.subgraphs[0].tensors if t.type == 9]
            if per_channel:
                assert weight.quantization.quantizedDimension == axis
                assert len(weight.quantization.scale) == weight.shape[axis]
            if mode == "dynamic":
                assert stats["hybrid"] == {op: 1}
                assert dict((n, v) for n, v, _ in operators(model))[op] == \
                       (channel_version if per_channel else tensor_version)
            else:
                assert [n for n, _, _ in operators(model)] == ["DEQUANTIZE", op]
    for mode in ("dynamic", "weight_only"):
        assert scores[mode, False] >= 30.0, scores
        assert scores[mode, True] >= scores[mode, False] + PER_CHANNEL_GAIN_DB, scores


@pytest.mark.tf
def test_per_tensor_depthwise_repeats_its_scale():
    """LiteRT's hybrid depthwise kernel reads a scale per channel (a single per-tensor scale
    gives garbage, as the converter's per-tensor output shows), so the one scale is repeated."""
    build, _, _ = CHANNEL_SPREAD_MODELS["DEPTHWISE_CONV_2D"]
    written, _ = quantize(build(), "quantize_weights(minimum_size=1, per_channel=false)")
    (weight,) = [t for t in model_t(written).subgraphs[0].tensors if t.type == 9]
    assert weight.quantization.quantizedDimension == 3
    assert len(set(weight.quantization.scale)) == 1 and len(weight.quantization.scale) == 16


# -- sharing ----------------------------------------------------------------------------------

def two_fc_model(second: str = "FULLY_CONNECTED") -> bytes:
    """x -> FC(W) -> {FC | BATCH_MATMUL}(W): one 64x64 weight read by two operators."""
    graph = Graph("main", format="tflite")
    graph.add_node(Node("x", "Input", outputs=[f32("x", (2, 64))]))
    graph.inputs = ["x"]
    graph.add_node(make_const("w", spread((64, 64), 0)))
    graph.add_node(make_const("b", np.linspace(-1, 1, 64, dtype=np.float32)))
    graph.add_node(Node("h", "FULLY_CONNECTED", {"fused_activation_function": 1}, outputs=[f32("h", (2, 64))],
                        meta={"version": 1, "tflite.options_type": "FullyConnectedOptions"}), inputs=["x", "w", "b"])
    if second == "FULLY_CONNECTED":
        graph.add_node(Node("y", second, {}, outputs=[f32("y", (2, 64))],
                            meta={"version": 1, "tflite.options_type": "FullyConnectedOptions"}),
                       inputs=["h", "w", "b"])
    else:
        graph.add_node(Node("y", second, {}, outputs=[f32("y", (2, 64))],
                            meta={"version": 1, "tflite.options_type": "BatchMatMulOptions"}), inputs=["h", "w"])
    graph.outputs = [Ref("y")]
    return tflite.write(graph)


@pytest.mark.tf
@pytest.mark.litert
def test_shared_weight_is_quantized_once():
    original = two_fc_model()
    written, stats = quantize(original, "quantize_weights")
    model = model_t(written)
    fcs = [op for name, _, op in operators(model) if name == "FULLY_CONNECTED"]
    assert len(fcs) == 2 and fcs[0].inputs[1] == fcs[1].inputs[1]
    weight = model.subgraphs[0].tensors[fcs[0].inputs[1]]
    assert weight.type == 9 and len(weight.quantization.scale) == 64
    assert sum(len(buffer_bytes(model, t)) == 64 * 64 for t in model.subgraphs[0].tensors) == 1
    assert stats["tensors"] == 1 and stats["quantized"] == stats["hybrid"] == {"FULLY_CONNECTED": 2}
    assert len(written) < len(original) - 3 * 64 * 64 + 1024
    assert min(compare_float_outputs(original, written)) >= INT8_SQNR_DB


@pytest.mark.tf
@pytest.mark.litert
def test_weight_shared_with_an_op_not_in_ops_gets_a_dequantize():
    """W feeds a FULLY_CONNECTED (hybrid) and a BATCH_MATMUL left out of `ops`: W is
    quantized once; BATCH_MATMUL reads it through DEQUANTIZE and stays float."""
    original = two_fc_model("BATCH_MATMUL")
    written, stats = quantize(original, "quantize_weights(ops=FULLY_CONNECTED)")
    model = model_t(written)
    ops = {name: (version, op) for name, version, op in operators(model)}
    assert sorted(ops) == ["BATCH_MATMUL", "DEQUANTIZE", "FULLY_CONNECTED"]
    tensors = model.subgraphs[0].tensors
    assert tensors[ops["FULLY_CONNECTED"][1].inputs[1]].type == 9
    assert ops["DEQUANTIZE"][1].inputs[0] == ops["FULLY_CONNECTED"][1].inputs[1]
    assert ops["BATCH_MATMUL"][1].inputs[1] == ops["DEQUANTIZE"][1].outputs[0]
    assert (ops["FULLY_CONNECTED"][0], ops["DEQUANTIZE"][0], ops["BATCH_MATMUL"][0]) == (12, 5, 1)
    assert stats["hybrid"] == {"FULLY_CONNECTED": 1} and stats["dequantize_added"] == 1
    assert min(compare_float_outputs(original, written)) >= INT8_SQNR_DB

    _, alone = quantize(two_fc_model("BATCH_MATMUL"), "quantize_weights(ops=CONV_2D)")
    assert alone["tensors"] == 0 and alone["skipped"] == {"op not in ops": 2}


# -- accuracy ----------------------------------------------------------------------------------

def digits_test_split() -> tuple[np.ndarray, np.ndarray]:
    """The held-out digits the fixture CNN never saw (written by make_tflite_fixtures.py)."""
    data = np.load(TFLITE_FIXTURES / "digits_test.npz")
    return data["images"], data["labels"]


def accuracy(model: bytes, images: np.ndarray, labels: np.ndarray) -> float:
    (probabilities,) = run_litert(model, [images])
    return 100.0 * float((probabilities.argmax(axis=1) == labels).mean())


@pytest.mark.litert
@pytest.mark.parametrize("spec", ["quantize_weights", "quantize_weights(minimum_size=1)",
                                  "quantize_weights(mode=weight_only)",
                                  "quantize_weights(mode=weight_only, minimum_size=1)"])
def test_digits_accuracy_within_half_a_point(spec):
    images, labels = digits_test_split()
    before = accuracy(float_cnn(), images, labels)
    written, stats = quantize(float_cnn(), spec)
    assert stats["tensors"] >= 2
    after = accuracy(written, images, labels)
    assert before > 95.0  # the float model's test accuracy is 98.6% (chance is 10%)
    assert abs(after - before) <= ACCURACY_POINTS, (before, after)


# -- INT4, versions, metadata, parameters ----------------------------------------------------

@pytest.mark.tf
@pytest.mark.litert
def test_int4_weight_only():
    written, stats = quantize(float_cnn(), "quantize_weights(mode=weight_only, bits=4, minimum_size=1)")
    model = model_t(written)
    int4 = [t for t in model.subgraphs[0].tensors if t.type == 17]
    assert len(int4) == stats["tensors"] == 5
    assert all(np.all(np.asarray(t.quantization.zeroPoint) == 0) for t in int4)
    assert {v for n, v, _ in operators(model) if n == "DEQUANTIZE"} == {6}
    assert min_runtime(model) == "2.18.0"
    assert stats["bytes_after"] == sum((int(np.prod(t.shape)) + 1) // 2 for t in int4)
    assert min(compare_float_outputs(float_cnn(), written)) >= INT4_SQNR_DB


# w / scale for the first row (scale 1) and the second (scale 2): exact halves, the largest
# float32 below a half (adding 0.5 to it rounds up to 1.0 in float32), and whole numbers.
TIE_RATIOS = np.array([127, 0.5, 1.5, 2.5, -0.5, -2.5, np.nextafter(np.float32(0.5), 0), 3.0], np.float32)
ROUNDED = {"away": [127, 1, 2, 3, -1, -3, 0, 3], "even": [127, 0, 2, 2, 0, -2, 0, 3]}


def tie_model() -> bytes:
    weights = np.stack([TIE_RATIOS, 2 * TIE_RATIOS])
    return single_op_model("FULLY_CONNECTED", "FullyConnectedOptions", {}, f32("x", (1, 8)),
                           ["x", weights, np.zeros(2, np.float32)], (1, 2))


def int8_weights(data: bytes) -> np.ndarray:
    model = model_t(data)
    weight = next(t for t in model.subgraphs[0].tensors if t.type == 9)  # INT8
    return np.frombuffer(buffer_bytes(model, weight), np.int8).reshape(weight.shape)


@pytest.mark.tf
@pytest.mark.parametrize("fortran_order", [False, True])
@pytest.mark.parametrize("rounding", sorted(ROUNDED))
def test_exact_halves_round_as_asked(rounding, fortran_order):
    graph = graphtool.load(tie_model())
    if fortran_order:  # weights set through the API may be any memory layout
        weight = next(n for n in graph if n.op == "Const" and n.outputs[0].shape == (2, 8))
        weight.outputs[0].data = np.asfortranarray(weight.outputs[0].data)
    transform(graph, f"quantize_weights(minimum_size=0, rounding={rounding})")
    expected = np.array([ROUNDED[rounding]] * 2, np.int8)
    np.testing.assert_array_equal(int8_weights(tflite.write(graph)), expected)


@pytest.mark.tf
@pytest.mark.quantizer
@pytest.mark.slow
def test_rounding_even_reproduces_ai_edge_quantizer(tmp_path):
    """ai-edge-quantizer's dynamic_wi8_afp32 rounds exact halves to even: with rounding=even
    graphtool stores the same int8 weights, on the tie model and on the digits CNN."""
    from ai_edge_quantizer import quantizer, recipe

    for name, data in [("ties", tie_model()), ("digits", (TFLITE_FIXTURES / "float_cnn.tflite").read_bytes())]:
        source = tmp_path / f"{name}.tflite"
        source.write_bytes(data)
        qt = quantizer.Quantizer(str(source))
        qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
        theirs = model_t(qt.quantize(enable_progress_bar=False, enable_progress_report=False).quantized_model)
        ours = model_t(quantize(data, "quantize_weights(minimum_size=0, rounding=even)")[0])
        their_tensors, our_tensors = tensors_by_name(theirs), tensors_by_name(ours)
        int8 = [n for n, t in their_tensors.items() if t.type == 9]
        assert int8, name
        for tensor in int8:
            assert our_tensors[tensor].type == 9, tensor
            assert buffer_bytes(ours, our_tensors[tensor]) == buffer_bytes(theirs, their_tensors[tensor]), tensor
            np.testing.assert_array_equal(our_tensors[tensor].quantization.scale,
                                          their_tensors[tensor].quantization.scale)


@pytest.mark.tf
def test_min_runtime_version_added_and_never_lowered():
    original = two_fc_model()
    assert not model_t(original).metadata
    written, stats = quantize(original, "quantize_weights")
    assert min_runtime(model_t(written)) == stats["min_runtime_version"] == "2.17.0"
    raw = next(bytes(np.asarray(model_t(written).buffers[m.buffer].data, np.uint8))
               for m in model_t(written).metadata)
    assert len(raw) == 16

    graph = graphtool.load(original)
    graph.meta["metadata"]["min_runtime_version"] = b"2.99.0".ljust(16, b"\0")
    transform(graph, "quantize_weights")
    assert min_runtime(model_t(tflite.write(graph))) == "2.99.0"


def test_runtime_table():
    known = set(builtin_codes())
    assert set(versions.RUNTIME_VERSIONS) <= known
    assert versions.min_runtime("FULLY_CONNECTED", 12) == "2.17.0"
    assert versions.min_runtime("CONV_2D", 5) == "2.4.0"
    assert versions.min_runtime("DEQUANTIZE", 3) == "1.15.0"
    assert versions.min_runtime("BROADCAST_TO", 1) is None
    assert versions.runtime_key("2.9.0") < versions.runtime_key("2.17.0")
    assert versions.decode_runtime(versions.encode_runtime("1.13.1")) == "1.13.1"


@pytest.mark.parametrize("spec, message", [
    ("quantize_weights(bits=4)", "weight_only"),
    ("quantize_weights(bits=3)", "bits"),
    ("quantize_weights(mode=int8)", "mode"),
    ("quantize_weights(ops=ADD)", "ADD"),
    ("quantize_weights(minimum_size=-1)", "minimum_size"),
    ("quantize_weights(mode=float16, bits=4)", "16 bits"),
    ("quantize_weights(rounding=up)", "rounding"),
])
def test_bad_parameters(spec, message):
    graph = graphtool.load(float_cnn())
    with pytest.raises(PassError, match=message):
        transform(graph, spec)


def test_registered_for_tflite():
    entry = get("quantize_weights", "tflite")
    assert entry.guarantee == "quantization error"
    assert {name for name, *_ in entry.parameters()} == {"mode", "per_channel", "bits", "minimum_size", "ops",
                                                          "keep", "keep_op", "only", "rounding", "target_sqnr",
                                                          "calibration", "fallback"}


def test_ops_parameter_takes_a_comma_list():
    _, stats = quantize(float_cnn(), 'quantize_weights(minimum_size=1, ops="CONV_2D,DEPTHWISE_CONV_2D")')
    assert stats["hybrid"] == {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 1}
    assert stats["skipped"] == {"op not in ops": 2}


def test_second_run_changes_nothing():
    once, _ = quantize(float_cnn(), "quantize_weights(minimum_size=1)")
    graph = graphtool.load(once)
    report = transform(graph, "quantize_weights(minimum_size=1)")
    assert not report.passes[0].changed and report.passes[0].stats["skipped"] == {"not float": 5}
    assert tflite.write(graph) == once


@pytest.mark.tf
@pytest.mark.litert
def test_float16_mode_keeps_hybrid_inputs_float32():
    """On a dynamic-range model the hybrid operators' biases stay FLOAT32 (XNNPACK refuses a
    hybrid operator reading a dequantized float16); the float ops' constants become FLOAT16."""
    original = (TFLITE_FIXTURES / "dynamic_range.tflite").read_bytes()
    written, stats = quantize(original, "quantize_weights(mode=float16)")
    assert stats["skipped"] == {"input of a hybrid op": 2} and stats["tensors"] == 6
    tensors = tensors_by_name(model_t(written))
    assert tensors["digits_cnn/fc/Relu;digits_cnn/fc/BiasAdd"].type == 0
    assert tensors["digits_cnn/probs/MatMul"].type == 1
    a, b = run_both(original, written)
    assert np.abs(a - b).max() <= FLOAT16_RELATIVE * np.abs(a).max()


@pytest.mark.tf
def test_new_versions_keep_their_operator_code_slots():
    """Raising CONV_2D's and FULLY_CONNECTED's versions replaces their operator codes in place:
    the codes keep the converter's order (and the ops their indices)."""
    before = model_t(float_cnn())
    written, _ = quantize(float_cnn(), "quantize_weights")
    after = model_t(written)
    assert op_names(after) == op_names(before)
    raised = {name for name, old, new in zip(op_names(before), before.operatorCodes, after.operatorCodes)
              if new.version > old.version}
    assert {"CONV_2D", "FULLY_CONNECTED"} <= raised
    assert [op.opcodeIndex for op in after.subgraphs[0].operators] == \
        [op.opcodeIndex for op in before.subgraphs[0].operators]
