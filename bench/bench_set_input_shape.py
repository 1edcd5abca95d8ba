"""`graphtool transform --transforms 'set_input_shape(batch=8)'` of the ~200 MB MLP and of the
699-operator residual chain (both converted at batch 1), against `graphtool convert` of the
same model (a read and a write: the floor any edit of a model pays), each a fresh process,
alternating, medians of REPEATS, in the same run; the models, the anchor and the timed runs
are bench_split's (the previous output deleted and dirty pages flushed before each run).
"set_input_shape alone" is the transform's own time in this process (median of REPEATS,
a fresh load each). After the runs the output must run in LiteRT as it is loaded (no
resize_tensor_input) and give, bit for bit, what the original gives resized to the batch, or
the run fails.

    python bench/bench_set_input_shape.py
    python bench/run.py bench_set_input_shape      # and rewrite its section of BENCHMARKS.md
"""
from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from bench_cold_start import graphtool_command
from bench_inspect import format_rows
from bench_split import ANCHOR, MODELS, OUT_DIR, build_models, timed_runs
from make_models import model_path

import graphtool

TITLE = "set_input_shape against a read + write"
BATCH = 8
SPEC = f"set_input_shape(batch={BATCH})"
REPEATS = 5

Row = dict[str, Any]


def transform_alone(model: Path) -> tuple[float, dict]:
    """The transform's own seconds in this process (median, a fresh load each) and its stats."""
    reports = []
    for _ in range(REPEATS):
        (report,) = graphtool.transform(graphtool.load(model), SPEC).passes
        reports.append(report)
    return statistics.median(r.seconds for r in reports), reports[-1].stats


def outputs(data: bytes, batch: int | None) -> list[np.ndarray]:
    """The model's outputs in LiteRT on a seeded input, resized to `batch` unless None."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=data)
    (detail,) = interpreter.get_input_details()
    shape = [BATCH, *detail["shape"][1:]]
    if batch is not None:
        interpreter.resize_tensor_input(detail["index"], shape)
    elif list(detail["shape"]) != shape:
        raise AssertionError(f"the output's input has shape {list(detail['shape'])}, not {shape}")
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]


def check_output(model: Path, out: Path) -> str:
    """Raise unless `out` runs as loaded and computes what the model resized to BATCH does."""
    mine, theirs = outputs(out.read_bytes(), None), outputs(model.read_bytes(), BATCH)
    if not all(np.array_equal(a, b) for a, b in zip(mine, theirs)):
        raise AssertionError(f"{out.name} does not compute what {model.name} resized to batch {BATCH} does")
    return "yes, bit-identical to the original resized"


def _peak(runs: list[tuple[float, float | None, str]]) -> float | None:
    """The largest peak RSS of the runs (MB), None without GNU time."""
    return max((r[1] for r in runs if r[1] is not None), default=None)


def measure(name: str) -> Row:
    model = model_path(name)
    script = graphtool_command()
    OUT_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT_DIR) as tmp:
        reshaped, copy = Path(tmp) / "reshaped.tflite", Path(tmp) / "copy.tflite"
        runs = timed_runs({"set_input_shape": (script + ["transform", str(model), str(reshaped), "--transforms", SPEC],
                                               reshaped),
                           "convert": (script + ["convert", str(model), str(copy)], copy)}, REPEATS)
        runs_as_loaded = check_output(model, reshaped)
    alone, stats = transform_alone(model)
    edit_s = statistics.median(r[0] for r in runs["set_input_shape"])
    floor_s = statistics.median(r[0] for r in runs["convert"])
    summary = graphtool.inspect(graphtool.load(model))
    operators = sum(sg.operators for sg in summary.subgraphs)
    size_mb = model.stat().st_size / 1e6
    return {"benchmark": TITLE, "graphtool_s": edit_s, "anchor": ANCHOR, "anchor_s": floor_s,
            "ratio": floor_s / edit_s,
            "mode": f"`{name}` ({size_mb:.1f} MB, {operators} operators): `{SPEC}`, fresh process "
                    f"(median of {REPEATS})",
            "graphtool_peak_rss_mb": _peak(runs["set_input_shape"]), "anchor_peak_rss_mb": _peak(runs["convert"]),
            "columns": {"set_input_shape alone (s)": f"{alone:.4f}",
                        "Over the read + write (s)": f"{edit_s - floor_s:+.3f}",
                        "Tensors reshaped / operators derived": f"{stats['tensors_reshaped']} / {stats['operators']}",
                        "Runs in LiteRT as loaded": runs_as_loaded}}


def run() -> list[Row]:
    build_models()
    return [measure(name) for name in MODELS]


if __name__ == "__main__":
    print(format_rows(run()))
    sys.exit(0)
