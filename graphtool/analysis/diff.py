"""diff: what changed between two models of the same format, as a plain dataclass.

Nodes are matched by name first, then by structure where names changed: an unmatched
node pairs with one of the same op whose inputs come from already-matched nodes
(forward), or that sits in the same input slot of a matched consumer (backward), until
nothing more pairs. `ignore_names` skips the name step (seeding with the declared
inputs and outputs, Placeholders and constants unique by op, dtype and shape) and does
not report renames.

For each matched pair: op, attributes, op version, device, inputs (through the
matching), control inputs, output dtype / shape / quantization, and for constants the
values: compared as real numbers (quantized tensors dequantized with their scale and
zero point, float16 widened), giving the max absolute difference, the relative L2
difference, the SQNR in dB and the change in sparsity. Graph-level: declared inputs and
outputs, signature defs, metadata, description, GraphDef versions and functions,
subgraphs. Subgraphs are compared pairwise by index.
"""
from __future__ import annotations

import difflib
import hashlib
import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Iterable

import numpy as np

from ..errors import GraphtoolError
from ..formats import load
from ..formats.graphdef import keys as graphdef_keys
from ..formats.tflite import keys as tflite_keys
from ..ir import CONST_OP, MISSING_OP, DType, Graph, Node, Quantization, Ref, Tensor
from ..ir.attrs import TensorShape
from ..ir.quantization import dequantize

INPUT_OPS = frozenset({"Placeholder", "PlaceholderV2", "Input"})
SINK_EXCLUDED_OPS = frozenset({CONST_OP, MISSING_OP, "NoOp", "Assign"})
ARRAY_DISPLAY_LIMIT = 8


@dataclass
class NodeInfo:
    """A node only one side has."""

    name: str
    op: str
    subgraph: int = 0
    dtype: str | None = None  # of its first output, when known
    shape: list[int | None] | None = None


@dataclass
class Rename:
    a: str
    b: str
    op: str
    subgraph: int = 0


@dataclass
class Change:
    """One field that differs: `what` names it (op, attr:padding, input:1, output:0.dtype, ...)."""

    what: str
    a: Any
    b: Any


@dataclass
class NodeChange:
    name: str  # in B
    a_name: str  # in A (the same unless renamed)
    op: str  # in B
    changes: list[Change]
    subgraph: int = 0


@dataclass
class WeightChange:
    """How a constant's values moved. sqnr_db is None when there is no noise (infinite SQNR)."""

    name: str  # in B
    a_name: str
    subgraph: int
    shape: list[int | None] | None
    dtype_a: str | None
    dtype_b: str | None
    quantization_a: str | None
    quantization_b: str | None
    max_abs: float | None = None
    rel_l2: float | None = None
    sqnr_db: float | None = None
    zeros_a: float | None = None  # share of elements that are zero
    zeros_b: float | None = None
    note: str | None = None  # why values were not compared


@dataclass
class DiffReport:
    a: str | None
    b: str | None
    format: str
    nodes_a: int
    nodes_b: int
    atol: float
    rtol: float
    ignore_names: bool
    removed: list[NodeInfo] = field(default_factory=list)
    added: list[NodeInfo] = field(default_factory=list)
    renamed: list[Rename] = field(default_factory=list)
    changed: list[NodeChange] = field(default_factory=list)
    weights: list[WeightChange] = field(default_factory=list)
    graph: list[Change] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (self.removed or self.added or self.renamed or self.changed or self.weights or self.graph)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["same"] = self.same
        return data


def diff(a: Graph | str | os.PathLike | bytes, b: Graph | str | os.PathLike | bytes, *, atol: float = 0.0,
         rtol: float = 0.0, ignore_names: bool = False) -> DiffReport:
    """Compare model `a` (before) with `b` (after). Constants count as equal when every
    real value of b is within atol + rtol * |a| of a's (default: exactly equal)."""
    graph_a, graph_b = _as_graph(a), _as_graph(b)
    if graph_a.format != graph_b.format:
        raise GraphtoolError(f"diff compares two models of one format, not {graph_a.format} with "
                             f"{graph_b.format}; `graphtool verify` compares them across formats by running both")
    if atol < 0 or rtol < 0:
        raise GraphtoolError("atol and rtol must not be negative")
    graphs_a, graphs_b = [graph_a, *graph_a.subgraphs], [graph_b, *graph_b.subgraphs]
    report = DiffReport(graph_a.meta.get("source"), graph_b.meta.get("source"), graph_a.format or "unknown",
                        sum(_count(g) for g in graphs_a), sum(_count(g) for g in graphs_b),
                        atol, rtol, ignore_names)
    mappings = []
    for index in range(max(len(graphs_a), len(graphs_b))):
        if index >= len(graphs_a):
            report.added += [_info(n, index) for n in graphs_b[index] if n.op != MISSING_OP]
        elif index >= len(graphs_b):
            report.removed += [_info(n, index) for n in graphs_a[index] if n.op != MISSING_OP]
        else:
            mappings.append(_diff_graph(graphs_a[index], graphs_b[index], index, report, (graphs_a, graphs_b)))
    report.graph = _graph_changes(graph_a, graph_b, mappings[0] if mappings else {}, ignore_names)
    if len(graphs_a) != len(graphs_b):
        report.graph.append(Change("subgraphs", len(graphs_a), len(graphs_b)))
    return report


def _as_graph(model: Graph | str | os.PathLike | bytes) -> Graph:
    return model if isinstance(model, Graph) else load(model)


def _count(graph: Graph) -> int:
    return sum(1 for n in graph if n.op != MISSING_OP)


# -- matching ------------------------------------------------------------------------------

def match_nodes(a: Graph, b: Graph, ignore_names: bool = False) -> dict[str, str]:
    """Node names of `a` -> node names of `b` for the nodes that are the same node."""
    names_a = [n.name for n in a if n.op != MISSING_OP]
    names_b = {n.name for n in b if n.op != MISSING_OP}
    mapping: dict[str, str] = {}
    if not ignore_names:
        mapping = {name: name for name in names_a if name in names_b}
    else:
        seeds = [([r.node for r in a.outputs], [r.node for r in b.outputs]),
                 (list(a.inputs), list(b.inputs)),
                 ([n for n in names_a if a.node(n).op in INPUT_OPS], [n.name for n in b if n.op in INPUT_OPS]),
                 (_sinks(a), _sinks(b))]
        for seed_a, seed_b in seeds:
            _seed_by_order(mapping, a, b, seed_a, seed_b)
        _seed_unique_sources(mapping, a, b)
    _propagate(mapping, a, b, loose=ignore_names)
    return mapping


def _sinks(graph: Graph) -> list[str]:
    """Nodes nothing uses (the outputs of a GraphDef, which declares none), in order."""
    return [n.name for n in graph if n.op not in SINK_EXCLUDED_OPS and not graph.is_used(n.name)]


def _seed_by_order(mapping: dict[str, str], a: Graph, b: Graph, names_a: list[str], names_b: list[str]) -> None:
    """Pair two lists of as many nodes in order, where the ops agree."""
    taken = set(mapping.values())
    if len(names_a) != len(names_b):
        return
    for name_a, name_b in zip(names_a, names_b):
        if name_a not in mapping and name_b not in taken and a.node(name_a).op == b.node(name_b).op:
            mapping[name_a] = name_b
            taken.add(name_b)


def _source_key(graph: Graph, node: Node) -> tuple | None:
    """What identifies a node with no inputs whatever its name: op, attributes, output type
    and, for a constant, its values."""
    if graph.inputs_of(node.name) or graph.control_inputs_of(node.name):
        return None
    tensor = node.output(0)
    attrs = tuple(sorted((k, repr(_plain(v))) for k, v in node.attrs.items() if not isinstance(v, (Tensor, Graph))))
    values = None
    if tensor is not None and tensor.is_constant and tensor.data is not None:
        data = np.asarray(tensor.data)
        values = hashlib.sha1(data.tobytes() if data.dtype.kind != "O" else repr(data.tolist()).encode()).hexdigest()
    return (node.op, str(tensor.dtype) if tensor else None, tensor.shape if tensor else None, attrs, values)


def _seed_unique_sources(mapping: dict[str, str], a: Graph, b: Graph) -> None:
    taken = set(mapping.values())
    keys_a = {n.name: _source_key(a, n) for n in a if n.name not in mapping and n.op != MISSING_OP}
    keys_b = {n.name: _source_key(b, n) for n in b if n.name not in taken and n.op != MISSING_OP}
    counts_a, counts_b = Counter(keys_a.values()), Counter(keys_b.values())
    by_key_b = {k: name for name, k in keys_b.items() if k is not None and counts_b[k] == 1}
    for name, key in keys_a.items():
        if key is not None and counts_a[key] == 1 and key in by_key_b:
            mapping[name] = by_key_b[key]


def _propagate(mapping: dict[str, str], a: Graph, b: Graph, loose: bool = False) -> None:
    """Pair unmatched nodes through matched neighbours until nothing more pairs. `loose`
    (names ignored) goes on past structural changes: nodes of one op fed by the same matched
    nodes whatever their other inputs, then what is left aligned by op in graph order."""
    while True:
        while _forward(mapping, a, b) + _backward(mapping, a, b):
            pass
        if not loose or not (_forward(mapping, a, b, strict=False) or _align(mapping, a, b)):
            return


def _kind(node: Node) -> tuple:
    tensor = node.output(0)
    return node.op, None if tensor is None else (tensor.dtype, tensor.shape)


def _align(mapping: dict[str, str], a: Graph, b: Graph) -> int:
    """Pair the unmatched nodes of both graphs whose op and output type line up in node
    order (difflib's longest matching blocks)."""
    taken = set(mapping.values())
    rest_a = [n for n in a if n.name not in mapping and n.op != MISSING_OP]
    rest_b = [n for n in b if n.name not in taken and n.op != MISSING_OP]
    matcher = difflib.SequenceMatcher(None, [_kind(n) for n in rest_a], [_kind(n) for n in rest_b], autojunk=False)
    paired = 0
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            mapping[rest_a[block.a + k].name] = rest_b[block.b + k].name
            paired += 1
    return paired


def _forward(mapping: dict[str, str], a: Graph, b: Graph, strict: bool = True) -> int:
    """Pair nodes of one op fed by the same matched nodes. An input from a node not yet
    matched counts by its producer's op and port (strict), or not at all, so a conv pairs
    before its weights do; at least one input must come from a matched node."""
    reverse = {v: k for k, v in mapping.items()}

    def key(graph: Graph, node: Node, rename: dict[str, str]) -> tuple | None:
        refs = graph.inputs_of(node.name)
        controls = graph.control_inputs_of(node.name)
        inputs, anchored = [], False
        for ref in refs:
            if ref is None:
                inputs.append(None)
            elif ref.node in rename:
                inputs.append((rename[ref.node], ref.port))
                anchored = True
            else:
                inputs.append(("?", graph.node(ref.node).op, ref.port) if strict else "?")
        if not strict:
            controls = [c for c in controls if c in rename]
        known = frozenset(rename[c] for c in controls if c in rename)
        unknown = tuple(sorted(graph.node(c).op for c in controls if c not in rename))
        if not (anchored or known):
            return None
        return node.op, tuple(inputs), known, unknown

    identity = {name: name for name in mapping}
    keys_a = {n.name: key(a, n, identity) for n in a if n.name not in mapping and n.op != MISSING_OP}
    keys_b = {n.name: key(b, n, reverse) for n in b if n.name not in reverse and n.op != MISSING_OP}
    return _pair_unique(mapping, {n: k for n, k in keys_a.items() if k is not None}, keys_b)


def _backward(mapping: dict[str, str], a: Graph, b: Graph) -> int:
    """Pair unmatched producers of one op feeding the same input slot of a matched pair (or
    the only unmatched control inputs of that op)."""
    taken = set(mapping.values())
    candidates: dict[str, set[str]] = {}
    claimed: Counter = Counter()

    def propose(name_a: str, name_b: str) -> None:
        if name_a in mapping or name_b in taken:
            return
        op = a.node(name_a).op
        if op != b.node(name_b).op or op == MISSING_OP:
            return
        options = candidates.setdefault(name_a, set())
        if name_b not in options:
            options.add(name_b)
            claimed[name_b] += 1

    for name_a, name_b in list(mapping.items()):
        for ref_a, ref_b in zip(a.inputs_of(name_a), b.inputs_of(name_b)):
            if ref_a is not None and ref_b is not None and ref_a.port == ref_b.port:
                propose(ref_a.node, ref_b.node)
        controls_a = [c for c in a.control_inputs_of(name_a) if c not in mapping]
        controls_b = [c for c in b.control_inputs_of(name_b) if c not in taken]
        ops_a = Counter(a.node(c).op for c in controls_a)
        ops_b = Counter(b.node(c).op for c in controls_b)
        for control_a in controls_a:
            op = a.node(control_a).op
            if ops_a[op] == 1 and ops_b[op] == 1:
                propose(control_a, next(c for c in controls_b if b.node(c).op == op))
    paired = 0
    for name_a, options in candidates.items():
        if len(options) == 1:
            (name_b,) = options
            if claimed[name_b] == 1:
                mapping[name_a] = name_b
                paired += 1
    return paired


def _pair_unique(mapping: dict[str, str], keys_a: dict[str, tuple], keys_b: dict[str, tuple | None]) -> int:
    counts_a = Counter(keys_a.values())
    counts_b = Counter(k for k in keys_b.values() if k is not None)
    by_key_b = {k: name for name, k in keys_b.items() if k is not None and counts_b[k] == 1}
    paired = 0
    for name, key in keys_a.items():
        if counts_a[key] == 1 and key in by_key_b:
            mapping[name] = by_key_b[key]
            paired += 1
    return paired


# -- per-graph comparison ------------------------------------------------------------------

def _diff_graph(a: Graph, b: Graph, index: int, report: DiffReport,
                models: tuple[list[Graph], list[Graph]]) -> dict[str, str]:
    mapping = match_nodes(a, b, report.ignore_names)
    matched_b = set(mapping.values())
    report.removed += [_info(n, index) for n in a if n.name not in mapping and n.op != MISSING_OP]
    report.added += [_info(n, index) for n in b if n.name not in matched_b and n.op != MISSING_OP]
    for name_a, name_b in mapping.items():
        node_a, node_b = a.node(name_a), b.node(name_b)
        if name_a != name_b and not report.ignore_names:
            report.renamed.append(Rename(name_a, name_b, node_b.op, index))
        changes = _node_changes(a, b, node_a, node_b, mapping, models)
        if changes:
            report.changed.append(NodeChange(name_b, name_a, node_b.op, changes, index))
        weight = _weight_change(node_a, node_b, index, report.atol, report.rtol)
        if weight is not None:
            report.weights.append(weight)
    return mapping


def _info(node: Node, index: int) -> NodeInfo:
    tensor = node.output(0)
    return NodeInfo(node.name, node.op, index, str(tensor.dtype) if tensor and tensor.dtype else None,
                    _shape(tensor.shape) if tensor else None)


def _node_changes(a: Graph, b: Graph, node_a: Node, node_b: Node, mapping: dict[str, str],
                  models: tuple[list[Graph], list[Graph]]) -> list[Change]:
    changes = []
    if node_a.op != node_b.op:
        changes.append(Change("op", node_a.op, node_b.op))
    for key in sorted(set(node_a.attrs) | set(node_b.attrs)):
        value_a, value_b = _resolve(node_a.attrs.get(key), models[0]), _resolve(node_b.attrs.get(key), models[1])
        if isinstance(value_a, Tensor) or isinstance(value_b, Tensor):
            continue  # a constant's value: compared as weights
        if key == "dtype" and node_a.op == node_b.op == CONST_OP:
            continue  # the output tensor's dtype says it
        if not _equal(value_a, value_b):
            changes.append(Change(f"attr:{key}", _plain(value_a), _plain(value_b)))
    if node_a.meta.get(tflite_keys.VERSION) != node_b.meta.get(tflite_keys.VERSION):
        changes.append(Change("version", node_a.meta.get(tflite_keys.VERSION), node_b.meta.get(tflite_keys.VERSION)))
    device_a, device_b = graphdef_keys.device_of(node_a), graphdef_keys.device_of(node_b)
    if device_a != device_b:
        changes.append(Change("device", device_a, device_b))
    changes += _input_changes(a, b, node_a, node_b, mapping)
    for port in range(max(len(node_a.outputs), len(node_b.outputs))):
        changes += _tensor_changes(f"output:{port}", node_a.output(port), node_b.output(port))
    return changes


def _resolve(value: Any, graphs: list[Graph]) -> Any:
    """A subgraph-valued attribute (TFLite IF/WHILE bodies) as `subgraph N`, comparable
    between models; other values as they are."""
    if not isinstance(value, Graph):
        return value
    for index, sub in enumerate(graphs):
        if sub is value:
            return f"subgraph {index}"
    return f"subgraph {value.name!r}"


def _input_changes(a: Graph, b: Graph, node_a: Node, node_b: Node, mapping: dict[str, str]) -> list[Change]:
    changes = []
    refs_a, refs_b = a.inputs_of(node_a.name), b.inputs_of(node_b.name)
    for slot in range(max(len(refs_a), len(refs_b))):
        ref_a = refs_a[slot] if slot < len(refs_a) else None
        ref_b = refs_b[slot] if slot < len(refs_b) else None
        expected = None if ref_a is None else (mapping.get(ref_a.node), ref_a.port)
        actual = None if ref_b is None else (ref_b.node, ref_b.port)
        if expected != actual:
            changes.append(Change(f"input:{slot}", None if ref_a is None else str(ref_a),
                                  None if ref_b is None else str(ref_b)))
    controls_a = a.control_inputs_of(node_a.name)
    controls_b = b.control_inputs_of(node_b.name)
    only_a = [c for c in controls_a if mapping.get(c) not in controls_b]
    mapped_a = {mapping.get(c) for c in controls_a}
    only_b = [c for c in controls_b if c not in mapped_a]
    if only_a or only_b:  # a: the dependencies only A has; b: those only B has
        changes.append(Change("control_inputs", only_a or None, only_b or None))
    return changes


def _tensor_changes(what: str, t_a: Tensor | None, t_b: Tensor | None) -> list[Change]:
    if t_a is None or t_b is None:
        return [] if t_a is t_b else [Change(what, _tensor_text(t_a), _tensor_text(t_b))]
    changes = []
    if t_a.dtype != t_b.dtype:
        changes.append(Change(f"{what}.dtype", _plain(t_a.dtype), _plain(t_b.dtype)))
    if t_a.shape != t_b.shape:
        changes.append(Change(f"{what}.shape", _shape(t_a.shape), _shape(t_b.shape)))
    if not _same_quantization(t_a.quantization, t_b.quantization):
        changes.append(Change(f"{what}.quantization", _quant_dict(t_a.quantization), _quant_dict(t_b.quantization)))
    sparse_a, sparse_b = tflite_keys.SPARSITY in t_a.meta, tflite_keys.SPARSITY in t_b.meta
    if sparse_a != sparse_b:
        changes.append(Change(f"{what}.sparse_storage", sparse_a, sparse_b))
    return changes


def _tensor_text(tensor: Tensor | None) -> str | None:
    return None if tensor is None else f"{tensor.dtype} {_shape_text(tensor.shape)}"


def _same_quantization(q_a: Quantization | None, q_b: Quantization | None) -> bool:
    if q_a is None or q_b is None:
        return q_a is q_b
    return (np.array_equal(q_a.scale, q_b.scale) and np.array_equal(q_a.zero_point, q_b.zero_point)
            and (q_a.axis if q_a.per_channel else None) == (q_b.axis if q_b.per_channel else None))


def _quant_dict(q: Quantization | None) -> dict | None:
    if q is None:
        return None
    return {"scheme": _scheme(q), "axis": q.axis if q.per_channel else None,
            "scale": _plain(np.asarray(q.scale)), "zero_point": _plain(np.asarray(q.zero_point))}


def _scheme(q: Quantization | None) -> str | None:
    if q is None or q.scale.size == 0:
        return None
    return f"per-channel (axis {q.axis})" if q.per_channel else "per-tensor"


# -- weights -------------------------------------------------------------------------------

def real_values(tensor: Tensor) -> np.ndarray | None:
    """A constant's values as real numbers (float64): quantized integers dequantized, other
    numbers widened; strings as they are; None when it holds no data."""
    data = tensor.data
    if data is None:
        return None
    data = np.asarray(data)
    q = tensor.quantization
    if q is not None and q.scale.size and data.dtype.kind in "iu":
        return dequantize(data, q.scale, q.zero_point, q.axis if q.per_channel else None)
    if tensor.dtype is DType.BFLOAT16:  # stored as its bits: the high half of a float32
        return (data.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if data.dtype.kind in "fiub" and not _bit_pattern_type(tensor.dtype):
        return data.astype(np.float64)
    return data


def _bit_pattern_type(dtype: DType | None) -> bool:
    """Types stored as raw bits of another numpy type (float8...): compared bit for bit."""
    return dtype is not None and dtype.numpy is not None and dtype.is_float and dtype.numpy.kind in "iu"


def _weight_change(node_a: Node, node_b: Node, index: int, atol: float, rtol: float) -> WeightChange | None:
    t_a, t_b = node_a.output(0), node_b.output(0)
    if t_a is None or t_b is None or not (t_a.is_constant and t_b.is_constant):
        return None
    values_a, values_b = real_values(t_a), real_values(t_b)
    if values_a is None or values_b is None:
        return None
    change = WeightChange(node_b.name, node_a.name, index, _shape(t_b.shape), _plain(t_a.dtype), _plain(t_b.dtype),
                          _scheme(t_a.quantization), _scheme(t_b.quantization))
    retyped = t_a.dtype != t_b.dtype or not _same_quantization(t_a.quantization, t_b.quantization)
    if tflite_keys.SPARSITY in t_a.meta or tflite_keys.SPARSITY in t_b.meta:  # data hold the stored non-zeros only
        if values_a.shape == values_b.shape and _equal(values_a, values_b) and not retyped:
            return None
        change.note = "stored sparse: values not compared"
        return change
    if values_a.shape != values_b.shape:
        if retyped:
            change.note = "shape changed: values not compared"
            return change
        return None  # the shape change is listed with the node
    if values_a.dtype.kind not in "f" or values_b.dtype.kind not in "f":
        equal = np.array_equal(values_a, values_b)
        if equal and not retyped:
            return None
        change.note = None if equal else "values differ"
        return change
    if not retyped and np.allclose(values_b, values_a, rtol=rtol, atol=atol, equal_nan=True):
        return None
    _fill_stats(change, values_a, values_b)
    return change


def _fill_stats(change: WeightChange, values_a: np.ndarray, values_b: np.ndarray) -> None:
    finite = np.isfinite(values_a) & np.isfinite(values_b)
    ref, noise = values_a[finite], values_b[finite] - values_a[finite]
    change.max_abs = float(np.max(np.abs(noise))) if noise.size else 0.0
    signal_power, noise_power = float(np.sum(ref * ref)), float(np.sum(noise * noise))
    if not noise_power:
        change.rel_l2, change.sqnr_db = 0.0, None
    elif signal_power:
        change.rel_l2 = math.sqrt(noise_power / signal_power)
        change.sqnr_db = 10 * math.log10(signal_power / noise_power)
    else:
        change.note = "the values in A are all zero: no relative error or SQNR"
    change.zeros_a = float(np.mean(values_a == 0)) if values_a.size else 0.0
    change.zeros_b = float(np.mean(values_b == 0)) if values_b.size else 0.0
    if not finite.all():
        change.note = f"{int((~finite).sum())} non-finite value(s) left out of the statistics"


# -- graph-level ---------------------------------------------------------------------------

def _graph_changes(a: Graph, b: Graph, mapping: dict[str, str], ignore_names: bool) -> list[Change]:
    changes = []
    inputs_a, inputs_b = list(a.inputs), list(b.inputs)
    if [mapping.get(n) for n in inputs_a] != inputs_b:
        changes.append(Change("inputs", inputs_a, inputs_b))
    outputs_a, outputs_b = [str(r) for r in a.outputs], [str(r) for r in b.outputs]
    if [str(Ref(mapping.get(r.node, ""), r.port)) for r in a.outputs] != outputs_b:
        changes.append(Change("outputs", outputs_a, outputs_b))
    signatures_a = _signatures(a, mapping if ignore_names else None)
    signatures_b = _signatures(b, None)
    for key in sorted(set(signatures_a) | set(signatures_b)):
        if signatures_a.get(key) != signatures_b.get(key):
            changes.append(Change(f"signature:{key}", _signatures(a, None).get(key), signatures_b.get(key)))
    metadata_a, metadata_b = a.meta.get(tflite_keys.METADATA) or {}, b.meta.get(tflite_keys.METADATA) or {}
    for key in sorted(set(metadata_a) | set(metadata_b)):
        value_a, value_b = metadata_a.get(key), metadata_b.get(key)
        if value_a != value_b:
            changes.append(Change(f"metadata:{_text(key)}", _bytes_text(value_a), _bytes_text(value_b)))
    for key in ("description", "versions", "function_names"):
        if not _equal(a.meta.get(key), b.meta.get(key)):
            changes.append(Change(key, _plain(a.meta.get(key)), _plain(b.meta.get(key))))
    return changes


def _signatures(graph: Graph, rename: dict[str, str] | None) -> dict[str, dict]:
    result = {}
    for signature in graph.meta.get(tflite_keys.SIGNATURE_DEFS) or []:
        def tensors(pairs: Iterable) -> dict[str, str]:
            return {_text(name): (rename.get(t.name, t.name) if rename else t.name) for name, t in pairs}

        subgraph = signature.get("subgraph")
        index = 0 if subgraph is graph else _subgraph_index(graph, subgraph)
        result[_text(signature["key"])] = {"subgraph": index, "inputs": tensors(signature["inputs"]),
                                           "outputs": tensors(signature["outputs"])}
    return result


def _subgraph_index(graph: Graph, subgraph: Any) -> int | None:
    for i, sub in enumerate(graph.subgraphs, start=1):
        if sub is subgraph:
            return i
    return subgraph if isinstance(subgraph, int) else None


# -- values --------------------------------------------------------------------------------

def _equal(x: Any, y: Any) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.shape == y.shape
                and x.dtype == y.dtype and bool(np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")))
    if isinstance(x, float) and isinstance(y, float):
        return x == y or (math.isnan(x) and math.isnan(y))
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return type(x) is type(y) and len(x) == len(y) and all(_equal(i, j) for i, j in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_equal(x[k], y[k]) for k in x)
    if type(x) is not type(y):
        return False
    return bool(x == y)


def _plain(value: Any) -> Any:
    """A JSON-friendly rendering of an attribute or meta value (long arrays summarised)."""
    if isinstance(value, DType):
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _text(bytes(value))
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, np.ndarray):
        if value.size > ARRAY_DISPLAY_LIMIT:
            return f"<{value.dtype} array {list(value.shape)}>"
        return [_plain(v) for v in value.tolist()] if value.ndim else _plain(value.item())
    if isinstance(value, TensorShape):
        return None if value.dims is None else list(value.dims)
    if isinstance(value, Tensor):
        return f"<tensor {value.dtype} {_shape_text(value.shape)}>"
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_text(k) if isinstance(k, bytes) else str(k): _plain(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return str(value)


def _text(value: Any) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, (bytes, bytearray)) else str(value)


def _bytes_text(value: bytes | None) -> str | None:
    if value is None:
        return None
    value = bytes(value)
    printable = value.rstrip(b"\0")
    if len(printable) <= 64 and all(32 <= c < 127 for c in printable):
        return printable.decode()
    return f"<{len(value)} bytes>"


def _shape(shape: tuple | None) -> list[int | None] | None:
    return None if shape is None else [None if d is None else int(d) for d in shape]


def _shape_text(shape: tuple | None) -> str:
    if shape is None:
        return "<unknown rank>"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"
