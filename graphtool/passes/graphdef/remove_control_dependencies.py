"""remove_control_dependencies: drop every control edge."""
from __future__ import annotations

from ...ir import Graph
from ..registry import Context, NoParams, PassResult, register


@register("remove_control_dependencies", NoParams, formats=("graphdef",), guarantee="exact")
def remove_control_dependencies(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Remove all control inputs (^name); data flow is unchanged."""
    count = 0
    for node in graph:
        controls = graph.control_inputs_of(node.name)
        if controls:
            graph.set_control_inputs(node.name, [])
            count += len(controls)
    return PassResult(count > 0, {"removed": count})
