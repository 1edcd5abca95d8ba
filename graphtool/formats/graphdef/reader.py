"""Bytes (binary or text GraphDef) -> Graph, without TensorFlow."""
from __future__ import annotations

import re

from google.protobuf import message as pb_message
from google.protobuf import text_format

from ...errors import FormatError
from ...ir import MISSING_OP, DType, Graph, Node, Ref, Tensor
from ...ir.attrs import TensorShape
from . import keys
from ._proto import graphtool_graphdef_pb2 as pb
from .attr_value import attr_from_proto

FORMAT = "graphdef"


# Protobuf refuses binary messages nested deeper than this; text ones are held to the same.
MAX_NESTING = 100


def parse(data: bytes, text: bool) -> pb.GraphDef:
    """The GraphDef message in `data`; FormatError, saying where, when it is not one."""
    if not data:
        raise FormatError("empty file, not a GraphDef")
    message = pb.GraphDef()
    if text:
        try:
            text_format.Parse(data.decode("utf-8"), message, allow_unknown_field=False,
                              max_recursion_depth=MAX_NESTING)
        except UnicodeDecodeError as exc:
            raise FormatError("text GraphDef is not UTF-8", where=f"byte {exc.start}") from None
        except text_format.ParseError as exc:
            raise _text_error(exc, data) from None
        except RecursionError:
            raise FormatError(f"not a text GraphDef: messages nested too deep to parse (protobuf allows "
                              f"{MAX_NESTING})") from None
        except (ValueError, TypeError, OverflowError) as exc:  # text_format lets a few through, e.g.
            # an enum number past int32 ("Value out of range"), without a position: find the line
            line = _failing_line(data.decode("utf-8"), type(exc))
            raise FormatError(f"not a text GraphDef: {exc}",
                              where=None if line is None else f"line {line}") from None
    else:
        try:
            message.ParseFromString(data)
        except (pb_message.DecodeError, RuntimeError, ValueError) as exc:
            where, what = _locate_binary_error(data)
            raise FormatError(f"not a binary GraphDef: {what or 'protobuf decoding failed'} ({exc})",
                              where=where or None) from None
        if not message.node and not message.HasField("library") and not message.HasField("versions"):
            raise FormatError("not a GraphDef: the bytes decode to no nodes, library or versions")
    return message


def _text_error(exc: text_format.ParseError, data: bytes) -> FormatError:
    line, column = exc.GetLine(), exc.GetColumn()
    what = str(exc)
    if line is None and "too deep" in what:
        line, column = _too_deep_at(data.decode("utf-8"))
    elif line is not None and " : " in what:
        what = what.split(" : ", 1)[1]
    where = None if line is None else f"line {line}, column {column}"
    return FormatError(f"not a text GraphDef: {what}", where=where)


def _failing_line(text: str, kind: type) -> int | None:
    """The first line whose inclusion makes text_format raise `kind` (parsing is sequential,
    so the lines before the culprit parse, or fail only by ending early)."""
    lines = text.split("\n")

    def raises(count: int) -> bool:
        try:
            text_format.Parse("\n".join(lines[:count]), pb.GraphDef(), max_recursion_depth=MAX_NESTING)
        except kind:
            return True
        except (text_format.ParseError, RecursionError, ValueError, TypeError, OverflowError):
            return False
        return False

    if not raises(len(lines)):
        return None
    low, high = 1, len(lines)
    while low < high:
        middle = (low + high) // 2
        if raises(middle):
            high = middle
        else:
            low = middle + 1
    return low


_TEXT_TOKENS = re.compile(rb'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|#[^\n]*|[{}<>\n]')


def _too_deep_at(text: str) -> tuple[int | None, int | None]:
    """Line and column (1-based) of the brace that opens message MAX_NESTING + 1."""
    depth, line, line_start = 0, 1, 0
    raw = text.encode("utf-8")
    for token in _TEXT_TOKENS.finditer(raw):
        kind = token.group()
        if kind == b"\n":
            line, line_start = line + 1, token.end()
        elif kind in (b"{", b"<"):
            depth += 1
            if depth > MAX_NESTING:
                return line, len(raw[line_start:token.start()].decode("utf-8", "replace")) + 1
        elif kind in (b"}", b">"):
            depth -= 1
    return None, None


MAX_FIELD_NUMBER = (1 << 29) - 1
# Top-level GraphDef fields that hold messages, by field number.
_RECORDS = {1: "node", 2: "library", 4: "versions", 5: "debug_info"}


def _locate_binary_error(data: bytes) -> tuple[str, str]:
    """(where, what) for bytes protobuf refused: walk the top-level fields, and decode each
    record on its own to find the one that fails. ("", "") when nothing stands out."""
    pos, counts = 0, dict.fromkeys(_RECORDS, 0)
    while pos < len(data):
        start = pos
        key = _varint(data, pos)
        if key is None:
            return f"byte {start}", "truncated or overlong field tag"
        number, wire = key[0] >> 3, key[0] & 7
        record = number in _RECORDS and wire == 2
        label = (f"{_RECORDS[number]} {counts[number]}" if number == 1 else _RECORDS[number]) if record else ""
        pos, problem = _skip_field(data, key[1], number, wire, 0)
        if problem:
            return f"{label + ' at ' if label else ''}byte {start}", f"field {number}: {problem}"
        if record:
            counts[number] += 1
            try:
                pb.GraphDef.FromString(data[start:pos])
            except (pb_message.DecodeError, RuntimeError, ValueError):
                name = _node_name(data[_varint(data, key[1])[1]:pos]) if number == 1 else None
                return (f"{label}{f' ({name!r})' if name else ''} at byte {start}",
                        f"this {_RECORDS[number]} does not decode (bad lengths, UTF-8 or nesting deeper "
                        f"than {MAX_NESTING})")
    return "", ""


def _skip_field(data: bytes, pos: int, number: int, wire: int, depth: int) -> tuple[int, str]:
    """(position after the field's value, "") or (_, what is wrong with it)."""
    if not 0 < number <= MAX_FIELD_NUMBER:
        return pos, f"field number out of range (1..{MAX_FIELD_NUMBER})"
    if wire == 0:
        value = _varint(data, pos)
        return (value[1], "") if value else (pos, "truncated or overlong varint")
    if wire in (1, 5):
        end = pos + (8 if wire == 1 else 4)
        return (end, "") if end <= len(data) else (pos, "fixed-width value runs past the end")
    if wire == 2:
        length = _varint(data, pos)
        if length is None:
            return pos, "truncated or overlong length"
        end = length[1] + length[0]
        if end > len(data):
            return pos, f"claims {length[0]:,} bytes, {len(data) - length[1]:,} are left"
        return end, ""
    if wire == 3 and depth < MAX_NESTING:  # a group (unknown fields may be one): skip to its end
        while pos < len(data):
            key = _varint(data, pos)
            if key is None:
                return pos, "truncated field tag inside a group"
            if key[0] == (number << 3 | 4):
                return key[1], ""
            pos, problem = _skip_field(data, key[1], key[0] >> 3, key[0] & 7, depth + 1)
            if problem:
                return pos, problem
        return pos, "group without its end"
    return pos, f"invalid wire type {wire}"


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """(value, position after it), or None when truncated or longer than 10 bytes."""
    value = 0
    for i in range(10):
        if pos + i >= len(data):
            return None
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    return None


def _node_name(payload: bytes) -> str | None:
    """The name of a NodeDef that does not decode, when it comes first (as TF writes it)."""
    if payload[:1] != b"\x0a":
        return None
    length = _varint(payload, 1)
    if length is None or length[1] + length[0] > len(payload):
        return None
    return payload[length[1]:length[1] + length[0]].decode("utf-8", "replace")


def read(data: bytes, text: bool = False, source: str | None = None) -> Graph:
    """Build the IR from GraphDef bytes. Node order, devices, attrs and every field the IR
    does not model are kept in node/graph meta for the writer."""
    message = parse(data, text)
    node_defs = list(message.node)
    del message.node[:]  # the rest (versions, library, debug info, unknown fields) is the header
    graph = Graph(format=FORMAT)
    graph.meta[keys.HEADER] = message
    graph.meta[keys.TEXT] = text
    graph.meta[keys.FUNCTION_NAMES] = [f.signature.name for f in message.library.function]
    if message.HasField("versions"):
        graph.meta[keys.VERSIONS] = {"producer": message.versions.producer,
                                  "min_consumer": message.versions.min_consumer}

    for index, node_def in enumerate(node_defs):
        where = f"node {index} ({node_def.name!r})" if node_def.name else f"node {index}"
        if not node_def.name:
            raise FormatError("node has no name", where=where)
        if node_def.name in graph:
            raise FormatError(f"duplicate node name {node_def.name!r}", where=where)
        graph.add_node(node_from_proto(node_def, where, source))

    problems: list[str] = []
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
            if len(set(controls)) != len(controls):  # TensorFlow imports it: kept as read (keys.NODE_DEF)
                problems.append(f"{where}: repeated control input")
    problems += [f"{t.meta[keys.BROKEN]}" for node in graph for t in node.outputs if keys.BROKEN in t.meta]
    if problems:
        graph.meta[keys.PROBLEMS] = problems
    return graph


def _split_inputs(node_def: pb.NodeDef, where: str) -> tuple[list[Ref], list[str]]:
    data_inputs: list[Ref] = []
    controls: list[str] = []
    for text in node_def.input:
        if not text or text == "^":
            raise FormatError("empty input name", where=where)
        ref = Ref.parse(text)
        if not ref.node:
            raise FormatError(f"input {text!r} names no node", where=where)
        if ref.is_control:
            controls.append(ref.node)
        elif controls:
            raise FormatError(f"data input {text!r} after a control input", where=where)
        else:
            data_inputs.append(ref)
    return data_inputs, controls


def node_from_proto(node_def: pb.NodeDef, where: str, source: str | None = None) -> Node:
    """The Node a NodeDef reads as (its inputs are edges: the caller connects them)."""
    attrs = {key: attr_from_proto(value, f"{where} attr {key!r}", source) for key, value in node_def.attr.items()}
    node = Node(node_def.name, node_def.op, attrs,
                meta={keys.NODE_DEF: node_def, keys.ATTRS_READ: dict(attrs), keys.DEVICE: node_def.device})
    node.outputs = _known_outputs(node)
    return node


def detached_copy(node_def: pb.NodeDef, name: str, where: str) -> Node:
    """A Node read from a copy of `node_def` named `name`, with no inputs (a function body's
    node being inlined: the caller connects them)."""
    copy = pb.NodeDef()
    copy.CopyFrom(node_def)
    copy.name = name
    del copy.input[:]
    return node_from_proto(copy, where)


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
