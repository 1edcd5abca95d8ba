"""rename_op: change every node of one op to another op."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...ir import Graph
from ..registry import Context, PassResult, register


@dataclass(frozen=True)
class Params:
    old_op_name: str = field(default="", metadata={"doc": "op to rename"})
    new_op_name: str = field(default="", metadata={"doc": "its new name"})


@register("rename_op", Params, formats=("graphdef",), guarantee="structure only")
def rename_op(graph: Graph, params: Params, context: Context) -> PassResult:
    """Give every node of op `old_op_name` the op `new_op_name` (attrs unchanged)."""
    count = 0
    for node in graph:
        if node.op == params.old_op_name:
            node.op = params.new_op_name
            count += 1
    return PassResult(count > 0, {"renamed": count})
