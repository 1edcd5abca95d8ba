"""strip_unused_nodes: keep what the outputs need, stopping at the inputs."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...formats.graphdef import keys
from ...ir import Graph, Ref
from ..helpers.graphdef_nodes import parse_dtype, parse_shape, placeholder
from ..registry import Context, PassError, PassResult, register

INPUT_OPS = ("Placeholder", "PlaceholderV2")


@dataclass(frozen=True)
class Params:
    type: str = field(default="float", metadata={"doc": "dtype of inputs that become Placeholders"})
    shape: str = field(default="", metadata={"doc": 'shape of those Placeholders, e.g. "1,224,224,3"'})
    name: list[str] = field(default_factory=list, metadata={"doc": "input given its own type/shape below"})
    type_for_name: list[str] = field(default_factory=list, metadata={"doc": "type of the matching name"})
    shape_for_name: list[str] = field(default_factory=list, metadata={"doc": "shape of the matching name"})


@register("strip_unused_nodes", Params, formats=("graphdef",), guarantee="exact")
def strip_unused_nodes(graph: Graph, params: Params, context: Context) -> PassResult:
    """Remove every node the outputs do not need; the inputs become Placeholders.

    Outputs are --outputs (else the graph's declared outputs, else every node nothing
    consumes). An input that is not already a Placeholder is replaced by one of `type` and
    `shape` (or the type_for_name/shape_for_name given for its name); what fed it goes."""
    if len(params.type_for_name) > len(params.name) or len(params.shape_for_name) > len(params.name):
        raise PassError("strip_unused_nodes: type_for_name/shape_for_name need a matching name")
    try:
        default = (parse_dtype(params.type), parse_shape(params.shape))
        per_name = {n: (parse_dtype(params.type_for_name[i]) if i < len(params.type_for_name) else default[0],
                        parse_shape(params.shape_for_name[i]) if i < len(params.shape_for_name) else default[1])
                    for i, n in enumerate(params.name)}
    except ValueError as exc:
        raise PassError(f"strip_unused_nodes: {exc}") from None
    outputs = [Ref.parse(o).node for o in context.outputs] or [r.node for r in graph.outputs] or \
        [n.name for n in graph if not graph.is_used(n.name) and n.op not in ("Const", "NoOp", "Assign")]
    for name in outputs + [Ref.parse(i).node for i in context.inputs]:
        if name not in graph:
            raise PassError(f"strip_unused_nodes: no node named {name!r}")
    replaced = 0
    for name in (Ref.parse(i).node for i in context.inputs):
        node = graph.node(name)
        if node.op in INPUT_OPS:
            continue
        dtype, dims = per_name.get(name, default)
        fresh = placeholder(name, dtype, dims)
        graph.set_inputs(name, [])
        graph.set_control_inputs(name, [])
        node.op, node.attrs, node.outputs = fresh.op, fresh.attrs, fresh.outputs
        keys.forget_source(node)
        replaced += 1
    removed = graph.prune(keep=outputs)
    return PassResult(bool(removed or replaced), {"removed": len(removed), "inputs_replaced": replaced})
