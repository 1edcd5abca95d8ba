"""keep=, keep_op= and only=: the one way to choose the layers of every quantizing transform.

keep names an operator (its node name, or the name of one of its output tensors); keep_op an
operator type (`SOFTMAX`; comma-separated lists too); only names operators as keep does and
leaves out every other one. All three repeat. A name the model does not have, or a type the
format does not have, is an error: a typo never silently quantizes the layer it meant to keep.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

from ...ir import TENSOR_SOURCE_OPS, Graph, Node
from ..registry import PassError


@dataclass(frozen=True)
class Keep:
    names: frozenset[str]
    ops: frozenset[str]
    only: frozenset[str] = frozenset()  # when not empty: every operator it does not name is left out
    fallback: frozenset[str] = frozenset()  # operators target_sqnr leaves in higher precision (checked by it)

    @classmethod
    def of(cls, transform: str, graphs: list[Graph], names: list[str], ops: list[str],
           op_types: Collection[str], only: Collection[str] = ()) -> "Keep":
        """Check keep= and only= against the operators of `graphs` and keep_op= against the
        format's operator types `op_types` (PassError naming the first that matches nothing)."""
        types = frozenset(op.strip().upper() for item in ops for op in item.split(",") if op.strip())
        unknown_types = sorted(types - set(op_types))
        if unknown_types:
            raise PassError(f"{transform}: keep_op={unknown_types[0]} is not an operator type")
        operators = [node for graph in graphs for node in graph if node.op not in TENSOR_SOURCE_OPS]
        known = {node.name for node in operators} | {t.name for node in operators for t in node.outputs}
        for param, given in (("keep", names), ("only", only)):
            unknown = [name for name in given if name not in known]
            if unknown:
                raise PassError(f"{transform}: {param}={unknown[0]!r} names no operator (or operator output) "
                                "of the model")
        return cls(frozenset(names), types, frozenset(only))

    def reason(self, node: Node) -> str | None:
        """Why `node` is left out ("only": only= does not name it, "fallback", "keep" or "keep_op"), or None."""
        if self.only and node.name not in self.only and not any(t.name in self.only for t in node.outputs):
            return "only"
        if self.fallback and (node.name in self.fallback or any(t.name in self.fallback for t in node.outputs)):
            return "fallback"
        if node.op in self.ops:
            return "keep_op"
        if node.name in self.names or any(t.name in self.names for t in node.outputs):
            return "keep"
        return None
