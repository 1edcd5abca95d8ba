"""`graphtool convert` with tflite_convert's TF1 flags.

Each documented TF1 command line (tensorflow/lite/g3doc/r1/convert/cmdline_examples.md; the
select-TF-ops one from guide/ops_select.md; post-training quantization from the
performance/post_training_quantization page, with --input_arrays/--output_arrays added since
a frozen graph needs them) runs through `graphtool convert` with those flags, on a small
tf.compat.v1 graph whose node names are the documentation's, and must give the bytes
tf.compat.v1.lite.TFLiteConverter.from_frozen_graph gives with the same settings in Python.
Then --transforms on the digits CNN, and the refusals: exit 2, one line, no output."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphtool.cli.main import main

from ..conftest import GRAPHDEF_FIXTURES, run_litert

MOBILENET_OUT = "MobilenetV1/Predictions/Reshape_1"
INCEPTION_INPUTS = ("InceptionV1/InceptionV1/Mixed_3b/Branch_1/Conv2d_0a_1x1/Relu",
                    "InceptionV1/InceptionV1/Mixed_3b/Branch_2/Conv2d_0a_1x1/Relu",
                    "InceptionV1/InceptionV1/Mixed_3b/Branch_3/MaxPool_0a_3x3/MaxPool",
                    "InceptionV1/InceptionV1/Mixed_3b/Branch_0/Conv2d_0a_1x1/Relu")
INCEPTION_SHAPES = "1,28,28,96:1,28,28,16:1,28,28,192:1,28,28,64"
INCEPTION_OUT = "InceptionV1/Logits/Predictions/Reshape_1"
FLOAT_ATOL = 1e-5          # LiteRT's float kernels against TensorFlow's, same weights
ACCURACY_POINTS = 0.01     # the int8 digits model within 1 point of the float model's test accuracy
EPOCHS = 20


def values(shape, seed, low=-1.0, high=1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def write_graph(tf, path: Path, body) -> Path:
    graph = tf.Graph()
    with graph.as_default():
        body()
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def mobilenet_like(tf, path: Path) -> Path:
    """input [?, 16, 16, 3] -> conv 3x3 (48 channels: 1,296 weights, enough for the converter's
    weight quantization) + bias + ReLU6 -> depthwise + ReLU6 -> average pool -> 1x1
    conv to 10 classes -> Reshape -> Softmax named as MobileNet's prediction."""
    def body():
        x = tf.compat.v1.placeholder(tf.float32, (None, 16, 16, 3), name="input")
        y = tf.nn.conv2d(x, tf.constant(values((3, 3, 3, 48), 1)), 2, "SAME")
        y = tf.nn.relu6(tf.nn.bias_add(y, tf.constant(values(48, 2))))
        y = tf.nn.relu6(tf.nn.depthwise_conv2d(y, tf.constant(values((3, 3, 48, 1), 3)), [1, 1, 1, 1], "SAME"))
        y = tf.nn.avg_pool2d(y, 8, 8, "VALID")
        y = tf.nn.conv2d(y, tf.constant(values((1, 1, 48, 10), 4)), 1, "SAME")
        y = tf.reshape(y, [-1, 10], name="MobilenetV1/Predictions/Reshape")
        tf.nn.softmax(y, name=MOBILENET_OUT)
    return write_graph(tf, path, body)


def inception_like(tf, path: Path) -> Path:
    """Four inputs named as Inception V1's Mixed_3b branches -> concat -> 1x1 conv -> mean -> softmax."""
    def body():
        branches = [tf.compat.v1.placeholder(tf.float32, (None, None, None, c), name=name)
                    for name, c in zip(INCEPTION_INPUTS, (96, 16, 192, 64))]
        y = tf.concat(branches, 3)
        y = tf.nn.relu(tf.nn.conv2d(y, tf.constant(values((1, 1, 368, 8), 5)), 1, "SAME"))
        tf.nn.softmax(tf.reduce_mean(y, [1, 2]), name=INCEPTION_OUT)
    return write_graph(tf, path, body)


def cumprod_graph(tf, path: Path) -> Path:
    """input [1, 4] -> Relu -> Cumprod (no TFLite builtin) -> Reshape named as MobileNet's output."""
    def body():
        x = tf.compat.v1.placeholder(tf.float32, (1, 4), name="input")
        tf.reshape(tf.math.cumprod(tf.nn.relu(x) + 1.0, axis=1), [1, 4], name=MOBILENET_OUT)
    return write_graph(tf, path, body)


def python_converter(tf, graph: Path, inputs, outputs, shapes=None):
    """What the flags stand for, called in Python as TF1 code did."""
    return tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(str(graph), list(inputs), list(outputs),
                                                               input_shapes=shapes)


def run_cli(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def converted_by_graphtool(argv, capsys, output: Path) -> bytes:
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert out.startswith(f"wrote {output} ")
    return output.read_bytes()


# -- the documented TF1 command lines -----------------------------------------------------------

@pytest.mark.litert
def test_frozen_float_graph(tf, tmp_path, capsys):
    graph, out = mobilenet_like(tf, tmp_path / "frozen_graph.pb"), tmp_path / "foo.tflite"
    model = converted_by_graphtool(["convert", f"--graph_def_file={graph}", f"--output_file={out}",
                                    "--input_arrays=input", f"--output_arrays={MOBILENET_OUT}"], capsys, out)
    assert model == python_converter(tf, graph, ["input"], [MOBILENET_OUT]).convert()
    image = values((1, 16, 16, 3), 6, 0, 1)
    from graphtool.runtime.tensorflow import run_graphdef

    (expected,) = run_graphdef(graph.read_bytes(), {"input": image}, [MOBILENET_OUT])
    np.testing.assert_allclose(run_litert(model, [image])[0], expected, atol=FLOAT_ATOL)


def test_quantized_uint8_with_input_stats_and_default_ranges(tf, tmp_path, capsys):
    graph, out = mobilenet_like(tf, tmp_path / "frozen_graph.pb"), tmp_path / "foo.tflite"
    model = converted_by_graphtool(["convert", f"--graph_def_file={graph}", f"--output_file={out}",
                                    "--input_arrays=input", f"--output_arrays={MOBILENET_OUT}",
                                    "--inference_type=QUANTIZED_UINT8", "--mean_values=128", "--std_dev_values=127",
                                    "--default_ranges_min=0", "--default_ranges_max=6"], capsys, out)
    converter = python_converter(tf, graph, ["input"], [MOBILENET_OUT])
    converter.inference_type = tf.uint8
    converter.quantized_input_stats = {"input": (128, 127.0)}
    converter.default_ranges_stats = (0, 6)
    assert model == converter.convert()
    from graphtool.runtime.litert import TfliteModel

    (quantized_input,) = TfliteModel(model).inputs
    assert quantized_input.dtype == np.uint8
    assert (quantized_input.scale[0], quantized_input.zero_point[0]) == (pytest.approx(1 / 127), 128)


def test_post_training_quantize(tf, tmp_path, capsys):
    graph, out = mobilenet_like(tf, tmp_path / "some_quantized_graph.pb"), tmp_path / "foo.tflite"
    model = converted_by_graphtool(["convert", f"--output_file={out}", f"--graph_def_file={graph}",
                                    "--input_arrays=input", f"--output_arrays={MOBILENET_OUT}",
                                    "--post_training_quantize"], capsys, out)
    converter = python_converter(tf, graph, ["input"], [MOBILENET_OUT])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    assert model == converter.convert()
    assert len(model) < len(python_converter(tf, graph, ["input"], [MOBILENET_OUT]).convert())


def test_multiple_inputs_with_shapes(tf, tmp_path, capsys):
    graph, out = inception_like(tf, tmp_path / "inception_v1_2016_08_28_frozen.pb"), tmp_path / "foo.tflite"
    model = converted_by_graphtool(["convert", f"--graph_def_file={graph}", f"--output_file={out}",
                                    f"--input_arrays={','.join(INCEPTION_INPUTS)}",
                                    f"--input_shapes={INCEPTION_SHAPES}", f"--output_arrays={INCEPTION_OUT}"],
                                   capsys, out)
    shapes = {name: [int(d) for d in dims.split(",")] for name, dims in zip(INCEPTION_INPUTS, INCEPTION_SHAPES.split(":"))}
    assert model == python_converter(tf, graph, INCEPTION_INPUTS, [INCEPTION_OUT], shapes).convert()
    from graphtool.runtime.litert import TfliteModel

    assert [list(t.shape) for t in TfliteModel(model).inputs] == list(shapes.values())


def test_select_tf_ops(tf, tmp_path, capsys):
    graph, out = cumprod_graph(tf, tmp_path / "foo.pb"), tmp_path / "foo.tflite"
    argv = ["convert", f"--output_file={out}", f"--graph_def_file={graph}", "--input_arrays=input",
            f"--output_arrays={MOBILENET_OUT}"]
    code, _, err = run_cli(argv, capsys)  # TFLite has no builtin Cumprod
    assert code == 2 and err.count("\n") == 1 and "the TFLite converter failed" in err
    assert not out.exists()
    model = converted_by_graphtool([*argv, "--target_ops=TFLITE_BUILTINS,SELECT_TF_OPS"], capsys, out)
    converter = python_converter(tf, graph, ["input"], [MOBILENET_OUT])
    converter.target_spec.supported_ops = {tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS}
    # Not byte for byte: a Flex op's custom options hold its TensorFlow NodeDef, whose attr map
    # the converter serializes in no fixed order (two Python calls differ the same way). The
    # models are equal with those options blanked, and the NodeDefs are equal as messages.
    ours, reference = without_flex_options(tf, model), without_flex_options(tf, bytes(converter.convert()))
    assert ours == reference
    assert [name for name, _ in ours[1]] == ["Cumprod"]
    code, _, _ = run_cli(["convert", f"--graph_def_file={graph}", f"--output_file={tmp_path / 'same.tflite'}",
                          "--input_arrays=input", f"--output_arrays={MOBILENET_OUT}", "--enable_select_tf_ops"], capsys)
    assert code == 0 and without_flex_options(tf, (tmp_path / "same.tflite").read_bytes()) == ours


def test_allow_custom_ops(tf, tmp_path, capsys):
    graph, out = cumprod_graph(tf, tmp_path / "foo.pb"), tmp_path / "foo.tflite"
    model = converted_by_graphtool(["convert", f"--graph_def_file={graph}", f"--output_file={out}",
                                    "--input_arrays=input", f"--output_arrays={MOBILENET_OUT}", "--allow_custom_ops"],
                                   capsys, out)
    converter = python_converter(tf, graph, ["input"], [MOBILENET_OUT])
    converter.allow_custom_ops = True
    assert model == converter.convert()
    assert b"Cumprod" in model and b"FlexCumprod" not in model


def without_flex_options(tf, data: bytes) -> tuple[bytes, list]:
    """(the model repacked with every operator's custom options blanked, [(op name, NodeDef)]
    decoded from those options: a flexbuffer vector [op name, serialized NodeDef])."""
    import flatbuffers
    from flatbuffers import flexbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    flex = []
    for operator in model.subgraphs[0].operators:
        if operator.customOptions is not None:
            name, node_def = flexbuffers.GetRoot(bytes(bytearray(operator.customOptions))).AsVector
            flex.append((name.AsString, tf.compat.v1.NodeDef.FromString(bytes(node_def.AsStringBytes))))
            operator.customOptions = None
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), flex


def test_same_command_same_bytes_and_json(tf, tmp_path, capsys):
    import json

    graph = mobilenet_like(tf, tmp_path / "g.pb")
    flags = ["--input_arrays=input", f"--output_arrays={MOBILENET_OUT}", "--input_shapes=1,16,16,3"]
    first, second = tmp_path / "a.tflite", tmp_path / "b.tflite"
    converted_by_graphtool(["convert", graph, first, *flags], capsys, first)
    code, out, _ = run_cli(["convert", graph, second, *flags, "--json"], capsys)
    assert code == 0 and first.read_bytes() == second.read_bytes()
    report = json.loads(out)
    assert report["bytes"] == second.stat().st_size and report["source_kind"] == "graphdef"
    assert report["converter"] == "tf.compat.v1.lite.TFLiteConverter.from_frozen_graph"
    assert report["settings"]["inference_type"] == "FLOAT" and report["input_stats_from"] is None


def test_text_graphdef_converts_like_binary_and_stdout_says_only_what_was_written(tf, tmp_path, capsys):
    flags = ["--input_arrays=input", "--output_arrays=Identity", "--input_shapes=1,8,8,1"]
    outputs = []
    for suffix in ("pb", "pbtxt"):
        out = tmp_path / f"{suffix}.tflite"
        code, printed, err = run_cli(["convert", GRAPHDEF_FIXTURES / f"keras2_cnn.{suffix}", out, *flags], capsys)
        assert code == 0, err
        wrote = f"wrote {out} ({out.stat().st_size:,} bytes, FLOAT, tf.compat.v1.lite.TFLiteConverter.from_frozen_graph)"
        assert printed.splitlines() == [wrote]
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


# -- --transforms before conversion: the digits CNN ---------------------------------------------------

@pytest.mark.litert
@pytest.mark.tf_keras
@pytest.mark.sklearn
@pytest.mark.slow
def test_transforms_make_a_full_int8_digits_model_within_a_point(tf, tmp_path, capsys):
    from demo.digits import digits_split, frozen_bn_relu6_cnn
    from graphtool.runtime.litert import TfliteModel
    from graphtool.runtime.tensorflow import run_graphdef

    frozen, input_name, output_name = frozen_bn_relu6_cnn(EPOCHS)
    (x_train, _), (x_test, y_test) = digits_split()
    graph, samples, out = tmp_path / "frozen.pb", tmp_path / "calibration.npz", tmp_path / "int8.tflite"
    graph.write_bytes(frozen)
    np.savez(samples, **{input_name: x_train[:256]})
    code, printed, err = run_cli(
        ["convert", graph, out, f"--input_arrays={input_name}", f"--output_arrays={output_name}",
         "--input_shapes=1,8,8,1", "--inference_type=INT8", "--transforms",
         f"fold_batch_norms fold_old_batch_norms insert_fake_quant(calibration={samples})"], capsys)
    assert code == 0, err
    assert "input stats from the calibration" in printed
    assert "insert_fake_quant: changed" in err

    model = TfliteModel(out.read_bytes())
    from tensorflow.lite.python import schema_py_generated as schema

    parsed = schema.ModelT.InitFromPackedBuf(bytearray(out.read_bytes()), 0)
    assert {t.type for t in parsed.subgraphs[0].tensors} <= {schema.TensorType.INT8, schema.TensorType.INT32}
    (float_probs,) = run_graphdef(frozen, {input_name: x_test}, [output_name])
    int8_probs = np.concatenate([model.run_real([image[None]])[0] for image in x_test])
    float_accuracy = float(np.mean(float_probs.argmax(1) == y_test))
    int8_accuracy = float(np.mean(int8_probs.argmax(1) == y_test))
    assert float_accuracy > 0.95, "the float model did not train"
    assert int8_accuracy >= float_accuracy - ACCURACY_POINTS, (float_accuracy, int8_accuracy)


# -- refusals: exit 2, one line, nothing written ------------------------------------------------------

GRAPH_FLAGS = ["--input_arrays=x", "--output_arrays=y"]


@pytest.mark.parametrize("flags, message", [
    (["--post_training_quantize", "--inference_type=INT8"], "post_training_quantize quantizes a float model"),
    (["--mean_values=128"], "--mean_values and --std_dev_values go together"),
    (["--inference_type=QUANTIZED_UINT8", "--mean_values=128,0", "--std_dev_values=127,1"],
     "--mean_values has 2 value(s) but --input_arrays names 1"),
    (["--inference_type=QUANTIZED_UINT8", "--mean_values=127.5", "--std_dev_values=127"],
     "must be an integer for QUANTIZED_UINT8 inputs"),
    (["--mean_values=128", "--std_dev_values=127"], "used only for quantized inputs"),
    (["--default_ranges_min=0"], "--default_ranges_min and --default_ranges_max go together"),
    (["--default_ranges_min=0", "--default_ranges_max=6"], "used only for quantized inference"),
    (["--inference_type=INT8"], "INT8 inputs need mean and std_dev values for x"),
    (["--inference_type=INT16"], "--inference_type=INT16 is not one of"),
    (["--input_shapes=1,2:1,3"], "--input_shapes has 2 shape(s) but --input_arrays names 1"),
    (["--target_ops=TFLITE_BUILTINS", "--enable_select_tf_ops"], "ask for different op sets"),
    (["--target_ops=BUILTINS"], "--target_ops: BUILTINS unknown"),
    (["--experimental_select_user_tf_ops=MyOp"], "needs SELECT_TF_OPS"),
    (["--quantize_to_float16"], "only with post_training_quantize"),
    (["--change_concat_input_ranges=true"], "change_concat_input_ranges=true is not honoured"),
    (["--output_format=GRAPHVIZ_DOT"], "--output_format=GRAPHVIZ_DOT is not honoured"),
    (["--dump_graphviz_dir=/tmp"], "--dump_graphviz_dir is not honoured"),
    (["--reorder_across_fake_quant"], "--reorder_across_fake_quant was TOCO's"),
    (["--experimental_new_converter=false"], "asked for TOCO"),
    (["--saved_model_signature_key=serving_default"], "apply to a SavedModel only"),
    (["--graph_def_file=other.pb"], "IN is"),
    (["--saved_model_dir=d", "--keras_model_file=k.h5"], "not allowed with argument"),
])
def test_conflicting_or_unhonoured_flags_exit_2_with_one_line(tmp_path, capsys, flags, message):
    graph, out = tmp_path / "g.pb", tmp_path / "g.tflite"
    graph.write_bytes(b"")  # never read: the flags are refused first
    code, printed, err = run_cli(["convert", graph, out, *GRAPH_FLAGS, *flags], capsys)
    assert code == 2 and printed == ""
    assert err.count("\n") == 1 and err.startswith("graphtool: error: ") and message in err, err
    assert not out.exists()


def test_a_graphdef_needs_its_arrays(tmp_path, capsys):
    graph = tmp_path / "g.pb"
    graph.write_bytes(b"")
    code, _, err = run_cli(["convert", graph, tmp_path / "g.tflite"], capsys)
    assert code == 2 and "input arrays and output arrays are needed" in err and err.count("\n") == 1


def test_converter_flags_need_a_tflite_output(tmp_path, capsys):
    graph = tmp_path / "g.pb"
    graph.write_bytes(b"")
    code, _, err = run_cli(["convert", graph, tmp_path / "g.pbtxt", *GRAPH_FLAGS], capsys)
    assert code == 2 and "need an OUT ending in .tflite" in err


def test_help_shows_the_documented_command_lines(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = capsys.readouterr().out
    for line in ("--graph_def_file=/tmp/mobilenet_v1_0.50_128/frozen_graph.pb",
                 "--inference_type=QUANTIZED_UINT8", "--mean_values=128 --std_dev_values=127",
                 "--default_ranges_min=0 --default_ranges_max=6", "--post_training_quantize",
                 f"--input_shapes={INCEPTION_SHAPES}", "--target_ops=TFLITE_BUILTINS,SELECT_TF_OPS"):
        assert line in text, line
    assert "input statistics (mean, std_dev) come\nfrom its calibration" in text
