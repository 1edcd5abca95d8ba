"""Full-integer TFLite from a float frozen graph, two routes on one model and one set of
calibration samples: graphtool's `fold_old_batch_norms fold_batch_norms insert_fake_quant(calibration=…)`
then `tf.compat.v1.lite.TFLiteConverter` with `inference_type = tf.int8`, against the converter's
own full-integer post-training quantization (`representative_dataset`, TFLITE_BUILTINS_INT8,
int8 input and output); test accuracy and size side by side, measured in one run.

The model is a CNN with batch norm and ReLU6 (conv, depthwise, 1x1 conv, max pool, dense,
dense + softmax) trained seeded on scikit-learn's digits (EPOCHS epochs; demo/digits.py), frozen to a
GraphDef; both routes start from its bytes and calibrate on the same CALIBRATION_SAMPLES
training images. Times are medians of REPEATS in process, after one untimed run: graphtool's
is load + transform (including calibration in TensorFlow) + write + conversion; the anchor's
is wrapping the GraphDef as a concrete function + conversion. Accuracy is on the held-out
TEST_SAMPLES images, the int8 models run in LiteRT on dequantized outputs. The run fails
unless graphtool's model has int8 inputs and weights on every conv and fully-connected op
and its accuracy is within 1 point of the float model's.

    python bench/bench_fake_quant.py
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

import graphtool
from bench_inspect import format_rows
from graphtool.formats import graphdef
from graphtool.runtime.litert import TfliteModel
from graphtool.runtime.tensorflow import convert_fake_quant_graphdef, run_graphdef
from quiet_tf import import_tensorflow

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "demo"))  # the shared digits CNN

EPOCHS = 20
TEST_SAMPLES = 360
CALIBRATION_SAMPLES = 256
REPEATS = 3
MAX_ACCURACY_DROP = 0.01
FOLD = ("remove_nodes(op=Identity) remove_control_dependencies fold_constants(ignore_errors=true) "
        "fold_batch_norms fold_old_batch_norms strip_unused_nodes sort_by_execution_order")
KERNELS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
TITLE = "insert_fake_quant: int8 TFLite from a float frozen graph, against the converter's own PTQ"
ANCHOR = "TFLiteConverter full-integer PTQ (representative_dataset, same samples)"

Row = dict[str, Any]


# -- the model ------------------------------------------------------------------------------------

def digits_model() -> dict[str, Any]:
    """The trained, frozen CNN and the data: frozen bytes, input/output names, splits."""
    import_tensorflow()
    from digits import digits_split, frozen_bn_relu6_cnn

    frozen, input_name, output_name = frozen_bn_relu6_cnn(EPOCHS)
    (x_train, _), (x_test, y_test) = digits_split()
    return {"frozen": frozen, "input": input_name, "output": output_name,
            "calibration": x_train[:CALIBRATION_SAMPLES], "x_test": x_test, "y_test": y_test}


# -- the two routes ---------------------------------------------------------------------------------

def graphtool_route(model: dict[str, Any], samples: str) -> tuple[bytes, dict[str, float]]:
    """fold + insert_fake_quant (calibrating in TensorFlow) + the converter: (tflite, phase seconds)."""
    start = time.perf_counter()
    graph = graphtool.load(model["frozen"])
    report = graphtool.transform(graph, f"{FOLD} insert_fake_quant(calibration={samples})",
                                 inputs=[model["input"]], outputs=[model["output"]])
    data = graphdef.write(graph)
    transformed = time.perf_counter()
    tflite = convert_fake_quant_graphdef(data, report.passes[-1].stats["quantized_input_stats"], [model["output"]])
    done = time.perf_counter()
    return tflite, {"transform": transformed - start, "convert": done - transformed,
                    "insert_fake_quant": report.passes[-1].seconds}


def converter_ptq(model: dict[str, Any]) -> bytes:
    """The converter's full-integer post-training quantization of the same frozen graph."""
    tf = import_tensorflow()
    graph_def = tf.compat.v1.GraphDef.FromString(model["frozen"])
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    function = wrapped.prune(wrapped.graph.get_tensor_by_name(f"{model['input']}:0"),
                             wrapped.graph.get_tensor_by_name(f"{model['output']}:0"))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    samples = model["calibration"]
    converter.representative_dataset = lambda: ([samples[i:i + 1]] for i in range(len(samples)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


# -- measuring ----------------------------------------------------------------------------------------

def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Median seconds of REPEATS calls after one untimed call, and the last result."""
    result = fn()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def int8_kernels(tflite: bytes) -> tuple[int, int, int]:
    """(conv/FC ops with int8 input and int8 weights, of them with per-channel weights, all
    conv/FC ops), read back by graphtool."""
    graph = graphtool.load(tflite)
    kernels = [node for node in graph if node.op in KERNELS]
    int8 = per_channel = 0
    for node in kernels:
        data, weights = [graph.node(ref.node).outputs[ref.port] for ref in graph.inputs_of(node.name)[:2]]
        if (data.dtype.name, weights.dtype.name) == ("INT8", "INT8"):
            int8 += 1
            per_channel += weights.quantization is not None and weights.quantization.per_channel
    return int8, per_channel, len(kernels)


def evaluate(tflite: bytes, model: dict[str, Any]) -> dict[str, Any]:
    probabilities = TfliteModel(tflite).run_real([model["x_test"]])[0]
    int8, per_channel, total = int8_kernels(tflite)
    return {"accuracy": float((probabilities.argmax(1) == model["y_test"]).mean()), "bytes": len(tflite),
            "int8_kernels": int8, "per_channel": per_channel, "kernels": total, "probabilities": probabilities}


def run() -> list[Row]:
    model = digits_model()
    (float_probs,) = run_graphdef(model["frozen"], {model["input"]: model["x_test"]}, [model["output"]])
    float_accuracy = float((float_probs.argmax(1) == model["y_test"]).mean())
    with tempfile.TemporaryDirectory() as folder:
        samples = str(Path(folder) / "calibration.npz")
        np.savez(samples, **{model["input"]: model["calibration"]})
        graphtool_s, (ours, phases) = timed(lambda: graphtool_route(model, samples))
    anchor_s, theirs = timed(lambda: converter_ptq(model))
    mine, anchor = evaluate(ours, model), evaluate(theirs, model)
    if mine["int8_kernels"] != mine["kernels"]:
        raise AssertionError(f"graphtool's model has {mine['kernels'] - mine['int8_kernels']} conv/FC ops "
                             "without int8 inputs and weights")
    if mine["accuracy"] < float_accuracy - MAX_ACCURACY_DROP:
        raise AssertionError(f"graphtool's int8 accuracy {mine['accuracy']:.4f} is more than "
                             f"{MAX_ACCURACY_DROP:.0%} below the float model's {float_accuracy:.4f}")
    differences = {name: float(np.abs(result["probabilities"] - float_probs).max())
                   for name, result in (("graphtool", mine), ("anchor", anchor))}
    return [{"benchmark": TITLE, "anchor": ANCHOR, "anchor_s": anchor_s, "graphtool_s": graphtool_s,
             "ratio": anchor_s / graphtool_s,
             "mode": f"digits CNN (BN + ReLU6), {CALIBRATION_SAMPLES} calibration samples (median of {REPEATS})",
             "float_accuracy": float_accuracy, "float_bytes": len(model["frozen"]), "graphtool": _public(mine),
             "anchor_result": _public(anchor), "max_prob_diff": differences, "phases": phases,
             "columns": {
                 "Test accuracy (float / graphtool / anchor)":
                     f"{float_accuracy:.2%} / {mine['accuracy']:.2%} / {anchor['accuracy']:.2%}",
                 "Size bytes (graphtool / anchor)": f"{mine['bytes']:,} / {anchor['bytes']:,}",
                 "int8 conv/FC ops (graphtool / anchor)":
                     f"{mine['int8_kernels']}/{mine['kernels']} / {anchor['int8_kernels']}/{anchor['kernels']}",
             }}]


def _public(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "probabilities"}


def notes(rows: list[Row]) -> str:
    """The side-by-side table (markdown)."""
    row = rows[0]
    mine, anchor = row["graphtool"], row["anchor_result"]
    lines = [
        "| Route | Test accuracy | vs float | Size (bytes) | int8 conv/FC ops | of them per-channel "
        "| Max \\|Δ probability\\| vs float |",
        "| --- | --: | --: | --: | --: | --: | --: |",
        f"| float frozen GraphDef (TensorFlow) | {row['float_accuracy']:.2%} | – | {row['float_bytes']:,} | – | – | – |",
    ]
    for label, result, key in (("graphtool: fold → insert_fake_quant → converter (inference_type int8)", mine,
                                "graphtool"),
                               ("converter PTQ: representative_dataset, TFLITE_BUILTINS_INT8", anchor, "anchor")):
        lines.append(f"| {label} | {result['accuracy']:.2%} | {100 * (result['accuracy'] - row['float_accuracy']):+.2f} pt "
                     f"| {result['bytes']:,} | {result['int8_kernels']}/{result['kernels']} "
                     f"| {result['per_channel']} | {row['max_prob_diff'][key]:.4f} |")
    phases = row["phases"]
    lines += ["", f"graphtool's {row['graphtool_s']:.2f} s: load + transform + write {phases['transform']:.2f} s "
              f"(insert_fake_quant with calibration {phases['insert_fake_quant']:.2f} s), conversion "
              f"{phases['convert']:.2f} s. Accuracy on {TEST_SAMPLES} held-out images; both routes calibrate on "
              f"the same {CALIBRATION_SAMPLES} training images. The converter's PTQ quantizes "
              "FULLY_CONNECTED weights per channel; from fake-quant, TF 2.21's converter takes them per "
              "tensor only (per-channel fails: \"'tfl.transpose' op has mismatched quantized axes\"), "
              "so graphtool's model has per-tensor FC weights."]
    return "\n".join(lines)


def main() -> int:
    rows = run()
    print(format_rows(rows))
    print(notes(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
