"""graphtool.runtime.tflite_convert and graphtool.convert_to_tflite: settings checked before
TensorFlow loads; the Python API's ConversionResult; the SavedModel route through TF 2's
converter; and the evidence behind each setting graphtool refuses as "not honoured": TF
2.21's converter makes the same bytes with and without it."""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict

import numpy as np
import pytest

import graphtool
from graphtool.cli.main import main
from graphtool.runtime.tflite_convert import (
    ConversionOptionsError,
    ConverterSettings,
    ConverterSource,
    convert_with_tensorflow,
)


def values(shape, seed) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def concat_graph(tf, path):
    """x -> conv + ReLU6, concatenated with y -> MatMul -> softmax: a concat for
    change_concat_input_ranges, two inputs for the input stats."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (1, 6, 6, 3), name="x")
        y = tf.compat.v1.placeholder(tf.float32, (1, 6, 6, 4), name="y")
        conv = tf.nn.relu6(tf.nn.conv2d(x, tf.constant(values((3, 3, 3, 4), 1)), 1, "SAME"))
        joined = tf.reshape(tf.concat([conv, y], 3), [1, 288])
        tf.nn.softmax(tf.matmul(joined, tf.constant(values((288, 5), 2))), name="probs")
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


UINT8 = ConverterSettings(inference_type="QUANTIZED_UINT8", quantized_input_stats={"x": (128, 127), "y": (128, 127)},
                          default_ranges_stats=(0, 6))


@pytest.mark.parametrize("settings, message", [
    (ConverterSettings(inference_type="INT4"), "inference_type 'INT4' is not one of"),
    (ConverterSettings(post_training_quantize=True, inference_type="INT8"), "quantizes a float model"),
    (ConverterSettings(quantize_to_float16=True), "only with post_training_quantize"),
    (ConverterSettings(inference_type="INT8", default_ranges_stats=(1, 6)), "must hold 0"),
    (ConverterSettings(default_ranges_stats=(0, 6)), "only for quantized inference"),
    (ConverterSettings(quantized_input_stats={"x": (0, 1)}), "only for quantized inputs"),
    (ConverterSettings(inference_type="INT8", quantized_input_stats={"x": (0.5, 1)}), "must be an integer"),
    (ConverterSettings(inference_type="INT8", quantized_input_stats={"x": (0, 0)}), "must be positive"),
    (ConverterSettings(supported_ops=("TFLITE_BUILTINS", "FLEX")), "FLEX unknown"),
    (ConverterSettings(select_user_tf_ops=("MyOp",)), "needs SELECT_TF_OPS"),
    (ConverterSettings(change_concat_input_ranges=True), "not honoured"),
])
def test_bad_settings_are_refused_before_tensorflow_loads(settings, message, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # importing TensorFlow would fail
    with pytest.raises(ConversionOptionsError, match=message):
        convert_with_tensorflow(ConverterSource("graphdef", "g.pb", ("x",), ("y",)), settings)


@pytest.mark.parametrize("source, message", [
    (ConverterSource("graphdef", "g.pb"), "input arrays and output arrays are needed"),
    (ConverterSource("graphdef", "g.pb", ("x",), ("y",), converter="v2"), "does not read frozen GraphDefs"),
    (ConverterSource("saved_model", "d", ("x",), converter="v2"), "takes no input/output arrays"),
    (ConverterSource("graphdef", "g.pb", ("x",), ("y",), {"z": (1,)}), "not input arrays"),
    (ConverterSource("keras", "m.h5", signature_key="serving_default"), "SavedModel only"),
])
def test_bad_sources_are_refused(source, message):
    with pytest.raises(ConversionOptionsError, match=message):
        source.check(ConverterSettings())


def test_v2_refuses_tf1_only_settings():
    with pytest.raises(ConversionOptionsError, match="use the TF1 one"):
        ConverterSource("saved_model", "d", converter="v2").check(UINT8)


def test_without_tensorflow_the_error_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    graph = tmp_path / "g.pb"
    graph.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    assert main(["convert", str(graph), str(tmp_path / "g.tflite"), "--input_arrays=x", "--output_arrays=y"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "converting to TFLite needs TensorFlow" in err and "[tf]'" in err
    assert not (tmp_path / "g.tflite").exists()


def test_python_api_returns_a_conversion_result(tf, tmp_path):
    graph, out = concat_graph(tf, tmp_path / "g.pb"), tmp_path / "g.tflite"
    result = graphtool.convert_to_tflite(graph, out, input_arrays=["x", "y"], output_arrays=["probs"], settings=UINT8)
    data = out.read_bytes()
    assert isinstance(result, graphtool.ConversionResult)
    assert (result.bytes, result.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert result.converter == "tf.compat.v1.lite.TFLiteConverter.from_frozen_graph"
    assert result.settings["quantized_input_stats"] == {"x": [128, 127], "y": [128, 127]}
    assert result.input_stats_from == "flags" and result.transforms == []
    json.dumps(asdict(result))  # --json is this data
    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(str(graph), ["x", "y"], ["probs"])
    converter.inference_type = tf.uint8
    converter.quantized_input_stats = {"x": (128, 127.0), "y": (128, 127.0)}
    converter.default_ranges_stats = (0, 6)
    assert data == converter.convert()


def test_transforms_run_before_the_converter(tf, tmp_path):
    """The pipeline runs on the frozen graph, its report comes back, the result converts; a
    converter failure after it names the model, not the scratch file."""
    graph, out = concat_graph(tf, tmp_path / "g.pb"), tmp_path / "g.tflite"
    result = graphtool.convert_to_tflite(graph, out, input_arrays=["x", "y"], output_arrays=["probs"],
                                         transforms="sort_by_execution_order")
    assert [p["name"] for p in result.transforms] == ["sort_by_execution_order"]
    assert result.bytes == out.stat().st_size and out.read_bytes()[4:8] == b"TFL3"
    with pytest.raises(graphtool.GraphtoolError, match=rf"^{graph} \(after --transforms\): TensorFlow cannot load"):
        graphtool.convert_to_tflite(graph, tmp_path / "bad.tflite", input_arrays=["nope"], output_arrays=["probs"],
                                    transforms="sort_by_execution_order")
    assert not (tmp_path / "bad.tflite").exists()


@pytest.mark.litert
def test_saved_model_goes_through_tf2s_converter(tf, tmp_path, capsys):
    class Scale(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="v")])
        def __call__(self, v):
            return {"out": tf.nn.relu(v * tf.constant([1.0, -2.0, 3.0, -4.0]))}

    module = Scale()
    saved = tmp_path / "saved_model"
    tf.saved_model.save(module, str(saved), signatures=module.__call__.get_concrete_function())
    out = tmp_path / "foo.tflite"
    assert main(["convert", f"--saved_model_dir={saved}", f"--output_file={out}"]) == 0
    assert "tf.lite.TFLiteConverter.from_saved_model" in capsys.readouterr().out
    assert out.read_bytes() == tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert()

    v1 = tmp_path / "v1.tflite"
    assert main(["convert", str(saved), str(v1), "--enable_v1_converter"]) == 0
    assert "tf.compat.v1.lite.TFLiteConverter.from_saved_model" in capsys.readouterr().out
    transformed = tmp_path / "transformed.tflite"  # the frozen serving signature, transformed, then TF1's converter
    assert main(["convert", str(saved), str(transformed), "--transforms", "fold_constants(ignore_errors=true)"]) == 0
    assert "tf.compat.v1.lite.TFLiteConverter.from_frozen_graph" in capsys.readouterr().out
    from graphtool.runtime.litert import TfliteModel

    v = np.array([[1, 1, 1, 1]], np.float32)
    for model in (out, v1, transformed):
        np.testing.assert_array_equal(TfliteModel(model.read_bytes()).run([v])[0], [[1, 0, 3, 0]])


# -- what "not honoured" rests on ---------------------------------------------------------------------

@pytest.mark.parametrize("attribute, value", [
    ("change_concat_input_ranges", True),
    ("reorder_across_fake_quant", True),
    ("experimental_new_converter", False),
    ("output_format", "GRAPHVIZ_DOT"),
])
def test_refused_settings_change_nothing_in_tf_2_21(tf, tmp_path, attribute, value):
    graph = concat_graph(tf, tmp_path / "g.pb")

    def convert(**extra):
        converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(str(graph), ["x", "y"], ["probs"])
        converter.inference_type = tf.uint8
        converter.quantized_input_stats = {"x": (128, 127.0), "y": (128, 127.0)}
        converter.default_ranges_stats = (0, 6)
        for name, setting in extra.items():
            setattr(converter, name, setting)
        return converter.convert()

    if attribute == "output_format":
        value = tf.compat.v1.lite.constants.GRAPHVIZ_DOT
    assert convert(**{attribute: value}) == convert()


def test_dump_graphviz_dir_writes_nothing_in_tf_2_21(tf, tmp_path):
    graph, dump = concat_graph(tf, tmp_path / "g.pb"), tmp_path / "dump"
    dump.mkdir()
    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(str(graph), ["x", "y"], ["probs"])
    converter.dump_graphviz_dir = str(dump)
    converter.dump_graphviz_video = True
    converter.convert()
    assert list(dump.iterdir()) == []
