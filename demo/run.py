#!/usr/bin/env python
"""The seed workflow with graphtool as the engine (`make demo`), on scikit-learn's digits.

Starts from the committed models in fixtures/demo/ (retrain: `make demo-train`): a float
tf_keras CNN with batch norm and ReLU6, and the same model pruned by TF-MOT to 75% and
saved without strip_pruning. Then, with graphtool:

    SavedModel --strip_pruning, fold_batch_norms, fold_old_batch_norms--> frozen GraphDef
      (a) --TFLite converter--> float TFLite --quantize_weights (per-channel, dynamic)--> int8 weights
      (b) --insert_fake_quant(calibration)--> converter (int8) --> full int8 TFLite
    check (edgetpu, gpu) on the full int8 model; verify each TFLite model against the float one.

Prints one table: model, file size, gzip size, weight sparsity, test accuracy and max
difference from the float model's outputs on the digits test split. Files go to --out.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_USE_LEGACY_KERAS"] = "1"  # the pruned SavedModel is a tf_keras model

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402

import graphtool  # noqa: E402
from digits import MODELS, ROOT, TEST_SPLIT, digits_split  # noqa: E402
from graphtool.formats import savedmodel  # noqa: E402
from graphtool.logs import quiet_runtime, show_runtime_logs  # noqa: E402
from graphtool.runtime.litert import TfliteModel  # noqa: E402
from graphtool.runtime.tensorflow import convert_fake_quant_graphdef, convert_graphdef, import_tensorflow  # noqa: E402

FLOAT_TFLITE = MODELS / "float_cnn.tflite"
SAVED_MODEL = MODELS / "pruned_cnn_savedmodel"
DEFAULT_OUT = ROOT / "build" / "demo"
CALIBRATION_SAMPLES = 256
STRIP_AND_FOLD = ("strip_pruning remove_nodes(op=Identity) remove_control_dependencies "
                  "fold_constants(ignore_errors=true) fold_batch_norms fold_old_batch_norms "
                  "strip_unused_nodes sort_by_execution_order")
INT8_WEIGHTS = "quantize_weights(mode=dynamic, per_channel=true)"
CHECK_TARGETS = ("edgetpu", "gpu")
WEIGHT_MIN_ELEMENTS = 16  # sparsity counts kernels, not biases or batch-norm vectors
COLUMNS = ("model", "file size", "gzip size", "weight sparsity", "test accuracy", "max diff from float")


@dataclass
class Row:
    model: str
    file_bytes: int
    gzip_bytes: int
    sparsity: float
    accuracy: float
    max_diff: float | None

    def cells(self) -> list[str]:
        diff = "-" if self.max_diff is None else f"{self.max_diff:.4f}"
        return [self.model, f"{self.file_bytes:,} B", f"{self.gzip_bytes:,} B", f"{self.sparsity:.1%}",
                f"{self.accuracy:.2%}", diff]


def gzip_size(path: Path) -> int:
    """gzip -9 of a file, or of a tar of a directory (a SavedModel)."""
    if path.is_dir():
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(path, arcname=path.name)
        data = buffer.getvalue()
    else:
        data = path.read_bytes()
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def weight_sparsity(graph: graphtool.Graph) -> float:
    """Zero share over every weight with at least WEIGHT_MIN_ELEMENTS elements (graphtool.inspect)."""
    weights = [w for w in graphtool.inspect(graph).weights if int(np.prod(w.shape)) >= WEIGHT_MIN_ELEMENTS]
    total = sum(int(np.prod(w.shape)) for w in weights)
    return sum(w.zeros * int(np.prod(w.shape)) for w in weights) / total


def run_tflite(path: Path, images: np.ndarray) -> np.ndarray:
    """Real-valued outputs, one image per invoke (the int8 model has a fixed batch of 1)."""
    model = TfliteModel(path.read_bytes(), str(path))
    return np.concatenate([model.run_real([image[None]])[0] for image in images])


def run_savedmodel(path: Path, images: np.ndarray) -> np.ndarray:
    tf = import_tensorflow()
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    (probs,) = serve(tf.constant(images)).values()
    return probs.numpy()


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def table(rows: list[Row]) -> str:
    cells = [list(COLUMNS)] + [row.cells() for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    split = np.load(TEST_SPLIT)
    images, labels = split["images"], split["labels"]
    test_inputs = out / "test_inputs.npz"
    np.savez(test_inputs, images)  # verify reads inputs in order: one image per row
    float_probs = run_tflite(FLOAT_TFLITE, images)

    def row(name: str, path: Path, graph: graphtool.Graph, probs: np.ndarray) -> Row:
        diff = None if path == FLOAT_TFLITE else float(np.max(np.abs(probs - float_probs)))
        return Row(name, file_size(path), gzip_size(path), weight_sparsity(graph), accuracy(probs, labels), diff)

    rows = [row("float", FLOAT_TFLITE, graphtool.load(FLOAT_TFLITE), float_probs)]

    # the pruned model as TF-MOT exported it: mask variables, kernel * mask at every call
    graph = graphtool.load(SAVED_MODEL)
    rows.append(row("pruned", SAVED_MODEL, graph, run_savedmodel(SAVED_MODEL, images)))
    signature = graph.meta[savedmodel.SIGNATURE]
    inputs, outputs = list(signature["inputs"].values()), list(signature["outputs"].values())

    steps = {}
    started = time.perf_counter()
    graphtool.transform(graph, STRIP_AND_FOLD, inputs=inputs, outputs=outputs)
    graphtool.save(graph, out / "pruned_stripped.pb")
    folded = graphtool.formats.dumps(graph)
    stripped_tflite = out / "pruned_stripped.tflite"
    stripped_tflite.write_bytes(convert_graphdef(folded, inputs, outputs))
    steps["strip_pruning + fold + convert"] = time.perf_counter() - started
    rows.append(row("pruned + stripped", stripped_tflite, graphtool.load(stripped_tflite),
                    run_tflite(stripped_tflite, images)))

    # (a) int8 weights, float activations: LiteRT's hybrid kernels
    started = time.perf_counter()
    hybrid = graphtool.load(stripped_tflite)
    graphtool.transform(hybrid, INT8_WEIGHTS)
    hybrid_tflite = out / "pruned_int8_weights.tflite"
    graphtool.save(hybrid, hybrid_tflite)
    steps["quantize_weights"] = time.perf_counter() - started
    rows.append(row("+ int8 weights", hybrid_tflite, hybrid, run_tflite(hybrid_tflite, images)))

    # (b) full int8: fake-quant calibrated on training images, then the converter
    started = time.perf_counter()
    (train_images, _), _ = digits_split()
    calibration = out / "calibration.npz"
    np.savez(calibration, **{inputs[0]: train_images[:CALIBRATION_SAMPLES]})
    report = graphtool.transform(graph, f"insert_fake_quant(calibration={calibration})",
                                 inputs=inputs, outputs=outputs)
    stats = report.passes[-1].stats["quantized_input_stats"]
    int8_tflite = out / "pruned_full_int8.tflite"
    int8_tflite.write_bytes(convert_fake_quant_graphdef(graphtool.formats.dumps(graph), stats, outputs))
    steps["insert_fake_quant + convert"] = time.perf_counter() - started
    int8 = graphtool.load(int8_tflite)
    rows.append(row("full int8", int8_tflite, int8, run_tflite(int8_tflite, images)))

    checks = {target: graphtool.check(int8, target) for target in CHECK_TARGETS}
    # against the float model (pruning + quantization) and against the stripped pruned model
    # (quantization alone); verify's tolerance is not the point here, its error figures are
    verified = {f"float vs {path.name}": graphtool.verify(FLOAT_TFLITE, path, data=test_inputs)
                for path in (stripped_tflite, hybrid_tflite, int8_tflite)}
    verified.update({f"{stripped_tflite.name} vs {path.name}": graphtool.verify(stripped_tflite, path, data=test_inputs)
                     for path in (hybrid_tflite, int8_tflite)})
    return {"rows": rows, "checks": checks, "verified": verified, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the models go (default build/demo)")
    parser.add_argument("--json", action="store_true", help="also print the rows as one JSON line")
    parser.add_argument("--details", action="store_true",
                        help="also print the compatibility checks, the verify results and the timings")
    parser.add_argument("--verbose", "-v", action="store_true", help="show the runtimes' own log lines")
    args = parser.parse_args(argv)
    if args.verbose:
        show_runtime_logs()
    started = time.perf_counter()
    with quiet_runtime():
        result = run(args.out)
    print(table(result["rows"]))
    if args.details:
        print_details(result, args.out, time.perf_counter() - started)
    if args.json:
        print(json.dumps([row.__dict__ for row in result["rows"]]))
    return 0


def print_details(result: dict, out: Path, seconds: float) -> None:
    print()
    for target, report in result["checks"].items():
        verdict = "compatible" if report.compatible else "NOT compatible"
        print(f"check {target}, full int8: {verdict}")
        for finding in report.findings:
            print(f"  {finding.severity}: {finding.op or ''} {finding.reason}".rstrip())
    for name, report in result["verified"].items():
        (output,) = report.outputs
        print(f"verify {name}: max abs error {output.max_abs_error:.4f}, "
              f"top-1 agreement {output.top1_agreement:.2%} ({report.runs} test images)")
    print("graphtool steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in result["steps"].items()))
    print(f"total {seconds:.1f} s; models in {out}")


if __name__ == "__main__":
    sys.exit(main())
