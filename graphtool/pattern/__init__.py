"""Subgraph patterns for passes, after the Graph Transform Tool's OpTypePattern.

    P("Mul", P("Conv2D|MatMul|DepthwiseConv2dNative", P("*", name="input"), C("weights")),
          C("scale"), name="mul")

A pattern names an op (alternatives with |, any op with *), the patterns of its data
inputs (none: any inputs), and an optional capture name. `C(name)` matches a constant,
looking through Identity. Add/AddV2/Mul (and TFLite ADD/MUL) match their two inputs in
either order. A match whose intermediate values are used outside it is skipped, with
the reason logged at DEBUG on "graphtool.pattern"; so is one overlapping an earlier match.
Passes collect all matches first, then rewrite.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..ir import Graph, Node, Ref

log = logging.getLogger("graphtool.pattern")

COMMUTATIVE = frozenset({"Add", "AddV2", "Mul", "ADD", "MUL"})
IDENTITY_OPS = frozenset({"Identity"})
CONST_OPS = frozenset({"Const"})


@dataclass(frozen=True)
class P:
    op: str = "*"
    inputs: tuple["P", ...] = ()
    name: str | None = None
    const: bool = False

    def __init__(self, op: str = "*", *inputs: "P", name: str | None = None, const: bool = False):
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "inputs", tuple(inputs))
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "const", const)

    def accepts(self, op: str) -> bool:
        return self.op == "*" or op in self.op.split("|")


def C(name: str | None = None) -> P:
    """A constant operand (looking through Identity), captured as `name`."""
    return P("Const", name=name, const=True)


@dataclass
class Match:
    """One place a pattern matched: `nodes` by capture name, `values` of captured constants,
    `refs` (which output of each captured node fed its consumer) and every node involved."""

    root: Node
    nodes: dict[str, Node] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    refs: dict[str, Ref] = field(default_factory=dict)
    interior: set[str] = field(default_factory=set)  # matched ops below the root (not leaves)
    leaves: set[str] = field(default_factory=set)

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]


def constant_value(graph: Graph, ref: Ref) -> tuple[Node, np.ndarray] | None:
    """(Const node, value) behind `ref`, looking through Identity; None if not constant."""
    seen = 0
    while ref is not None and seen < 64:
        node = graph.node(ref.node)
        if node.op in CONST_OPS and node.outputs and node.outputs[0].is_constant:
            return node, node.outputs[0].data
        if node.op in IDENTITY_OPS:
            inputs = graph.inputs_of(node.name)
            ref = inputs[0] if inputs else None
            seen += 1
            continue
        return None
    return None


def find(graph: Graph, pattern: P, exclusive: bool = True) -> list[Match]:
    """Every non-overlapping match of `pattern` in graph order. With `exclusive`, matches
    whose interior nodes feed anything outside the match are skipped."""
    matches: list[Match] = []
    taken: set[str] = set()
    for node in graph:
        if not pattern.accepts(node.op):
            continue
        match = Match(root=node)
        reason = _match(graph, pattern, Ref(node.name, 0), match, root=True)
        if reason:
            log.debug("%s: no match: %s", node.name, reason)
            continue
        if exclusive:
            reason = _leak(graph, match)
            if reason:
                log.debug("%s: skipped: %s", node.name, reason)
                continue
        owned = match.interior | {node.name}
        if owned & taken:
            log.debug("%s: skipped: overlaps an earlier match", node.name)
            continue
        taken |= owned
        matches.append(match)
    return matches


def _match(graph: Graph, pattern: P, ref: Ref, match: Match, root: bool = False) -> str | None:
    if pattern.const:
        found = constant_value(graph, ref)
        if found is None:
            return f"{ref} is not a constant"
        node, value = found
        _capture(match, pattern, node, ref, leaf=True)
        match.values[pattern.name or node.name] = value
        return None
    node = graph.node(ref.node)
    if not pattern.accepts(node.op):
        return f"{node.name} is {node.op}, wanted {pattern.op}"
    if not pattern.inputs:
        _capture(match, pattern, node, ref, leaf=not root)
        return None
    inputs = [r for r in graph.inputs_of(node.name) if r is not None]
    if len(inputs) != len(pattern.inputs):
        return f"{node.name} has {len(inputs)} inputs, wanted {len(pattern.inputs)}"
    orders = [inputs]
    if node.op in COMMUTATIVE and len(inputs) == 2:
        orders.append(inputs[::-1])
    reasons = []
    for order in orders:
        trial = Match(match.root, dict(match.nodes), dict(match.values), dict(match.refs),
                      set(match.interior), set(match.leaves))
        reason = next((r for r in (_match(graph, p, i, trial) for p, i in zip(pattern.inputs, order)) if r), None)
        if reason is None:
            match.__dict__.update(trial.__dict__)
            _capture(match, pattern, node, ref, leaf=False, interior=not root)
            return None
        reasons.append(reason)
    return "; ".join(reasons)


def _capture(match: Match, pattern: P, node: Node, ref: Ref, leaf: bool, interior: bool = False) -> None:
    if pattern.name:
        match.nodes[pattern.name] = node
        match.refs[pattern.name] = ref
    if leaf:
        match.leaves.add(node.name)
    if interior:
        match.interior.add(node.name)


def _leak(graph: Graph, match: Match) -> str | None:
    inside = match.interior | {match.root.name}
    for name in match.interior:
        outside = sorted(graph.users(name) - inside)
        if outside:
            return f"{name} is also used by {', '.join(outside[:3])}"
        if graph.outputs and any(r.node == name for r in graph.outputs):
            return f"{name} is a graph output"
    return None
