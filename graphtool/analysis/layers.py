"""verify --layers: where two models part ways, tensor by tensor.

Both models run on the same inputs in their real runtimes (TensorFlow for GraphDefs, LiteRT for
.tflite with every intermediate tensor kept), and their intermediate tensors are paired:

1. by name: a tensor of B pairs with the tensor of A of the same name (`node:0` and `node`
   are one name). A converter's tensor names join the GraphDef nodes an operator came from
   with ';' (`conv/Relu6;conv/BiasAdd;conv/Conv2D`): such a tensor pairs with the one of those
   nodes the other model computes last, the value the fused operator gives. What is left is
   tried again with outer scopes dropped on either side (a GraphDef read from a SavedModel
   calls `conv/Relu6` `StatefulPartitionedCall/conv/Relu6`), down to `scope/op`. A name
   several tensors answer to pairs none of them.
2. by structure, for models of one format: what `diff` matches (analysis/diff.py's
   match_nodes: names first, then operators of one op fed by matched nodes) pairs the
   outputs of matched operators that step 1 left.
3. the models' outputs, as verify pairs them (by name, else in order), where still unpaired.

Values are compared as real numbers (integer tensors dequantized with their own scale and
zero point), A being the reference, over every run: SQNR in dB (None: no error at all), max
|b - a|, cosine similarity, and whether every element is within atol + rtol * |a|.

The error of a layer alone: B's operator run on A's values of its inputs (quantized as B's
input tensors are), against A's output. Its inputs are the nearest paired tensors (or model
inputs) upstream; operators between them that pair with nothing (a QUANTIZE a converter
added) run with it. A .tflite layer runs as a model cut down to those operators
(passes/helpers/tflite_cut.py), a GraphDef layer in TensorFlow with those tensors fed; layers
none of which starts from a tensor another computes share one such model (or run), which is
the same computation and much less work (a chain needs about two).

The accumulated error is the SQNR of the tensor in B's full run. Its drop is how far it
falls below the lowest SQNR of the layer's inputs (model inputs and values above CEILING_DB
count as CEILING_DB: float rounding and the rounding of a well-scaled 8-bit tensor are no
signal of a fault). first_divergence is the first layer, in B's execution order, outside
the tolerance whose drop is at least `jump_db` (default 10 dB, a tenfold rise of the noise
power in one layer); None when no layer jumps.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import GraphtoolError
from ..formats import dumps, load
from ..formats.tflite import keys as tflite_keys
from ..ir import CONST_OP, INPUT_OP, TENSOR_SOURCE_OPS, Graph, Node, Ref, Tensor
from ..ir.quantization import dequantize
from ..passes.helpers.tflite_cut import cut
from ..passes.registry import PassError
from ..runtime import DEFAULT_SAMPLES, ModelRunError
from .diff import match_nodes
from .split import STATEFUL_OPS
from .verify import (
    RUNTIMES,
    Endpoint,
    OutputResult,
    Pairing,
    _as_type,
    _examples_from_file,
    _gather,
    _model,
    _random_examples,
    compare_outputs,
    endpoints,
    pair_endpoints,
)

CEILING_DB = 40.0
JUMP_DB = 10.0
TINY = float(np.finfo(np.float64).tiny)
CONTROL_FLOW_OPS = frozenset({"Switch", "RefSwitch", "Enter", "RefEnter", "Merge", "LoopCond", "NextIteration"})
GRAPHDEF_INPUT_OPS = frozenset({"Placeholder", "PlaceholderV2"})
NOT_LAYERS = frozenset({*TENSOR_SOURCE_OPS, CONST_OP, INPUT_OP, "Placeholder", "PlaceholderV2", "NoOp",
                        "VariableV2", "VarHandleOp", "Assign"})


@dataclass
class LayerResult:
    """One pair of tensors: B's `b` against A's `a`, the output of B's operator `op`."""

    index: int  # place in B's execution order among the pairs
    a: str
    b: str
    op: str
    matched_by: str  # "name" | "structure" | "output" (the models' outputs, paired as verify pairs them)
    shape: list[int] | None = None
    sqnr_db: float | None = None  # accumulated: B's full run (None: no error)
    max_abs_error: float | None = None
    cosine: float | None = None
    within_tolerance: bool = False
    layer_sqnr_db: float | None = None  # this layer alone, on A's inputs (None: no error, or see layer_problem)
    layer_max_abs_error: float | None = None
    drop_db: float | None = None  # accumulated SQNR below its inputs' (both capped at CEILING_DB)
    problem: str | None = None  # why values could not be compared
    layer_problem: str | None = None  # why the layer could not run alone


@dataclass
class LayersReport:
    """verify --layers: the paired tensors in B's execution order, the outputs, the first divergence."""

    a: str | None
    b: str | None
    runtime_a: str
    runtime_b: str
    atol: float
    rtol: float
    runs: int
    data: str | None
    seed: int
    jump_db: float
    operators_b: int  # operators of B
    paired_operators: int  # of them, those with a paired output
    inputs: list[Pairing] = field(default_factory=list)
    layers: list[LayerResult] = field(default_factory=list)
    outputs: list[OutputResult] = field(default_factory=list)
    first_divergence: str | None = None  # B's tensor name of that layer

    @property
    def passed(self) -> bool:
        return all(o.within_tolerance for o in self.outputs)

    @property
    def coverage(self) -> float:
        return self.paired_operators / self.operators_b if self.operators_b else 1.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        data["coverage"] = self.coverage
        return data


def verify_layers(a: Graph | str | os.PathLike | bytes, b: Graph | str | os.PathLike | bytes, *,
                  data: str | os.PathLike | None = None, samples: int | None = None, seed: int = 0,
                  atol: float = 1e-4, rtol: float = 1e-4, jump_db: float = JUMP_DB) -> LayersReport:
    """Run `a` and `b` on the same inputs keeping every tensor, pair their intermediate tensors
    and measure each pair's error, accumulated and of the layer alone (A is the reference).
    `data` and `samples` as for verify."""
    if atol < 0 or rtol < 0:
        raise GraphtoolError("atol and rtol must not be negative")
    if samples is not None and samples < 1:
        raise GraphtoolError("samples must be at least 1")
    side_a = _Side(_model(a, "A"))
    try:
        side_b = _Side(_model(b, "B"))
        try:
            return _verify_layers(side_a, side_b, data, samples, seed, atol, rtol, jump_db)
        finally:
            side_b.close()
    finally:
        side_a.close()


def _verify_layers(side_a: _Side, side_b: _Side, data: str | os.PathLike | None, samples: int | None,
                   seed: int, atol: float, rtol: float, jump_db: float) -> LayersReport:
    input_pairs = pair_endpoints(side_a.endpoints("inputs"), side_b.endpoints("inputs"), "inputs",
                                 side_a.source, side_b.source)
    output_pairs = pair_endpoints(side_a.endpoints("outputs"), side_b.endpoints("outputs"), "outputs",
                                  side_a.source, side_b.source)
    if data is not None:
        examples = _examples_from_file(os.fspath(data), input_pairs, samples)
    else:
        examples = _random_examples(input_pairs, samples or DEFAULT_SAMPLES, seed)
    available_a, available_b = side_a.available(), side_b.available()
    pairs = pair_tensors(side_a.graph, side_b.graph, available_a, available_b, side_a.shape, side_b.shape)
    outputs = [(_endpoint_ref(side_a, x), _endpoint_ref(side_b, y)) for x, y, _ in output_pairs]
    pairs = _with_outputs(pairs, outputs, available_a, available_b)
    side_a.start([x for x, _, _ in input_pairs], [ref for ref, _, _ in pairs])
    side_b.start([y for _, y, _ in input_pairs], [ref for _, ref, _ in pairs])
    paired_b = {ref_b: ref_a for ref_a, ref_b, _ in pairs}
    alone = side_b.alone([ref for _, ref, _ in pairs], paired_b)
    runners = list({id(r): r for r in alone.values() if isinstance(r, _Alone)}.values())
    index = {ref_b: i for i, (_, ref_b, _) in enumerate(pairs)}

    stats = [_Error() for _ in pairs]
    alone_stats = [_Error() for _ in pairs]
    problems: list[str | None] = [None] * len(pairs)
    got_a: list[list[np.ndarray]] = []
    got_b: list[list[np.ndarray]] = []
    for example in examples:
        values_a, values_b = side_a.run(example), side_b.run(example)
        got_a.append([values_a[ref_a] for ref_a, _ in outputs])
        got_b.append([values_b[ref_b] for _, ref_b in outputs])
        for i, (ref_a, ref_b, _) in enumerate(pairs):
            problems[i] = problems[i] or stats[i].add(values_a[ref_a], values_b[ref_b], atol, rtol)
        pending = list(runners)
        while pending:
            runner = pending.pop(0)
            try:
                got = runner.run(runner.feeds(values_a, example))
            except ModelRunError as exc:  # run what shared the failed run one by one
                runners.remove(runner)
                for plan, single in side_b.singles(runner) if len(runner.plans) > 1 else [(runner.plans[0], None)]:
                    alone[plan.ref] = single if single is not None else f"it does not run alone: {exc}"
                    if isinstance(single, _Alone):
                        runners.append(single)
                        pending.append(single)
                continue
            for ref_b, value in got.items():
                alone_stats[index[ref_b]].add(values_a[paired_b[ref_b]], value, atol, rtol)

    report = LayersReport(side_a.source, side_b.source, RUNTIMES.get(side_a.format, "?"),
                          RUNTIMES.get(side_b.format, "?"), atol, rtol, len(examples),
                          None if data is None else os.fspath(data), seed, jump_db,
                          *side_b.coverage({ref for _, ref, _ in pairs}),
                          inputs=[Pairing(x.name, y.name, how) for x, y, how in input_pairs])
    for i, ((ref_a, ref_b, how), error, alone_error) in enumerate(zip(pairs, stats, alone_stats)):
        layer = LayerResult(i, side_a.name(ref_a), side_b.name(ref_b), side_b.graph.node(ref_b.node).op, how,
                            problem=problems[i])
        error.fill(layer)
        runner = alone[ref_b]
        if isinstance(runner, _Alone):
            layer.layer_sqnr_db, layer.layer_max_abs_error = alone_error.sqnr(), alone_error.max_abs
        else:
            layer.layer_problem = runner
        report.layers.append(layer)
    _drops(report.layers, pairs, side_b)
    report.first_divergence = first_divergence(report.layers, jump_db)
    for i, (out_a, out_b, how) in enumerate(output_pairs):
        report.outputs.append(compare_outputs(out_a.name, out_b.name, how, _gather([r[i] for r in got_a]),
                                              _gather([r[i] for r in got_b]), atol, rtol))
    return report


def first_divergence(layers: list[LayerResult], jump_db: float = JUMP_DB) -> str | None:
    """B's tensor of the first layer outside the tolerance whose accumulated SQNR drops by at
    least `jump_db` below its inputs' (see the module doc)."""
    for layer in layers:
        if not layer.within_tolerance and layer.drop_db is not None and layer.drop_db >= jump_db:
            return layer.b
    return None


def _capped(sqnr: float | None) -> float:
    return CEILING_DB if sqnr is None else min(sqnr, CEILING_DB)


def _drops(layers: list[LayerResult], pairs: list[tuple[Ref, Ref, str]], side: _Side) -> None:
    by_ref = {ref_b: layer for (_, ref_b, _), layer in zip(pairs, layers)}
    for (_, ref_b, _), layer in zip(pairs, layers):
        if layer.problem is not None:
            continue
        sources, _ = side.upstream(ref_b, set(by_ref))
        before = [_capped(by_ref[s].sqnr_db) if s in by_ref else CEILING_DB for s in sources]
        layer.drop_db = (min(before) if before else CEILING_DB) - _capped(layer.sqnr_db)


# -- pairing --------------------------------------------------------------------------------

def pair_tensors(a: Graph, b: Graph, tensors_a: list[Ref], tensors_b: list[Ref],
                 shape_a: Callable[[Ref], tuple | None] | None = None,
                 shape_b: Callable[[Ref], tuple | None] | None = None) -> list[tuple[Ref, Ref, str]]:
    """(A's tensor, B's tensor, how) for the tensors of `tensors_a` and `tensors_b` that are one
    value, in B's order (see the module doc). Names pair only tensors whose shapes (`shape_a`,
    `shape_b`; default the IR's) can agree."""
    shape_a = shape_a or (lambda ref: _ir_shape(a, ref))
    shape_b = shape_b or (lambda ref: _ir_shape(b, ref))
    chosen: dict[Ref, tuple[Ref, str]] = {}
    for scoped in (False, True):
        rest_a = [ref for ref in tensors_a if ref not in {pair[0] for pair in chosen.values()}]
        rest_b = [ref for ref in tensors_b if ref not in chosen]
        chosen.update(_pair_by_name(a, b, rest_a, rest_b, scoped,
                                    lambda ref_a, ref_b: _fits(shape_a(ref_a), shape_b(ref_b))))
    if a.format == b.format:
        taken = {ref_a for ref_a, _ in chosen.values()}
        wanted_a, wanted_b = set(tensors_a), set(tensors_b)
        for node_a, node_b in match_nodes(a, b).items():
            outputs_a, outputs_b = a.node(node_a).outputs, b.node(node_b).outputs
            for port in range(min(len(outputs_a), len(outputs_b))):
                ref_a, ref_b = Ref(node_a, port), Ref(node_b, port)
                if ref_a in wanted_a and ref_b in wanted_b and ref_a not in taken and ref_b not in chosen \
                        and _fits(shape_a(ref_a), shape_b(ref_b)):
                    chosen[ref_b] = (ref_a, "structure")
                    taken.add(ref_a)
    return [(chosen[ref][0], ref, chosen[ref][1]) for ref in tensors_b if ref in chosen]


def _with_outputs(pairs: list[tuple[Ref, Ref, str]], outputs: list[tuple[Ref, Ref]], tensors_a: list[Ref],
                  tensors_b: list[Ref]) -> list[tuple[Ref, Ref, str]]:
    """`pairs` and the model outputs verify pairs (by name, else in order) that no pair holds
    yet, as "output" pairs, in B's order."""
    taken_a, taken_b = {p[0] for p in pairs}, {p[1] for p in pairs}
    extra = {ref_b: ref_a for ref_a, ref_b in outputs if ref_a not in taken_a and ref_b not in taken_b
             and ref_a in tensors_a and ref_b in tensors_b}
    by_b = {p[1]: p for p in pairs}
    by_b.update({ref_b: (ref_a, ref_b, "output") for ref_b, ref_a in extra.items()})
    return [by_b[ref] for ref in tensors_b if ref in by_b]


def _pair_by_name(a: Graph, b: Graph, tensors_a: list[Ref], tensors_b: list[Ref], scoped: bool,
                  fits: Callable[[Ref, Ref], bool]) -> dict[Ref, tuple[Ref, str]]:
    """B's tensor -> (A's, "name"): one name (`scoped`: or one name once the outer scopes of
    either are dropped, `StatefulPartitionedCall/conv/Relu` being `conv/Relu`), then a fused
    operator's joined names on either side, each pairing with the tensor the other side
    computes last; only tensors that `fits` (A's, B's). Pairs whose A tensor several B tensors
    claim are dropped."""
    names_a, names_b = _name_index(a, tensors_a, scoped), _name_index(b, tensors_b, scoped)
    rank_a = {ref: i for i, ref in enumerate(tensors_a)}
    rank_b = {ref: i for i, ref in enumerate(tensors_b)}
    chosen: dict[Ref, tuple[Ref, str]] = {}
    for ref in tensors_b:
        hit = _lookup(names_a, name_aliases(_tensor_name(b, ref), scoped))
        if hit is not None and fits(hit, ref):
            chosen[ref] = (hit, "name")
    for ref in tensors_b:  # B's fused names: the one A computes last
        parts = [p for p in _tensor_name(b, ref).split(";") if p]
        hits = {h for p in parts for h in [_lookup(names_a, name_aliases(p, scoped))] if h is not None and fits(h, ref)}
        if ref not in chosen and len(parts) > 1 and hits:
            chosen[ref] = (max(hits, key=rank_a.__getitem__), "name")
    claimed = {pair[0] for pair in chosen.values()}
    for ref in tensors_a:  # A's fused names: the one B computes last
        parts = [p for p in _tensor_name(a, ref).split(";") if p]
        hits = {h for p in parts for h in [_lookup(names_b, name_aliases(p, scoped))]
                if h is not None and h not in chosen and fits(ref, h)}
        if ref not in claimed and len(parts) > 1 and hits:
            chosen[max(hits, key=rank_b.__getitem__)] = (ref, "name")
    claims: dict[Ref, int] = {}
    for ref_a, _ in chosen.values():
        claims[ref_a] = claims.get(ref_a, 0) + 1
    return {ref_b: pair for ref_b, pair in chosen.items() if claims[pair[0]] == 1}


def _ir_shape(graph: Graph, ref: Ref) -> tuple | None:
    tensor = graph.tensor(ref)
    return None if tensor is None else tensor.shape


def _fits(a: tuple | None, b: tuple | None) -> bool:
    """Whether two shapes can be one value's: the same rank, the same sizes where both know
    them (a converter may name a transposed weight after the convolution that reads it)."""
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _name_index(graph: Graph, refs: list[Ref], scoped: bool) -> dict[str, set[Ref]]:
    names: dict[str, set[Ref]] = {}
    for ref in refs:
        for alias in name_aliases(_tensor_name(graph, ref), scoped):
            names.setdefault(alias, set()).add(ref)
    return names


def _lookup(names: dict[str, set[Ref]], aliases: tuple[str, ...]) -> Ref | None:
    """The one tensor the first (longest) alias that names any names, or None."""
    for alias in aliases:
        hits = names.get(alias)
        if hits:
            return next(iter(hits)) if len(hits) == 1 else None
    return None


def _tensor_name(graph: Graph, ref: Ref) -> str:
    if graph.format == "tflite":
        return graph.tensor(ref).name or ref.node
    return f"{ref.node}:{ref.port}"


def name_aliases(name: str, scoped: bool = False) -> tuple[str, ...]:
    """The names a tensor answers to, longest first: `node:0` is also `node`; `scoped` adds them
    without their outer scopes, down to `scope/op`."""
    node, sep, port = name.rpartition(":")
    names = [name, node] if sep and port == "0" else [name]
    if scoped and ";" not in name:  # a fused name's parts are looked up one by one
        for full in list(names):
            scopes = full.split("/")
            names += ["/".join(scopes[k:]) for k in range(1, len(scopes) - 1)]
    return tuple(dict.fromkeys(names))


# -- running --------------------------------------------------------------------------------

@dataclass
class _Plan:
    """How to run one layer of B alone: its output, the tensors it starts from (fed by input
    name from A's tensors or from the example's inputs) and the operators from them to it."""

    ref: Ref
    sources: list[Ref]
    inner: list[str]
    sources_a: dict[str, Ref]  # input name -> A's tensor
    sources_input: dict[str, int]  # input name -> index of the model input in an example


@dataclass
class _Alone:
    """Layers of B run alone together, in one model or one session run: none reads what
    another computes, so each sees only A's values."""

    run: Callable[[Mapping[str, np.ndarray]], dict[Ref, np.ndarray]]
    plans: list[_Plan]

    def feeds(self, values_a: Mapping[Ref, np.ndarray], example: list[np.ndarray]) -> dict[str, np.ndarray]:
        fed = {}
        for plan in self.plans:
            fed.update({name: values_a[ref] for name, ref in plan.sources_a.items()})
            fed.update({name: example[k] for name, k in plan.sources_input.items()})
        return fed


class _Side:
    """One model: its graph (for a .tflite, read from the very bytes LiteRT runs, so tensor
    indices agree), run keeping every tensor, read as real values."""

    def __init__(self, model: Any):
        if model.signature is not None:
            raise GraphtoolError(f"{model.source}: --layers needs a GraphDef or a .tflite, not a SavedModel "
                                 "directory (graphtool convert freezes one into a GraphDef)")
        self.model, self.source, self.format = model, model.source, model.format
        if self.format not in ("graphdef", "tflite"):
            raise GraphtoolError(f"{model.source}: cannot run a {self.format} model")
        self.graph = load(model.data) if self.format == "tflite" else model.graph
        self.graph.meta.setdefault("source", model.source)
        self._session: Any = None
        self._interpreter: Any = None
        self._fetches: list[Ref] = []
        self._types: dict[str, tuple[np.dtype, tuple | None]] = {}
        if self.format == "graphdef":
            from ..runtime.tensorflow import GraphDefSession

            self._session = GraphDefSession(model.data, model.source)
            self._types = self._session.tensor_types()
        else:
            from ..runtime.litert import TfliteTensors

            self._interpreter = TfliteTensors(model.data, model.source)

    def endpoints(self, kind: str) -> list[Endpoint]:
        return endpoints(self.graph, kind)

    def name(self, ref: Ref) -> str:
        return _tensor_name(self.graph, ref)

    def shape(self, ref: Ref) -> tuple | None:
        """The tensor's shape as the runtime knows it before running (None: unknown rank)."""
        if self.format == "graphdef":
            return self._types.get(f"{ref.node}:{ref.port}", (None, None))[1]
        tensor = self.graph.tensor(ref)
        return None if tensor is None else tensor.shape

    def available(self) -> list[Ref]:
        """The tensors operators compute that can be read as real numbers, in execution order:
        floating-point ones and quantized integer ones (a GraphDef's floating-point ones, but
        those at or after TF1 control flow, whose values a session cannot fetch)."""
        if self.format == "tflite":
            return tflite_layer_tensors(self.graph)
        skipped = set()
        for node in self.graph:
            if node.op in CONTROL_FLOW_OPS:
                skipped |= {node.name, *self.graph.descendants(node.name)}
        refs = []
        for name in self.graph.topological_order():
            node = self.graph.node(name)
            if _is_layer(node) and name not in skipped:
                refs += [Ref(name, port) for port in range(max(len(node.outputs), 1))
                         if self._types.get(f"{name}:{port}", (np.dtype(object),))[0].kind == "f"]
        return refs

    def coverage(self, paired: set[Ref]) -> tuple[int, int]:
        operators = [n for n in self.graph if _is_layer(n)]
        return len(operators), sum(1 for n in operators if any(Ref(n.name, p) in paired
                                                               for p in range(max(len(n.outputs), 1))))

    # running the whole model
    def start(self, inputs: list[Endpoint], tensors: list[Ref]) -> None:
        self._inputs = inputs
        outputs = [_endpoint_ref(self, point) for point in self.endpoints("outputs")]
        self._fetches = list(dict.fromkeys([*tensors, *outputs]))
        if self._interpreter is not None:
            names = [point.name for point in inputs]
            self._order = [names.index(detail.name) for detail in self._interpreter.inputs]

    def run(self, example: list[np.ndarray]) -> dict[Ref, np.ndarray]:
        """Every fetched tensor of one run, as real numbers."""
        if self._session is not None:
            feeds = {point.name: _as_type(value, point) for point, value in zip(self._inputs, example)}
            values = self._session.run(feeds, [f"{r.node}:{r.port}" for r in self._fetches])
            return {ref: np.asarray(v) for ref, v in zip(self._fetches, values)}
        runtime = self._interpreter
        runtime.run([detail.from_real(example[k]) for detail, k in zip(runtime.inputs, self._order)])
        return {ref: self._real(ref, runtime.tensor(self.graph.tensor(ref).meta[tflite_keys.INDEX]))
                for ref in self._fetches}

    def _real(self, ref: Ref, values: np.ndarray) -> np.ndarray:
        tensor = self.graph.tensor(ref)
        q = tensor.quantization
        if q is None or q.scale.size == 0 or values.dtype.kind not in "iu":
            return values
        return dequantize(values, q.scale, q.zero_point, q.axis if q.scale.size > 1 else None)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    # one layer alone
    def upstream(self, ref: Ref, paired: set[Ref]) -> tuple[list[Ref], list[str]]:
        """The nearest paired tensors or model inputs feeding `ref`'s operator, and the
        operators from them to it (`ref`'s own included)."""
        sources: list[Ref] = []
        inner, stack = [ref.node], [ref.node]
        while stack:
            for input_ref in self.graph.inputs_of(stack.pop()):
                if input_ref is None or input_ref in sources:
                    continue
                producer = self.graph.node(input_ref.node)
                if input_ref in paired or producer.op in (INPUT_OP, *GRAPHDEF_INPUT_OPS):
                    sources.append(input_ref)
                elif producer.op != CONST_OP and producer.name not in inner:
                    inner.append(producer.name)
                    stack.append(producer.name)
        return sources, inner

    def alone(self, refs: list[Ref], paired_b: dict[Ref, Ref]) -> dict[Ref, _Alone | str]:
        """For each of `refs`: what runs its layer alone (layers that can share a run share
        it), or why nothing can."""
        plans: list[_Plan] = []
        found: dict[Ref, _Alone | str] = {}
        for ref in refs:
            plan = self._plan(ref, paired_b)
            if isinstance(plan, str):
                found[ref] = plan
            else:
                plans.append(plan)
        for group in _groups(plans):
            runner = self._runner(group)
            if isinstance(runner, _Alone):
                found.update({plan.ref: runner for plan in group})
            elif len(group) == 1:
                found[group[0].ref] = runner
            else:  # cut out together they would not run: each on its own
                found.update({plan.ref: self._runner([plan]) for plan in group})
        return found

    def singles(self, alone: _Alone) -> list[tuple[_Plan, _Alone | str]]:
        """The layers `alone` runs, each in a run of its own."""
        return [(plan, self._runner([plan])) for plan in alone.plans]

    def _plan(self, ref: Ref, paired_b: dict[Ref, Ref]) -> _Plan | str:
        sources, inner = self.upstream(ref, set(paired_b))
        inputs = {point.name: k for k, point in enumerate(self._inputs)}
        sources_a, sources_input = {}, {}
        for source in sources:
            name = self.name(source) if self.format == "tflite" else f"{source.node}:{source.port}"
            if source in paired_b:
                sources_a[name] = paired_b[source]
            else:
                key = next((k for point_name, k in inputs.items()
                            if point_name in (name, source.node, self.name(source))), None)
                if key is None:
                    return f"input {name} is not a model input verify feeds"
                sources_input[name] = key
        stateful = sorted({self.graph.node(n).op for n in inner} & STATEFUL_OPS)
        if stateful:
            return f"it needs the model's state ({', '.join(stateful)})"
        return _Plan(ref, sources, inner, sources_a, sources_input)

    def _runner(self, plans: list[_Plan]) -> _Alone | str:
        if self.format == "graphdef":
            return _Alone(self._graphdef_layers(plans), plans)
        try:
            return _Alone(self._tflite_layers(plans), plans)
        except PassError as exc:
            return f"cannot cut it out: {exc}"

    def _graphdef_layers(self, plans: list[_Plan]) -> Callable:
        sources = list(dict.fromkeys(s for plan in plans for s in plan.sources))
        types = {f"{s.node}:{s.port}": self._types.get(f"{s.node}:{s.port}", (None,))[0] for s in sources}
        refs = [plan.ref for plan in plans]

        def run(fed: Mapping[str, np.ndarray]) -> dict[Ref, np.ndarray]:
            feeds = {name: np.asarray(value).astype(types[name]) if types.get(name) is not None
                     else np.asarray(value) for name, value in fed.items()}
            return dict(zip(refs, self._session.run(feeds, [f"{ref.node}:{ref.port}" for ref in refs])))

        return run

    def _tflite_layers(self, plans: list[_Plan]) -> Callable:
        from ..runtime.litert import TfliteModel

        part = self.graph.copy()
        sources = list(dict.fromkeys(s for plan in plans for s in plan.sources))
        cut(part, sources, [plan.ref for plan in plans], keep={n for plan in plans for n in plan.inner})
        label = self.name(plans[0].ref) + (f" and {len(plans) - 1} more" if len(plans) > 1 else "")
        runtime = TfliteModel(dumps(part), f"{self.source} ({label} alone)")
        by_name = {self.name(plan.ref): plan.ref for plan in plans}
        if sorted(d.name for d in runtime.outputs) != sorted(by_name):
            raise PassError(f"the cut-out model computes {len(runtime.outputs)} tensors, not {len(by_name)}")

        def run(fed: Mapping[str, np.ndarray]) -> dict[Ref, np.ndarray]:
            values = runtime.run_real({d.name: fed[d.name] for d in runtime.inputs})
            return {by_name[d.name]: value for d, value in zip(runtime.outputs, values)}

        return run


def _groups(plans: list[_Plan]) -> list[list[_Plan]]:
    """`plans` in groups that can run together, in order: no layer of a group starts from a
    tensor another layer of it computes (first fit)."""
    groups: list[tuple[list[_Plan], set[Ref], set[Ref]]] = []  # plans, their outputs, their sources
    for plan in plans:
        for members, outputs, sources in groups:
            if plan.ref not in sources and not outputs & set(plan.sources):
                members.append(plan)
                outputs.add(plan.ref)
                sources.update(plan.sources)
                break
        else:
            groups.append(([plan], {plan.ref}, set(plan.sources)))
    return [members for members, _, _ in groups]


def _is_layer(node: Node) -> bool:
    return node.op not in NOT_LAYERS and not node.op.startswith("graphtool.")


def tflite_layer_tensors(graph: Graph) -> list[Ref]:
    """The tensors of a .tflite's main subgraph that its operators compute and LiteRT keeps,
    whose values are real numbers, in execution order: what verify --layers pairs."""
    return [Ref(node.name, port) for node in graph if _is_layer(node)
            for port, tensor in enumerate(node.outputs) if _real_valued(tensor)]


def _real_valued(tensor: Tensor) -> bool:
    """A .tflite tensor LiteRT keeps whose values are real numbers: floating point, or integer
    with quantization parameters."""
    dtype = tensor.dtype.numpy if tensor.dtype is not None else None
    if dtype is None or tflite_keys.INDEX not in tensor.meta:
        return False
    quantized = tensor.quantization is not None and tensor.quantization.scale.size > 0
    return dtype.kind == "f" or (dtype.kind in "iu" and quantized)


def _endpoint_ref(side: _Side, point: Endpoint) -> Ref:
    """The tensor an input or output endpoint names."""
    if side.format == "graphdef":
        return Ref.parse(point.name)
    for node in side.graph:
        for port, tensor in enumerate(node.outputs):
            if tensor.name == point.name and (node.op == INPUT_OP or _is_layer(node)):
                return Ref(node.name, port)
    raise GraphtoolError(f"{side.source}: no tensor {point.name}")


# -- error measures -------------------------------------------------------------------------

def _dots(error: np.ndarray, ref: np.ndarray, got: np.ndarray) -> tuple[float, float, float, float]:
    """Σ error², Σ ref², Σ got², Σ ref·got. (einsum: a float64 `@` goes through BLAS, whose
    threads cost more than they save on these sizes.)"""
    return tuple(float(np.einsum("i,i->", x, y)) for x, y in ((error, error), (ref, ref), (got, got), (ref, got)))


class _Error:
    """Sums over runs of one pair's error measures (values as float64 real numbers)."""

    def __init__(self) -> None:
        self.noise = self.signal = self.power = self.dot = self.max_abs = 0.0
        self.mismatches = 0
        self.shape: list[int] | None = None
        self.runs = 0

    def add(self, a: np.ndarray, b: np.ndarray, atol: float, rtol: float) -> str | None:
        """Add one run; a problem when the values cannot be compared."""
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            if a.size != b.size:
                return f"shape {list(a.shape)} vs {list(b.shape)}"
            b = b.reshape(a.shape)
        ref, got = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
        error = got - ref
        sums = _dots(error, ref, got)
        if not all(map(math.isfinite, sums)):  # inf or nan somewhere: measure the finite elements
            return self._add_finite(ref, got, atol, rtol)
        error = np.abs(error, out=error)
        bound = np.abs(ref)
        bound *= rtol
        bound += atol
        self.mismatches += int(np.count_nonzero(error > bound))
        self._sum(sums, float(error.max()) if error.size else 0.0, a.shape)
        return None

    def _add_finite(self, ref: np.ndarray, got: np.ndarray, atol: float, rtol: float) -> None:
        error = np.abs(got - ref)
        with np.errstate(invalid="ignore"):
            inside = (error <= atol + rtol * np.abs(ref)) | (ref == got) | (np.isnan(ref) & np.isnan(got))
        self.mismatches += int(np.sum(~inside))
        finite = np.isfinite(ref) & np.isfinite(got)
        ref, got, error = ref[finite], got[finite], error[finite]
        self._sum(_dots(got - ref, ref, got), float(error.max()) if error.size else 0.0, ref.shape)

    def _sum(self, sums: tuple[float, float, float, float], max_abs: float, shape: tuple) -> None:
        self.noise += sums[0]
        self.signal += sums[1]
        self.power += sums[2]
        self.dot += sums[3]
        self.max_abs = max(self.max_abs, max_abs)
        if self.shape is None:
            self.shape = list(shape)
        self.runs += 1

    def sqnr(self) -> float | None:
        if not self.noise:
            return None
        return 10 * math.log10(max(self.signal, TINY) / self.noise)  # no signal: a very low, finite SQNR

    def fill(self, layer: LayerResult) -> None:
        if layer.problem is not None:
            return
        layer.shape = self.shape
        layer.sqnr_db = self.sqnr()
        layer.max_abs_error = self.max_abs
        norms = math.sqrt(self.signal) * math.sqrt(self.power)
        layer.cosine = self.dot / norms if norms else (1.0 if not self.signal and not self.noise else 0.0)
        layer.within_tolerance = self.mismatches == 0


# -- the report for people ------------------------------------------------------------------

def layers_chart(report: LayersReport) -> Any:
    """The per-layer SQNR along B's execution order (graphtool.analysis.report.Chart), the first
    divergence marked."""
    from .report import Chart, Series

    names = [layer.b for layer in report.layers]
    marked = names.index(report.first_divergence) if report.first_divergence in names else None
    labels = [name.split(";")[0] for name in names]  # a fused operator's tensor: its last op's name first
    return Chart("line", "SQNR of each paired tensor, in execution order", x=labels,
                 series=[Series("accumulated (B's run)", [layer.sqnr_db for layer in report.layers]),
                         Series("this layer alone (on A's inputs)", [layer.layer_sqnr_db for layer in report.layers])],
                 y_label="SQNR (dB); no point: no error", highlight=marked, highlight_label="first divergence")


def layers_html(report: LayersReport) -> str:
    """One self-contained HTML page: the chart, then the table of every pair."""
    from .report import Table, render_html

    columns = ["#", "tensor (B)", "op", "paired by", "SQNR (dB)", "alone (dB)", "drop (dB)", "max |Δ|", "cosine",
               "tensor (A)"]
    rows = [[layer.index, layer.b, layer.op, layer.matched_by, layer.sqnr_db, layer.layer_sqnr_db, layer.drop_db,
             layer.max_abs_error, layer.cosine, layer.a] for layer in report.layers]
    marked = tuple(i for i, layer in enumerate(report.layers) if layer.b == report.first_divergence)
    notes = [f"A (reference): {report.a} ({report.runtime_a})", f"B: {report.b} ({report.runtime_b})",
             f"{report.runs} run(s), inputs " + (f"from {report.data}" if report.data else f"random, seed {report.seed}"),
             f"{report.paired_operators} of B's {report.operators_b} operators paired ({report.coverage:.0%})",
             "first divergence: " + (report.first_divergence or f"none (no layer's SQNR drops by {report.jump_db:g} dB)"),
             "outputs: " + ("within tolerance" if report.passed else "NOT within tolerance")
             + f" (atol {report.atol:g}, rtol {report.rtol:g})"]
    return render_html("graphtool verify --layers", [layers_chart(report)], [Table(columns, rows, highlight=marked)], notes)
