"""Graph -> GraphDef bytes (binary, deterministic; or text)."""
from __future__ import annotations

from google.protobuf import text_format

from ...errors import FormatError
from ...ir import MISSING_OP, Graph, Node, Tensor
from . import keys
from ._proto import graphtool_graphdef_pb2 as pb
from .attr_value import attr_to_proto
from .tensor_proto import is_unchanged

# GraphDef version stamped on graphs built from scratch (TF 2.21 writes producers above this).
DEFAULT_PRODUCER = 1994


def to_message(graph: Graph) -> pb.GraphDef:
    out = pb.GraphDef()
    header = graph.meta.get(keys.HEADER)
    if header is not None:
        out.CopyFrom(header)
    else:
        out.versions.producer = DEFAULT_PRODUCER
    for node in graph:
        if node.op == MISSING_OP:
            continue
        _node_to_proto(graph, node, out.node.add())
    return out


def write(graph: Graph, text: bool = False) -> bytes:
    message = to_message(graph)
    if text:
        return text_format.MessageToString(message).encode("utf-8")
    return message.SerializeToString(deterministic=True)


def _attrs(node: Node) -> dict:
    """The node's attrs as written: a Const's value and dtype are its output tensor (while
    that is the tensor read, unchanged, its attrs stay as read, odd ones included)."""
    if node.op != "Const" or not node.outputs or not node.outputs[0].is_constant:
        return node.attrs
    value = node.outputs[0]
    if node.attrs.get("value") is value and is_unchanged(value):
        return node.attrs
    return {**node.attrs, "value": value, "dtype": value.dtype}


def _node_to_proto(graph: Graph, node: Node, out: pb.NodeDef) -> None:
    original = node.meta.get(keys.NODE_DEF)
    if original is not None:
        out.MergeFrom(original)  # keeps debug info, full type and fields graphtool does not know
    out.name = node.name
    out.op = node.op
    refs = graph.inputs_of(node.name)
    if None in refs:
        raise FormatError(f"node {node.name!r}: a GraphDef has no optional inputs to leave out")
    inputs = [str(ref) for ref in refs]
    inputs += ["^" + name for name in graph.control_inputs_of(node.name)]
    if _once_each_control(out.input) != inputs:  # a control input repeated when read stays repeated
        del out.input[:]
        out.input.extend(inputs)
    out.device = node.meta.get(keys.DEVICE, "") or ""
    attrs = _attrs(node)
    read = node.meta.get(keys.ATTRS_READ, {})
    for key in [k for k in out.attr if k not in attrs]:
        del out.attr[key]
    for key, value in attrs.items():
        if key in read and read[key] is value and not (isinstance(value, Tensor) and not is_unchanged(value)):
            continue
        slot = out.attr[key]
        slot.Clear()
        attr_to_proto(value, slot, where=f"node {node.name!r} attr {key!r}")


def _once_each_control(inputs) -> list[str]:
    """`inputs` with each control input ("^name") once, as the IR holds them."""
    seen: set[str] = set()
    out = []
    for text in inputs:
        if text.startswith("^"):
            if text in seen:
                continue
            seen.add(text)
        out.append(text)
    return out
