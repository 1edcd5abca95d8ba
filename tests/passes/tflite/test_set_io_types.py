"""set_io_types: a model's input and output types, by removing or adding the QUANTIZE/DEQUANTIZE
(CAST for float16) at its boundary. Proven in LiteRT on a full-integer model TensorFlow's
converter makes in the test (float I/O, its default) and on the committed full_int8 fixture
(int8 I/O), compared with the converter's own uint8 and int8 I/O conversions of the same model
and samples; refusals need no runtime."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import graphtool
from graphtool.formats import tflite
from graphtool.formats.tflite import keys, versions
from graphtool.ir import Graph
from graphtool.passes import PassError, transform

from ...conftest import TFLITE_FIXTURES, random_inputs, run_litert, tflite_manifest

FULL_INT8 = TFLITE_FIXTURES / "full_int8.tflite"
FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
CONTROL_FLOW = TFLITE_FIXTURES / "control_flow.tflite"
MULTI_SIGNATURE = TFLITE_FIXTURES / "multi_signature.tflite"
# Integer outputs' real values vs the float-I/O model's on the same real inputs: at most one
# quantization step (measured: 0 for uint8, int8 and int16 on 64 random inputs each).
STEP = 1.0


# -- helpers -------------------------------------------------------------------------------------

def set_types(data: bytes, spec: str) -> tuple[bytes, dict]:
    graph = graphtool.load(data)
    (report,) = transform(graph, spec).passes
    return tflite.write(graph), report.stats


def interpreter(data: bytes):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=data)


def run(data: bytes, value: np.ndarray) -> np.ndarray:
    """The model's one output for its one input, through its serving_default signature."""
    runner = interpreter(data).get_signature_runner()
    (output,) = runner(image=value).values()
    return output


def io_details(data: bytes) -> tuple[dict, dict]:
    it = interpreter(data)
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    return inp, out


def real(values: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    return scale * (values.astype(np.float64) - zero_point)


def structure(data: bytes) -> list[tuple]:
    """Operators in order: op, version, and each input's and output's type and quantization."""
    graph = graphtool.load(data)
    found = []
    for node in graph:
        if node.op in ("Input", "Const"):
            continue
        tensors = [graph.node(r.node).outputs[r.port] for r in graph.inputs_of(node.name) if r is not None]
        described = [(t.dtype, None if t.quantization is None else (t.quantization.scale.tolist(),
                                                                   t.quantization.zero_point.tolist()))
                     for t in tensors + node.outputs]
        found.append((node.op, node.meta[keys.VERSION], described))
    return found


@pytest.fixture(scope="module")
def converted(tf) -> dict[str, bytes]:
    """A small CNN with a serving_default signature (image -> probs), as TensorFlow's converter
    writes it: float; full integer with float I/O (its default); the same with uint8 and with
    int8 I/O; 16x8 with float I/O. Every quantized one calibrated on the same samples."""
    rng = np.random.default_rng(0)
    kernel = (rng.standard_normal((3, 3, 3, 8)) * 0.3).astype(np.float32)
    weights = (rng.standard_normal((128, 10)) * 0.3).astype(np.float32)
    samples = rng.standard_normal((32, 1, 8, 8, 3)).astype(np.float32)

    def model(image):
        hidden = tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(image, kernel, 1, "SAME")), 2, 2, "VALID")
        return {"probs": tf.nn.softmax(tf.matmul(tf.reshape(hidden, (-1, 128)), weights))}

    module = tf.Module()
    module.f = tf.function(model, input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32, name="image")])
    function = module.f.get_concrete_function()

    def convert(ops=None, io=None) -> bytes:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
        if ops is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([sample] for sample in samples)
            converter.target_spec.supported_ops = [ops]
        if io is not None:
            converter.inference_input_type = converter.inference_output_type = io
        return bytes(converter.convert())

    int8 = tf.lite.OpsSet.TFLITE_BUILTINS_INT8
    return {"float": convert(), "int8": convert(int8), "uint8_io": convert(int8, tf.uint8),
            "int8_io": convert(int8, tf.int8),
            "int16": convert(tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8)}


def images(count: int = 8, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, 8, 8, 3)).astype(np.float32) * 1.5 for _ in range(count)]


# -- on a converter model with float I/O -------------------------------------------------------------

@pytest.mark.litert
def test_uint8_io_gives_the_float_io_models_values_and_is_the_converters_uint8_model(converted):
    data, stats = set_types(converted["int8"], "set_io_types(inputs=uint8, outputs=uint8)")
    assert stats == {"inputs": {"serving_default_image:0": "float32 -> uint8"},
                     "outputs": {"PartitionedCall:0": "float32 -> uint8"}}
    inp, out = io_details(data)
    assert inp["dtype"] == np.uint8 and out["dtype"] == np.uint8
    quantize_out = next(n for n in graphtool.load(converted["int8"]) if n.op == "QUANTIZE").outputs[0]
    assert inp["quantization"] == pytest.approx((float(quantize_out.quantization.scale[0]),
                                                 int(quantize_out.quantization.zero_point[0]) + 128))
    assert structure(data) == structure(converted["uint8_io"])  # the converter's own uint8 I/O model
    rng = np.random.default_rng(2)
    for _ in range(8):
        u = rng.integers(0, 256, (1, 8, 8, 3)).astype(np.uint8)
        given = run(data, u)
        assert given.dtype == np.uint8
        expected = run(converted["int8"], real(u, inp).astype(np.float32))  # the same real values in
        assert np.abs(real(given, out) - expected).max() <= STEP * out["quantization"][0]
        np.testing.assert_array_equal(given, run(converted["uint8_io"], u))


@pytest.mark.litert
def test_the_reverse_gives_float_io_bit_identical_to_the_original(converted):
    uint8, _ = set_types(converted["int8"], "set_io_types(inputs=uint8, outputs=uint8)")
    back, stats = set_types(uint8, "set_io_types(inputs=float32, outputs=float32)")
    assert stats["inputs"] == {"serving_default_image:0": "uint8 -> float32"}
    assert structure(back) == structure(converted["int8"])
    int8, _ = set_types(converted["int8"], "set_io_types(inputs=int8, outputs=int8)")
    float_again, _ = set_types(int8, "set_io_types(inputs=float32, outputs=float32)")
    assert structure(float_again) == structure(converted["int8"])
    for image in images():
        expected = run(converted["int8"], image)
        np.testing.assert_array_equal(run(back, image), expected)
        np.testing.assert_array_equal(run(float_again, image), expected)


@pytest.mark.litert
def test_int8_io_is_the_converters_int8_io_model(converted):
    data, stats = set_types(converted["int8"], "set_io_types(inputs=int8, outputs=int8)")
    assert stats["outputs"] == {"PartitionedCall:0": "float32 -> int8"}
    assert structure(data) == structure(converted["int8_io"])
    graph = graphtool.load(data)
    assert [n.op for n in graph].count("QUANTIZE") == 0 and "DEQUANTIZE" not in [n.op for n in graph]
    # the boundary keeps its names: the int8 tensors took the removed float ones'
    assert graph.inputs == ["serving_default_image:0"] and graph.outputs[0].node == "PartitionedCall:0"
    (sig,) = graph.meta[keys.SIGNATURE_DEFS]
    assert [(k, t.dtype.value) for k, t in sig["inputs"] + sig["outputs"]] == [("image", "int8"), ("probs", "int8")]
    inp, out = io_details(data)
    rng = np.random.default_rng(3)
    for _ in range(8):
        q = rng.integers(-128, 128, (1, 8, 8, 3)).astype(np.int8)
        given = run(data, q)
        np.testing.assert_array_equal(given, run(converted["int8_io"], q))
        expected = run(converted["int8"], real(q, inp).astype(np.float32))
        assert np.abs(real(given, out) - expected).max() <= STEP * out["quantization"][0]


@pytest.mark.litert
def test_float16_io_on_a_float_model_rounds_only_at_the_boundary(converted):
    data, _ = set_types(converted["float"], "set_io_types(inputs=float16, outputs=float16)")
    inp, out = io_details(data)
    assert inp["dtype"] == np.float16 and out["dtype"] == np.float16
    ops = [n.op for n in graphtool.load(data) if n.op not in ("Input", "Const")]
    assert ops[0] == "DEQUANTIZE" and ops[-1] == "CAST"
    for image in images():
        half = image.astype(np.float16)
        np.testing.assert_array_equal(run(data, half), run(converted["float"], half.astype(np.float32)).astype(np.float16))
    back, _ = set_types(data, "set_io_types(inputs=float32, outputs=float32)")
    for image in images():
        np.testing.assert_array_equal(run(back, image), run(converted["float"], image))


@pytest.mark.litert
def test_int16_boundaries_go_to_int16_and_refuse_uint8(converted):
    data, stats = set_types(converted["int16"], "set_io_types(inputs=int16, outputs=int16)")
    assert stats["inputs"] == {"serving_default_image:0": "float32 -> int16"}
    inp, out = io_details(data)
    assert inp["dtype"] == np.int16 and out["dtype"] == np.int16
    rng = np.random.default_rng(4)
    q = rng.integers(-20000, 20000, (1, 8, 8, 3)).astype(np.int16)
    expected = run(converted["int16"], real(q, inp).astype(np.float32))
    assert np.abs(real(run(data, q), out) - expected).max() <= STEP * out["quantization"][0]
    with pytest.raises(PassError, match="quantized to int16 by .*: it can be float32 or int16, not uint8"):
        set_types(converted["int16"], "set_io_types(inputs=uint8)")


# -- on the committed full_int8 fixture (int8 I/O) ---------------------------------------------------

@pytest.mark.litert
def test_int8_fixture_to_float_gives_the_values_its_integers_mean():
    original = FULL_INT8.read_bytes()
    data, stats = set_types(original, "set_io_types(inputs=float32, outputs=float32)")
    assert stats == {"inputs": {"serving_default_image:0": "int8 -> float32"},
                     "outputs": {"StatefulPartitionedCall:0": "int8 -> float32"}}
    graph = graphtool.load(data)
    assert [(n.op, n.meta[keys.VERSION]) for n in graph if n.op in ("QUANTIZE", "DEQUANTIZE")] == [
        ("QUANTIZE", 1), ("DEQUANTIZE", 2)]  # op_version.cc: DEQUANTIZE of int8 is version 2
    inp, out = io_details(original)
    rng = np.random.default_rng(5)
    for _ in range(8):
        q = rng.integers(-128, 128, (1, 8, 8, 1)).astype(np.int8)
        given = run(data, real(q, inp).astype(np.float32))
        expected = run(original, q)
        # the same integers: the float output requantizes to the fixture's own, exactly
        scale, zero_point = out["quantization"]
        np.testing.assert_array_equal(np.round(given / scale) + zero_point, expected)
        np.testing.assert_allclose(given, real(expected, out), rtol=1e-6, atol=0)


def test_int8_to_float_and_back_gives_the_fixture_byte_for_byte():
    original = FULL_INT8.read_bytes()
    floated, _ = set_types(original, "set_io_types(inputs=float32, outputs=float32)")
    back, _ = set_types(floated, "set_io_types(inputs=int8, outputs=int8)")
    assert back == original
    graph = graphtool.load(original)
    transform(graph, "set_io_types(inputs=float32, outputs=float32) set_io_types(inputs=int8, outputs=int8)")
    assert tflite.write(graph) == original


@pytest.mark.litert
def test_an_integer_input_takes_the_float_inputs_place(tmp_path):
    """quantize_nodes appends the QUANTIZE's integer tensor after every tensor read; once
    set_io_types makes it the input, it is written where the float input was (first, as the
    converter and ai-edge-quantizer write their integer models), not last."""
    samples = tmp_path / "samples.npz"
    np.savez(samples, image=np.random.default_rng(0).random((4, 8, 8, 1), np.float32))
    graph = graphtool.load(FLOAT_CNN)
    first = graphtool.load(FLOAT_CNN).inputs[0]
    transform(graph, f"quantize_nodes(calibration={samples}) set_io_types(inputs=int8)")
    written = graphtool.load(tflite.write(graph))
    (name,) = written.inputs
    tensor = written.node(name).outputs[0]
    assert (name, tensor.dtype.value, tensor.meta[keys.INDEX]) == (first, "int8", 0)


def test_float16_output_raises_op_versions_and_min_runtime():
    data, _ = set_types(FULL_INT8.read_bytes(), "set_io_types(outputs=float16)")
    graph = graphtool.load(data)
    assert [(n.op, n.meta[keys.VERSION]) for n in graph if n.op in ("DEQUANTIZE", "CAST")] == [
        ("DEQUANTIZE", 2), ("CAST", 5)]  # op_version.cc: CAST to float16 is version 5 ...
    assert versions.decode_runtime(graph.meta[keys.METADATA]["min_runtime_version"]) == "2.12.0"  # ... from 2.12


def test_types_the_model_has_already_change_nothing():
    graph = graphtool.load(FULL_INT8.read_bytes())
    (report,) = transform(graph, 'set_io_types(inputs=int8, outputs="probs:int8")').passes
    assert not report.changed and report.stats == {"inputs": {}, "outputs": {}}
    assert tflite.write(graph) == FULL_INT8.read_bytes()


def test_the_same_model_and_spec_give_the_same_bytes():
    spec = 'set_io_types(inputs=float16, outputs="StatefulPartitionedCall:0:uint8")'
    assert set_types(FULL_INT8.read_bytes(), spec)[0] == set_types(FULL_INT8.read_bytes(), spec)[0]


RUNNABLE = sorted(name for name, entry in tflite_manifest().items() if entry["runs_in_litert"])
TYPES = ("float32", "float16", "int8", "uint8", "int16")


@pytest.mark.litert
@pytest.mark.parametrize("name", RUNNABLE)
def test_every_fixture_and_type_is_refused_or_runs_in_litert(name):
    """Each pair of input and output types on each fixture: a one-line PassError, or a model
    LiteRT runs (full_int8 takes 16 of the 25 pairs; the float models the float ones)."""
    original = (TFLITE_FIXTURES / name).read_bytes()
    taken = 0
    for inputs in TYPES:
        for outputs in TYPES:
            try:
                data, _ = set_types(original, f"set_io_types(inputs={inputs}, outputs={outputs})")
            except PassError as exc:
                assert "\n" not in str(exc)
                continue
            run_litert(data, random_inputs(interpreter(data)))
            taken += 1
    assert taken >= 4


# -- names, signatures, several subgraphs ------------------------------------------------------------

@pytest.mark.litert
def test_every_signature_is_set_and_a_name_picks_one_input():
    original = MULTI_SIGNATURE.read_bytes()
    data, stats = set_types(original, 'set_io_types(inputs=float16, outputs=float16, inputs="gain:float32")')
    assert stats["inputs"] == {"decode_code:0": "float32 -> float16", "encode_x:0": "float32 -> float16"}
    rng = np.random.default_rng(6)
    x, code = rng.standard_normal((2, 4)).astype(np.float16), rng.standard_normal((2, 3)).astype(np.float16)
    before, after = interpreter(original), interpreter(data)
    got = after.get_signature_runner("encode")(x=x)["code"]
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, before.get_signature_runner("encode")(x=x.astype(np.float32))["code"]
                                  .astype(np.float16))
    got = after.get_signature_runner("decode")(code=code, gain=np.float32(2))["recon"]
    np.testing.assert_array_equal(got, before.get_signature_runner("decode")(
        code=code.astype(np.float32), gain=np.float32(2))["recon"].astype(np.float16))


def test_inputs_that_are_not_real_valued_stay_unless_named():
    data, stats = set_types(CONTROL_FLOW.read_bytes(), "set_io_types(inputs=float16)")
    assert stats["inputs"] == {"serving_default_x:0": "float32 -> float16"}  # steps (int32) stays
    graph = graphtool.load(data)
    assert [graph.node(n).outputs[0].dtype.value for n in graph.inputs] == ["int32", "float16"]
    with pytest.raises(PassError, match="input 'serving_default_steps:0' is int32: only real-valued"):
        set_types(CONTROL_FLOW.read_bytes(), 'set_io_types(inputs="steps:float16")')


REFUSALS = [
    ("set_io_types(inputs=int8)", FLOAT_CNN,
     "input 'serving_default_image:0' is read by CONV_2D .*, not by a plain QUANTIZE: the model computes on it"),
    ("set_io_types(outputs=uint8)", FLOAT_CNN,
     "output 'StatefulPartitionedCall:0' is computed by SOFTMAX .*, not by a plain DEQUANTIZE"),
    ('set_io_types(inputs="nope:int8")', FULL_INT8,
     r"the model has no input named 'nope' \(inputs: image, serving_default_image:0\)"),
    ("set_io_types(outputs=bfloat16)", FULL_INT8, "outputs='bfloat16': the type must be one of float32, float16"),
    ("set_io_types(inputs=int16)", FULL_INT8,
     "input 'serving_default_image:0' is int8, the model computes it in int8: it can be float32, int8 or uint8"),
    ("set_io_types", FULL_INT8, "give inputs=TYPE and/or outputs=TYPE"),
]


@pytest.mark.parametrize("spec, path, message", REFUSALS)
def test_refusals_say_why_and_leave_the_graph_as_it_was(spec, path, message):
    graph = graphtool.load(path.read_bytes())
    with pytest.raises(PassError, match=message):
        transform(graph, spec)
    assert tflite.write(graph) == path.read_bytes()


def test_a_float_output_that_float_operators_also_read_is_refused():
    graph = graphtool.load(FULL_INT8.read_bytes())
    transform(graph, "set_io_types(outputs=float32)")
    _add_reader(graph, graph.outputs[0])
    with pytest.raises(PassError, match="output 'StatefulPartitionedCall:0' of DEQUANTIZE .* is also read by RELU"):
        transform(graph, "set_io_types(outputs=int8)")


def _add_reader(graph: Graph, ref) -> None:
    from graphtool.ir import Node, Tensor

    tensor = graph.node(ref.node).outputs[ref.port]
    graph.add_node(Node("reader", "RELU", outputs=[Tensor("reader", tensor.dtype, tensor.shape)],
                        meta={keys.VERSION: 1}), inputs=[ref])
    graph.outputs = [*graph.outputs, type(ref)("reader", 0)]


@pytest.mark.parametrize("path, spec", [
    (FLOAT_CNN, "set_io_types(inputs=int8)"),  # no QUANTIZE at the boundary
    (FULL_INT8, "set_io_types(inputs=int16)"),  # int8 computed, int16 asked
    (FULL_INT8, 'set_io_types(inputs="nope:uint8")'),  # no such input
    (FULL_INT8, "set_io_types(inputs=float64)"),  # not an I/O type
])
def test_the_command_line_refuses_with_one_line_and_no_output(tmp_path, path, spec):
    out = tmp_path / "out.tflite"
    result = subprocess.run([sys.executable, "-m", "graphtool", "transform", str(path), str(out),
                             "--transforms", spec], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("graphtool: error: ")
    assert not out.exists() and list(tmp_path.iterdir()) == []
