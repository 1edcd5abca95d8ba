"""rename_attribute: rename an attr on every node (of one op)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...ir import Graph
from ..helpers.graphdef_nodes import nodes_with_attr
from ..registry import Context, PassResult, register


@dataclass(frozen=True)
class Params:
    old_attribute_name: str = field(default="", metadata={"doc": "attr to rename"})
    new_attribute_name: str = field(default="", metadata={"doc": "its new name"})
    op_name: str = field(default="*", metadata={"doc": "only nodes of this op (* for all)"})


@register("rename_attribute", Params, formats=("graphdef",), guarantee="structure only")
def rename_attribute(graph: Graph, params: Params, context: Context) -> PassResult:
    """Move attr `old_attribute_name` to `new_attribute_name` on nodes of `op_name`."""
    nodes = nodes_with_attr(graph, params.old_attribute_name, params.op_name)
    for node in nodes:
        node.attrs[params.new_attribute_name] = node.attrs.pop(params.old_attribute_name)
    return PassResult(bool(nodes), {"renamed": len(nodes)})
