"""`graphtool split` of the ~200 MB MLP and of the 699-operator residual chain into three parts,
against `graphtool convert` of the same model (a read and a write: the floor any edit of a
model pays), each a fresh process, alternating, median of 5, in the same run; and the same
two in process (`graphtool.split` to a directory against `load` + `save`, median of 5 after
one untimed run), where the interpreter's start-up does not blur the difference.

The cuts are two FULLY_CONNECTED outputs, a third and two thirds of the way through the
model; in the chain each sits inside a residual block, so the block's input crosses the cut
as a second tensor. Before each run the previous output is deleted and dirty pages are
flushed (`os.sync`). After the runs the written parts are chained in LiteRT on a fixed
input and must give the model's outputs bit for bit, or the run fails.

    python bench/bench_split.py
    python bench/run.py bench_split      # and rewrite its section of BENCHMARKS.md
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from bench_cold_start import graphtool_command
from bench_inspect import format_rows, run_child, warm_median
from make_models import ensure_models, model_path

import graphtool

TITLE = "split against a read + write"
MODELS = ("dense_200mb.tflite", "ops_700.tflite")
SPLIT_REPEATS = 5
ANCHOR = "`graphtool convert` (read + write), fresh process"
BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"  # gitignored

Row = dict[str, Any]


def build_models() -> None:
    """Build the two models, if missing (TensorFlow, once)."""
    ensure_models(names=list(MODELS))


def cut_points(path: Path) -> list[str]:
    """The outputs of the FULLY_CONNECTED operators a third and two thirds of the way through."""
    graph = graphtool.load(path)
    dense = [name for name in graph.topological_order() if graph.node(name).op == "FULLY_CONNECTED"]
    names = [dense[len(dense) // 3], dense[2 * len(dense) // 3]]
    assert not any("," in name for name in names), names
    return names


def remove_output(path: Path) -> None:
    """Remove the previous output (file or directory) and flush dirty pages."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    os.sync()


def timed_runs(argvs: dict[str, tuple[list[str], Path]],
               repeats: int = SPLIT_REPEATS) -> dict[str, list[tuple[float, float | None, str]]]:
    """`repeats` runs of each command (its output removed first), alternating: (seconds,
    peak RSS MB, stdout) each."""
    runs: dict[str, list] = {key: [] for key in argvs}
    for _ in range(repeats):
        for key, (argv, out) in argvs.items():
            remove_output(out)
            runs[key].append(run_child(argv))
    return runs


def interpret(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]


def check_chain(model: Path, report: dict) -> str:
    """Raise unless the parts, chained in LiteRT, give the model's outputs bit for bit."""
    from ai_edge_litert.interpreter import Interpreter

    data = model.read_bytes()
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(d["shape"]).astype(d["dtype"])
              for d in Interpreter(model_content=data).get_input_details()]
    values = dict(zip(report["inputs"], inputs))
    for part in report["parts"]:
        outputs = interpret(Path(part["path"]).read_bytes(), [values[name] for name in part["inputs"]])
        values.update(zip(part["outputs"], outputs))
    for name, expected in zip(report["outputs"], interpret(data, inputs)):
        if not np.array_equal(values[name], expected):
            raise AssertionError(f"the parts of {model.name} chained do not compute {name!r} as the model does")
    return "bit-identical"


def in_process(model: Path, at: list[str], tmp: Path) -> tuple[float, float]:
    """Warm medians: split to a directory, and load + save, each into a fresh target."""
    def split_once() -> None:
        remove_output(tmp / "warm_parts")
        graphtool.split(graphtool.load(model), at, tmp / "warm_parts")

    def copy_once() -> None:
        remove_output(tmp / "warm_copy.tflite")
        graphtool.save(graphtool.load(model), tmp / "warm_copy.tflite")

    return warm_median(split_once, SPLIT_REPEATS)[0], warm_median(copy_once, SPLIT_REPEATS)[0]


def _peak(runs: list[tuple[float, float | None, str]]) -> float | None:
    return max((r[1] for r in runs if r[1] is not None), default=None)


def measure(name: str) -> Row:
    model = model_path(name)
    at = cut_points(model)
    script = graphtool_command()
    OUT_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT_DIR) as tmp:
        parts, copy = Path(tmp) / "parts", Path(tmp) / "copy.tflite"
        runs = timed_runs({"split": (script + ["split", str(model), "--at", ",".join(at), "-o", str(parts), "--json"],
                                     parts),
                           "convert": (script + ["convert", str(model), str(copy)], copy)})
        report = json.loads(runs["split"][-1][2])
        identical = check_chain(model, report)
        warm_split, warm_copy = in_process(model, at, Path(tmp))
    split_s = statistics.median(r[0] for r in runs["split"])
    convert_s = statistics.median(r[0] for r in runs["convert"])
    summary = graphtool.inspect(graphtool.load(model))
    operators = sum(sg.operators for sg in summary.subgraphs)
    size_mb = model.stat().st_size / 1e6
    crossing = sum(len(part["inputs"]) for part in report["parts"][1:])
    return {"benchmark": TITLE, "graphtool_s": split_s, "anchor": ANCHOR, "anchor_s": convert_s,
            "ratio": convert_s / split_s,
            "mode": f"`{name}` ({size_mb:.1f} MB, {operators} operators) into 3 parts, fresh process "
                    f"(median of {SPLIT_REPEATS})",
            "graphtool_peak_rss_mb": _peak(runs["split"]), "anchor_peak_rss_mb": _peak(runs["convert"]),
            "columns": {"Operators per part": " + ".join(str(p["operators"]) for p in report["parts"]),
                        "Part sizes MB": " + ".join(f"{p['size'] / 1e6:.1f}" for p in report["parts"]),
                        "In process: split; load + save (s)": f"{warm_split:.3f}; {warm_copy:.3f}",
                        "Tensors into parts 1 and 2": str(crossing),
                        "Chained parts vs model (LiteRT)": identical}}


def run() -> list[Row]:
    build_models()
    return [measure(name) for name in MODELS]


if __name__ == "__main__":
    print(format_rows(run()))
    sys.exit(0)
