"""backport_concatv2: ConcatV2 (axis last) becomes the older Concat (axis first)."""
from __future__ import annotations

from ...formats.graphdef import keys
from ...ir import DType, Graph, Node, Ref, make_const
from ...pattern import constant_value
from ..helpers.fusion import rebuild, remove_dead
from ..helpers.graphdef_nodes import protected
from ..registry import Context, NoParams, PassError, PassResult, register


@register("backport_concatv2", NoParams, formats=("graphdef",), guarantee="exact")
def backport_concatv2(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Rewrite every `ConcatV2(values..., axis)` as `Concat(axis, values...)` for runtimes
    that predate ConcatV2.

    The node keeps its name, device, control inputs and attrs, less Tidx (Concat has none).
    Concat's concat_dim is int32 only: an int64 axis becomes a new int32 Const when it is
    constant, otherwise a Cast to int32 named `<concat>/concat_dim` (GTT leaves it int64,
    which TF rejects). Exact."""
    keep = protected(graph, context.inputs + context.outputs)
    concats = [node for node in graph if node.op == "ConcatV2"]
    casts = added = 0
    for node in concats:
        inputs = graph.inputs_of(node.name)
        if len(inputs) < 3 or None in inputs:
            raise PassError(f"backport_concatv2: {node.name!r} has {len(inputs)} inputs; "
                            "ConcatV2 takes at least two values and an axis")
        *values, axis = inputs
        attrs = {k: v for k, v in node.attrs.items() if k != "Tidx"}
        if node.attrs.get("Tidx", DType.INT32) is DType.INT64:
            axis, cast = _int32_axis(graph, node, axis)
            casts += cast
            added += 1
        old_axis = inputs[-1]
        rebuild(graph, node.name, "Concat", attrs, [axis, *values])
        if axis != old_axis:
            remove_dead(graph, [old_axis.node], keep)
    if added:
        graph.toposort()
    return PassResult(bool(concats), {"backported": len(concats), "axis_casts": casts})


def _int32_axis(graph: Graph, concat: Node, axis: Ref) -> tuple[Ref, int]:
    """An int32 version of an int64 axis: a Const when the axis is constant, else a Cast."""
    device = concat.meta.get(keys.DEVICE, "")
    found = constant_value(graph, axis)
    name = graph.unique_name(f"{concat.name}/concat_dim")
    if found is not None:
        node = make_const(name, found[1].astype("int32"), DType.INT32)
        node.meta[keys.DEVICE] = device
        graph.add_node(node)
        return Ref(name), 0
    cast = Node(name, "Cast", {"SrcT": DType.INT64, "DstT": DType.INT32, "Truncate": False},
                meta={keys.DEVICE: device})
    graph.add_node(cast, [axis])
    return Ref(name), 1
