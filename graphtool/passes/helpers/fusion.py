"""Helpers the rewriting GraphDef transforms share (attr checks, turning a node into another
op in place, removing what a rewrite left dead, counting skips), and fuse_*_and_conv."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ...formats.graphdef import keys
from ...ir import DType, Graph, Node, Ref, make_const
from ...ir.graph import RefLike
from ...pattern import P, constant_value, find
from ..registry import Context, PassResult
from .graphdef_nodes import protected
from .skips import Skips

# Ops whose dead leftovers a rewrite may remove; anything else (a Placeholder, say) stays.
REMOVABLE_LEFTOVERS = frozenset({"Const", "Identity"})


def attr(node: Node, key: str, default: Any = None) -> Any:
    return node.attrs.get(key, default)


def is_nhwc(node: Node) -> bool:
    return attr(node, "data_format", "NHWC") == "NHWC"


def unit_dilations(node: Node) -> bool:
    return all(d == 1 for d in attr(node, "dilations", (1, 1, 1, 1)))


def rebuild(graph: Graph, name: str, op: str, attrs: dict[str, Any], inputs: list[RefLike],
            extra_controls: Iterable[str] = ()) -> Node:
    """Make node `name` an `op` node with `attrs` and `inputs`, keeping its name, place in
    the order, device, consumers and control inputs (plus `extra_controls`)."""
    node = graph.node(name)
    node.op = op
    node.attrs = dict(attrs)
    node.outputs = []
    keys.forget_source(node)  # the source NodeDef describes the old op (attrs, full type)
    graph.set_inputs(name, inputs)
    controls = graph.control_inputs_of(name) + [c for c in extra_controls if c != name]
    graph.set_control_inputs(name, controls)
    return node


def controls_of(graph: Graph, names: Iterable[str]) -> list[str]:
    """The control inputs of `names`, in order, without repeats."""
    seen: dict[str, None] = {}
    for name in names:
        for control in graph.control_inputs_of(name):
            seen.setdefault(control, None)
    return list(seen)


def remove_dead(graph: Graph, candidates: Iterable[str], keep: set[str], always: Iterable[str] = ()) -> int:
    """Remove the nodes of `always` and the Const/Identity nodes of `candidates` that nothing
    uses any more and that are not in `keep`; an Identity's input is looked at in turn."""
    pending = list(always) + list(candidates)
    forced = set(always)
    removed = 0
    while pending:
        name = pending.pop(0)
        if name not in graph or name in keep or graph.is_used(name):
            continue
        node = graph.node(name)
        if name not in forced and node.op not in REMOVABLE_LEFTOVERS:
            continue
        feeders = [r.node for r in graph.inputs_of(name) if r is not None] + graph.control_inputs_of(name)
        graph.set_inputs(name, [])
        graph.set_control_inputs(name, [])
        graph.remove_node(name)
        removed += 1
        pending.extend(feeders)
    return removed


# -- Conv2D fused with MirrorPad and/or ResizeBilinear (fuse_*_and_conv) ------------------

def _conv_pattern(resize: bool, pad: bool) -> P:
    source: P = P("*", name="input")
    if resize:
        source = P("ResizeBilinear", source, P("*", name="size"), name="resize")
    if pad:
        source = P("MirrorPad", source, P("*", name="paddings"), name="pad")
    return P("Conv2D", source, P("*", name="filter"), name="conv")


def fuse_conv(graph: Graph, context: Context, transform: str, resize: bool, pad: bool) -> PassResult:
    """Fold a MirrorPad and/or a ResizeBilinear feeding a Conv2D into FusedPadConv2D or
    FusedResizeAndPadConv2D (TF's CPU kernels, float32 NHWC only), named as the conv.
    TF 2.21's kernels are right for a batch of one only: a match whose input has a known
    larger batch is skipped; one whose batch is unknown is fused, as GTT does."""
    keep = protected(graph, context.inputs + context.outputs)
    skip = Skips(transform, context.log)
    plans = []
    for match in find(graph, _conv_pattern(resize, pad)):
        reason = _fusion_problem(graph, match.nodes, keep) or _batch_problem(graph, match.refs["input"])
        paddings = None
        if reason is None and pad:
            paddings, reason = _spatial_paddings(graph, match.refs["paddings"])
        if reason:
            skip(match.root.name, reason)
        else:
            plans.append((match, paddings))
    added = False
    for match, paddings in plans:
        added |= _fuse(graph, keep, match.nodes, match.refs, paddings, resize, pad)
    if added:
        graph.toposort()
    return PassResult(bool(plans), {"fused": len(plans), "skipped": skip.stats()})


def _fusion_problem(graph: Graph, nodes: dict[str, Node], keep: set[str]) -> str | None:
    conv = nodes["conv"]
    if any(nodes[k].name in keep for k in ("pad", "resize") if k in nodes):
        return "an intermediate node is a declared input or output"
    if attr(conv, "T") is not DType.FLOAT32:
        return "the fused kernels are float32 only"
    if not is_nhwc(conv):
        return "conv is not NHWC"
    if not unit_dilations(conv):
        return "conv is dilated"
    if attr(conv, "padding") not in ("SAME", "VALID"):
        return "conv padding is not SAME or VALID"
    resize = nodes.get("resize")
    if resize is not None:
        if attr(resize, "half_pixel_centers", False):
            return "ResizeBilinear uses half_pixel_centers, which the fused op lacks"
        if attr(resize, "T") is not DType.FLOAT32:
            return "ResizeBilinear input is not float32"
    pad = nodes.get("pad")
    if pad is not None and attr(pad, "mode") not in ("REFLECT", "SYMMETRIC"):
        return "MirrorPad mode is not REFLECT or SYMMETRIC"
    return None


def _batch_problem(graph: Graph, ref: Ref) -> str | None:
    """TF 2.21's CPU kernels for the fused ops fill every batch element with the first one's
    result, so a batch known to be larger than 1 is not fused."""
    tensor = graph.node(ref.node).output(ref.port)
    dims = tensor.shape if tensor is not None else None
    if dims and dims[0] is not None and dims[0] > 1:
        return "batch is larger than 1 (TF's fused kernels get that wrong)"
    return None


def _spatial_paddings(graph: Graph, ref: Ref) -> tuple[np.ndarray | None, str | None]:
    """The MirrorPad paddings when constant, 4x2 and zero for batch and channels (the fused
    kernel pads only height and width, and fails at run time otherwise)."""
    found = constant_value(graph, ref)
    if found is None:
        return None, "MirrorPad paddings are not constant"
    value = found[1]
    if value.shape != (4, 2) or value[0].any() or value[3].any() or (value < 0).any():
        return None, "MirrorPad pads more than height and width"
    return value, None


def _fuse(graph: Graph, keep: set[str], nodes: dict[str, Node], refs: dict[str, Ref],
          paddings: np.ndarray | None, resize: bool, pad: bool) -> bool:
    """Rewrite one match; True when a new node was added."""
    conv = nodes["conv"]
    added = False
    if not pad:  # GTT feeds a no-op padding
        zeros = make_const(graph.unique_name(f"{conv.name}_dummy_paddings"), np.zeros((4, 2), np.int32))
        zeros.meta[keys.DEVICE] = conv.meta.get(keys.DEVICE, "")
        graph.add_node(zeros)
        paddings_ref, added = Ref(zeros.name), True
    elif paddings.dtype != np.int32:  # the fused op takes int32 paddings only
        narrow = make_const(graph.unique_name(f"{conv.name}/paddings"), paddings.astype(np.int32))
        narrow.meta[keys.DEVICE] = conv.meta.get(keys.DEVICE, "")
        graph.add_node(narrow)
        paddings_ref, added = Ref(narrow.name), True
    else:
        paddings_ref = refs["paddings"]
    attrs: dict[str, Any] = {}
    inputs: list[RefLike] = [refs["input"]]
    if resize:
        attrs["resize_align_corners"] = bool(attr(nodes["resize"], "align_corners", False))
        inputs.append(refs["size"])
    inputs += [paddings_ref, refs["filter"]]
    attrs["mode"] = attr(nodes["pad"], "mode") if pad else "REFLECT"
    attrs.update(T=conv.attrs["T"], padding=conv.attrs["padding"], strides=attr(conv, "strides", (1, 1, 1, 1)))
    interior = [nodes[k].name for k in ("pad", "resize") if k in nodes]
    rebuild(graph, conv.name, "FusedResizeAndPadConv2D" if resize else "FusedPadConv2D", attrs, inputs,
            controls_of(graph, interior))
    remove_dead(graph, [refs["paddings"].node] if pad else [], keep, always=interior)
    return added
