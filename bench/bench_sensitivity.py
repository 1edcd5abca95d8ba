"""`graphtool sensitivity` time per layer: `graphtool.sensitivity(MODEL, data=SAMPLES,
transforms=T)` in process (on the digits CNN one untimed run first, then the median of
REPEATS; on MobileNetV2, minutes long, one run), divided by the
number of layers it ranks, against one LiteRT run of the float model over the same samples
(the floor: each layer costs two transformed variants, each run once over the samples, plus
two transforms and two writes). The digits CNN (the committed fixture, 100 digits of its test
split) and a Keras 3 MobileNetV2 (make_models, random weights, batch-norm statistics from
natural-statistics images; 16 such images of another seed), each with quantize_weights
(dynamic int8) and quantize_nodes (full integer, calibrated on the same samples once per
variant, as a user's spec would).

    python bench/bench_sensitivity.py
    python bench/run.py bench_sensitivity      # and rewrite its section of BENCHMARKS.md
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from make_models import ensure_models, model_path, natural_images

import graphtool

TITLE = "sensitivity time per layer"
ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3
ANCHOR = "one LiteRT run of the float model over the samples"
MOBILENET = "mobilenetv2_natural.tflite"
SAMPLES_SEED = 3

Row = dict[str, Any]


def build_models() -> None:
    ensure_models(names=[MOBILENET])


def cases(tmp: Path) -> list[tuple[str, Path, Path]]:
    """(label, model, samples .npz)."""
    digits = np.load(ROOT / "fixtures" / "tflite" / "digits_test.npz")["images"][:100].astype(np.float32)
    np.savez(tmp / "digits.npz", image=digits)
    mobilenet = model_path(MOBILENET)
    images = natural_images(np.random.default_rng(SAMPLES_SEED), 16)
    np.savez(tmp / "natural.npz", **{graphtool.load(mobilenet).inputs[0]: images})
    return [("digits CNN", ROOT / "fixtures" / "tflite" / "float_cnn.tflite", tmp / "digits.npz"),
            ("MobileNetV2", mobilenet, tmp / "natural.npz")]


def one_run(model: Path, samples: Path) -> float:
    """Seconds of one LiteRT run of `model` over every sample (batches of 32, as sensitivity runs them)."""
    from graphtool.runtime.litert import TfliteModel
    from graphtool.runtime.samples import read_npz

    runner = TfliteModel(model.read_bytes())
    (values,) = read_npz(samples).values()
    start = time.perf_counter()
    for first in range(0, len(values), 32):
        runner.run([values[first:first + 32]])
    return time.perf_counter() - start


def median_seconds(function, repeats: int = REPEATS) -> tuple[float, Any]:
    if repeats > 1:
        function()  # untimed: imports, caches
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run() -> list[Row]:
    build_models()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, model, samples in cases(Path(tmp)):
            anchor, _ = median_seconds(lambda: one_run(model, samples), 5)
            for spec in ("quantize_weights", f"quantize_nodes(calibration={samples})"):
                repeats = 1 if label == "MobileNetV2" else REPEATS
                seconds, report = median_seconds(lambda: graphtool.sensitivity(model, data=samples, transforms=spec),
                                                 repeats)
                layers = len(report.layers)
                per_layer = seconds / layers
                rows.append({"benchmark": label, "mode": spec.split("(")[0], "graphtool_s": per_layer,
                             "anchor": ANCHOR, "anchor_s": anchor, "ratio": anchor / per_layer,
                             "columns": {"layers": str(layers), "samples": str(report.samples),
                                         "whole run (s)": f"{seconds:.2f}",
                                         "per layer / one run": f"{per_layer / anchor:.1f}x"}})
    return rows


def main() -> None:
    for row in run():
        print(f"{row['benchmark']:>12} {row['mode']:<17} {row['graphtool_s'] * 1000:8.1f} ms per layer, "
              f"one run {row['anchor_s'] * 1000:7.1f} ms, {row['columns']}")


if __name__ == "__main__":
    sys.exit(main())
