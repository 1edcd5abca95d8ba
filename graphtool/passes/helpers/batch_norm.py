"""What fold_batch_norms and fold_old_batch_norms share.

Both passes find y = x·scale + offset, per output channel, after a *producer*: a Conv2D,
DepthwiseConv2dNative or MatMul with constant weights, possibly followed by steps that keep
every channel apart (a constant bias as BiasAdd/Add/AddV2/Sub, BatchToSpaceND, a Reshape that
keeps the channel axis last, Identity), or a ConcatV2 of several producers. Folding scales
the weights of each conv by its channels' scale, drops the old biases and emits one BiasAdd
carrying bias·scale + offset, named as the node it replaces so consumers keep working.
Constant subexpressions (Keras 3 computes scale and offset with Rsqrt/Mul/Sub at run time)
are evaluated with fold_constants' numpy kernels, through Identity, Reshape and Squeeze.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...formats.graphdef import keys
from ...ir import DType, Graph, Node, Ref, make_const
from ...pattern import constant_value
from .folding import KERNELS, EvalError, Unsupported, Value
from .folding.base import NATIVE_FLOATS, Kernel, arity, output
from .skips import Skip, Skips

LINEAR_OPS = ("Conv2D", "DepthwiseConv2dNative", "MatMul")
FLOAT_DTYPES = NATIVE_FLOATS  # float16, float32, float64
PASS_THROUGH_OPS = frozenset({"Identity", "Snapshot", "StopGradient", "PreventGradient"})
BIAS_OPS = ("BiasAdd", "Add", "AddV2", "Sub")  # ops adding a constant (x - c for Sub) that producer() follows

# Reasons a candidate is left alone: the keys of stats["skipped"].
NOT_LINEAR = "input is not Conv2D/DepthwiseConv2dNative/MatMul"
USED_ELSEWHERE = "conv output used elsewhere"
DECLARED_OUTPUT = "intermediate is a declared output"
WEIGHTS_NOT_CONSTANT = "weights not constant"
NOT_FLOAT = "not a float op"
LAYOUT = "channel axis not preserved"
NOT_PER_CHANNEL = "scale or offset not per channel"
CONCAT_BIASES = "concat branches have different biases"


# -- constant subexpressions --------------------------------------------------------------

def _neg(node: Node, inputs: list[Value]) -> Value:
    """Neg, which has no folding kernel: the sign flipped (exact)."""
    arity(node, inputs, 1)
    return output(np.negative(inputs[0].array), inputs[0].dtype)


def _square(node: Node, inputs: list[Value]) -> Value:
    """Square is x * x, as TensorFlow computes it: the Mul kernel on the operand twice."""
    arity(node, inputs, 1)
    return KERNELS["Mul"](node, inputs * 2)


_SHAPE_OPS = ("Reshape", "Squeeze", "ExpandDims")
_ARITHMETIC_OPS = ("Rsqrt", "Sqrt", "Reciprocal", "Add", "AddV2", "Sub", "Mul", "RealDiv", "Maximum", "Minimum")
# fold_constants' numpy kernels (as TensorFlow computes), by the ops evaluated here: Inv is
# Reciprocal's old name, and Div on floats is RealDiv.
_KERNELS: dict[str, Kernel] = {
    **{op: KERNELS[op] for op in (*_SHAPE_OPS, "Cast", *_ARITHMETIC_OPS)},
    **{op: KERNELS["Identity"] for op in PASS_THROUGH_OPS},
    "Inv": KERNELS["Reciprocal"], "Div": KERNELS["RealDiv"], "Neg": _neg, "Square": _square}
_FLOAT_ONLY = frozenset(_KERNELS) - {*_SHAPE_OPS, *PASS_THROUGH_OPS}  # arithmetic, and Cast between floats
EVALUABLE_OPS = frozenset({"Const", *_KERNELS})
_MAX_DEPTH = 64


class Constants:
    """Values of constant subexpressions, computed with fold_constants' numpy kernels and
    remembered.

    Arithmetic is done on floating-point values only (in their own dtype), and Cast goes
    between those only; shape ops (Reshape, Squeeze, ExpandDims) take any dtype. Anything
    else is not constant."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._memo: dict[Ref, Value | None] = {}

    def value(self, ref: Ref | None) -> np.ndarray | None:
        found = self._value(ref, 0)
        return None if found is None else found.array

    def _value(self, ref: Ref | None, depth: int) -> Value | None:
        if ref is None or ref.port != 0:
            return None
        if ref in self._memo:
            return self._memo[ref]
        if depth > _MAX_DEPTH:
            return None
        result = self._evaluate(self.graph.node(ref.node), depth)
        self._memo[ref] = result
        return result

    def _evaluate(self, node: Node, depth: int) -> Value | None:
        if node.op not in EVALUABLE_OPS:
            return None
        if node.op == "Const":
            tensor = node.output(0)
            return Value(tensor.data, tensor.dtype) if tensor is not None and tensor.is_constant else None
        inputs = self.graph.inputs_of(node.name)
        if not inputs or any(r is None for r in inputs):
            return None
        values = [self._value(r, depth + 1) for r in inputs]
        if any(v is None for v in values):
            return None
        if node.op in _FLOAT_ONLY and not (all(v.dtype in FLOAT_DTYPES for v in values)
                                           and (node.op != "Cast" or node.attrs.get("DstT") in FLOAT_DTYPES)):
            return None
        try:
            return _KERNELS[node.op](node, values)
        except (EvalError, Unsupported, ValueError, TypeError, IndexError):
            return None  # shapes that do not fit: the graph would fail at run time; not ours to fold


def per_channel(value: np.ndarray, rank: int, axis: int, channels: int) -> np.ndarray | None:
    """`value` as a float64 vector of `channels` if, broadcast against a tensor of `rank`
    whose channel axis is `axis`, it varies along that axis only; else None."""
    value = np.asarray(value)
    if value.dtype.kind != "f" or value.ndim > rank:
        return None
    shape = (1,) * (rank - value.ndim) + value.shape
    if any(d != 1 for i, d in enumerate(shape) if i != axis) or shape[axis] not in (1, channels):
        return None
    return np.broadcast_to(value.reshape(shape[axis]).astype(np.float64), (channels,)).copy()


# -- producers ------------------------------------------------------------------------------

@dataclass
class Part:
    """One conv/matmul whose weights absorb the scale of the producer channels it computes."""

    conv: Node
    weights: Ref
    value: np.ndarray
    channels: np.ndarray  # producer channel of each of the conv's output channels


@dataclass
class Producer:
    """A linear producer of `channels` channels along `axis` of a rank-`rank` value."""

    rank: int
    axis: int
    channels: int
    dtype: DType
    parts: list[Part]
    top: Ref  # what the folded BiasAdd reads (old biases are bypassed)
    bias: np.ndarray | None = None  # float64, per channel
    biases: list[tuple[Node, Ref]] = field(default_factory=list)  # (bias node, the value it adds to)
    interior: list[str] = field(default_factory=list)


def producer(graph: Graph, ref: Ref, consts: Constants, parent: str, keep: set[str]) -> Producer:
    """Analyse the value `ref` read by `parent`; raise Skip unless it is a linear producer
    whose every node feeds only the next one up."""
    steps: list[tuple[Node, Ref, np.ndarray | None]] = []
    uses = []  # (value, its one consumer): checked once the structure is known to fit
    while True:
        node = graph.node(ref.node)
        if ref.port != 0:
            raise Skip(NOT_LINEAR, f"{ref} is not output 0 of {node.op}")
        uses.append((ref, parent))
        if node.op in LINEAR_OPS or node.op == "ConcatV2":
            break
        through, const = _step_operands(graph, node, consts)
        steps.append((node, through, const))
        parent, ref = node.name, through
    base = _concat(graph, node, consts, keep) if node.op == "ConcatV2" else _linear(graph, node, consts)
    for step, through, const in reversed(steps):
        _add_step(base, step, through, const)
    for value, consumer in uses:
        _exclusive(graph, value, consumer, keep)
    return base


def _exclusive(graph: Graph, ref: Ref, parent: str, keep: set[str]) -> None:
    users = graph.consumers(ref.node)
    if len(users) != 1 or users[0][0] != parent or graph.control_consumers(ref.node):
        others = sorted({u for u, _ in users if u != parent} | set(graph.control_consumers(ref.node)))
        raise Skip(USED_ELSEWHERE, f"{ref.node} also feeds {', '.join(others[:3]) or parent}")
    if ref.node in keep:
        raise Skip(DECLARED_OUTPUT, ref.node)


def _step_operands(graph: Graph, node: Node, consts: Constants) -> tuple[Ref, np.ndarray | None]:
    """(the value a per-channel step passes on, its constant operand) or raise Skip."""
    inputs = graph.inputs_of(node.name)
    if node.op in PASS_THROUGH_OPS and inputs and inputs[0] is not None:
        return inputs[0], None
    if node.op in ("BiasAdd", "BatchToSpaceND", "Reshape") and len(inputs) >= 2:
        const = consts.value(inputs[1])
        rest = [consts.value(r) for r in inputs[2:]]
        if const is not None and all(v is not None for v in rest) and consts.value(inputs[0]) is None:
            return inputs[0], const
    if node.op in ("Add", "AddV2", "Sub") and len(inputs) == 2:
        values = [consts.value(r) for r in inputs]
        if values[0] is None and values[1] is not None:
            return inputs[0], np.negative(values[1]) if node.op == "Sub" else values[1]
        if node.op != "Sub" and values[0] is not None and values[1] is None:
            return inputs[1], values[0]
    raise Skip(NOT_LINEAR, f"reached {node.name} ({node.op})")


def adds_constant(graph: Graph, node: Node, consts: Constants) -> bool:
    """True when `node` adds a float constant to one variable operand (BiasAdd, Add or AddV2
    of one, Sub of one from it): a step producer() takes as a bias."""
    if node.op not in BIAS_OPS:
        return False
    try:
        const = _step_operands(graph, node, consts)[1]
    except Skip:
        return False
    return const is not None and np.asarray(const).dtype.kind == "f"


def bias_vector(node: Node, const: np.ndarray, base: "Producer") -> np.ndarray | None:
    """The constant `node` (BiasAdd, Add, AddV2; Sub, the constant negated) adds to base's
    output, per channel of base; None when it is not per channel (a BiasAdd adds along its
    data_format's channel axis)."""
    if node.op != "BiasAdd":
        return per_channel(const, base.rank, base.axis, base.channels)
    bias_axis = 1 if node.attrs.get("data_format", "NHWC").startswith("NC") else base.rank - 1
    return per_channel(const, 1, 0, base.channels) if bias_axis == base.axis else None


def _linear(graph: Graph, node: Node, consts: Constants) -> Producer:
    dtype = node.attrs.get("T")
    if dtype not in FLOAT_DTYPES:
        raise Skip(NOT_FLOAT, f"{node.name} has T={dtype}")
    inputs = graph.inputs_of(node.name)
    weights = inputs[1] if len(inputs) == 2 else None
    value = consts.value(weights)
    if weights is None or value is None:
        raise Skip(WEIGHTS_NOT_CONSTANT, node.name)
    value = np.asarray(value)
    if value.dtype.kind != "f":
        raise Skip(NOT_FLOAT, f"{node.name} weights are {value.dtype}")
    if node.op == "MatMul":
        if value.ndim != 2:
            raise Skip(WEIGHTS_NOT_CONSTANT, f"{node.name} weights have rank {value.ndim}")
        rank, axis = 2, 1
        channels = value.shape[0] if node.attrs.get("transpose_b") else value.shape[1]
    else:
        layout = node.attrs.get("data_format", "NHWC")
        if value.ndim != 4 or layout not in ("NHWC", "NCHW"):
            raise Skip(LAYOUT, f"{node.name}: weights rank {value.ndim}, data_format {layout}")
        rank, axis = 4, 1 if layout == "NCHW" else 3
        channels = value.shape[3] if node.op == "Conv2D" else value.shape[2] * value.shape[3]
    part = Part(node, weights, value, np.arange(channels))
    return Producer(rank, axis, int(channels), dtype, [part], Ref(node.name, 0), interior=[node.name])


def _concat(graph: Graph, node: Node, consts: Constants, keep: set[str]) -> Producer:
    inputs = graph.inputs_of(node.name)
    axis_value = consts.value(inputs[-1]) if len(inputs) >= 3 else None
    if axis_value is None or np.asarray(axis_value).size != 1:
        raise Skip(NOT_LINEAR, f"{node.name}: ConcatV2 without a constant axis")
    branches = [producer(graph, ref, consts, node.name, keep) for ref in inputs[:-1]]
    first = branches[0]
    if any((b.rank, b.axis, b.dtype) != (first.rank, first.axis, first.dtype) for b in branches):
        raise Skip(LAYOUT, f"{node.name}: branches differ in layout or dtype")
    axis = int(np.asarray(axis_value).reshape(-1)[0])
    if not -first.rank <= axis < first.rank:
        raise Skip(LAYOUT, f"{node.name}: axis {axis} out of range")
    result = Producer(first.rank, first.axis, first.channels, first.dtype, [], Ref(node.name, 0),
                      interior=[node.name])
    if axis % first.rank == first.axis:  # channels side by side: each branch takes its slice
        start, biases = 0, []
        for branch in branches:
            for part in branch.parts:
                result.parts.append(Part(part.conv, part.weights, part.value, part.channels + start))
            biases.append(branch.bias if branch.bias is not None else np.zeros(branch.channels))
            start += branch.channels
        result.channels = start
        if any(b.bias is not None for b in branches):
            result.bias = np.concatenate(biases)
    else:  # stacked along another axis: every branch has all channels
        if any(b.channels != first.channels for b in branches):
            raise Skip(LAYOUT, f"{node.name}: branches have different channel counts")
        if any((b.bias is None) != (first.bias is None) or (b.bias is not None and not np.array_equal(b.bias, first.bias))
               for b in branches):
            raise Skip(CONCAT_BIASES, node.name)
        result.parts = [part for b in branches for part in b.parts]
        result.bias = first.bias
    for branch in branches:
        result.biases.extend(branch.biases)
        result.interior.extend(branch.interior)
    return result


def _add_step(base: Producer, node: Node, through: Ref, const: np.ndarray | None) -> None:
    last = base.axis == base.rank - 1
    if node.op in BIAS_OPS:
        vector = bias_vector(node, const, base)
        if vector is None:
            raise Skip(NOT_PER_CHANNEL, f"{node.name} adds a constant of shape {np.shape(const)}")
        base.bias = vector if base.bias is None else base.bias + vector
        base.biases.append((node, through))
    elif node.op == "BatchToSpaceND":
        block = np.asarray(const).reshape(-1)
        if not last or block.size > base.rank - 2:
            raise Skip(LAYOUT, f"{node.name}: BatchToSpaceND over the channel axis")
        base.top = Ref(node.name, 0)
    elif node.op == "Reshape":
        shape = [int(d) for d in np.asarray(const).reshape(-1)]
        if not last or not shape or shape[-1] != base.channels:
            raise Skip(LAYOUT, f"{node.name}: Reshape to {shape} moves the channel axis")
        base.rank, base.axis = len(shape), len(shape) - 1
        base.top = Ref(node.name, 0)
    else:  # pass-through
        base.top = Ref(node.name, 0)
    base.interior.insert(0, node.name)


# -- rewriting ----------------------------------------------------------------------------------

@dataclass
class Fold:
    """Replace `root` (whose output is producer·scale + offset) by the folded producer;
    `also_remove` are nodes between them that go too (the Mul of a Mul/Add pair)."""

    root: Node
    producer: Producer
    scale: np.ndarray
    offset: np.ndarray | None
    also_remove: list[Node] = field(default_factory=list)


def scaled_weights(conv: Node, value: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The conv's weights with output channel c multiplied by scale[c]."""
    if conv.op == "DepthwiseConv2dNative":  # [h, w, in, multiplier]; channel c = in * multiplier index
        factor = scale.reshape(value.shape[2], value.shape[3])
    elif conv.op == "MatMul" and conv.attrs.get("transpose_b"):  # [out, in]
        factor = scale[:, None]
    else:  # Conv2D [h, w, in, out], MatMul [in, out]
        factor = scale
    return (value.astype(np.float64) * factor).astype(value.dtype)


class Rewriter:
    """Applies folds, then removes the constants they left unused and gives new nodes the
    names of those they replace."""

    def __init__(self, graph: Graph, consts: Constants, keep: set[str]):
        self.graph = graph
        self.consts = consts
        self.keep = keep
        self.renames: dict[str, str] = {}
        self.weight_names: dict[str, str] = {}
        self.dropped: list[Ref] = []

    def apply(self, fold: Fold) -> None:
        graph, prod, root = self.graph, fold.producer, fold.root
        if np.any(fold.scale != 1):  # a sum of biases leaves the weights as they are
            self._scale_weights(prod, fold.scale)
        for node, through in reversed(prod.biases):  # outermost first: each then reads the conv
            graph.replace_uses(Ref(node.name, 0), through)
        bias = prod.bias * fold.scale if prod.bias is not None else None
        if bias is not None or fold.offset is not None:
            total = (bias if bias is not None else 0) + (fold.offset if fold.offset is not None else 0)
            offset = self._unique(f"{prod.top.node}_bn_offset")
            graph.add_node(make_const(offset, np.asarray(total, dtype=prod.dtype.numpy)))
            layout = "NCHW" if prod.axis == 1 and prod.rank > 2 else "NHWC"
            replacement = self._unique(f"{root.name}_bn_folded")
            meta = {"device": root.meta[keys.DEVICE]} if root.meta.get(keys.DEVICE) else {}
            graph.add_node(Node(replacement, "BiasAdd", {"T": prod.dtype, "data_format": layout}, meta=meta),
                           [prod.top, offset], control_inputs=graph.control_inputs_of(root.name))
        else:  # GTT's Mul-only fold: the producer itself takes the Mul's name
            replacement = prod.top.node
            controls = graph.control_inputs_of(replacement)
            graph.set_control_inputs(replacement, controls + [c for c in graph.control_inputs_of(root.name)
                                                              if c not in controls])
        self.renames[replacement] = root.name
        graph.replace_uses(Ref(root.name, 0), Ref(replacement, 0))
        for consumer in graph.control_consumers(root.name):
            graph.replace_control_input(consumer, root.name, replacement)
        for node in [root, *fold.also_remove, *(n for n, _ in prod.biases)]:
            self.dropped.extend(r for r in graph.inputs_of(node.name) if r is not None)
            graph.remove_node(node.name)

    def _scale_weights(self, prod: Producer, scale: np.ndarray) -> None:
        """Give each conv of `prod` new weights, its output channels multiplied by `scale`."""
        for part in prod.parts:
            origin = constant_value(self.graph, part.weights)
            origin_name = origin[0].name if origin else part.weights.node
            name = self._unique(f"{origin_name}_bn_folded")
            new = scaled_weights(part.conv, part.value, scale[part.channels])
            self.graph.add_node(make_const(name, new))
            self.graph.set_input(part.conv.name, 1, name)
            self.dropped.append(part.weights)
            self.weight_names[name] = origin_name

    def finish(self) -> int:
        """Remove constants left unused, rename, sort; returns how many nodes were removed."""
        removed = self._remove_unused()
        for new, old in self.weight_names.items():
            if old not in self.graph and old not in self.renames.values():
                self.renames[new] = old
        if self.renames:
            self.graph.rename_nodes(self.renames)
        self.graph.toposort()
        return removed

    def _remove_unused(self) -> int:
        """Remove constant subexpressions the folds left without data consumers. Frozen Keras
        graphs also hang every weight on a NoOp by a control edge; such edges are dropped when
        nothing in the constant's subexpression waits on anything (ordering after a pure
        constant means nothing)."""
        graph = self.graph
        removed = 0
        stack = list(self.dropped)
        while stack:
            name = stack.pop().node
            if name not in graph or name in self.keep or graph.consumers(name):
                continue
            if graph.node(name).op not in EVALUABLE_OPS or self.consts.value(Ref(name, 0)) is None:
                continue
            waiting = graph.control_consumers(name)
            if waiting and not self._pure(name):
                continue
            for consumer in waiting:
                graph.remove_control_input(consumer, name)
            inputs = [r for r in graph.inputs_of(name) if r is not None]
            graph.remove_node(name)
            removed += 1
            stack.extend(inputs)
        return removed

    def _pure(self, name: str) -> bool:
        """True when no node computing `name` has a control input."""
        pending, seen = [name], set()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            if self.graph.control_inputs_of(current):
                return False
            pending.extend(r.node for r in self.graph.inputs_of(current) if r is not None)
        return True

    def _unique(self, base: str) -> str:
        return self.graph.unique_name(base, set(self.renames.values()) | set(self.weight_names.values()))


def run_rounds(graph: Graph, keep: set[str], find: Callable[[Graph, Constants, Skips], list[Fold]],
               transform: str, log: logging.Logger) -> dict:
    """Find and apply folds until none is left (a fold can expose another, e.g. two batch
    norms in a row). Returns stats: folded count and the reasons of the last round's skips."""
    folded, removed = 0, 0
    while True:
        consts = Constants(graph)
        skipped = Skips(transform, log)
        folds = find(graph, consts, skipped)
        if not folds:
            break
        rewriter = Rewriter(graph, consts, keep)
        for fold in folds:
            rewriter.apply(fold)
            log.debug("folded %s into %s", fold.root.name, ", ".join(p.conv.name for p in fold.producer.parts))
        removed += rewriter.finish()
        folded += len(folds)
    return {"folded": folded, "skipped": skipped.stats(), "constants_removed": removed}
