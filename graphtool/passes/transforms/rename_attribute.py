"""rename_attribute: rename an attr on every node (of one op)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...ir import Graph
from ..registry import Context, PassResult, register


@dataclass(frozen=True)
class Params:
    old_attribute_name: str = field(default="", metadata={"doc": "attr to rename"})
    new_attribute_name: str = field(default="", metadata={"doc": "its new name"})
    op_name: str = field(default="*", metadata={"doc": "only nodes of this op (* for all)"})


@register("rename_attribute", Params, formats=("graphdef",), guarantee="structure only")
def rename_attribute(graph: Graph, params: Params, context: Context) -> PassResult:
    """Move attr `old_attribute_name` to `new_attribute_name` on nodes of `op_name`."""
    count = 0
    for node in graph:
        if params.op_name in ("*", node.op) and params.old_attribute_name in node.attrs:
            node.attrs[params.new_attribute_name] = node.attrs.pop(params.old_attribute_name)
            count += 1
    return PassResult(count > 0, {"renamed": count})
