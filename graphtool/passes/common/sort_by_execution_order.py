"""sort_by_execution_order: producers before consumers."""
from __future__ import annotations

from ...ir import Graph
from ..registry import Context, NoParams, PassResult, register


@register("sort_by_execution_order", NoParams, formats=("graphdef", "tflite"), guarantee="exact")
def sort_by_execution_order(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Order nodes so every node comes after its inputs, keeping the original order
    wherever it already is one."""
    before = [n.name for n in graph]
    graph.toposort()
    for sub in graph.subgraphs:
        sub.toposort()
    return PassResult([n.name for n in graph] != before)
