"""GraphDef inputs (.pb and .pbtxt): the fixtures mutated byte-wise, at the protobuf wire
level (lengths, tags, wire types, nesting), as text, and semantically (parsed with
graphtool's own GraphDef module, edited — duplicate and empty names, dangling, malformed,
self-referencing and cyclic inputs, hostile strings, attrs of the wrong kind, tensors
whose shape, dtype and values disagree or claim huge sizes — then serialized again)."""
from __future__ import annotations

import random
from pathlib import Path

from google.protobuf import text_format

from graphtool.formats.graphdef import messages as pb

from . import mutate_bytes
from .hostile import HOSTILE_STRINGS

DTYPES = list(range(0, 31)) + [101, 102, 109, 120, 9999, -1]
HUGE_DIMS = [2**20, 2**28, 2**31 - 1, 2**32, 2**40, 2**62, 2**63 - 1]
WEIRD_INPUTS = ["", "^", "^^x", ":0", "x:", "x:-1", "x:1:2", "x: 1", "x:0x1", "x:99999999999999999999999",
                "x:٣", "^x:1", " x", "x\x00y"]


# -- semantic edits on a parsed GraphDef ---------------------------------------------------
def _node(rng: random.Random, graph: pb.GraphDef) -> pb.NodeDef | None:
    return rng.choice(graph.node) if len(graph.node) else None


def ed_duplicate_name(rng, graph):
    if len(graph.node) < 2:
        return None
    a, b = rng.sample(list(graph.node), 2)
    b.name = a.name
    return f"duplicate node name {a.name!r}"


def ed_empty_name(rng, graph):
    node = _node(rng, graph)
    if node is None:
        return None
    node.name = ""
    return "empty node name"


def ed_dangling(rng, graph):
    node = _node(rng, graph)
    if node is None:
        return None
    text = rng.choice(["missing_node", "missing_node:3", "^missing_node"] + WEIRD_INPUTS
                      + [rng.choice(HOSTILE_STRINGS)])
    if len(node.input) and rng.random() < 0.5:
        node.input[rng.randrange(len(node.input))] = text
    else:
        node.input.append(text)
    return f"input {text[:40]!r}"


def ed_self_loop(rng, graph):
    node = _node(rng, graph)
    if node is None:
        return None
    text = rng.choice([node.name, f"{node.name}:0", f"{node.name}:1", f"^{node.name}"])
    if text.startswith("^"):
        node.input.append(text)
    else:
        node.input.insert(0, text)
    return f"self loop {text!r}"


def ed_cycle(rng, graph):
    if len(graph.node) < 2:
        return None
    chosen = rng.sample(list(graph.node), min(len(graph.node), rng.choice([2, 3, len(graph.node)])))
    control = rng.random() < 0.3
    for a, b in zip(chosen, chosen[1:] + chosen[:1]):
        if control:
            b.input.append("^" + a.name)
        else:
            b.input.insert(0, a.name)
    return f"{'control ' if control else ''}cycle through {len(chosen)} nodes"


def ed_input_order(rng, graph):
    nodes = [n for n in graph.node if len(n.input)]
    if not nodes:
        return None
    node = rng.choice(nodes)
    how = rng.choice(["control_first", "repeat_control", "repeat_data", "shuffle_nodes"])
    if how == "control_first":
        node.input.insert(0, "^" + rng.choice(graph.node).name)
    elif how == "repeat_control":
        name = rng.choice(graph.node).name
        node.input.extend(["^" + name, "^" + name])
    elif how == "repeat_data":
        node.input.append(node.input[0])
    else:
        nodes = list(graph.node)
        rng.shuffle(nodes)
        del graph.node[:]
        graph.node.extend(nodes)
    return f"inputs {how}"


def ed_hostile_strings(rng, graph):
    node = _node(rng, graph)
    if node is None:
        return None
    text = rng.choice(HOSTILE_STRINGS)
    where = rng.choice(["op", "device", "attr_s", "attr_key", "name", "func", "string_const"])
    if where == "op":
        node.op = text
    elif where == "device":
        node.device = text
    elif where == "attr_s":
        node.attr[rng.choice(list(node.attr) or ["x"])].s = text.encode("utf-8", "surrogatepass")
    elif where == "attr_key":
        node.attr[text].s = b"/etc/passwd"
    elif where == "name":
        node.name = text
    elif where == "func":
        node.attr["f"].func.name = text
    else:
        node.op = "Const"
        node.attr["dtype"].type = 7  # DT_STRING
        tensor = node.attr["value"].tensor
        tensor.Clear()
        tensor.dtype = 7
        tensor.string_val.append(text.encode("utf-8", "surrogatepass"))
    return f"hostile string in {where}"


def ed_attr_kind(rng, graph):
    """An attr of the wrong kind: T as a string, a list mixing kinds, an empty AttrValue."""
    node = _node(rng, graph)
    if node is None:
        return None
    key = rng.choice(list(node.attr) or ["T"])
    value = node.attr[key]
    how = rng.choice(["s", "i", "f", "type", "mixed_list", "empty", "placeholder", "shape", "func", "tensor"])
    value.Clear()
    if how == "s":
        value.s = b"\xff\xfe"
    elif how == "i":
        value.i = rng.choice([-2**63, 2**63 - 1, -1])
    elif how == "f":
        value.f = rng.choice([float("nan"), float("inf"), -0.0])
    elif how == "type":
        value.type = rng.choice(DTYPES)
    elif how == "mixed_list":
        value.list.i.append(1)
        value.list.s.append(b"a")
        value.list.type.append(rng.choice(DTYPES))
    elif how == "placeholder":
        value.placeholder = rng.choice(["T", "", "$x"])
    elif how == "shape":
        _shape(rng, value.shape)
    elif how == "func":
        value.func.name = "f"
        value.func.attr["g"].func.name = "g"
    elif how == "tensor":
        _tensor(rng, value.tensor)
    return f"attr {key!r} becomes {how}"


def _shape(rng, shape: pb.TensorShapeProto) -> None:
    shape.Clear()
    how = rng.choice(["huge", "negative", "zero_huge", "many", "unknown"])
    if how == "huge":
        for _ in range(rng.randint(1, 4)):
            shape.dim.add().size = rng.choice(HUGE_DIMS)
    elif how == "negative":
        shape.dim.add().size = rng.choice([-1, -2, -2**63])
    elif how == "zero_huge":
        shape.dim.add().size = 0
        shape.dim.add().size = rng.choice(HUGE_DIMS)
    elif how == "many":
        for _ in range(rng.choice([33, 200, 2000])):
            shape.dim.add().size = 1
    else:
        shape.unknown_rank = True
        shape.dim.add().size = 3


def _tensor(rng, tensor: pb.TensorProto) -> str:
    how = rng.choice(["dtype", "shape", "content_short", "content_long", "broadcast", "too_many", "strings",
                      "half", "complex_odd", "float8", "resource", "empty"])
    if how == "dtype":
        tensor.dtype = rng.choice(DTYPES)
    elif how == "shape":
        _shape(rng, tensor.tensor_shape)
    elif how == "content_short" and tensor.tensor_content:
        tensor.tensor_content = tensor.tensor_content[:-rng.randint(1, len(tensor.tensor_content))]
    elif how == "content_long":
        tensor.tensor_content = bytes(tensor.tensor_content) + bytes(rng.choice([1, 3, 4, 1000]))
    elif how == "broadcast":
        tensor.ClearField("tensor_content")
        tensor.dtype = rng.choice([1, 2, 3, 7, 9, 19])  # float, double, int32, string, int64, half
        tensor.tensor_shape.Clear()
        for size in rng.choice([[2**20, 2**20], [2**14, 2**14], [2**26], [2**27], [2**40], [2**31 - 1, 3],
                                [2**13, 2**13, 5]]):
            tensor.tensor_shape.dim.add().size = size
        if tensor.dtype == 7:
            tensor.string_val.append(b"x")
        elif tensor.dtype == 19:
            tensor.half_val.append(15360)
        else:
            tensor.float_val.append(0.0)
            tensor.double_val.append(0.0)
            tensor.int_val.append(0)
            tensor.int64_val.append(0)
    elif how == "too_many":
        tensor.float_val.extend([1.0] * 100)
        tensor.int_val.extend([1] * 100)
    elif how == "strings":
        tensor.dtype = 7
        tensor.string_val.extend([b"x" * rng.choice([0, 1, 1000])] * rng.choice([1, 10, 1000]))
    elif how == "half":
        tensor.dtype = rng.choice([19, 14])
        tensor.ClearField("tensor_content")
        tensor.half_val.extend([-1, 2**31 - 1, 70000])
    elif how == "complex_odd":
        tensor.dtype = rng.choice([8, 18])
        tensor.ClearField("tensor_content")
        tensor.scomplex_val.extend([1.0, 2.0, 3.0])
        tensor.dcomplex_val.extend([1.0])
    elif how == "float8":
        tensor.dtype = rng.choice([24, 25, 26, 27, 28, 29])
        tensor.ClearField("tensor_content")
        tensor.float8_val = bytes(rng.choice([1, 7, 1000]))
    elif how == "resource":
        tensor.dtype = rng.choice([20, 21])
        tensor.resource_handle_val.add().name = "/etc/passwd"
    else:
        tensor.Clear()
    return how


def ed_const(rng, graph):
    consts = [n for n in graph.node if n.op == "Const" and "value" in n.attr]
    if not consts:
        return None
    node = rng.choice(consts)
    how = _tensor(rng, node.attr["value"].tensor)
    if rng.random() < 0.3:
        node.attr["dtype"].type = rng.choice(DTYPES)
    return f"Const {node.name!r} tensor {how}"


def ed_placeholder(rng, graph):
    node = _node(rng, graph)
    if node is None:
        return None
    node.op = "Placeholder"
    node.attr["dtype"].type = rng.choice(DTYPES)
    _shape(rng, node.attr["shape"].shape)
    return "Placeholder with odd dtype/shape"


def ed_library(rng, graph):
    functions = graph.library.function
    how = rng.choice(["duplicate", "self_call", "dangling_ret", "hostile_name", "gradient"])
    if how == "gradient":
        gradient = graph.library.gradient.add()
        gradient.function_name, gradient.gradient_func = "missing", rng.choice(HOSTILE_STRINGS)
        return "gradient names missing functions"
    if not len(functions):
        function = functions.add()
        function.signature.name = "f"
    function = rng.choice(functions)
    if how == "duplicate":
        functions.add().CopyFrom(function)
    elif how == "self_call":
        call = function.node_def.add()
        call.name, call.op = "recurse", function.signature.name
        node = _node(rng, graph)
        if node is not None:
            node.op = "PartitionedCall"
            node.attr["f"].func.name = function.signature.name
    elif how == "dangling_ret":
        function.ret["out"] = "missing:output:0"
    else:
        function.signature.name = rng.choice(HOSTILE_STRINGS)
    return f"library {how}"


def ed_versions(rng, graph):
    graph.versions.producer = rng.choice([-1, 0, 2**31 - 1, -2**31])
    graph.versions.min_consumer = rng.choice([-1, 2**31 - 1])
    graph.versions.bad_consumers.extend([rng.randrange(-5, 5)])
    return "versions"


def _field(number: int, payload: bytes) -> bytes:
    return encode_varint(number << 3 | 2) + encode_varint(len(payload)) + payload


def deep_node(depth: int) -> bytes:
    """A NodeDef whose attr holds func attrs nested `depth` deep (three messages per level),
    built on the wire: protobuf itself refuses to serialize or parse past 100 messages."""
    value = encode_varint(3 << 3) + encode_varint(1)  # AttrValue.i = 1
    for i in range(depth):
        entry = _field(1, b"a") + _field(2, value)  # map<string, AttrValue> entry
        value = _field(10, _field(1, f"f{i}".encode()) + _field(2, entry))  # AttrValue.func
    attr = _field(1, b"deep") + _field(2, value)
    return _field(1, _field(1, b"deep") + _field(2, b"NoOp") + _field(5, attr))  # GraphDef.node


def ed_big_graph(rng, graph):
    """Many nodes, a long chain, or a wide fan-in: sizes should cost linear time."""
    how = rng.choice(["chain", "fan_in", "many"])
    count = rng.choice([1000, 5000])
    base = graph.node.add()
    base.name, base.op = "big_base", "Placeholder"
    base.attr["dtype"].type = 1
    if how == "chain":
        previous = base.name
        for i in range(count):
            node = graph.node.add()
            node.name, node.op = f"chain_{i}", "Identity"
            node.input.append(previous)
            previous = node.name
    elif how == "fan_in":
        node = graph.node.add()
        node.name, node.op = "fan_in", "AddN"
        node.input.extend([base.name] * count)
    else:
        for i in range(count):
            node = graph.node.add()
            node.name, node.op = f"many_{i}", "NoOp"
            node.input.append("^" + base.name)
    return f"{how} of {count} nodes"


EDITS = (ed_duplicate_name, ed_empty_name, ed_dangling, ed_dangling, ed_self_loop, ed_cycle, ed_input_order,
         ed_hostile_strings, ed_hostile_strings, ed_attr_kind, ed_const, ed_const, ed_const, ed_placeholder,
         ed_library, ed_versions)


# -- the protobuf wire format ----------------------------------------------------------------
def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    value, shift = 0, 0
    while pos < len(data) and shift < 70:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def encode_varint(value: int) -> bytes:
    value %= 2**64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def wire_fields(data: bytes, start: int = 0, end: int | None = None, depth: int = 0,
                out: list | None = None) -> list[tuple[int, int, int, int, int]]:
    """(tag_pos, tag, length_pos, payload_start, payload_end) of every length-delimited
    field, recursing into payloads that parse as messages."""
    out = [] if out is None else out
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        tag = _varint(data, pos)
        if tag is None:
            return out
        key, after_tag = tag
        wire = key & 7
        if wire == 0:
            value = _varint(data, after_tag)
            if value is None:
                return out
            pos = value[1]
        elif wire == 1:
            pos = after_tag + 8
        elif wire == 5:
            pos = after_tag + 4
        elif wire == 2:
            length = _varint(data, after_tag)
            if length is None or length[1] + length[0] > end:
                return out
            payload_start, payload_end = length[1], length[1] + length[0]
            out.append((pos, key, after_tag, payload_start, payload_end))
            if depth < 40 and _parses(data, payload_start, payload_end):
                wire_fields(data, payload_start, payload_end, depth + 1, out)
            pos = payload_end
        else:
            return out
    return out


def _parses(data: bytes, start: int, end: int) -> bool:
    pos = start
    while pos < end:
        tag = _varint(data, pos)
        if tag is None or tag[0] >> 3 == 0:
            return False
        wire, pos = tag[0] & 7, tag[1]
        if wire == 0:
            value = _varint(data, pos)
            if value is None:
                return False
            pos = value[1]
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length = _varint(data, pos)
            if length is None:
                return False
            pos = length[1] + length[0]
        else:
            return False
    return pos == end


def wire_mutation(rng: random.Random, data: bytes, fields: list) -> tuple[bytes, str]:
    if not fields:
        return mutate_bytes.mutate(rng, data, rounds=1)[0], "wire: no fields, byte mutation"
    tag_pos, key, length_pos, start, end = rng.choice(fields)
    how = rng.choice(["length", "length", "overlong", "wire_type", "field_zero", "non_utf8", "duplicate",
                      "truncate_inside", "unterminated_varint"])
    if how == "length":
        new = rng.choice([end - start + 1, max(0, end - start - 1), 2**31 - 1, 2**31, 2**32 + 5, 2**63, 2**64 - 1,
                          len(data), 0])
        return data[:length_pos] + encode_varint(new) + data[start:], f"wire: length {end - start} -> {new}"
    if how == "overlong":
        return data[:length_pos] + b"\xff" * 10 + b"\x01" + data[start:], "wire: 11-byte varint length"
    if how == "wire_type":
        new_key = (key & ~7) | rng.choice([0, 1, 3, 4, 5, 6, 7])
        return data[:tag_pos] + encode_varint(new_key) + data[length_pos:], f"wire: tag {key} -> {new_key}"
    if how == "field_zero":
        return data[:tag_pos] + encode_varint(key & 7) + data[length_pos:], "wire: field number 0"
    if how == "non_utf8" and end > start:
        pos = rng.randrange(start, end)
        return data[:pos] + bytes([rng.choice([0xFF, 0xC0, 0x80, 0xED])]) + data[pos + 1:], "wire: non-UTF-8 byte"
    if how == "duplicate":
        chunk = data[tag_pos:end]
        return data[:end] + chunk + data[end:], "wire: field repeated"
    if how == "unterminated_varint":
        return data[:length_pos] + b"\x80" * rng.randint(1, 12), "wire: unterminated varint at the end"
    cut = rng.randrange(start, end + 1) if end > start else start
    return data[:cut], f"wire: truncated inside a field ({cut})"


# -- text ----------------------------------------------------------------------------------
TEXT_INSERTS = ["{", "}", "}}}", ":", "\"", "'", "\\", "\\x", "\\777", "\\u12", "\\U0010ffff", "#", "\n", "<", ">",
                "[", "]", "name: \"dup\"", "bogus_field: 1", "[ext.x] { }", "1e999", "99999999999999999999999",
                "-0x8000000000000001", "nan", "inf", "\x00", "\udcff", "🙂"]


def text_mutation(rng: random.Random, text: str) -> tuple[str, str]:
    how = rng.choice(["insert", "insert", "delete", "number", "deep", "duplicate_line"])
    if how == "insert":
        pos = rng.randrange(len(text) + 1)
        piece = rng.choice(TEXT_INSERTS)
        return text[:pos] + piece + text[pos:], f"text: insert {piece!r} @{pos}"
    if how == "delete":
        pos = rng.randrange(max(1, len(text)))
        length = rng.randint(1, 16)
        return text[:pos] + text[pos + length:], f"text: delete {length} chars @{pos}"
    if how == "number":
        digits = [i for i, c in enumerate(text) if c.isdigit()]
        if digits:
            pos = rng.choice(digits)
            piece = rng.choice(["99999999999999999999999", "-9223372036854775809", "1e999", "nan", "0x", "-"])
            return text[:pos] + piece + text[pos + 1:], f"text: number -> {piece}"
    if how == "deep":
        depth = rng.choice([50, 200, 1000, 5000])
        opening = "node { name: \"deep\" op: \"NoOp\" attr { key: \"a\" value { "
        body = "func { name: \"f\" attr { key: \"a\" value { " * depth
        closing = "} } " * depth + "} } }"
        return text + "\n" + opening + body + "i: 1 " + closing + "\n", f"text: func attrs nested {depth} deep"
    lines = text.splitlines(keepends=True)
    if lines:
        line = rng.choice(lines)
        return text + line, "text: a line repeated at the end"
    return text + "node {", "text: unterminated node"


# -- the generator --------------------------------------------------------------------------
class GraphdefInputs:
    """generate(rng) -> (bytes, suffix, recipe)."""

    def __init__(self, fixtures: Path):
        self.binary: list[tuple[str, bytes, pb.GraphDef]] = []
        self.text: list[tuple[str, str]] = []
        for path in sorted(fixtures.iterdir()):
            if path.suffix == ".pb":
                message = pb.GraphDef.FromString(path.read_bytes())
                self.binary.append((path.name, path.read_bytes(), message))
                self.text.append((path.stem + ".pbtxt", text_format.MessageToString(message)))
            elif path.suffix == ".pbtxt":
                text = path.read_text()
                message = pb.GraphDef()
                text_format.Parse(text, message)
                self.text.append((path.name, text))
                self.binary.append((path.name, message.SerializeToString(deterministic=True), message))
        self._fields = {name: wire_fields(data) for name, data, _ in self.binary}
        self.others = [data for _, data, _ in self.binary]

    def generate(self, rng: random.Random) -> tuple[bytes, str, str]:
        roll = rng.random()
        if roll < 0.45:
            return self._semantic(rng)
        if roll < 0.65:
            name, data, _ = rng.choice(self.binary)
            steps = []
            for _ in range(rng.choice([1, 1, 2])):
                data, step = wire_mutation(rng, data, self._fields[name] if not steps else wire_fields(data))
                steps.append(step)
            return data, ".pb", f"{name}: " + "; ".join(steps)
        if roll < 0.80:
            name, text = rng.choice(self.text)
            steps = []
            for _ in range(rng.choice([1, 1, 2, 3])):
                text, step = text_mutation(rng, text)
                steps.append(step)
            data = text.encode("utf-8", "surrogateescape" if rng.random() < 0.5 else "surrogatepass")
            return data, ".pbtxt", f"{name}: " + "; ".join(steps)
        name, data, _ = rng.choice(self.binary)
        suffix = ".pb"
        if rng.random() < 0.2:
            name, text = rng.choice(self.text)
            data, suffix = text.encode("utf-8"), ".pbtxt"
        data, steps = mutate_bytes.mutate(rng, data, self.others)
        return data, suffix, f"{name}: " + "; ".join(steps)

    def _semantic(self, rng: random.Random) -> tuple[bytes, str, str]:
        name, _, seed = rng.choice(self.binary)
        message = pb.GraphDef()
        message.CopyFrom(seed)
        steps = []
        roll = rng.random()
        if roll < 0.03:
            depth = rng.choice([10, 31, 32, 33, 34, 50, 400])
            return (message.SerializeToString() + deep_node(depth), ".pb",
                    f"{name}: a node with func attrs nested {depth} deep")
        edits = [ed_big_graph] if roll < 0.05 else [rng.choice(EDITS) for _ in range(rng.choice([1, 1, 2, 3]))]
        for edit in edits:
            try:
                step = edit(rng, message)
            except (ValueError, TypeError) as exc:  # e.g. a lone surrogate in a proto3 string
                step = f"{edit.__name__} not applicable ({type(exc).__name__})"
            if step:
                steps.append(step)
        text = rng.random() < 0.3 and edits != [ed_big_graph]  # text parsing is pure Python: ~0.25 ms a node
        try:
            data = (text_format.MessageToString(message).encode("utf-8") if text
                    else message.SerializeToString(deterministic=rng.random() < 0.5))
        except Exception as exc:  # noqa: BLE001 - an edit protobuf will not serialize: use the seed
            steps.append(f"unserializable edit dropped ({type(exc).__name__})")
            data, text = seed.SerializeToString(), False
        return data, ".pbtxt" if text else ".pb", f"{name}: " + "; ".join(steps or ["no edit"])
