"""Plan a full-integer rewrite of a float graph: which operators run in integers (the rule
table, integer_ops.RULES), and the scale and zero point of every value they read and write.

Values that must share one quantization (the inputs and outputs of a same-scale operator)
form a group; its range is the union of its members' calibrated ranges, unless a member has
fixed parameters (SOFTMAX's output...). Where two fixed groups would have to merge, the
operator's input is requantized instead (a QUANTIZE from one to the other). Planning only
reads the graph; integer_rewrite applies the plan.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...ir import CONST_OP, TENSOR_SOURCE_OPS, DType, Graph, Node, Ref
from ...ir.quantization import activation_params
from .integer_ops import OpRule, rule_for
from .keep import Keep

# A value an integer operator reads or writes:
#   ("tensor", node, port)   the integer form of a computed (or graph input) float tensor
#   ("const", op, slot)      a float constant read at activation slot `slot` of integer operator `op`
#   ("requant", op, slot)    what `op` reads at `slot` requantized to its group's parameters
Value = tuple[str, str, int]
Params = tuple[np.float32, int]  # (scale, zero point)
# Fused activations that clamp to a bound LiteRT quantizes into int32 with the output scale
# (CalculateActivationRangeQuantized): the scale must keep bound / scale below 2**31.
CLAMP_BOUNDS = {2: 1.0, 3: 6.0}  # RELU_N1_TO_1, RELU6
CLAMP_HEADROOM = 2.0 ** 30
Ranges = Callable[[Ref], "tuple[float, float] | None"]


@dataclass
class IntOp:
    """An operator that will run in integers."""

    node: Node
    rule: OpRule
    inputs: dict[int, Value] = field(default_factory=dict)  # quantized input slot -> value
    outputs: dict[int, Value] = field(default_factory=dict)  # quantized output port -> value


@dataclass
class Plan:
    dtype: DType  # INT8 or INT16 activations
    ops: dict[str, IntOp]  # by node name, in graph order
    params: dict[Value, Params]
    float_ops: dict[str, tuple[str, str]]  # node name -> (op, why it stays float)
    requantized: int = 0


def plan(graph: Graph, ranges: Ranges, dtype: DType, keep: Keep, log: logging.Logger) -> Plan:
    """The integer operators of `graph` and the parameters of their values; the operators
    `keep` covers stay float."""
    ops: dict[str, IntOp] = {}
    floats: dict[str, tuple[str, str]] = {}
    for node in graph:
        if node.op in TENSOR_SOURCE_OPS or not _computes_float(graph, node):
            continue
        reason = keep.reason(node) or _float_reason(graph, node, ranges, dtype)
        if reason is None:
            ops[node.name] = _int_op(graph, node, rule_for(node.op))
        else:
            floats[node.name] = (node.op, reason)
    for name in _isolated(graph, ops):
        floats[name] = (ops.pop(name).node.op, "only float neighbours")
    for name, (op, reason) in floats.items():
        log.debug("quantize_nodes: %s (%s) stays float: %s", name, op, reason)
    groups = _Groups(lambda value: _span(graph, value, ranges))
    requantized = _share_scales(graph, ops, groups, dtype)
    return Plan(dtype, ops, _params(ops, groups, dtype), floats, requantized)


# -- which operators ------------------------------------------------------------------------------

def _is_const(graph: Graph, ref: Ref | None) -> bool:
    if ref is None:
        return False
    node = graph.node(ref.node)
    return node.op == CONST_OP and node.outputs[ref.port].is_constant


def _computes_float(graph: Graph, node: Node) -> bool:
    tensors = [graph.tensor(ref) for ref in graph.inputs_of(node.name)] + node.outputs
    return any(t is not None and t.dtype is DType.FLOAT32 for t in tensors)


def _float_reason(graph: Graph, node: Node, ranges: Ranges, dtype: DType) -> str | None:
    """Why `node` stays float, or None when it can run in integers."""
    rule = rule_for(node.op)
    if rule is None:
        return "no integer kernel"
    if not rule.supports(dtype):
        return f"no {dtype.value} kernel"
    inputs = graph.inputs_of(node.name)
    for slot in rule.input_slots(len(inputs)):
        tensor = graph.tensor(inputs[slot])
        if tensor is not None and tensor.dtype is not DType.FLOAT32:
            return f"input {slot} is {tensor.dtype}"
        if tensor is not None and not _is_const(graph, inputs[slot]) and ranges(inputs[slot]) is None:
            return f"input {slot} not calibrated"
    for port in rule.output_ports(len(node.outputs)):
        if node.outputs[port].dtype is not DType.FLOAT32:
            return f"output {port} is {node.outputs[port].dtype}"
        ref = Ref(node.name, port)
        used = graph.consumers(ref) or ref in graph.outputs
        if not rule.fixed and used and ranges(ref) is None:
            return f"output {port} not calibrated"
    for what, slot in (("weights", rule.weight.slot if rule.weight else None), ("bias", rule.bias)):
        ref = inputs[slot] if slot is not None and slot < len(inputs) else None
        if slot is None or ref is None and what == "bias":
            continue
        if not _is_const(graph, ref):
            return f"{what} not constant"
        tensor = graph.tensor(ref)
        if tensor.dtype is not DType.FLOAT32:
            return f"{what} are {tensor.dtype}"
        if "sparsity" in tensor.meta:
            return f"sparse {what}"
    if node.op == "FULLY_CONNECTED" and node.attrs.get("weights_format"):
        return "shuffled weights"
    return None


def _int_op(graph: Graph, node: Node, rule: OpRule) -> IntOp:
    inputs = graph.inputs_of(node.name)
    op = IntOp(node, rule)
    for slot in rule.input_slots(len(inputs)):
        ref = inputs[slot]
        if ref is not None:
            op.inputs[slot] = ("const", node.name, slot) if _is_const(graph, ref) else ("tensor", ref.node, ref.port)
    for port in rule.output_ports(len(node.outputs)):
        op.outputs[port] = ("tensor", node.name, port)
    return op


def _isolated(graph: Graph, ops: dict[str, IntOp]) -> list[str]:
    """Same-scale operators (they only move values) with no integer neighbour: quantizing them
    would only add a QUANTIZE before and a DEQUANTIZE after. Repeated until none is left."""
    dropped: list[str] = []
    while True:
        lonely = [name for name, op in ops.items() if name not in dropped and op.rule.same_scale
                  and not _has_int_neighbour(graph, op, ops, dropped)]
        if not lonely:
            return dropped
        dropped += lonely


def _has_int_neighbour(graph: Graph, op: IntOp, ops: dict[str, IntOp], dropped: list[str]) -> bool:
    def integer(name: str) -> bool:
        return name in ops and name not in dropped

    for value in op.inputs.values():
        if value[0] == "tensor" and integer(value[1]) and value[2] in ops[value[1]].outputs:
            return True
    for port in op.outputs:
        for consumer, slot in graph.consumers(Ref(op.node.name, port)):
            if integer(consumer) and slot in ops[consumer].inputs:
                return True
    return False


# -- groups and parameters ------------------------------------------------------------------------

class _Groups:
    """Union-find over values; each root holds its group's range (the union of its members'
    calibrated ranges, or a constant's values) and its fixed parameters, if any."""

    def __init__(self, span: Callable[[Value], "tuple[float, float] | None"]):
        self.parent: dict[Value, Value] = {}
        self.fixed: dict[Value, Params] = {}
        self.spans: dict[Value, tuple[float, float]] = {}
        self._span = span

    def find(self, value: Value) -> Value:
        if value not in self.parent:
            self.parent[value] = value
            span = self._span(value)
            if span is not None:
                self.spans[value] = span
        root = value
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[value] != root:
            self.parent[value], value = root, self.parent[value]
        return root

    def fix(self, value: Value, params: Params) -> None:
        self.fixed[self.find(value)] = params

    def widens(self, value: Value, other: Value) -> bool:
        """True when merging `other`'s group into `value`'s would change value's quantization:
        a fixed scale, or a range reaching beyond value's."""
        ra, rb = self.find(value), self.find(other)
        if ra == rb:
            return False
        if rb in self.fixed:
            return self.fixed.get(ra) != self.fixed[rb]
        if ra in self.fixed or rb not in self.spans:
            return False
        if ra not in self.spans:
            return True
        (low, high), (other_low, other_high) = self.spans[ra], self.spans[rb]
        slack = 1e-6 * max(high - low, 1e-12)
        return other_low < low - slack or other_high > high + slack

    def union(self, a: Value, b: Value) -> bool:
        """Merge the groups of a and b; False (nothing merged) when both are fixed differently."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        fa, fb = self.fixed.get(ra), self.fixed.get(rb)
        if fa is not None and fb is not None and fa != fb:
            return False
        self.parent[rb] = ra
        if fa is None and fb is not None:
            self.fixed[ra] = fb
        self.fixed.pop(rb, None)
        spans = [self.spans.pop(root) for root in (ra, rb) if root in self.spans]
        if spans:
            self.spans[ra] = (min(low for low, _ in spans), max(high for _, high in spans))
        return True


def _share_scales(graph: Graph, ops: dict[str, IntOp], groups: _Groups, dtype: DType) -> int:
    """Fix the outputs of fixed-output operators, then give each same-scale operator's inputs
    and outputs one group (in graph order). An input joins unless that would change the
    quantization of a tensor something else reads too (a wider range, another fixed scale) or
    two fixed scales would have to meet: then it is requantized into the group, and only this
    operator pays for it. Returns how many inputs are requantized."""
    for op in ops.values():
        if op.rule.fixed:
            scale, zero_point = op.rule.fixed[dtype]
            for value in op.outputs.values():
                groups.fix(value, (np.float32(scale), zero_point))
    requantized = 0
    for op in ops.values():
        if not op.rule.same_scale:
            continue
        anchor = next(iter(op.outputs.values()), None) or next(iter(op.inputs.values()), None)
        for value in op.outputs.values():
            groups.union(anchor, value)
        for slot, value in list(op.inputs.items()):
            shared = value[0] == "tensor" and _readers(graph, value) > 1
            if shared and groups.widens(value, anchor) or not groups.union(anchor, value):
                op.inputs[slot] = ("requant", op.node.name, slot)
                groups.union(anchor, op.inputs[slot])
                requantized += 1
    return requantized


def _readers(graph: Graph, value: Value) -> int:
    ref = Ref(value[1], value[2])
    return len(graph.consumers(ref)) + (ref in graph.outputs)


def _params(ops: dict[str, IntOp], groups: _Groups, dtype: DType) -> dict[Value, Params]:
    """Each value's (scale, zero point): its group's fixed ones, or those of its group's
    range widened to hold 0 (and to keep a fused RELU6's bound within int32, CLAMP_BOUNDS)."""
    floors: dict[Value, float] = {}
    values: set[Value] = set()
    for op in ops.values():
        bound = CLAMP_BOUNDS.get(op.node.attrs.get("fused_activation_function") or 0, 0.0)
        for value in op.outputs.values():
            root = groups.find(value)
            floors[root] = max(floors.get(root, 0.0), bound / CLAMP_HEADROOM)
        values.update(op.inputs.values(), op.outputs.values())
    symmetric = dtype is DType.INT16
    chosen: dict[Value, Params] = {}
    params: dict[Value, Params] = {}
    for value in values:
        root = groups.find(value)
        if root not in chosen:
            chosen[root] = groups.fixed.get(root) or activation_params(
                *groups.spans.get(root, (0.0, 0.0)), dtype.numpy, symmetric, floors.get(root, 0.0))
        params[value] = chosen[root]
    return params


def _span(graph: Graph, value: Value, ranges: Ranges) -> tuple[float, float] | None:
    kind, name, index = value
    if kind == "tensor":
        return ranges(Ref(name, index))
    if kind == "const":
        data = np.asarray(graph.tensor(graph.inputs_of(name)[index]).data, np.float32)
        return (float(data.min()), float(data.max())) if data.size else None
    return None  # a requantized input takes its group's range
