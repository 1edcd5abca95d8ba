"""obfuscate_names: replace node names with short meaningless ones."""
from __future__ import annotations

from ...ir import Graph
from ..helpers.graphdef_nodes import protected
from ..registry import Context, NoParams, PassResult, register

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _short(number: int) -> str:
    text = ""
    while True:
        number, digit = divmod(number, len(_DIGITS))
        text = _DIGITS[digit] + text
        if number == 0:
            return text


@register("obfuscate_names", NoParams, formats=("graphdef",), guarantee="exact")
def obfuscate_names(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Rename nodes to short meaningless names (inputs and outputs keep theirs).

    Names are a base-36 counter in graph order, so the result is deterministic, reveals
    nothing about the model and makes files smaller."""
    keep = protected(graph, context.inputs + context.outputs)
    mapping, counter = {}, 0
    for node in graph:
        if node.name in keep:
            continue
        while _short(counter) in keep:
            counter += 1
        mapping[node.name] = _short(counter)
        counter += 1
    graph.rename_nodes(mapping)
    return PassResult(any(k != v for k, v in mapping.items()), {"renamed": len(mapping)})
