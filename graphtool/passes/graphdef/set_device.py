"""set_device: put every node on one device."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...formats.graphdef import keys
from ...ir import Graph
from ..registry import Context, PassResult, register


@dataclass(frozen=True)
class Params:
    device: str = field(default="", metadata={"doc": 'device string, e.g. "/device:CPU:0"'})
    if_default: bool = field(default=False, metadata={"doc": "only nodes that have no device yet"})


@register("set_device", Params, formats=("graphdef",), guarantee="exact")
def set_device(graph: Graph, params: Params, context: Context) -> PassResult:
    """Set the device of every node (or only of nodes without one, with if_default)."""
    count = 0
    for node in graph:
        if params.if_default and node.meta.get(keys.DEVICE):
            continue
        if node.meta.get(keys.DEVICE, "") != params.device:
            node.meta[keys.DEVICE] = params.device
            count += 1
    return PassResult(count > 0, {"set": count})
