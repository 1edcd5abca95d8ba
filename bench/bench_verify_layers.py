"""`graphtool verify --layers` on MobileNetV2 (float `.tflite` against its `quantize_nodes` int8
version) against plain `verify` of the same two models on the same inputs: running both
models once per example, outputs only. The difference is what keeping every tensor, pairing
them, reading and comparing each, and running every layer alone on the float model's values
cost. In process, median of 3 after one untimed run, in the same run; `--layers` once more on
one example, which splits its time into what it spends once (pairing, cutting the layers out)
and what each further example adds.

The int8 model is calibrated on 8 seeded natural images (make_models.natural_images); both
verifies run on 4 others, read from an .npz.

    python bench/bench_verify_layers.py
    python bench/run.py bench_verify_layers      # and rewrite its section of BENCHMARKS.md
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from bench_inspect import format_rows, warm_median
from make_models import ensure_models, model_path, natural_images

import graphtool
from graphtool.analysis.layers import verify_layers

TITLE = "verify --layers against verify"
MODEL = "mobilenetv2_natural.tflite"
CALIBRATION_SAMPLES = 8
SAMPLES = 4
REPEATS = 3
ANCHOR = "`graphtool.verify` (both models once per example, outputs only)"
BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"  # gitignored

Row = dict[str, Any]


def build_models() -> None:
    """Build the float model, if missing (TensorFlow, once)."""
    ensure_models(names=[MODEL])


def quantized(model: Path, tmp: Path) -> Path:
    graph = graphtool.load(model)
    key = graph.inputs[0]
    np.savez(tmp / "calibration.npz", **{key: natural_images(np.random.default_rng(1), CALIBRATION_SAMPLES)})
    graphtool.transform(graph, f"quantize_nodes(calibration={tmp / 'calibration.npz'})")
    graphtool.save(graph, tmp / "int8.tflite")
    return tmp / "int8.tflite"


def measure() -> Row:
    model = model_path(MODEL)
    OUT_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT_DIR) as name:
        tmp = Path(name)
        int8 = quantized(model, tmp)
        data = tmp / "inputs.npz"
        np.savez(data, natural_images(np.random.default_rng(2), SAMPLES))
        layers_s, report = warm_median(lambda: verify_layers(model, int8, data=data), REPEATS)
        one_s, _ = warm_median(lambda: verify_layers(model, int8, data=data, samples=1), REPEATS)
        verify_s, plain = warm_median(lambda: graphtool.verify(model, int8, data=data), REPEATS)
    alone = sum(1 for layer in report.layers if layer.layer_problem is None)
    sqnr = plain.outputs[0].sqnr_db
    operators = report.operators_b
    return {"benchmark": TITLE, "graphtool_s": layers_s, "anchor": ANCHOR, "anchor_s": verify_s,
            "ratio": verify_s / layers_s,
            "mode": f"`{MODEL}` float vs int8 ({operators} operators), {SAMPLES} examples, in process "
                    f"(median of {REPEATS})",
            "columns": {"Paired tensors": str(len(report.layers)),
                        "B's operators paired": f"{report.paired_operators}/{operators} ({report.coverage:.0%})",
                        "Layers run alone": str(alone),
                        "--layers: each further example (s)": f"{(layers_s - one_s) / (SAMPLES - 1):.3f}",
                        "--layers: 1 example (s)": f"{one_s:.3f}",
                        "Output SQNR (dB)": "-" if sqnr is None else f"{sqnr:.1f}",
                        "First divergence": report.first_divergence or "none"}}


def notes(rows: list[Row]) -> str:
    return ("`--layers` takes 1/ratio times as long as `verify`: besides running both models with every "
            "tensor kept and reading and comparing each paired tensor (as float64), it cuts B's paired layers "
            "out into models of their own (once; layers that read nothing another computes share one) and "
            "runs them on A's values (every example).")


def run() -> list[Row]:
    build_models()
    return [measure()]


if __name__ == "__main__":
    print(format_rows(run()))
    sys.exit(0)
