"""remove_attribute: drop an attr from every node (of one op)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...ir import Graph
from ..registry import Context, PassResult, register


@dataclass(frozen=True)
class Params:
    attribute_name: str = field(default="", metadata={"doc": "attr to remove"})
    op_name: str = field(default="*", metadata={"doc": "only nodes of this op (* for all)"})


@register("remove_attribute", Params, formats=("graphdef",), guarantee="structure only")
def remove_attribute(graph: Graph, params: Params, context: Context) -> PassResult:
    """Delete attr `attribute_name` from nodes of `op_name`."""
    count = 0
    for node in graph:
        if params.op_name in ("*", node.op) and params.attribute_name in node.attrs:
            del node.attrs[params.attribute_name]
            count += 1
    return PassResult(count > 0, {"removed": count})
