"""`graphtool inspect` on a ~100 MB frozen ResNet50 against TensorFlow parsing and
summarising the same file (bench/tf_anchor.py), measured in one run.

Two modes, each a ratio against the anchor measured alongside it:
  warm: in this process, median of WARM_REPEATS after one untimed run (TensorFlow imported);
  cold: a fresh `python` per run, wall clock and peak RSS, median of COLD_REPEATS:
        `python -m graphtool inspect --json MODEL` against `python bench/tf_anchor.py MODEL`.
Both summaries must agree (inputs, outputs, op histogram, parameters) or the run fails.

    python bench/bench_inspect.py
"""
from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import graphtool
from make_models import model_path

MODEL = "resnet50_frozen.pb"
WARM_REPEATS = 5
COLD_REPEATS = 3
BENCH_DIR = Path(__file__).resolve().parent
GNU_TIME = shutil.which("time", path="/usr/bin:/bin")
ANCHOR = "TF GraphDef.FromString + import_graph_def + summary"
INPUT_FIELDS = ("name", "dtype", "shape")  # what the anchor reports of each input


# -- summaries, normalised for comparison ---------------------------------------------------

def from_graphtool(summary: dict[str, Any]) -> dict[str, Any]:
    """The fields of a graphtool Summary (or its --json) that the anchor also computes."""
    return {"num_nodes": summary["num_nodes"],
            "inputs": [{key: t[key] for key in INPUT_FIELDS} for t in summary["inputs"]],
            "outputs": [o["name"] for o in summary["outputs"]],
            "ops": summary["ops"],
            "parameters": summary["parameters"]["count"]}


def graphtool_inspect(path: Path) -> dict[str, Any]:
    """What is timed for graphtool in process: load + inspect."""
    return graphtool.inspect(graphtool.load(path)).to_dict()


def _canonical(summary: dict[str, Any]) -> dict[str, Any]:
    return {**summary, "inputs": sorted(summary["inputs"], key=lambda t: t["name"]),
            "outputs": sorted(summary["outputs"])}


def check_agree(expected: dict[str, Any], actual: dict[str, Any], what: str) -> None:
    """Raise unless two normalised summaries match field by field."""
    expected, actual = _canonical(expected), _canonical(actual)
    diffs = [f"  {key}: TensorFlow {expected[key]!r}\n  {' ' * len(key)}  {what} {actual[key]!r}"
             for key in expected if expected[key] != actual.get(key)]
    if diffs:
        raise AssertionError(f"{what} disagrees with the TensorFlow anchor:\n" + "\n".join(diffs))


# -- timing --------------------------------------------------------------------------------

def warm_median(fn: Callable[[], Any], repeats: int = WARM_REPEATS) -> tuple[float, Any]:
    """Median seconds of `fn()` over `repeats` calls after one untimed call, and its result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run_child(argv: list[str]) -> tuple[float, float | None, str]:
    """Run `argv`: wall-clock seconds, peak RSS in MB (via GNU time, if present), stdout."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        prefix = [GNU_TIME, "-f", "%M", "-o", rss.name] if GNU_TIME else []
        start = time.perf_counter()
        done = subprocess.run(prefix + argv, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
        kilobytes = rss.read().strip().splitlines()
    peak = int(kilobytes[-1]) / 1024 if kilobytes else None
    return seconds, peak, done.stdout


def cold_medians(commands: dict[str, list[str]], repeats: int = COLD_REPEATS) -> dict[str, dict]:
    """Run each command `repeats` times, interleaved so drift hits all of them alike."""
    runs: dict[str, list[tuple[float, float | None, str]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, argv in commands.items():
            runs[name].append(run_child(argv))
    return {name: {"seconds": statistics.median(r[0] for r in results),
                   "peak_rss_mb": max((r[1] for r in results if r[1] is not None), default=None),
                   "stdout": results[-1][2]}
            for name, results in runs.items()}


# -- the benchmark ---------------------------------------------------------------------------

def _row(title: str, mode: str, graphtool_s: float, anchor: str, anchor_s: float,
         **extra: Any) -> dict[str, Any]:
    return {"benchmark": title, "mode": mode, "graphtool_s": graphtool_s, "anchor": anchor,
            "anchor_s": anchor_s, "ratio": anchor_s / graphtool_s, **extra}


def measure_warm(path: Path, title: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """In-process medians; returns the row and the TensorFlow summary."""
    graphtool_s, summary = warm_median(lambda: graphtool_inspect(path))
    import tf_anchor  # imports TensorFlow: after graphtool's timing, outside both timings

    anchor_s, expected = warm_median(lambda: tf_anchor.inspect(path))
    check_agree(expected, from_graphtool(summary), "graphtool.inspect")
    row = _row(title, f"warm, in process (median of {WARM_REPEATS})", graphtool_s,
               f"{ANCHOR}, in process", anchor_s)
    return row, expected


def measure_cold(path: Path, title: str, expected: dict[str, Any]) -> dict[str, Any]:
    """Fresh-interpreter medians of the CLI and of the anchor script."""
    python = sys.executable
    results = cold_medians({
        "graphtool": [python, "-m", "graphtool", "inspect", "--json", str(path)],
        "anchor": [python, str(BENCH_DIR / "tf_anchor.py"), str(path)],
    })
    gt, anchor = results["graphtool"], results["anchor"]
    check_agree(expected, from_graphtool(json.loads(gt["stdout"])), "graphtool inspect --json")
    check_agree(expected, json.loads(anchor["stdout"]), "tf_anchor.py subprocess")
    return _row(title, f"cold, new process (median of {COLD_REPEATS})", gt["seconds"],
                f"{ANCHOR}, `python bench/tf_anchor.py` incl. `import tensorflow`", anchor["seconds"],
                graphtool_peak_rss_mb=gt["peak_rss_mb"], anchor_peak_rss_mb=anchor["peak_rss_mb"])


def run() -> list[dict[str, Any]]:
    """Rows: one per mode, each with graphtool_s, anchor_s and ratio (the speedup)."""
    path = model_path(MODEL)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run bench/make_models.py first")
    size = path.stat().st_size
    title = f"inspect ResNet50 frozen ({size / 1e6:.0f} MB)"
    warm, expected = measure_warm(path, title)
    cold = measure_cold(path, title, expected)
    for row in (warm, cold):
        row.update(model=MODEL, model_bytes=size, num_nodes=expected["num_nodes"])
    return [warm, cold]


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of `rows`."""
    lines = [f"{'mode':<34} {'graphtool s':>12} {'anchor s':>10} {'speedup':>8}  peak RSS MB (gt / TF)"]
    for r in rows:
        rss = (f"{r['graphtool_peak_rss_mb']:.0f} / {r['anchor_peak_rss_mb']:.0f}"
               if r.get("graphtool_peak_rss_mb") and r.get("anchor_peak_rss_mb") else "-")
        lines.append(f"{r['mode']:<34} {r['graphtool_s']:>12.3f} {r['anchor_s']:>10.3f} "
                     f"{r['ratio']:>7.1f}x  {rss}")
    return "\n".join([rows[0]["benchmark"], *lines]) if rows else ""


if __name__ == "__main__":
    print(format_rows(run()))
