"""`graphtool check` on a 1,000-operator model, every target, against the TensorFlow tool a
user would otherwise run: `tf.lite.experimental.Analyzer.analyze(gpu_compatibility=True)`
for a .tflite (it lists the operators and checks GPU compatibility) and the TFLite
converter itself (TFLITE_BUILTINS only: "convert and see") for the frozen GraphDef.

The model: 200 blocks of CONV_2D(1x1) -> TANH, LOGISTIC -> MUL -> ADD (a gated residual,
which the converter cannot fuse away), made with TensorFlow from seeded weights into
bench/models/check_chain_1000.{tflite,pb} on first use. Warm: in this process, median of
WARM_REPEATS after one untimed run, each timing load + check. Cold: a fresh `python`
that imports graphtool, loads the model and checks it (median of COLD_REPEATS), against a
fresh `python` that imports TensorFlow and runs the Analyzer. The GraphDef verdict must
equal the converter's, or the run fails.

    python bench/bench_check.py
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np

import graphtool
from bench_inspect import cold_medians, format_rows, warm_median
from graphtool.analysis.check import TARGETS, check
from make_models import MODELS_DIR
from quiet_tf import import_tensorflow

BLOCKS = 200
OPS_PER_BLOCK = 5
WARM_REPEATS = 5
COLD_REPEATS = 3
TFLITE = MODELS_DIR / "check_chain_1000.tflite"
GRAPHDEF = MODELS_DIR / "check_chain_1000.pb"
INPUT_SHAPE = (1, 8, 8, 8)
ANALYZER = "tf.lite.experimental.Analyzer.analyze(gpu_compatibility=True)"
CONVERTER = "TFLiteConverter.from_frozen_graph(...).convert(), TFLITE_BUILTINS"


def build_models() -> None:
    """Write the .tflite and the frozen .pb of the gated chain, if missing."""
    if TFLITE.exists() and GRAPHDEF.exists():
        return
    tf = import_tensorflow()
    rng = np.random.default_rng(0)
    kernels = [tf.constant(rng.normal(0, 0.3, (1, 1, 8, 8)).astype(np.float32)) for _ in range(BLOCKS)]

    @tf.function(input_signature=[tf.TensorSpec(INPUT_SHAPE, tf.float32, name="x")])
    def chain(x):
        for kernel in kernels:
            h = tf.nn.conv2d(x, kernel, 1, "SAME")
            x = tf.tanh(h) * tf.sigmoid(h) + x
        return tf.identity(x, name="y")

    concrete = chain.get_concrete_function()
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    GRAPHDEF.write_bytes(concrete.graph.as_graph_def().SerializeToString())
    TFLITE.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([concrete], chain).convert())


def graphtool_check(path: Path, target: str) -> bool:
    """What is timed for graphtool: load + check; returns the verdict."""
    return check(graphtool.load(path), target).compatible


def analyzer(path: Path) -> str:
    import tensorflow as tf

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tf.lite.experimental.Analyzer.analyze(model_path=str(path), gpu_compatibility=True)
    return out.getvalue()


def converter_verdict(path: Path) -> bool:
    import tensorflow as tf

    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(str(path), ["x"], ["y"])
    converter.target_spec.supported_ops = {tf.lite.OpsSet.TFLITE_BUILTINS}
    try:
        converter.convert()
    except Exception:  # ConverterError: "does not convert"
        return False
    return True


def _row(target: str, mode: str, graphtool_s: float, anchor: str, anchor_s: float, **extra: Any) -> dict[str, Any]:
    return {"benchmark": f"check a {BLOCKS * OPS_PER_BLOCK:,}-operator model", "mode": mode,
            "graphtool_s": graphtool_s, "anchor": anchor, "anchor_s": anchor_s, "ratio": anchor_s / graphtool_s,
            "target": target, **extra}


def run() -> list[dict[str, Any]]:
    build_models()
    operators = sum(1 for _ in _operators(TFLITE))
    assert operators == BLOCKS * OPS_PER_BLOCK, f"{TFLITE.name} has {operators} operators"
    rows = []
    import_tensorflow()
    anchor_s, _ = warm_median(lambda: analyzer(TFLITE), WARM_REPEATS)
    loaded = graphtool.load(TFLITE)
    for target in TARGETS:
        seconds, verdict = warm_median(lambda: graphtool_check(TFLITE, target), WARM_REPEATS)
        check_s, _ = warm_median(lambda: check(loaded, target), WARM_REPEATS)
        partitions = partition_seconds(loaded, target)
        rows.append(_row(target, f".tflite --target {target}, warm (median of {WARM_REPEATS})", seconds,
                         f"{ANALYZER}, in process", anchor_s,
                         columns={"Check alone, model loaded (s)": f"{check_s:.3f}",
                                  "Partitions alone (s)": "-" if partitions is None else f"{partitions[0]:.3f}",
                                  "Partitions": "-" if partitions is None else str(partitions[1]),
                                  "Verdict": "compatible" if verdict else "not compatible"}))
    graphdef_s, verdict = warm_median(lambda: check(graphtool.load(GRAPHDEF), "tflite", outputs=["y"]).compatible,
                                      WARM_REPEATS)
    converter_s, converted = warm_median(lambda: converter_verdict(GRAPHDEF), WARM_REPEATS)
    if verdict != converted:
        raise AssertionError(f"graphtool says {verdict}, the converter {converted}")
    loaded_pb = graphtool.load(GRAPHDEF)
    check_pb_s, _ = warm_median(lambda: check(loaded_pb, "tflite", outputs=["y"]), WARM_REPEATS)
    rows.append(_row("tflite", f".pb --target tflite, warm (median of {WARM_REPEATS})", graphdef_s,
                     f"{CONVERTER}, in process", converter_s,
                     columns={"Check alone, model loaded (s)": f"{check_pb_s:.3f}",
                              "Verdict": "compatible" if verdict else "not compatible"}))
    rows.append(_cold_row())
    return rows


def partition_seconds(graph: Any, target: str) -> tuple[float, int] | None:
    """For a delegate: the time to compute its partitions (the part of `check` that applies
    the delegate's partitioner to the operators its rules took), and how many it makes."""
    from graphtool.analysis.check import DELEGATES
    from graphtool.analysis.compat import delegation

    if target not in DELEGATES:
        return None
    report = check(graph, target)

    def partition() -> int:
        fresh = dataclasses.replace(report, sources=[], partitions=None, cpu_gaps=[])
        delegation.apply(graph, fresh, target)
        return len(fresh.partitions)

    return warm_median(partition, WARM_REPEATS)


def _cold_row() -> dict[str, Any]:
    python = sys.executable
    gt = ("import sys, graphtool; from graphtool.analysis.check import check; "
          "print(check(graphtool.load(sys.argv[1]), 'gpu').compatible)")
    anchor = ("import sys, os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'; import tensorflow as tf; "
              "tf.lite.experimental.Analyzer.analyze(model_path=sys.argv[1], gpu_compatibility=True)")
    results = cold_medians({"graphtool": [python, "-c", gt, str(TFLITE)],
                            "anchor": [python, "-c", anchor, str(TFLITE)]}, COLD_REPEATS)
    return _row("gpu", f".tflite --target gpu, cold new process (median of {COLD_REPEATS})",
                results["graphtool"]["seconds"], f"{ANALYZER}, new process incl. `import tensorflow`",
                results["anchor"]["seconds"], graphtool_peak_rss_mb=results["graphtool"]["peak_rss_mb"],
                anchor_peak_rss_mb=results["anchor"]["peak_rss_mb"])


def _operators(path: Path):
    from graphtool.analysis.compat.signature import operators

    return operators(graphtool.load(path))


def notes(rows: list[dict[str, Any]]) -> str:
    worst = max(r["graphtool_s"] for r in rows if "warm" in r["mode"])
    analyzer_s = next(r["anchor_s"] for r in rows if r["anchor"].startswith(ANALYZER))
    timed = {r["target"]: float(r["columns"]["Partitions alone (s)"]) for r in rows
             if r.get("columns", {}).get("Partitions alone (s)", "-") != "-"}
    partitions = ("Partitions alone, the model loaded and checked: "
                  + ", ".join(f"{target} {seconds * 1000:.0f} ms" for target, seconds in sorted(timed.items()))
                  + f", against {analyzer_s * 1000:.0f} ms for the whole Analyzer run, which reports per-operator "
                  f"GPU compatibility and no partitions at all. ") if timed else ""
    return (partitions + f"Every target checks all {BLOCKS * OPS_PER_BLOCK:,} operators in at most {worst * 1000:.0f} ms, "
            f"loading the model included (most of it is the load; the check alone is the extra column). "
            f"For the delegates (gpu, edgetpu, xnnpack) the check includes their partitions; computing them "
            f"alone is the Partitions column (graph_info.cc's node subsets over all {BLOCKS * OPS_PER_BLOCK:,} "
            f"operators for gpu and xnnpack, the compiler's prefix for edgetpu). "
            f"The Analyzer is the anchor for every .tflite row because it is the only "
            f"TensorFlow tool that reports operator compatibility (GPU only); for the GraphDef the anchor is "
            f"running the converter, whose verdict graphtool's matched.")


if __name__ == "__main__":
    print(format_rows(run()))
