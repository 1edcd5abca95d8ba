"""remove_nodes: bypass nodes of the given ops (GTT semantics)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...ir import Graph
from ..helpers.graphdef_nodes import protected
from ..registry import Context, PassResult, register


@dataclass(frozen=True)
class Params:
    op: list[str] = field(default_factory=list, metadata={"doc": "op to remove (repeat for several)"})
    max_inputs: int = field(default=1, metadata={"doc": "only remove nodes with at most this many data inputs"})


@register("remove_nodes", Params, formats=("graphdef",), guarantee="exact")
def remove_nodes(graph: Graph, params: Params, context: Context) -> PassResult:
    """Bypass nodes of the given ops: consumers read the node's first input instead.

    Declared inputs and outputs stay; nodes whose other outputs are used stay; repeats
    until nothing changes. Exact for ops that pass their first input through (Identity,
    CheckNumerics, StopGradient, ...)."""
    keep = protected(graph, context.inputs + context.outputs)
    ops = set(params.op)
    removed = 0
    changed = True
    while changed:
        changed = False
        for node in list(graph):
            if node.op not in ops or node.name in keep:
                continue
            inputs = graph.inputs_of(node.name)
            if not 1 <= len(inputs) <= params.max_inputs or inputs[0] is None:
                continue
            if graph.used_ports(node.name) - {0}:
                continue
            source = inputs[0]
            graph.replace_uses(node.name, source)
            for consumer in graph.control_consumers(node.name):
                if consumer != source.node:
                    graph.replace_control_input(consumer, node.name, source.node)
                else:
                    graph.remove_control_input(consumer, node.name)
            graph.remove_node(node.name)
            removed += 1
            changed = True
    return PassResult(removed > 0, {"removed": removed})
