"""rename_node: give one node a new name."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...ir import Graph
from ..registry import Context, PassError, PassResult, register


@dataclass(frozen=True)
class Params:
    old_node_name: str = field(default="", metadata={"doc": "node to rename"})
    new_node_name: str = field(default="", metadata={"doc": "its new name"})


@register("rename_node", Params, formats=("graphdef",), guarantee="exact")
def rename_node(graph: Graph, params: Params, context: Context) -> PassResult:
    """Rename node `old_node_name` to `new_node_name`; its consumers follow."""
    if params.old_node_name not in graph:
        raise PassError(f"rename_node: no node named {params.old_node_name!r}")
    graph.rename_node(params.old_node_name, params.new_node_name)
    return PassResult(True, {"renamed": 1})
