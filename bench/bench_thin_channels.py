"""Channel thinning and pruning, measured in LiteRT: `thin_channels` on a CNN with half the
filters of five layers zeroed (residual add, depthwise conv, batch norms, concatenation;
tests/channel_models.py at width 64 on 32×32 inputs, trained one epoch), and `prune_channels(sparsity=0.25)`
on the demo's trained digits CNN (fixtures/demo/float_cnn.tflite), per layer and guided by
the `sensitivity` command; the latency of the model before each transform is the anchor.

Latency is LiteRT's `invoke` on one image (one thread, XNNPACK as LiteRT loads it), the median
of REPEATS calls after WARMUP, the models before and after alternating in rounds of
ROUND calls, in the same run. The run fails unless thin_channels keeps the outputs within
RTOL (relative) and cuts the latency by at least MIN_THIN_SPEEDUP, and the guided variant keeps
test accuracy within MAX_ACCURACY_DROP of the float model. Accuracy is on the held-out
digits test split (fixtures/tflite/digits_test.npz).

    python bench/bench_thin_channels.py
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import graphtool
from bench_inspect import format_rows
from graphtool.formats import dumps
from graphtool.runtime.litert import import_interpreter
from quiet_tf import import_tensorflow

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/channel_models.py, demo/

WIDE_WIDTH, SIZE = 64, 32
REPEATS, WARMUP, ROUND = 400, 50, 20
RTOL = 1e-5
MIN_THIN_SPEEDUP = 0.30  # latency must drop by at least this fraction
MAX_ACCURACY_DROP = 0.01
SPARSITY = 0.25
GUIDE_SPARSITIES = (0.75, 0.5, 0.375, 0.25, 0.125)  # tried per layer, largest first
GUIDE_THRESHOLDS_DB = (10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 50.0)  # the lowest whose model keeps validation accuracy
GUIDE_SAMPLES = 200  # training images the sensitivity runs use
VALIDATION_SAMPLES = 400  # other training images the validation accuracy uses
DIGITS = ROOT / "fixtures" / "demo" / "float_cnn.tflite"
TEST_SPLIT = ROOT / "fixtures" / "tflite" / "digits_test.npz"
TITLE = "Channel thinning and pruning (LiteRT latency)"
ANCHOR = "the model before, LiteRT"

Row = dict[str, Any]


def interpreter(model: bytes):
    runner = import_interpreter()(model_content=model, num_threads=1)
    runner.allocate_tensors()
    return runner


def latencies(models: list[bytes], image: np.ndarray) -> list[float]:
    """Median seconds per invoke of each model on `image`, measured alternately."""
    runners = [interpreter(m) for m in models]
    for runner in runners:
        runner.set_tensor(runner.get_input_details()[0]["index"], image)
        for _ in range(WARMUP):
            runner.invoke()
    times: list[list[float]] = [[] for _ in runners]
    for _ in range(REPEATS // ROUND):
        for runner, found in zip(runners, times):
            for _ in range(ROUND):
                start = time.perf_counter()
                runner.invoke()
                found.append(time.perf_counter() - start)
    return [statistics.median(found) for found in times]


def predict(model: bytes, images: np.ndarray) -> np.ndarray:
    from graphtool.runtime.litert import run_tflite

    return run_tflite(model, [images])[0]


def transformed(model: bytes, spec: str) -> tuple[bytes, dict]:
    graph = graphtool.load(model)
    report = graphtool.transform(graph, spec)
    return dumps(graph), report.passes[-1].stats


def wide_model() -> tuple[bytes, np.ndarray]:
    """The channel CNN at WIDE_WIDTH on SIZE×SIZE digits, trained one epoch, half zeroed."""
    tf = import_tensorflow()
    import tf_keras

    from tests.channel_models import export, trained

    model, _, (images, _) = trained(tf_keras, WIDE_WIDTH, SIZE, epochs=1)
    images = np.kron(images, np.ones((1, SIZE // 8, SIZE // 8, 1), np.float32))
    return export(tf, model, SIZE, None)[3], images


def thin_row() -> Row:
    model, images = wide_model()
    thinned, stats = transformed(model, "thin_channels")
    before, after = predict(model, images[:64]), predict(thinned, images[:64])
    np.testing.assert_allclose(after, before, rtol=RTOL, atol=1e-7)
    original_s, thinned_s = latencies([model, thinned], images[:1])
    drop = 1 - thinned_s / original_s
    if drop < MIN_THIN_SPEEDUP:
        raise AssertionError(f"thin_channels cut latency by {drop:.0%}, less than {MIN_THIN_SPEEDUP:.0%}")
    cut = 1 - stats["weights_after"] / stats["weights_before"]
    return {"benchmark": TITLE, "anchor": ANCHOR, "anchor_s": original_s, "graphtool_s": thinned_s,
            "ratio": original_s / thinned_s, "kind": "thin",
            "mode": f"thin_channels, channel CNN width {WIDE_WIDTH} on {SIZE}x{SIZE}, half of 5 layers' filters zero",
            "weights": (stats["weights_before"], stats["weights_after"]), "bytes": (len(model), len(thinned)),
            "max_rel_diff": float(np.max(np.abs(after - before) / np.maximum(np.abs(before), 1e-12))),
            "columns": {"Latency drop": f"{drop:.0%}", "Conv/FC weights cut": f"{cut:.0%}",
                        "Size bytes (before / after)": f"{len(model):,} / {len(thinned):,}",
                        "Outputs": f"within {RTOL:g} relative"}}


def guided(model: bytes, samples: np.ndarray, validation: tuple[np.ndarray, np.ndarray],
           float_accuracy: float) -> tuple[bytes, list[str], float]:
    """prune_channels layer by layer, each at the largest sparsity whose model keeps the
    output SQNR `sensitivity` measures above a threshold: the lowest threshold whose
    composed model loses no validation accuracy."""
    from graphtool.analysis.sensitivity import sensitivity

    data = {graphtool.load(model).inputs[0]: samples}
    alone: dict[str, dict[float, float]] = {}  # layer -> sparsity -> SQNR dB of pruning it alone
    for sparsity in GUIDE_SPARSITIES:
        report = sensitivity(model, data=data, transforms=f"prune_channels(sparsity={sparsity})")
        for layer in report.layers:
            alone.setdefault(layer.name, {})[sparsity] = (np.inf if layer.only_sqnr_db is None
                                                         else layer.only_sqnr_db)
    best: tuple[bytes, list[str], float] = (model, [], float("nan"))  # nothing fits: the model as it is
    for threshold in GUIDE_THRESHOLDS_DB:
        calls = []
        for layer, by_sparsity in alone.items():
            fits = [s for s in GUIDE_SPARSITIES if np.isfinite(by_sparsity.get(s, np.inf))
                    and by_sparsity[s] >= threshold]
            if fits:
                calls.append(f'prune_channels(sparsity={max(fits)}, only="{layer}")')
        if not calls:
            continue
        pruned, _ = transformed(model, " ".join(calls))
        accuracy = float((predict(pruned, validation[0]).argmax(1) == validation[1]).mean())
        if accuracy >= validation_accuracy(model, validation):
            return pruned, calls, threshold
    return best


def validation_accuracy(model: bytes, validation: tuple[np.ndarray, np.ndarray]) -> float:
    return float((predict(model, validation[0]).argmax(1) == validation[1]).mean())


def prune_rows() -> list[Row]:
    from demo.digits import digits_split

    model = DIGITS.read_bytes()
    test = np.load(TEST_SPLIT)
    images, labels = test["images"], test["labels"]
    (x_train, y_train), _ = digits_split()
    float_accuracy = float((predict(model, images).argmax(1) == labels).mean())
    per_layer, stats = transformed(model, f"prune_channels(sparsity={SPARSITY})")
    overall, _ = transformed(model, f"prune_channels(sparsity={SPARSITY}, global=true)")
    validation = (x_train[-VALIDATION_SAMPLES:], y_train[-VALIDATION_SAMPLES:])
    guide, calls, threshold = guided(model, x_train[:GUIDE_SAMPLES], validation, float_accuracy)
    variants = [(f"prune_channels(sparsity={SPARSITY}), per layer", per_layer),
                (f"prune_channels(sparsity={SPARSITY}, global=true)", overall),
                (f"sensitivity-guided prune_channels ({len(calls)} layers, SQNR ≥ {threshold:g} dB)", guide)]
    times = latencies([model] + [v for _, v in variants], images[:1])
    rows = []
    weights = graphtool.load(model)
    from graphtool.passes.tflite.thin_channels import weight_count

    before_weights = weight_count(weights)
    for (label, variant), seconds in zip(variants, times[1:]):
        accuracy = float((predict(variant, images).argmax(1) == labels).mean())
        rows.append({"benchmark": TITLE, "anchor": ANCHOR, "anchor_s": times[0], "graphtool_s": seconds,
                     "ratio": times[0] / seconds, "kind": "prune", "mode": f"{label}, digits CNN",
                     "float_accuracy": float_accuracy, "accuracy": accuracy, "calls": calls,
                     "columns": {"Latency drop": f"{1 - seconds / times[0]:.0%}",
                                 "Conv/FC weights cut": f"{1 - weight_count(graphtool.load(variant)) / before_weights:.0%}",
                                 "Size bytes (before / after)": f"{len(model):,} / {len(variant):,}",
                                 "Test accuracy (float / after)": f"{float_accuracy:.2%} / {accuracy:.2%}"}})
    if rows[-1]["accuracy"] < float_accuracy - MAX_ACCURACY_DROP:
        raise AssertionError(f"the guided variant's accuracy {rows[-1]['accuracy']:.2%} is more than "
                             f"{MAX_ACCURACY_DROP:.0%} below the float model's {float_accuracy:.2%}")
    assert stats["zeroed"] > 0
    return rows


def build_models() -> None:
    """Nothing to build ahead: the models are trained in the run (a minute), so bench/run.py
    builds no others for this one."""


def run() -> list[Row]:
    return [thin_row(), *prune_rows()]


def notes(rows: list[Row]) -> str:
    thin = next(r for r in rows if r["kind"] == "thin")
    guided_row = rows[-1]
    return "\n".join([
        f"thin_channels: conv/depthwise/FC weights {thin['weights'][0]:,} → {thin['weights'][1]:,}, outputs "
        f"within {thin['max_rel_diff']:.1e} relative of the original in LiteRT. Latency: one image, one thread, "
        f"median of {REPEATS} invokes per model, alternating in rounds of {ROUND}. The digits CNN takes a few "
        "microseconds an image, most of it LiteRT's per-invoke overhead, so a quarter of its channels "
        "barely moves its latency; the wider model shows what thinning does to the arithmetic.",
        "",
        "The guided variant ran `sensitivity` (graphtool.analysis.sensitivity) with prune_channels at "
        f"sparsity {', '.join(str(s) for s in GUIDE_SPARSITIES)} on {GUIDE_SAMPLES} training images, took for "
        "each layer the largest sparsity whose model (that layer alone pruned) keeps the output SQNR above a "
        "threshold, and the lowest threshold (of "
        f"{', '.join(f'{t:g}' for t in GUIDE_THRESHOLDS_DB)} dB) whose composed model loses no accuracy on "
        f"another {VALIDATION_SAMPLES} training images; its transforms: "
        + "; ".join(f"`{c}`" for c in guided_row["calls"]) + "."])


def main() -> int:
    rows = run()
    print(format_rows(rows))
    print(notes(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
