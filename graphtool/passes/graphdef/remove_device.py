"""remove_device: clear every node's device."""
from __future__ import annotations

from ...formats.graphdef import keys
from ...ir import Graph
from ..registry import Context, NoParams, PassResult, register


@register("remove_device", NoParams, formats=("graphdef",), guarantee="exact")
def remove_device(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Clear the device of every node, so the runtime places them."""
    count = 0
    for node in graph:
        if node.meta.get(keys.DEVICE):
            node.meta[keys.DEVICE] = ""
            count += 1
    return PassResult(count > 0, {"cleared": count})
