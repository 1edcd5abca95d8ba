"""Batch-norm folding: graphtool's pipeline `remove_nodes(op=Identity, op=CheckNumerics)
fold_constants(ignore_errors=true) fold_batch_norms fold_old_batch_norms strip_unused_nodes
sort_by_execution_order` against TensorFlow's `optimize_for_inference_lib.optimize_for_inference`,
on a frozen tf_keras ResNet50 (FusedBatchNormV3) and a frozen Keras 3 MobileNetV2 (batch
norm as Mul + Add), measured in one run.

Both sides go from the file's bytes to the optimized GraphDef's bytes: graphtool
`load` + `transform` + `formats.graphdef.write`; TensorFlow `GraphDef.FromString` +
`optimize_for_inference` + `SerializeToString`. In process, median of REPEATS after one
untimed run, each run on a fresh load. Batch norms are counted alike on both outputs
(`count_batch_norms`). The original and both outputs run in a `tf.compat.v1.Session` on
the same seeded batch; graphtool's output must match the original within MAX_REL_DIFF,
or the run fails (the anchor's difference is only reported).

    python bench/bench_fold.py
"""
from __future__ import annotations

import collections
import graphlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

import numpy as np

import graphtool
from bench_inspect import format_rows
from graphtool.formats import graphdef
from make_models import model_path, tensor_names
from quiet_tf import import_tensorflow

PIPELINE = ("remove_nodes(op=Identity, op=CheckNumerics) fold_constants(ignore_errors=true) "
            "fold_batch_norms fold_old_batch_norms strip_unused_nodes sort_by_execution_order")
MODELS = {"resnet50_frozen.pb": "tf_keras ResNet50", "mobilenetv2_frozen.pb": "Keras 3 MobileNetV2"}
REPEATS = 3
BATCH = 2
SEED = 0
MAX_REL_DIFF = 1e-4
ANCHOR = "optimize_for_inference"
MODE = f"pipeline vs optimize_for_inference, in process (median of {REPEATS}, fresh load each)"
BATCH_NORM_OPS = frozenset({"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3",
                            "BatchNormWithGlobalNormalization"})
LINEAR_OPS = frozenset({"Conv2D", "DepthwiseConv2dNative", "MatMul"})

Row = dict[str, Any]


# -- the two sides -----------------------------------------------------------------------

def _node(tensor: str) -> str:
    """'input:0' -> 'input'."""
    return tensor.rsplit(":", 1)[0]


class GraphtoolRun(NamedTuple):
    """One graphtool run: the bytes written, the TransformReport and each phase's seconds."""
    data: bytes
    report: Any
    phases: dict[str, float]


def graphtool_fold(path: Path, inputs: list[str], outputs: list[str]) -> GraphtoolRun:
    """graphtool: load, run PIPELINE, write."""
    start = time.perf_counter()
    graph = graphtool.load(path)
    loaded = time.perf_counter()
    report = graphtool.transform(graph, PIPELINE, inputs=inputs, outputs=outputs)
    transformed = time.perf_counter()
    data = graphdef.write(graph)
    phases = {"load": loaded - start, "transform": transformed - loaded,
              "write": time.perf_counter() - transformed}
    return GraphtoolRun(data, report, phases)


def tf_fold(path: Path, inputs: list[str], outputs: list[str]) -> bytes:
    """TensorFlow: parse, optimize_for_inference, serialize."""
    tf = import_tensorflow()
    from tensorflow.python.tools import optimize_for_inference_lib

    tf.get_logger().setLevel("ERROR")  # a warning per conv it cannot fold; cheap to set
    graph_def = tf.compat.v1.GraphDef.FromString(path.read_bytes())
    optimized = optimize_for_inference_lib.optimize_for_inference(
        graph_def, inputs, outputs, tf.float32.as_datatype_enum)
    return optimized.SerializeToString()


# -- counting batch norms ----------------------------------------------------------------

def parse(data: bytes) -> Any:
    """GraphDef bytes as a TensorFlow GraphDef message."""
    return import_tensorflow().compat.v1.GraphDef.FromString(data)


def _producers(node: Any) -> list[str]:
    """The names of the nodes feeding `node`, data and control inputs alike."""
    return [_node(name.lstrip("^")) for name in node.input]


def constant_only(nodes: dict[str, Any]) -> dict[str, bool]:
    """Per node: whether it is computed from constants only (no Placeholder upstream)."""
    order = graphlib.TopologicalSorter({name: _producers(node) for name, node in nodes.items()})
    result: dict[str, bool] = {}
    for name in order.static_order():
        node = nodes[name]
        result[name] = node.op != "Placeholder" and all(result[p] for p in _producers(node))
    return result


def _after_linear(name: str, nodes: dict[str, Any]) -> str | None:
    """The op of the Conv2D / DepthwiseConv2dNative / MatMul that `name` is, or follows
    through one BiasAdd; None otherwise."""
    node = nodes[name]
    if node.op == "BiasAdd":
        node = nodes[_node(node.input[0])]
    return node.op if node.op in LINEAR_OPS else None


def batch_norm_kinds(graph_def: Any) -> collections.Counter[str]:
    """The batch norms left in `graph_def`, by kind: batch-norm ops ('FusedBatchNormV3 after
    BiasAdd'), and Mul nodes right after a Conv2D / DepthwiseConv2dNative / MatMul (possibly
    through a BiasAdd) whose other operand is computed from constants only ('Mul after Conv2D')."""
    nodes = {node.name: node for node in graph_def.node}
    constant = constant_only(nodes)
    kinds: collections.Counter[str] = collections.Counter()
    for node in graph_def.node:
        if node.op in BATCH_NORM_OPS:
            kinds[f"{node.op} after {nodes[_node(node.input[0])].op}"] += 1
        elif node.op == "Mul" and len(node.input) == 2:
            kinds.update(_mul_kind(node, nodes, constant))
    return kinds


def _mul_kind(node: Any, nodes: dict[str, Any], constant: dict[str, bool]) -> list[str]:
    """['Mul after OP'] if the Mul `node` scales a linear op's output by a constant, else []."""
    a, b = (_node(name) for name in node.input)
    for x, scale in ((a, b), (b, a)):
        linear = _after_linear(x, nodes)
        if linear and constant[scale]:
            return [f"Mul after {linear}"]
    return []


def count_batch_norms(graph_def: Any) -> int:
    """How many batch norms `graph_def` still computes (see batch_norm_kinds)."""
    return sum(batch_norm_kinds(graph_def).values())


# -- numerics ----------------------------------------------------------------------------

def seeded_batch(shape: Iterable[int | None]) -> np.ndarray:
    """BATCH standard-normal inputs of `shape` (its batch dimension replaced), seeded."""
    dims = [BATCH, *list(shape)[1:]]
    return np.random.default_rng(SEED).standard_normal(dims).astype(np.float32)


def run_graph(data: bytes, input_name: str, output_name: str, batch: np.ndarray) -> np.ndarray:
    """Run GraphDef bytes in a tf.compat.v1.Session on `batch`: the output tensor's value."""
    tf = import_tensorflow()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(parse(data), name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(output_name, {input_name: batch})


def input_shape(data: bytes, input_node: str) -> list[int | None]:
    """The static shape of the Placeholder `input_node` (-1 dimensions as None)."""
    node = next(n for n in parse(data).node if n.name == input_node)
    return [d.size if d.size >= 0 else None for d in node.attr["shape"].shape.dim]


def max_rel_diff(expected: np.ndarray, actual: np.ndarray) -> float:
    """max |actual - expected| / max |expected|."""
    return float(np.max(np.abs(actual.astype(np.float64) - expected)) / np.max(np.abs(expected)))


def numerics(original: bytes, outputs: dict[str, bytes], names: dict[str, list[str]]) -> dict[str, float]:
    """Max relative difference from the original, per output, on one seeded batch."""
    input_name, output_name = names["inputs"][0], names["outputs"][0]
    batch = seeded_batch(input_shape(original, _node(input_name)))
    expected = run_graph(original, input_name, output_name, batch)
    return {side: max_rel_diff(expected, run_graph(data, input_name, output_name, batch))
            for side, data in outputs.items()}


# -- the benchmark -----------------------------------------------------------------------

def _model(name: str) -> Path:
    path = model_path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run bench/make_models.py first")
    return path


def _failed_passes(report: Any) -> list[str]:
    """'name: error' for every pass of a TransformReport that failed (and was ignored)."""
    return [f"{p.name}: {p.error}" for p in report.passes if p.error]


def timed_runs(fn: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, list[Any]]:
    """Median seconds of `fn()` over `repeats` calls after one untimed call; their results."""
    fn()
    times, results = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        results.append(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times), results


def phase_medians(runs: list[GraphtoolRun]) -> dict[str, float]:
    """Each phase's median seconds over `runs`."""
    return {phase: statistics.median(r.phases[phase] for r in runs) for phase in runs[0].phases}


def slowest_passes(runs: list[GraphtoolRun], top: int = 3) -> dict[str, float]:
    """The `top` passes by median seconds over `runs`."""
    medians = {p.name: statistics.median(r.report.passes[i].seconds for r in runs)
               for i, p in enumerate(runs[0].report.passes)}
    return dict(sorted(medians.items(), key=lambda item: -item[1])[:top])


def _columns(before: Any, gt: Any, tf: Any, diffs: dict[str, float],
             phases: dict[str, float]) -> dict[str, str]:
    """The extra table columns of one model's row."""
    return {"graphtool load + transform + write (s)": " + ".join(f"{s:.3f}" for s in phases.values()),
            "Nodes before": f"{len(before.node):,}",
            "Nodes after (graphtool / TF)": f"{len(gt.node):,} / {len(tf.node):,}",
            "Batch norms before": str(count_batch_norms(before)),
            "Batch norms left (graphtool / TF)": f"{count_batch_norms(gt)} / {count_batch_norms(tf)}",
            "Max rel diff vs original (graphtool / TF)":
                f"{diffs['graphtool']:.1e} / {diffs[ANCHOR]:.1e}"}


def measure(name: str) -> Row:
    """One model's row: both sides timed, their batch norms counted, their outputs run."""
    path, names = _model(name), tensor_names(name)
    inputs, outputs = [_node(t) for t in names["inputs"]], [_node(t) for t in names["outputs"]]
    graphtool_s, runs = timed_runs(lambda: graphtool_fold(path, inputs, outputs))
    anchor_s, tf_runs = timed_runs(lambda: tf_fold(path, inputs, outputs))
    gt_bytes, report, tf_bytes = runs[-1].data, runs[-1].report, tf_runs[-1]
    original = path.read_bytes()
    diffs = numerics(original, {"graphtool": gt_bytes, ANCHOR: tf_bytes}, names)
    if not diffs["graphtool"] <= MAX_REL_DIFF:
        raise AssertionError(f"{name}: graphtool's output differs from the original by "
                             f"{diffs['graphtool']:.3g} relative (> {MAX_REL_DIFF:g})")
    before, gt, tf = parse(original), parse(gt_bytes), parse(tf_bytes)
    return {"benchmark": f"fold batch norms: {MODELS[name]} (`{name}`, {len(original) / 1e6:.0f} MB)",
            "mode": MODE, "graphtool_s": graphtool_s, "anchor": ANCHOR, "anchor_s": anchor_s,
            "ratio": anchor_s / graphtool_s, "model": name, "label": MODELS[name],
            "batch_norms": {"before": batch_norm_kinds(before), "graphtool": batch_norm_kinds(gt),
                            ANCHOR: batch_norm_kinds(tf)},
            "max_rel_diff": diffs, "failed_passes": _failed_passes(report),
            "slowest_passes": slowest_passes(runs),
            "columns": _columns(before, gt, tf, diffs, phase_medians(runs))}


def run() -> list[Row]:
    """Rows: one per model."""
    return [measure(name) for name in MODELS]


# -- notes -------------------------------------------------------------------------------

def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _times(ratio: float) -> str:
    """'2.0× faster' or '2.0× slower'."""
    return f"{ratio:.1f}× faster" if ratio >= 1 else f"{1 / ratio:.1f}× slower"


def _kinds(kinds: collections.Counter[str]) -> str:
    """'53 FusedBatchNormV3 after BiasAdd', or 'none'."""
    return ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "none"


def model_note(row: Row) -> str:
    """One model's outcome, judged on this run's figures."""
    counts = row["batch_norms"]
    before, gt, tf = (sum(counts[k].values()) for k in ("before", "graphtool", ANCHOR))
    diffs = row["max_rel_diff"]
    failed = "; ".join(row["failed_passes"]) or "none"
    slowest = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in row["slowest_passes"].items())
    return (f"- {row['label']}: {before} batch norms before ({_kinds(counts['before'])}). "
            f"graphtool's pipeline folds {before - gt} of {before} (left: {_kinds(counts['graphtool'])}); "
            f"optimize_for_inference folds {before - tf} of {before} (left: {_kinds(counts[ANCHOR])}). "
            f"graphtool's output within {MAX_REL_DIFF:g} of the original — "
            f"{_met(diffs['graphtool'] <= MAX_REL_DIFF)} ({diffs['graphtool']:.1e}; "
            f"optimize_for_inference's {diffs[ANCHOR]:.1e}). graphtool takes {row['graphtool_s']:.3f} s, "
            f"optimize_for_inference {row['anchor_s']:.3f} s (graphtool {_times(row['ratio'])}); slowest "
            f"passes: {slowest}. Passes that failed and were ignored: {failed}.")


def notes(rows: list[Row]) -> str:
    """How batch norms and differences are counted, and each model's outcome (markdown)."""
    return "\n".join([
        "Timed, from the file to the optimized GraphDef's bytes: graphtool `load` + `transform` + "
        "`formats.graphdef.write`; TensorFlow `GraphDef.FromString` + `optimize_for_inference` + "
        f"`SerializeToString`; in process, median of {REPEATS} after one untimed run. "
        "A batch norm is a FusedBatchNorm / V2 / V3 or BatchNormWithGlobalNormalization node, "
        "or a Mul right after a Conv2D, DepthwiseConv2dNative or MatMul (possibly through a "
        "BiasAdd) whose other operand is computed from constants only (Keras 3's form); "
        "both outputs are counted by the same function. Max rel diff is max |output − original| "
        "÷ max |original| over the output tensor for a batch of "
        f"{BATCH} seeded standard-normal images.", "",
        *[model_note(row) for row in rows]])


def main() -> int:
    rows = run()
    for row in rows:
        columns = "  ".join(f"{key}: {value}" for key, value in row["columns"].items())
        print(format_rows([row]), columns, sep="\n", end="\n\n")
    print(notes(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
