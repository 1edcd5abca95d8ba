"""sensitivity: which layers a quantizing (or pruning) transform hurts, ranked by the output
error each causes, measured by running the model in its runtime.

The transform runs once on the whole model; its layers are the operators it changed (an
input now read from another kind of producer, or with another dtype, shape, quantization or
constant value; an output with another dtype, shape or quantization). Then, for each layer,
it runs restricted through its own parameters: `only=LAYER` (that layer alone) and
`keep=LAYER` (every layer but that one). Every variant runs in the model's runtime (LiteRT for
TFLite, TensorFlow for GraphDefs) on the same samples as the original model
(graphtool.runtime.output_error); its output SQNR against the original is taken over every
output element of every sample. GraphDef Identity nodes (a variable's ReadVariableOp in a
frozen graph) are looked through, never layers.

Layers rank by the SQNR of the model with the transform on that layer alone, lowest first
(the layer that breaks the output most on its own), then by the SQNR the whole transformed
model loses to that layer (the all-but-one SQNR minus the all SQNR), then by execution order.

    report = sensitivity("model.tflite", data="samples.npz", transforms="quantize_weights")
    report.layers[0].name                                  # the most sensitive layer
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import numpy as np

from ..errors import GraphtoolError
from ..formats import dumps, load, tflite
from ..ir import TENSOR_SOURCE_OPS, Graph, Node, Ref
from ..passes import get, transform
from ..passes.pipeline import calls_of
from ..passes.spec import TransformCall
from .verify import endpoints

RUNTIMES = {"tflite": "LiteRT", "graphdef": "TensorFlow"}
PASS_THROUGH = frozenset({"Identity"})  # GraphDef ops that only hand a value on: never a layer, looked through


@dataclass
class LayerSensitivity:
    """One layer the transform changes, and the output SQNR of the variants restricted to it."""

    rank: int  # 1: the most sensitive
    name: str  # the operator (what only= and keep= take)
    op: str
    order: int  # its place in the model's execution order (0-based, among every operator)
    only_sqnr_db: float | None  # the transform on this layer alone; None: no output error at all
    all_but_sqnr_db: float | None  # the transform on every layer but this one
    loss_db: float | None  # all_but_sqnr_db - all_sqnr_db: the SQNR the transformed model loses to this layer


@dataclass
class SensitivityReport:
    model: str
    transform: str  # the transform as given, without only= / keep= additions
    runtime: str
    data: str | None  # the samples file (None when given from Python)
    samples: int
    all_sqnr_db: float | None  # the transform on every layer
    layers: list[LayerSensitivity] = field(default_factory=list)  # ranked, the most sensitive first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _db(value: float) -> float | None:
    return None if math.isinf(value) and value > 0 else round(value, 4)


def sensitivity(model: Graph | str | os.PathLike | bytes, *, data: Any,
                transforms: str | TransformCall) -> SensitivityReport:
    """Rank the layers `transforms` (one quantizing or pruning transform taking only= and keep=)
    changes in `model` by the output SQNR loss each causes, on the samples `data` (an .npz keyed
    by input name, samples on the first axis, or a mapping of such arrays)."""
    from ..runtime.output_error import OutputError

    graph, original, source = _model(model)
    call = _call(transforms, graph.format)
    outputs = [point.name for point in endpoints(graph, "outputs")] if graph.format == "graphdef" else None
    measure = OutputError(original, data, source, outputs=outputs)

    def sqnr(extra: dict[str, list[str]]) -> float:
        params = {key: list(values) for key, values in call.params.items()}
        for key, values in extra.items():
            params[key] = params.get(key, []) + values
        variant = load(original)
        with _quiet_passes():  # a one-layer variant often leaves what the whole run would not: not news
            transform(variant, [TransformCall(call.name, params)])
        return measure.measure(_bytes(variant), f"<{call.name} {extra}>").db

    changed = load(original)
    transform(changed, [call])
    whole = measure.measure(_bytes(changed), f"<{call.name}>").db
    order = {node.name: i for i, node in enumerate(n for n in graph if n.op not in TENSOR_SOURCE_OPS
                                                   and n.op not in PASS_THROUGH)}
    layers = [name for name in order if name in changed and _signature(graph, graph.node(name))
              != _signature(changed, changed.node(name))]
    if not layers:
        raise GraphtoolError(f"{source}: {call} changes no operator of the model: nothing to rank")
    found = []
    for name in layers:
        alone, all_but = sqnr({"only": [name]}), sqnr({"keep": [name]})
        loss = None if math.isinf(all_but) or math.isinf(whole) else all_but - whole
        found.append(LayerSensitivity(0, name, graph.node(name).op, order[name], _db(alone), _db(all_but),
                                      None if loss is None else round(loss, 4)))
    found.sort(key=lambda layer: (math.inf if layer.only_sqnr_db is None else layer.only_sqnr_db,
                                  -(layer.loss_db if layer.loss_db is not None else math.inf), layer.order))
    for rank, layer in enumerate(found, 1):
        layer.rank = rank
    named = os.fspath(data) if isinstance(data, (str, os.PathLike)) else None
    return SensitivityReport(source, str(call), RUNTIMES[graph.format], named, measure.samples, _db(whole), found)


@contextmanager
def _quiet_passes() -> Iterator[None]:
    """Transforms' warnings (on the "graphtool.passes" logger) held back while a variant is made."""
    log = logging.getLogger("graphtool.passes")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _bytes(graph: Graph) -> bytes:
    """What the runtime runs: a .tflite, or a binary GraphDef."""
    return dumps(graph, text=False) if graph.format == "graphdef" else tflite.write(graph)


def _model(model: Graph | str | os.PathLike | bytes) -> tuple[Graph, bytes, str]:
    """The model as read back from the bytes its runtime runs, those bytes, and its name."""
    if isinstance(model, Graph):
        graph, source = model, model.meta.get("source") or "<model>"
    else:
        graph = load(bytes(model) if isinstance(model, (bytes, bytearray, memoryview)) else model)
        source = "<model>" if isinstance(model, (bytes, bytearray, memoryview)) else os.fspath(model)
    if graph.format not in RUNTIMES:
        raise GraphtoolError(f"{source}: sensitivity runs TFLite models (LiteRT) and GraphDefs (TensorFlow), "
                             f"not {graph.format}")
    data = _bytes(graph)
    return load(data), data, source


def _call(transforms: str | TransformCall, format: str) -> TransformCall:
    """The one transform to restrict, checked: it takes only= and keep=, and the spec sets neither only=."""
    calls = calls_of(transforms) if isinstance(transforms, str) else [transforms]
    if len(calls) != 1:
        raise GraphtoolError(f"sensitivity takes one transform, got {len(calls)}: "
                             f"{' '.join(str(c) for c in calls) or 'none'}")
    call = calls[0]
    names = {name for name, *_ in get(call.name, format).parameters()}
    if not {"only", "keep"} <= names:
        raise GraphtoolError(f"sensitivity restricts a transform to one layer with its only= and keep= parameters; "
                             f"{call.name} has no {'only' if 'only' not in names else 'keep'}=")
    if "only" in call.params:
        raise GraphtoolError(f"sensitivity sets only= itself, layer by layer; drop it from {call}")
    return call


def _signature(graph: Graph, node: Node) -> tuple:
    """What a transform may change about an operator: where and what it reads, what it writes."""
    reads = []
    for ref in graph.inputs_of(node.name):
        if ref is None:
            reads.append(None)
            continue
        ref = _through(graph, ref)
        tensor = graph.tensor(ref)
        value = None
        if tensor is not None and tensor.data is not None:
            value = hashlib.sha256(np.ascontiguousarray(tensor.data).tobytes()).hexdigest()
        reads.append((graph.node(ref.node).op, ref.port, _tensor(tensor), value))
    return node.op, tuple(reads), tuple(_tensor(t) for t in node.outputs)


def _through(graph: Graph, ref: Ref) -> Ref:
    """What `ref` carries, past GraphDef Identity nodes (a variable's ReadVariableOp in a frozen graph)."""
    seen = set()
    while graph.node(ref.node).op in PASS_THROUGH and ref.node not in seen:
        seen.add(ref.node)
        inputs = [r for r in graph.inputs_of(ref.node) if r is not None]
        if len(inputs) != 1:
            break
        ref = inputs[0]
    return ref


def _tensor(tensor: Any) -> tuple | None:
    if tensor is None:
        return None
    q = tensor.quantization
    scales = None if q is None else tuple(np.asarray(q.scale, np.float64).ravel().tolist())
    return tensor.dtype, tensor.shape, scales


# -- the report for people -------------------------------------------------------------------

def ranking_chart(report: SensitivityReport) -> Any:
    """The ranking as a horizontal bar chart (graphtool.analysis.report.Chart): per layer, the
    output SQNR with the transform on it alone and the SQNR the transformed model loses to it."""
    from .report import Chart, Series

    return Chart("bar", f"Sensitivity to {report.transform} (most sensitive first)",
                 x=[layer.name for layer in report.layers],
                 series=[Series("output SQNR, this layer alone (dB)", [l.only_sqnr_db for l in report.layers]),
                         Series("SQNR lost to this layer (dB)", [l.loss_db for l in report.layers])],
                 y_label="dB", horizontal=True)


def render_html(report: SensitivityReport) -> str:
    """One self-contained HTML page: the ranking, the SQNR along the execution order, the table."""
    from . import report as pages

    by_order = sorted(report.layers, key=lambda layer: layer.order)
    worst = min(range(len(by_order)), key=lambda i: by_order[i].rank)
    along = pages.Chart("line", "Output SQNR with the transform on one layer, in execution order",
                        x=[layer.name for layer in by_order],
                        series=[pages.Series("this layer alone", [l.only_sqnr_db for l in by_order]),
                                pages.Series("every layer but this one", [l.all_but_sqnr_db for l in by_order])],
                        y_label="output SQNR (dB)", highlight=worst, highlight_label="most sensitive")
    table = pages.Table(["rank", "layer", "op", "alone (dB)", "all but (dB)", "loss (dB)"],
                        [[l.rank, l.name, l.op, l.only_sqnr_db, l.all_but_sqnr_db, l.loss_db]
                         for l in report.layers], title="Layers, most sensitive first", highlight=(0,))
    every = "no error" if report.all_sqnr_db is None else f"{report.all_sqnr_db:.2f} dB"
    notes = [f"model: {report.model} ({report.runtime})", f"transform: {report.transform}",
             f"samples: {report.samples}" + (f" from {report.data}" if report.data else ""),
             f"output SQNR with every layer transformed: {every}"]
    return pages.render_html(f"sensitivity: {report.model}", [ranking_chart(report), along], [table], notes)
