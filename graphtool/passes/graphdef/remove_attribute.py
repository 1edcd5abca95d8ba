"""remove_attribute: drop an attr from every node (of one op)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...ir import Graph
from ..helpers.graphdef_nodes import nodes_with_attr
from ..registry import Context, PassResult, register


@dataclass(frozen=True)
class Params:
    attribute_name: str = field(default="", metadata={"doc": "attr to remove"})
    op_name: str = field(default="*", metadata={"doc": "only nodes of this op (* for all)"})


@register("remove_attribute", Params, formats=("graphdef",), guarantee="structure only")
def remove_attribute(graph: Graph, params: Params, context: Context) -> PassResult:
    """Delete attr `attribute_name` from nodes of `op_name`."""
    nodes = nodes_with_attr(graph, params.attribute_name, params.op_name)
    for node in nodes:
        del node.attrs[params.attribute_name]
    return PassResult(bool(nodes), {"removed": len(nodes)})
