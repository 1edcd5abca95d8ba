"""fold_constants: replace what only depends on constants by its value (GTT semantics)."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from ...errors import GraphError
from ...formats.graphdef import keys
from ...ir import CONST_OP, Graph, Node, Ref, Tensor, make_const
from ..helpers.folding import (
    KERNELS,
    EvalError,
    TensorFlowEvaluator,
    Unsupported,
    Value,
    fully_known,
    rank_value,
    shape_value,
    size_value,
    static_shape,
)
from ..helpers.graphdef_nodes import protected
from ..helpers.skips import Skips
from ..registry import Context, PassError, PassResult, register

# Never folded, whatever their inputs: control flow, values a user may feed, transfers.
CONTROL_FLOW = frozenset({"Switch", "RefSwitch", "Merge", "RefMerge", "Enter", "RefEnter", "Exit", "RefExit",
                          "NextIteration", "RefNextIteration", "LoopCond", "ControlTrigger"})
FEEDS = frozenset({"Placeholder", "PlaceholderV2", "PlaceholderWithDefault"})
TRANSFERS = frozenset({"_Send", "_Recv", "_HostSend", "_HostRecv", "_Arg", "_Retval"})
SHAPE_OPS = frozenset({"Shape", "Size", "Rank"})


@dataclass(frozen=True)
class Params:
    clear_output_shapes: bool = field(default=True, metadata={"doc": "remove every _output_shapes attr"})
    exclude_op: list[str] = field(default_factory=list, metadata={"doc": "op never to fold (repeat for several)"})
    exclude_node: list[str] = field(default_factory=list,
                                    metadata={"doc": "node never to fold (repeat for several)"})
    max_constant_size_in_bytes: int = field(default=10 * 1024 * 1024,
                                            metadata={"doc": "results larger than this stay computed"})
    use_tensorflow: bool = field(default=True, metadata={
        "doc": "evaluate ops without a numpy kernel in TensorFlow, when it is installed"})


@dataclass
class Folded:
    """A node to replace: its value on each output port and the control inputs it keeps."""

    name: str
    op: str
    values: list[Value]
    controls: set[str]
    by_tensorflow: bool = False


@register("fold_constants", Params, formats=("graphdef",), guarantee="float rounding")
def fold_constants(graph: Graph, params: Params, context: Context) -> PassResult:
    """Evaluate every node whose data inputs are all constant and make it a Const.

    A folded node keeps its name and device, so consumers and outputs still find it; the
    constants only it used are removed (declared inputs and outputs stay). As in
    TensorFlow's constant folding, control inputs do not block folding: the Const keeps the
    non-constant ones (and those its constant inputs had). Shape/Size/Rank fold when the
    shape is known statically (a Placeholder's shape attr, through shape-preserving ops),
    keeping a control input on the tensor they measured. Never folded: control flow,
    placeholders, stateful ops, function calls, exclude_op/exclude_node, declared inputs
    (they are fed) and what depends on them, results over max_constant_size_in_bytes
    (which also leaves their consumers computed). Kernels: numpy for Identity, Add/AddV2,
    Sub, Mul, RealDiv, Maximum, Minimum, Sqrt, Rsqrt, Reciprocal, Cast, Reshape, Transpose,
    ConcatV2/Concat, Pack, Squeeze, ExpandDims, Fill, StridedSlice, Shape, Size, Rank;
    anything else runs in TensorFlow when use_tensorflow=true and it is installed (imported
    only then). Results match TensorFlow's CPU kernels up to float rounding (Rsqrt,
    Reciprocal: correctly rounded here)."""
    if params.max_constant_size_in_bytes < 0:
        raise PassError("fold_constants: max_constant_size_in_bytes must be >= 0")
    missing = [name for name in context.inputs + context.outputs if Ref.parse(name).node not in graph]
    if missing:
        raise PassError(f"fold_constants: no node named {Ref.parse(missing[0]).node!r} (from --inputs/--outputs)")
    keep = protected(graph, context.inputs + context.outputs)
    fed = frozenset(Ref.parse(name).node for name in context.inputs) | frozenset(graph.inputs)
    planner = _Planner(graph, params, fed, context.log)
    try:
        plan = planner.run()
    finally:
        planner.close()
    removed = _rewrite(graph, plan, keep)
    cleared = _clear_output_shapes(graph) if params.clear_output_shapes else 0
    stats = {
        "folded": len(plan),
        "folded_ops": dict(sorted(Counter(f.op for f in plan).items())),
        "by_tensorflow": sum(f.by_tensorflow for f in plan),
        "removed": removed,
        "output_shapes_cleared": cleared,
        "skipped": planner.skipped.stats(),
    }
    return PassResult(bool(plan or removed or cleared), stats)


class _Planner:
    """Walks the graph in dataflow order, tracking which outputs are constant, and decides
    (and evaluates) what to fold. Reads the graph only."""

    def __init__(self, graph: Graph, params: Params, fed: frozenset[str], log: logging.Logger):
        self.graph, self.params, self.fed, self.log = graph, params, fed, log
        self.exclude_op, self.exclude_node = frozenset(params.exclude_op), frozenset(params.exclude_node)
        self.values: dict[Ref, Value | Tensor] = {}  # a Const's Tensor until a kernel needs its data
        self.controls: dict[str, set[str]] = {}  # constant node -> control inputs its value carries
        self.skipped = Skips("fold_constants", self.log)
        self.plan: list[Folded] = []
        self._tensorflow: TensorFlowEvaluator | None = None

    def run(self) -> list[Folded]:
        for name in _dataflow_order(self.graph):
            if name in self.fed:
                continue
            node = self.graph.node(name)
            if node.op == CONST_OP:
                self._constant(node)
            else:
                self._consider(node)
        return self.plan

    def close(self) -> None:
        if self._tensorflow is not None:
            self._tensorflow.close()

    def _constant(self, node: Node) -> None:
        tensor = node.output(0)
        if tensor is None or not tensor.is_constant or tensor.dtype is None or tensor.dtype.numpy is None:
            return
        self.values[Ref(node.name, 0)] = tensor
        self.controls[node.name] = self._carried([], self.graph.control_inputs_of(node.name))

    def _consider(self, node: Node) -> None:
        refs = self.graph.inputs_of(node.name)
        if not refs or any(ref is None for ref in refs):
            return
        shape = None
        if not all(ref in self.values for ref in refs):
            shape = self._measured_shape(node, refs)
            if shape is None:
                return  # depends on something computed
        reason = self._refusal(node)
        detail = ""
        if reason is None:
            try:
                values, by_tensorflow = self._evaluate(node, refs, shape)
            except Unsupported as exc:
                reason, detail = exc.reason, str(exc)
            except EvalError as exc:
                reason, detail = "error", str(exc)
            else:
                too_big = [v for v in values if _nbytes(v) > self.params.max_constant_size_in_bytes]
                if not too_big:
                    self._fold(node, refs, shape is not None, values, by_tensorflow)
                    return
                reason, detail = "too_big", f"{_nbytes(too_big[0])} bytes"
        self.skipped(f"{node.name} ({node.op})", reason, detail)

    def _measured_shape(self, node: Node, refs: list[Ref]) -> tuple | None:
        """For Shape/Size/Rank of a computed tensor: its static shape when known well enough
        (the rank for Rank, every dim otherwise), else None."""
        if node.op not in SHAPE_OPS or len(refs) != 1:
            return None

        def constant_shape(ref: Ref) -> tuple | None:
            known = self.values.get(ref)
            if isinstance(known, Tensor):
                return known.shape
            return None if known is None else known.array.shape

        shape = static_shape(self.graph, refs[0], constant_shape, self.fed)
        if node.op == "Rank":
            return shape
        return shape if fully_known(shape) else None

    def _refusal(self, node: Node) -> str | None:
        if node.name in self.exclude_node:
            return "excluded_node"
        if node.op in self.exclude_op:
            return "excluded_op"
        if node.op in CONTROL_FLOW:
            return "control_flow"
        if node.op in FEEDS:
            return "placeholder"
        if node.op in TRANSFERS:
            return "transfer"
        return None

    def _evaluate(self, node: Node, refs: list[Ref], shape: tuple | None) -> tuple[list[Value], bool]:
        if shape is not None:
            maker = {"Shape": shape_value, "Size": size_value}.get(node.op)
            return [maker(node, shape) if maker else rank_value(node, len(shape))], False
        inputs = [self._value(ref) for ref in refs]
        kernel = KERNELS.get(node.op)
        if kernel is not None:
            try:
                return [kernel(node, inputs)], False
            except Unsupported:
                if not self.params.use_tensorflow:
                    raise
        elif not self.params.use_tensorflow:
            raise Unsupported(f"no numpy kernel for {node.op} (use_tensorflow=false)")
        if self._tensorflow is None:
            self._tensorflow = TensorFlowEvaluator()
        return self._tensorflow.evaluate(node, inputs), True

    def _value(self, ref: Ref) -> Value:
        known = self.values[ref]
        if isinstance(known, Tensor):
            known = self.values[ref] = Value(known.data, known.dtype)
        return known

    def _fold(self, node: Node, refs: list[Ref], measured: bool, values: list[Value], by_tensorflow: bool) -> None:
        controls = self._carried(refs, self.graph.control_inputs_of(node.name))
        if measured:
            controls.add(refs[0].node)  # the data dependency becomes an ordering one, as in TF
        for port, value in enumerate(values):
            self.values[Ref(node.name, port)] = value
        self.controls[node.name] = controls
        self.plan.append(Folded(node.name, node.op, values, controls, by_tensorflow))

    def _carried(self, refs: list[Ref], control_inputs: list[str]) -> set[str]:
        """Control inputs a constant must keep: its non-constant control producers, and
        those its constant producers carry."""
        carried: set[str] = set()
        for ref in refs:
            carried |= self.controls.get(ref.node, set())
        for producer in control_inputs:
            carried |= self.controls[producer] if producer in self.controls else {producer}
        return carried


def _dataflow_order(graph: Graph) -> list[str]:
    """Producers before consumers (loop back edges ignored), without reordering the graph."""
    try:
        return graph.topological_order()
    except GraphError:
        raise PassError("fold_constants: the graph has a cycle") from None


def _nbytes(value: Value) -> int:
    if value.array.dtype == object:
        return sum(len(item) for item in value.array.flat)
    return value.array.nbytes


def _rewrite(graph: Graph, plan: list[Folded], keep: set[str]) -> int:
    """Turn planned nodes into Consts, then remove the constants left unused. Returns how
    many nodes were removed."""
    position = {node.name: i for i, node in enumerate(graph)}
    stays = keep | _colocation_targets(graph)
    left_behind: list[str] = []
    removed = 0
    added = False
    for folded in plan:
        left_behind += [ref.node for ref in graph.inputs_of(folded.name) if ref is not None]
        left_behind += graph.control_inputs_of(folded.name)
        controls = sorted(folded.controls, key=position.__getitem__)
        if len(folded.values) == 1:
            _make_const_in_place(graph, folded.name, folded.values[0], controls)
            continue
        for port, value in enumerate(folded.values):
            if graph.consumers(Ref(folded.name, port)):
                const = _new_const(graph, folded.name, port, value, controls)
                graph.replace_uses(Ref(folded.name, port), Ref(const, 0))
                added = True
        if not graph.is_used(folded.name) and folded.name not in stays:
            graph.remove_node(folded.name)
            removed += 1
    removed += _remove_unused_constants(graph, left_behind, keep)
    if added:
        graph.toposort()
    return removed


def _make_const_in_place(graph: Graph, name: str, value: Value, controls: list[str]) -> None:
    node = graph.node(name)
    graph.set_inputs(name, [])
    graph.set_control_inputs(name, controls)
    const = make_const(name, value.array, value.dtype)
    node.op, node.attrs, node.outputs = const.op, const.attrs, const.outputs
    keys.forget_source(node)


def _new_const(graph: Graph, name: str, port: int, value: Value, controls: list[str]) -> str:
    """A Const for one output of a multi-output node, named after it (TF-style __cf__)."""
    fresh = graph.unique_name(f"{name}__cf__{port}")
    const = make_const(fresh, value.array, value.dtype)
    const.meta[keys.DEVICE] = graph.node(name).meta.get(keys.DEVICE, "")
    graph.add_node(const, control_inputs=controls)
    return fresh


def _remove_unused_constants(graph: Graph, candidates: list[str], keep: set[str]) -> int:
    """Remove the unused Consts among `candidates` (and, in turn, among their control
    inputs), except declared inputs/outputs and nodes another node is colocated with."""
    keep = keep | _colocation_targets(graph)
    removed = 0
    stack = list(reversed(candidates))
    while stack:
        name = stack.pop()
        if name not in graph or name in keep or graph.node(name).op != CONST_OP or graph.is_used(name):
            continue
        stack.extend(graph.control_inputs_of(name))
        graph.remove_node(name)
        removed += 1
    return removed


def _colocation_targets(graph: Graph) -> set[str]:
    """Names other nodes' _class attrs ("loc:@name") point at: TensorFlow refuses a graph
    where they are missing."""
    targets = set()
    for node in graph:
        groups = node.attrs.get("_class", ())
        for group in groups if isinstance(groups, tuple) else (groups,):
            if isinstance(group, str) and group.startswith("loc:@"):
                targets.add(group[len("loc:@"):])
    return targets


def _clear_output_shapes(graph: Graph) -> int:
    cleared = 0
    for node in graph:
        if "_output_shapes" in node.attrs:
            del node.attrs["_output_shapes"]
            cleared += 1
    return cleared
