"""verify --layers: pairs intermediate tensors across models and formats, measures each pair's
error (accumulated, and of the layer alone) in the real runtimes, and names the first layer
where the error jumps. A float .tflite against its quantize_nodes version with one layer's
scale corrupted names that layer; a frozen GraphDef against its own TFLite conversion agrees
layer by layer within float rounding."""
from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

import graphtool
from graphtool.analysis.layers import (
    CEILING_DB,
    JUMP_DB,
    LayerResult,
    first_divergence,
    layers_html,
    name_aliases,
    pair_tensors,
    tflite_layer_tensors,
    verify_layers,
)
from graphtool.formats.tflite import keys
from graphtool.ir.quantization import dequantize

from ..conftest import FIXTURES, GRAPHDEF_FIXTURES, TFLITE_FIXTURES
from .test_report import MIN_PIXELS, SERIES_COLOURS, colour_pixels, needs_matplotlib, screenshot
from .test_verify import run_cli

HIGHLIGHT_RGB = (0xD6, 0x27, 0x28)  # report.HIGHLIGHT_COLOR

FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
DIGITS = TFLITE_FIXTURES / "digits_test.npz"
CNN = GRAPHDEF_FIXTURES / "keras2_cnn.pb"
PRUNED = FIXTURES / "pruned"
BROKEN_OP = "DEPTHWISE_CONV_2D"
SCALE_FACTOR = 0.05  # the broken layer's output scale, 20x too small: most of its values saturate
CONVERSION_TOLERANCE = 1e-4  # TensorFlow vs LiteRT kernels on one float graph (test_verify.py)
SQNR_AGREEMENT = 1e-6  # dB: the report's SQNR against one computed here from LiteRT's own tensors
MIN_COVERAGE = 0.9



@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """float_cnn.tflite, its quantize_nodes version (calibrated on 64 digits), that version with
    the depthwise layer's output scale corrupted, and 12 other digits as inputs."""
    root = tmp_path_factory.mktemp("layers")
    digits = np.load(DIGITS)["images"].astype(np.float32)
    np.savez(root / "calibration.npz", image=digits[:64])
    np.savez(root / "fresh.npz", image=digits[200:212])
    graph = graphtool.load(FLOAT_CNN)
    graphtool.transform(graph, f"quantize_nodes(calibration={root / 'calibration.npz'})")
    graphtool.save(graph, root / "int8.tflite")
    [node] = [n for n in graph if n.op == BROKEN_OP]
    tensor = node.outputs[0]
    tensor.quantization = dataclasses.replace(tensor.quantization, scale=tensor.quantization.scale * SCALE_FACTOR)
    graphtool.save(graph, root / "broken.tflite")
    return {"int8": root / "int8.tflite", "broken": root / "broken.tflite", "data": root / "fresh.npz",
            "broken_tensor": tensor.name, "root": root}


@pytest.fixture(scope="module")
def broken_report(models):
    return verify_layers(FLOAT_CNN, models["broken"], data=models["data"])


@pytest.mark.litert
def test_a_corrupted_scale_is_named_the_first_divergence(models, broken_report):
    report = broken_report
    assert report.first_divergence == models["broken_tensor"]
    names = [layer.b for layer in report.layers]
    broken = report.layers[names.index(models["broken_tensor"])]
    assert broken.op == BROKEN_OP and broken.drop_db >= JUMP_DB
    before = report.layers[:broken.index]
    assert before and all(layer.drop_db < JUMP_DB for layer in before)  # the layers before it are fine
    assert not report.passed  # and the outputs show it


@pytest.mark.litert
def test_the_layer_alone_isolates_the_fault(broken_report):
    """After the broken layer the accumulated error stays high, but layers that do not read its
    tensor, run alone on the float model's inputs, are as good as int8 gets."""
    layers = {layer.op: layer for layer in broken_report.layers}
    assert layers[BROKEN_OP].layer_sqnr_db < 10
    for op in ("MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE"):
        assert layers[op].sqnr_db < 10 and layers[op].layer_sqnr_db > 30, layers[op]


@pytest.mark.litert
def test_the_intact_quantized_model_has_no_divergence(models):
    report = verify_layers(FLOAT_CNN, models["int8"], data=models["data"])
    assert report.first_divergence is None
    assert all(layer.sqnr_db > 30 for layer in report.layers)  # int8: ~40 dB per layer measured
    assert all(layer.matched_by == "name" for layer in report.layers)
    assert [layer.index for layer in report.layers] == list(range(len(report.layers)))


@pytest.mark.litert
def test_the_figures_are_what_litert_computes(models, broken_report):
    """The broken layer's SQNR, from the tensors LiteRT keeps in a plain interpreter of each model."""
    from ai_edge_litert.interpreter import Interpreter

    inputs = np.load(models["data"])["image"]

    def tensor_values(path, name):
        graph = graphtool.load(path)
        tensor = next(t for n in graph for t in n.outputs if t.name == name)
        with warnings.catch_warnings():  # LiteRT warns that keeping every tensor costs memory
            warnings.simplefilter("ignore", UserWarning)
            interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
        detail = interpreter.get_input_details()[0]
        values = []
        for image in inputs:
            interpreter.resize_tensor_input(detail["index"], [1, *image.shape])
            interpreter.allocate_tensors()
            interpreter.set_tensor(detail["index"], image[None])
            interpreter.invoke()
            raw = interpreter.get_tensor(tensor.meta[keys.INDEX])
            q = tensor.quantization
            values.append(dequantize(raw, q.scale, q.zero_point) if q is not None and q.scale.size else raw)
        return np.concatenate(values).astype(np.float64)

    a = tensor_values(FLOAT_CNN, models["broken_tensor"])
    b = tensor_values(models["broken"], models["broken_tensor"])
    expected = 10 * np.log10(np.sum(a * a) / np.sum((b - a) ** 2))
    [layer] = [layer for layer in broken_report.layers if layer.b == models["broken_tensor"]]
    assert abs(layer.sqnr_db - expected) < SQNR_AGREEMENT
    assert layer.max_abs_error == pytest.approx(np.max(np.abs(b - a)), abs=1e-9)


@pytest.mark.litert
def test_graphdef_against_its_conversion_agrees_layer_by_layer(tf, tmp_path):
    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
        str(CNN), input_arrays=["input"], output_arrays=["Identity"], input_shapes={"input": [1, 8, 8, 1]})
    converted = tmp_path / "keras2_cnn.tflite"
    converted.write_bytes(converter.convert())
    report = verify_layers(CNN, converted, samples=4)
    assert (report.runtime_a, report.runtime_b) == ("TensorFlow", "LiteRT")
    assert report.coverage >= MIN_COVERAGE and report.layers
    for layer in report.layers:
        assert layer.within_tolerance and layer.max_abs_error < CONVERSION_TOLERANCE, layer
        assert layer.layer_problem is None and layer.layer_max_abs_error < CONVERSION_TOLERANCE, layer
    assert any(layer.max_abs_error > 0 for layer in report.layers)  # really two runtimes
    fused = [layer for layer in report.layers if ";" in layer.b]
    assert fused and all(layer.a.removesuffix(":0") in layer.b.split(";") for layer in fused)
    assert fused[0].a == "keras2_cnn/relu6/Relu6:0"  # of conv, bn1 and relu6 fused: what relu6 gives
    assert report.first_divergence is None and report.passed


@pytest.mark.litert
def test_names_pair_across_a_savedmodel_scope(tf):
    """A GraphDef read from a SavedModel calls its nodes `StatefulPartitionedCall/digits_cnn/...`,
    the converter's .tflite `digits_cnn/...;digits_cnn/...`: they still pair, each fused operator
    with the node it computes last, and a transposed weight named after its convolution with
    nothing (its shape is not the convolution's output's)."""
    graph = graphtool.load(PRUNED / "pruned_cnn_savedmodel")
    graphtool.transform(graph, "strip_pruning")
    converted = graphtool.load(PRUNED / "pruned_cnn.tflite")  # its masks are resource variables CALL_ONCE sets
    with_variables = verify_layers(graph, converted, samples=2)
    [conv] = [layer for layer in with_variables.layers if layer.op == "CONV_2D"][:1]
    assert "needs the model's state" in conv.layer_problem and conv.within_tolerance
    graphtool.transform(converted, "strip_pruning")
    report = verify_layers(graph, converted, samples=2)
    # all but the first CONV_2D and the batch norm's MUL after it, which the converter left unfused
    # and named `conv/Conv2D1` and `bn/FusedBatchNormV32` (uniquified): no name says what they are
    assert report.paired_operators == report.operators_b - 2
    by_op = {}
    for layer in report.layers:
        assert layer.within_tolerance and layer.max_abs_error < CONVERSION_TOLERANCE, layer
        by_op.setdefault(layer.op, []).append(layer.a)
    assert by_op["ADD"] == ["StatefulPartitionedCall/digits_cnn/prune_low_magnitude_relu/Relu:0"]  # bn + relu
    assert by_op["CONV_2D"] == ["StatefulPartitionedCall/digits_cnn/prune_low_magnitude_pw/Relu:0"]
    assert by_op["FULLY_CONNECTED"][0] == "StatefulPartitionedCall/digits_cnn/prune_low_magnitude_fc/Relu:0"
    assert [layer.matched_by for layer in report.layers].count("output") == 1  # the softmax, as verify pairs it


def test_converter_names_pair_without_running_anything():
    """The converter's float and full-int8 conversions of one network name their tensors alike:
    every operator's output pairs by name (IR only, no runtime)."""
    a, b = graphtool.load(FLOAT_CNN), graphtool.load(TFLITE_FIXTURES / "full_int8.tflite")
    tensors_a, tensors_b = tflite_layer_tensors(a), tflite_layer_tensors(b)
    pairs = pair_tensors(a, b, tensors_a, tensors_b)
    assert len(pairs) == len(tensors_b) == 9 and {how for _, _, how in pairs} == {"name"}
    assert all(a.tensor(x).name == b.tensor(y).name for x, y, _ in pairs)
    assert [y for _, y, _ in pairs] == tensors_b  # in B's execution order


def test_tensors_whose_shapes_cannot_agree_do_not_pair():
    a = graphtool.load(FLOAT_CNN)
    tensors = tflite_layer_tensors(a)
    reshape = next(ref for ref in tensors if a.node(ref.node).op == "RESHAPE")
    transposed = {reshape: (256, 1)}  # as if B's tensor of that name held something else

    def shape_b(ref):
        return transposed.get(ref, a.tensor(ref).shape)

    pairs = pair_tensors(a, a, tensors, tensors, shape_b=shape_b)
    assert reshape not in {y for _, y, _ in pairs} and len(pairs) == len(tensors) - 1


def test_scoped_names_and_fused_names():
    assert name_aliases("model/conv/Relu:0") == ("model/conv/Relu:0", "model/conv/Relu")
    assert name_aliases("outer/model/conv/Relu", scoped=True) == ("outer/model/conv/Relu", "model/conv/Relu",
                                                               "conv/Relu")
    assert name_aliases("a/b/Relu;a/b/BiasAdd", scoped=True) == ("a/b/Relu;a/b/BiasAdd",)  # parts one by one


def test_first_divergence_rule():
    def layer(name, sqnr, drop, within=False):
        return LayerResult(0, name, name, "OP", "name", sqnr_db=sqnr, drop_db=drop, within_tolerance=within)

    assert first_divergence([layer("a", 38.0, 2.0), layer("b", 20.0, 18.0), layer("c", 5.0, 15.0)]) == "b"
    assert first_divergence([layer("a", 38.0, 2.0), layer("b", 31.0, 9.9)]) is None
    assert first_divergence([layer("a", 38.0, 2.0), layer("b", 31.0, 9.9)], jump_db=5) == "b"
    assert first_divergence([layer("a", 20.0, 30.0, within=True)]) is None  # inside the tolerance: no fault
    assert CEILING_DB > JUMP_DB


# -- the command line --------------------------------------------------------------------------

@pytest.mark.litert
def test_cli_json_names_the_layer_and_exits_1(monkeypatch, capsys, models):
    code, out, _ = run_cli(monkeypatch, capsys, "verify", FLOAT_CNN, models["broken"], "--layers",
                           "--data", models["data"], "--json")
    data = json.loads(out)
    assert code == 1 and data["first_divergence"] == models["broken_tensor"]
    assert [layer["index"] for layer in data["layers"]] == list(range(len(data["layers"])))
    assert {"a", "b", "op", "sqnr_db", "max_abs_error", "cosine", "layer_sqnr_db", "drop_db"} <= set(data["layers"][0])
    code, again, _ = run_cli(monkeypatch, capsys, "verify", FLOAT_CNN, models["broken"], "--layers",
                             "--data", models["data"], "--json")
    assert again == out  # byte-identical for identical inputs


@pytest.mark.litert
def test_cli_text_html_and_png(monkeypatch, capsys, models, tmp_path):
    page, image = tmp_path / "report.html", tmp_path / "sqnr.png"
    code, out, _ = run_cli(monkeypatch, capsys, "verify", FLOAT_CNN, models["int8"], "--layers",
                           "--data", models["data"], "--atol", "0.05", "--html", page, "--png", image)
    assert code == 0 and out.strip().splitlines()[-1] == "PASS: every output is within tolerance"
    assert "first divergence: none" in out
    assert image.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    text = page.read_text()
    assert "<svg" in text and "<script" not in text and "digits_cnn/dwconv" in text
    first = page.read_bytes()
    run_cli(monkeypatch, capsys, "verify", FLOAT_CNN, models["int8"], "--layers", "--data", models["data"],
            "--atol", "0.05", "--html", page)
    assert page.read_bytes() == first


@pytest.mark.litert
@needs_matplotlib
def test_the_report_renders_in_chromium(broken_report, tmp_path):
    """The page verify --layers --html writes, in a real browser: both series are drawn, and the
    first divergence is marked (a dashed red line) and set apart in the table."""
    page = layers_html(broken_report)
    image = screenshot(page, tmp_path)
    for name, colour in SERIES_COLOURS.items():
        assert colour_pixels(image, colour) >= MIN_PIXELS, name
    assert colour_pixels(image, HIGHLIGHT_RGB) >= MIN_PIXELS // 4
    assert page.count('class="highlight"') == 1


@pytest.mark.litert
def test_cli_bad_usage_exits_2_and_writes_nothing(monkeypatch, capsys, models, tmp_path):
    page = tmp_path / "report.html"
    code, _, err = run_cli(monkeypatch, capsys, "verify", FLOAT_CNN, models["int8"], "--html", page)
    assert code == 2 and "--html and --png need --layers" in err and not page.exists()
    code, _, err = run_cli(monkeypatch, capsys, "verify", FLOAT_CNN, tmp_path / "missing.tflite", "--layers",
                           "--html", page)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "missing.tflite" in err and not page.exists()
