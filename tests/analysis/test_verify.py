"""verify: runs both models in TensorFlow / LiteRT and compares outputs. It passes for a model
against its transformed self, fails naming the output when one weight is perturbed, and
passes for a frozen GraphDef against its own TFLite conversion at 1e-4."""
from __future__ import annotations

import importlib
import json
import sys

import numpy as np
import pytest

import graphtool
from graphtool.analysis.verify import Endpoint, VerifyReport, compare_outputs, pair_endpoints, verify
from graphtool.cli import verify_cmd
from graphtool.errors import GraphtoolError
from graphtool.ir import DType, Quantization
from graphtool.runtime import RuntimeUnavailableError
from graphtool.ir.quantization import dequantize, quantize
from graphtool.runtime.litert import TfliteModel

from ..conftest import FIXTURES, GRAPHDEF_FIXTURES, TFLITE_FIXTURES, run_litert

CLI = importlib.import_module("graphtool.cli.main")
CNN = GRAPHDEF_FIXTURES / "keras2_cnn.pb"
FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
FULL_INT8 = TFLITE_FIXTURES / "full_int8.tflite"
FOLD = "remove_nodes(op=Identity) fold_batch_norms fold_old_batch_norms"
FOLD_TOLERANCE = 1e-5  # folding batch norms changes float rounding only (GTT tests use 1e-5)
CONVERSION_TOLERANCE = 1e-4  # TensorFlow vs LiteRT kernels on the same float graph
INT8_TOLERANCE = 0.1  # full-int8 vs float probabilities: max abs 0.063 measured over all 360 digits
LOGITS = "keras2_cnn/logits/MatMul/ReadVariableOp/resource"
PRUNED_SAVED_MODEL = FIXTURES / "pruned" / "pruned_cnn_savedmodel"  # TF-MOT wrappers kept: kernel * mask at each call
PRUNED_TFLITE = FIXTURES / "pruned" / "pruned_cnn.tflite"  # its conversion by the TFLite converter
DEMO_SAVED_MODEL = FIXTURES / "demo" / "pruned_cnn_savedmodel"
DEMO_FLOAT = FIXTURES / "demo" / "float_cnn.tflite"  # the unpruned network: outputs differ by up to ~0.9


def run_cli(monkeypatch, capsys, *argv) -> tuple[int, str, str]:
    """`graphtool verify ...` in this process (registering the command if main does not yet)."""
    if verify_cmd not in CLI.COMMANDS:
        monkeypatch.setattr(CLI, "COMMANDS", (*CLI.COMMANDS, verify_cmd))
    code = CLI.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def folded(tmp_path_factory):
    graph = graphtool.load(CNN)
    graphtool.transform(graph, FOLD, outputs=["Identity"])
    path = tmp_path_factory.mktemp("verify") / "folded.pb"
    graphtool.save(graph, path)
    return path


def perturbed(path, out, name: str = LOGITS, delta: float = 0.5):
    graph = graphtool.load(path)
    tensor = graph.node(name).output(0)
    data = np.array(tensor.data)
    data.flat[0] += delta
    tensor.data = data
    graphtool.save(graph, out)
    return out


# -- original vs transformed -----------------------------------------------------------------

def test_original_and_transformed_pass(tf, folded):
    report = verify(CNN, folded, atol=FOLD_TOLERANCE, rtol=FOLD_TOLERANCE)
    assert report.passed and report.worst is None
    assert (report.runtime_a, report.runtime_b, report.runs) == ("TensorFlow", "TensorFlow", 8)
    [pairing] = report.inputs
    assert (pairing.a, pairing.b, pairing.matched_by) == ("input:0", "input:0", "name")
    [output] = report.outputs
    assert (output.a, output.b, output.matched_by, output.shape) == ("Identity:0", "Identity:0", "name", [8, 10])
    assert output.max_abs_error < FOLD_TOLERANCE and output.mismatches == 0
    assert output.top1_agreement == 1.0 and output.cosine == pytest.approx(1.0, abs=1e-9)
    assert output.sqnr_db > 100


def test_the_comparison_is_what_tensorflow_computes(tf, folded):
    """The reported max abs error equals the one measured by running both graphs here."""
    from ..tf_runtime import run_graphdef

    rng = np.random.default_rng(0)  # verify's draw: one standard-normal example per run, seed 0
    inputs = [rng.standard_normal((1, 8, 8, 1)) for _ in range(8)]
    expected = max(float(np.max(np.abs(
        run_graphdef(tf, CNN.read_bytes(), {"input:0": x.astype(np.float32)}, "Identity:0").astype(np.float64)
        - run_graphdef(tf, folded.read_bytes(), {"input:0": x.astype(np.float32)}, "Identity:0"))))
        for x in inputs)
    report = verify(CNN, folded)
    assert report.outputs[0].max_abs_error == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_cli_passes_with_exit_0(tf, monkeypatch, capsys, folded):
    code, out, err = run_cli(monkeypatch, capsys, "verify", CNN, folded, "--atol", FOLD_TOLERANCE,
                             "--rtol", FOLD_TOLERANCE, "--samples", 3)
    assert code == 0, err
    assert "3 run(s)" in out and out.strip().splitlines()[-1] == "PASS: every output is within tolerance"


@pytest.mark.litert
def test_tflite_quantize_weights_passes_at_quantization_tolerance(tmp_path):
    graph = graphtool.load(FLOAT_CNN)
    graphtool.transform(graph, "quantize_weights")
    quantized = tmp_path / "quantized.tflite"
    graphtool.save(graph, quantized)
    strict = verify(FLOAT_CNN, quantized)
    assert not strict.passed and strict.worst.b == "StatefulPartitionedCall:0"
    loose = verify(FLOAT_CNN, quantized, atol=0.05)  # int8 weights: max abs 0.016 measured on softmax outputs
    assert loose.passed and loose.outputs[0].sqnr_db > 30 and loose.outputs[0].top1_agreement == 1.0


# -- a perturbed weight ----------------------------------------------------------------------

def test_perturbed_weight_fails_naming_the_output(tf, folded, tmp_path):
    broken = perturbed(folded, tmp_path / "broken.pb")
    report = verify(CNN, broken, atol=FOLD_TOLERANCE, rtol=FOLD_TOLERANCE)
    assert not report.passed
    assert report.worst.b == "Identity:0" and report.outputs[0].mismatches > 0
    assert report.outputs[0].max_abs_error > 1e-3


def test_cli_perturbed_weight_exits_1_naming_the_output(tf, monkeypatch, capsys, folded, tmp_path):
    broken = perturbed(folded, tmp_path / "broken.pb")
    code, out, _ = run_cli(monkeypatch, capsys, "verify", CNN, broken)
    assert code == 1
    assert out.strip().splitlines()[-1].startswith("FAIL: output Identity:0 is not within tolerance")
    code, out, _ = run_cli(monkeypatch, capsys, "verify", CNN, broken, "--json")
    data = json.loads(out)
    assert code == 1 and data["passed"] is False and data["worst"] == "Identity:0"


def test_the_worst_of_several_outputs_is_named():
    a = np.zeros((2, 3))
    results = [compare_outputs("p", "p", "name", a, a + 1e-6, 1e-4, 0),
               compare_outputs("q", "q", "name", a, a + np.array([0, 0, 1.0]), 1e-4, 0),
               compare_outputs("r", "r", "name", a, a + 0.01, 1e-4, 0)]
    report = VerifyReport("A", "B", "LiteRT", "LiteRT", 1e-4, 0, 2, None, 0, outputs=results)
    assert [o.within_tolerance for o in results] == [True, False, False]
    assert [o.mismatches for o in results] == [0, 2, 6]
    assert report.worst.b == "r"  # 6 elements outside tolerance beat q's 2
    assert not report.passed and report.to_dict()["worst"] == "r"


# -- across formats --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def converted_cnn(tmp_path_factory):
    """keras2_cnn.pb converted by the TFLite converter (float, fixed batch 1)."""
    import tensorflow as tf

    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
        str(CNN), input_arrays=["input"], output_arrays=["Identity"], input_shapes={"input": [1, 8, 8, 1]})
    path = tmp_path_factory.mktemp("converted") / "keras2_cnn.tflite"
    path.write_bytes(converter.convert())
    return path


@pytest.mark.litert
def test_frozen_graphdef_passes_against_its_own_tflite_conversion(tf, converted_cnn):
    report = verify(CNN, converted_cnn, atol=CONVERSION_TOLERANCE, rtol=CONVERSION_TOLERANCE, samples=16)
    assert (report.runtime_a, report.runtime_b) == ("TensorFlow", "LiteRT")
    assert [(p.a, p.b, p.matched_by) for p in report.inputs] == [("input:0", "input", "name")]
    [output] = report.outputs
    assert (output.a, output.b, output.matched_by) == ("Identity:0", "Identity", "name")
    assert report.passed, output
    assert output.shape == [16, 10] and output.top1_agreement == 1.0
    assert 0 < output.max_abs_error < CONVERSION_TOLERANCE  # really two runtimes: not bit-identical


@pytest.mark.litert
def test_frozen_graphdef_fails_against_a_perturbed_conversion(tf, converted_cnn, tmp_path):
    graph = graphtool.load(converted_cnn)
    weights = next(n for n in graph if n.op == "Const" and n.output(0).shape == (10, 4))  # logits [out, in]
    broken = perturbed(converted_cnn, tmp_path / "broken.tflite", name=weights.name, delta=0.5)
    report = verify(CNN, broken, atol=CONVERSION_TOLERANCE, rtol=CONVERSION_TOLERANCE)
    assert not report.passed and report.worst.b == "Identity"


@pytest.mark.litert
def test_quantized_inputs_and_outputs_are_dequantized(tmp_path):
    """float_cnn against its full-int8 conversion on held-out digits: the int8 model's inputs
    are quantized and its outputs dequantized, so both give probabilities that agree."""
    digits = np.load(TFLITE_FIXTURES / "digits_test.npz")
    data = tmp_path / "digits.npz"
    np.savez(data, image=digits["images"][:64])
    report = verify(FLOAT_CNN, FULL_INT8, data=data, atol=INT8_TOLERANCE, rtol=0)
    [output] = report.outputs
    assert report.runs == 64 and output.shape == [64, 10]
    assert report.passed, output
    assert output.top1_agreement >= 0.95
    # the int8 model's outputs really are int8 in LiteRT, so without dequantization the
    # values would be off by ~100, not by 0.1
    runtime = TfliteModel(FULL_INT8.read_bytes())
    assert runtime.outputs[0].dtype == np.int8 and runtime.outputs[0].quantized


@pytest.mark.litert
def test_npz_arrays_pair_by_name_else_by_order(tmp_path):
    images = np.load(TFLITE_FIXTURES / "digits_test.npz")["images"][:5]
    by_order = tmp_path / "order.npz"
    np.savez(by_order, images)
    a = verify(FLOAT_CNN, FLOAT_CNN, data=by_order)
    named = tmp_path / "named.npz"
    np.savez(named, serving_default_image=images)
    b = verify(FLOAT_CNN, FLOAT_CNN, data=named, samples=2)
    assert (a.runs, b.runs) == (5, 2) and a.passed and b.passed
    assert a.outputs[0].max_abs_error == 0.0 and a.outputs[0].sqnr_db is None  # identical: no noise
    two = tmp_path / "two.npz"
    np.savez(two, images=images, labels=np.zeros(5))
    with pytest.raises(GraphtoolError, match="do not name the inputs"):
        verify(FLOAT_CNN, FLOAT_CNN, data=two)


def test_outputs_pair_by_order_when_names_differ(tf, tmp_path):
    graph = graphtool.load(CNN)
    graphtool.transform(graph, FOLD)  # no declared output: the Identity goes, Softmax is the output
    path = tmp_path / "softmax_out.pb"
    graphtool.save(graph, path)
    report = verify(CNN, path, samples=2)
    [output] = report.outputs
    assert (output.a, output.b, output.matched_by) == ("Identity:0", "keras2_cnn/logits/Softmax:0", "order")
    assert report.passed


def test_pairing_prefers_names_and_orders_the_rest():
    def points(*names):
        return [Endpoint(n, (n, n.split(":")[0]), DType.FLOAT32, (1,)) for n in names]

    pairs = pair_endpoints(points("x:0", "y:0", "z:0"), points("p:0", "x:0", "q:0"), "inputs")
    assert [(a.name, b.name, how) for a, b, how in pairs] == [
        ("x:0", "x:0", "name"), ("y:0", "p:0", "order"), ("z:0", "q:0", "order")]
    with pytest.raises(GraphtoolError, match="cannot be paired"):
        pair_endpoints(points("x:0"), points("x:0", "y:0"), "inputs")


# -- helpers and bad input -------------------------------------------------------------------

def test_quantize_and_dequantize_follow_tflite_conventions():
    scale, zero_point = 0.5, -3
    real = np.array([-70.0, -1.25, -0.25, 0.0, 0.25, 1.0, 70.0])
    q = quantize(real, scale, zero_point, np.int8)
    assert q.tolist() == [-128, -6, -4, -3, -2, -1, 127]  # half away from zero, clipped
    assert dequantize(q, scale, zero_point).tolist() == [-62.5, -1.5, -0.5, 0.0, 0.5, 1.0, 65.0]
    per_channel = dequantize(np.array([[2, 2], [2, 2]]), np.array([1.0, 0.1]), np.array([0, 1]), axis=1)
    np.testing.assert_allclose(per_channel, [[2.0, 0.1], [2.0, 0.1]])
    assert Quantization(np.array([0.5]), np.array([-3])).per_channel is False


def test_models_with_different_inputs_are_bad_input(monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "verify", FLOAT_CNN, TFLITE_FIXTURES / "strings.tflite")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "has 1 input (serving_default_image:0) but" in err and "cannot be paired" in err


def test_missing_runtime_is_one_line_saying_how_to_install(monkeypatch, capsys, folded):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow now raises ImportError
    with pytest.raises(RuntimeUnavailableError, match=r"pip install 'graph-transform-tool\[tf\]'"):
        verify(CNN, folded)
    code, _, err = run_cli(monkeypatch, capsys, "verify", CNN, folded)
    assert code == 2 and "graph-transform-tool[tf]" in err and len(err.strip().splitlines()) == 1


def test_bad_options_and_files_exit_2(monkeypatch, capsys, tmp_path):
    for argv, message in [((FLOAT_CNN, FLOAT_CNN, "--samples", 0), "samples must be at least 1"),
                          ((FLOAT_CNN, FLOAT_CNN, "--atol", -1), "must not be negative"),
                          ((FLOAT_CNN, FLOAT_CNN, "--data", tmp_path / "none.npz"), "no such file"),
                          ((FLOAT_CNN, tmp_path / "none.tflite"), "no such file")]:
        code, _, err = run_cli(monkeypatch, capsys, "verify", *argv)
        assert code == 2 and message in err, err


# -- SavedModel directories ------------------------------------------------------------------

@pytest.mark.litert
def test_savedmodel_directory_passes_against_its_tflite_conversion(tf, tmp_path):
    """A SavedModel runs in TensorFlow through serving_default (pruning wrappers and all);
    its signature keys pair with the TFLite signature names."""
    digits = tmp_path / "digits.npz"
    np.savez(digits, image=np.load(FIXTURES / "pruned" / "reference.npz")["images"][:32])
    report = verify(PRUNED_SAVED_MODEL, PRUNED_TFLITE, data=digits, atol=CONVERSION_TOLERANCE,
                    rtol=CONVERSION_TOLERANCE)
    assert (report.a, report.runtime_a, report.runtime_b, report.runs) == (
        str(PRUNED_SAVED_MODEL), "TensorFlow", "LiteRT", 32)
    assert [(p.a, p.b, p.matched_by) for p in report.inputs] == [("image", "serving_default_image:0", "name")]
    [output] = report.outputs
    assert (output.a, output.b, output.matched_by) == ("prune_low_magnitude_probs", "StatefulPartitionedCall:0",
                                                       "name")
    assert report.passed, output
    assert output.shape == [32, 10] and output.top1_agreement == 1.0


@pytest.mark.litert
def test_savedmodel_values_are_what_tensorflow_computes(tf):
    """The reported error between the demo's pruned SavedModel and the unpruned float model
    equals the one measured here with tf.saved_model.load and the LiteRT interpreter."""
    rng = np.random.default_rng(0)  # verify's draw: one standard-normal example per run, seed 0
    inputs = [rng.standard_normal((1, 8, 8, 1)).astype(np.float32) for _ in range(4)]
    serving = tf.saved_model.load(str(DEMO_SAVED_MODEL)).signatures["serving_default"]
    [key] = serving.structured_outputs
    expected = max(float(np.max(np.abs(serving(image=tf.constant(x))[key].numpy().astype(np.float64)
                                       - run_litert(DEMO_FLOAT.read_bytes(), [x])[0])))
                   for x in inputs)
    report = verify(DEMO_SAVED_MODEL, DEMO_FLOAT, samples=4)
    assert expected > 0.1 and not report.passed
    assert report.outputs[0].max_abs_error == pytest.approx(expected, abs=1e-6)  # float32 rounding of the two runs


def test_savedmodel_against_the_graphdef_read_from_it(tf, tmp_path):
    """graphtool.load reads the same signature as a GraphDef; once strip_pruning froze its
    variables it runs alike, and pairs by the signature function's tensor names."""
    graph = graphtool.load(PRUNED_SAVED_MODEL)
    with pytest.raises(GraphtoolError, match="strip_pruning"):  # variables only in memory: nothing to run
        verify(PRUNED_SAVED_MODEL, graph)
    graphtool.transform(graph, "strip_pruning")
    frozen = tmp_path / "frozen.pb"
    graphtool.save(graph, frozen)
    report = verify(PRUNED_SAVED_MODEL, frozen, atol=FOLD_TOLERANCE, rtol=FOLD_TOLERANCE)
    assert [(p.a, p.b, p.matched_by) for p in report.inputs] == [("image", "image:0", "name")]
    assert [(o.a, o.b, o.matched_by) for o in report.outputs] == [("prune_low_magnitude_probs", "Identity:0", "name")]
    assert report.passed and report.outputs[0].max_abs_error < FOLD_TOLERANCE


@pytest.mark.litert
def test_cli_takes_a_savedmodel_directory_on_either_side(tf, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "verify", PRUNED_TFLITE, PRUNED_SAVED_MODEL, "--samples", 2)
    assert code == 0, err
    assert f"B: {PRUNED_SAVED_MODEL}  (TensorFlow)" in out
    assert out.strip().endswith("PASS: every output is within tolerance")


def exits_2_naming_the_path(monkeypatch, capsys, cases) -> None:
    """For each (argv, path, message): `verify argv` exits 2 with one line naming the path."""
    for argv, path, message in cases:
        code, out, err = run_cli(monkeypatch, capsys, "verify", *argv)
        assert code == 2 and out == "", (argv, err)
        assert err.startswith(f"graphtool: error: {path}: {message}") and len(err.strip().splitlines()) == 1, err


def test_bad_model_paths_exit_2_with_one_line_naming_them(monkeypatch, capsys, tmp_path):
    empty = tmp_path / "not_a_saved_model"
    empty.mkdir()
    missing = tmp_path / "missing.tflite"
    exits_2_naming_the_path(monkeypatch, capsys, [
        ((missing, PRUNED_TFLITE), missing, "no such file"),
        ((empty, PRUNED_TFLITE), empty, "is a directory, not a model file"),
        ((PRUNED_TFLITE, empty), empty, "is a directory, not a model file")])


def test_bad_paths_with_a_savedmodel_exit_2_with_one_line_naming_them(tf, monkeypatch, capsys, tmp_path):
    corrupt = tmp_path / "corrupt_saved_model"
    corrupt.mkdir()
    (corrupt / "saved_model.pb").write_bytes(b"\x08not a SavedModel")
    missing = tmp_path / "missing.tflite"
    exits_2_naming_the_path(monkeypatch, capsys, [
        ((PRUNED_SAVED_MODEL, missing), missing, "no such file"),
        ((corrupt, PRUNED_TFLITE), corrupt, "cannot load the SavedModel")])
