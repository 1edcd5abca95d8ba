"""Bytes (binary or text GraphDef) -> Graph, without TensorFlow."""
from __future__ import annotations

from google.protobuf import message as pb_message
from google.protobuf import text_format

from ...errors import FormatError
from ...ir import MISSING_OP, DType, Graph, Node, Ref, Tensor
from ...ir.attrs import TensorShape
from ._proto import graphtool_graphdef_pb2 as pb
from .attr_value import attr_from_proto

FORMAT = "graphdef"


def parse(data: bytes, text: bool) -> pb.GraphDef:
    """The GraphDef message in `data`; FormatError when it is not one."""
    if not data:
        raise FormatError("empty file, not a GraphDef")
    message = pb.GraphDef()
    if text:
        try:
            text_format.Parse(data.decode("utf-8"), message, allow_unknown_field=False)
        except UnicodeDecodeError as exc:
            raise FormatError(f"text GraphDef is not UTF-8 (byte {exc.start})") from None
        except text_format.ParseError as exc:
            raise FormatError(f"not a text GraphDef: {exc}") from None
    else:
        try:
            message.ParseFromString(data)
        except (pb_message.DecodeError, RuntimeError, ValueError) as exc:
            raise FormatError(f"not a binary GraphDef (protobuf decoding failed: {exc})") from None
        if not message.node and not message.HasField("library") and not message.HasField("versions"):
            raise FormatError("not a GraphDef: the bytes decode to no nodes, library or versions")
    return message


def read(data: bytes, text: bool = False, source: str | None = None) -> Graph:
    """Build the IR from GraphDef bytes. Node order, devices, attrs and every field the IR
    does not model are kept in node/graph meta for the writer."""
    message = parse(data, text)
    node_defs = list(message.node)
    del message.node[:]  # the rest (versions, library, debug info, unknown fields) is the header
    graph = Graph(format=FORMAT)
    graph.meta["graphdef.header"] = message
    graph.meta["graphdef.text"] = text
    graph.meta["function_names"] = [f.signature.name for f in message.library.function]
    if message.HasField("versions"):
        graph.meta["versions"] = {"producer": message.versions.producer,
                                  "min_consumer": message.versions.min_consumer}

    for index, node_def in enumerate(node_defs):
        where = f"node {index} ({node_def.name!r})" if node_def.name else f"node {index}"
        if not node_def.name:
            raise FormatError("node has no name", where=where)
        if node_def.name in graph:
            raise FormatError(f"duplicate node name {node_def.name!r}", where=where)
        graph.add_node(_node_from_proto(node_def, where, source))

    for index, node_def in enumerate(node_defs):
        where = f"node {index} ({node_def.name!r})"
        data_inputs, controls = _split_inputs(node_def, where)
        for ref in data_inputs + [Ref(c) for c in controls]:
            if ref.node not in graph:
                graph.add_node(Node(ref.node, MISSING_OP))
        if data_inputs:
            graph.set_inputs(node_def.name, data_inputs)
        if controls:
            graph.set_control_inputs(node_def.name, controls)
            if len(set(controls)) != len(controls):
                raise FormatError("repeated control input", where=where)
    return graph


def _split_inputs(node_def: pb.NodeDef, where: str) -> tuple[list[Ref], list[str]]:
    data_inputs: list[Ref] = []
    controls: list[str] = []
    for text in node_def.input:
        if not text or text == "^":
            raise FormatError("empty input name", where=where)
        ref = Ref.parse(text)
        if ref.is_control:
            controls.append(ref.node)
        elif controls:
            raise FormatError(f"data input {text!r} after a control input", where=where)
        else:
            data_inputs.append(ref)
    return data_inputs, controls


def _node_from_proto(node_def: pb.NodeDef, where: str, source: str | None = None) -> Node:
    attrs = {key: attr_from_proto(value, f"{where} attr {key!r}", source) for key, value in node_def.attr.items()}
    node = Node(node_def.name, node_def.op, attrs,
                meta={"graphdef.node_def": node_def, "graphdef.attrs_read": dict(attrs),
                      "device": node_def.device})
    node.outputs = _known_outputs(node)
    return node


def _known_outputs(node: Node) -> list[Tensor]:
    """Output tensors whose type the node itself states (constants and placeholders)."""
    value = node.attrs.get("value")
    if node.op == "Const" and isinstance(value, Tensor):
        value.name = node.name
        return [value]
    if node.op in ("Placeholder", "PlaceholderV2"):
        dtype = node.attrs.get("dtype")
        shape = node.attrs.get("shape")
        dims = shape.dims if isinstance(shape, TensorShape) else None
        return [Tensor(node.name, dtype if isinstance(dtype, DType) else None, dims)]
    return []
