"""The GraphDef reader against hostile files: claimed sizes are refused before anything is
allocated, nesting is bounded the same in text and binary, and every refusal says where
in the file it is (a node and byte, a line and column). A constant TensorFlow imports but
graphtool cannot decode is read and kept as it is: inspect warns, its data is refused."""
from __future__ import annotations

import re

import pytest
from google.protobuf import text_format

import graphtool
from graphtool import FormatError
from graphtool.formats import dumps
from graphtool.formats.graphdef import tensor_proto
from graphtool.formats.graphdef import messages as pb
from graphtool.formats.graphdef.reader import MAX_NESTING

from ...conftest import GRAPHDEF_FIXTURES

CNN = (GRAPHDEF_FIXTURES / "keras2_cnn.pb").read_bytes()


def const_graph(shape, dtype=1, values=(0.0,), field="float_val") -> bytes:
    graph = pb.GraphDef()
    node = graph.node.add(name="c", op="Const")
    node.attr["dtype"].type = dtype
    tensor = node.attr["value"].tensor
    tensor.dtype = dtype
    for size in shape:
        tensor.tensor_shape.dim.add().size = size
    getattr(tensor, field).extend(values)
    return graph.SerializeToString()


def kept_but_refused(data: bytes, match: str) -> None:
    """`data` loads (TensorFlow imports such a graph), inspect warns with `match`, the
    constant's data is refused with it, naming the node, and writing keeps every field."""
    graph = graphtool.load(data)
    assert any(re.search(match, warning) for warning in graphtool.inspect(graph).warnings)
    with pytest.raises(FormatError, match=rf"node 0 \('c'\) attr 'value': .*{match}"):
        graph.node("c").outputs[0].data  # noqa: B018
    assert pb.GraphDef.FromString(dumps(graph)) == pb.GraphDef.FromString(data)  # every field as read


def test_a_short_value_list_expands_up_to_the_bound_and_no_further():
    limit = tensor_proto.MAX_EXPANDED_BYTES // 4  # float32 elements
    graphtool.load(const_graph([limit]))  # read (decoding is lazy)
    for values in ((0.0,), ()):  # repeat the last value, or all zeros
        kept_but_refused(const_graph([limit + 1], values=values),
                         rf"would expand to {tensor_proto.MAX_EXPANDED_BYTES + 4:,} bytes")
    strings = tensor_proto.MAX_EXPANDED_BYTES // 8 + 1  # one pointer per string
    kept_but_refused(const_graph([strings], dtype=7, values=[b"x"], field="string_val"), "would expand")


def test_small_broadcasts_still_decode_like_tensorflow():
    graph = graphtool.load(const_graph([3, 4], values=(1.5,)))
    assert graph.node("c").outputs[0].data.tolist() == [[1.5] * 4] * 3


@pytest.mark.parametrize("shape", [[0, 2**62, 4], [2**63 - 1, 0], [1 << 21, 1 << 20]])
def test_shapes_numpy_cannot_hold_are_refused_when_decoded(shape):
    kept_but_refused(const_graph(shape, values=()), "claims shape")


def test_rank_past_numpys_limit_is_refused():
    kept_but_refused(const_graph([1] * 33), "rank 33")
    graph = graphtool.load(const_graph([1] * 32, dtype=7, values=[b"x"], field="string_val"))
    assert graph.node("c").outputs[0].data.shape == (1,) * 32
    graphtool.inspect(graph)  # numpy's iterators take 32 dimensions, no more


def _nested(depth: int) -> pb.GraphDef:
    """A node whose attr holds func attrs nested `depth` deep, built on the wire (protobuf
    will not build messages it could not parse)."""
    def field(number, payload):
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload
    value = _varint(3 << 3) + _varint(1)
    for i in range(depth):
        value = field(10, field(1, f"f{i}".encode()) + field(2, field(1, b"a") + field(2, value)))
    node = field(1, b"n") + field(2, b"NoOp") + field(5, field(1, b"deep") + field(2, value))
    return field(1, node)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def test_nesting_is_bounded_alike_in_text_and_binary():
    """Binary protobuf refuses messages nested past MAX_NESTING; the text reader holds text
    to the same, so a model reads in both encodings or in neither."""
    verdicts = []
    for depth in range(28, 38):
        binary = _nested(depth)
        try:
            message = pb.GraphDef.FromString(binary)
        except Exception:  # noqa: BLE001 - protobuf's own refusal
            message = None
        if message is None:
            with pytest.raises(FormatError, match="node 0 \\('n'\\) at byte 0"):
                graphtool.load(binary)
            lines = ["node {", "  name: 'n'", "  op: 'NoOp'", "  attr { key: 'deep' value {"]
            lines += ["func { name: 'f' attr { key: 'a' value {"] * depth + ["i: 1"] + ["} } }"] * depth + ["} }", "}"]
            with pytest.raises(FormatError, match=r"line \d+, column \d+: not a text GraphDef: Message too deep"):
                graphtool.load("\n".join(lines).encode())
        else:
            graphtool.load(binary)
            graphtool.load(text_format.MessageToString(message).encode())
        verdicts.append(message is not None)
    assert True in verdicts and False in verdicts  # the bound lies inside the range tried
    assert MAX_NESTING == 100


def test_binary_errors_name_the_node_and_byte():
    cut = CNN[:2365]
    with pytest.raises(FormatError, match=r"^<bytes>: node 17 at byte 2334: not a binary GraphDef: field 1: "
                                          r"claims 222 bytes, 28 are left"):
        graphtool.load(cut)
    overlong = CNN[:1] + b"\xff" * 10 + CNN[2:]
    with pytest.raises(FormatError, match="node 0 at byte 0: .*truncated or overlong length"):
        graphtool.load(overlong)
    with pytest.raises(FormatError, match="byte 0: .*invalid wire type 7"):
        graphtool.load(b"\x0f" + CNN[1:])
    with pytest.raises(FormatError, match=r"byte 7145: .*field 3406502204: field number out of range"):
        graphtool.load(CNN + b"\xe5\x93\xe3\xc2\x65" + bytes(4))


def test_an_unknown_group_field_is_kept_as_protobuf_keeps_it():
    graph = graphtool.load(CNN + bytes([0x33, 0x08, 0x01, 0x34]))
    assert len(graph) == len(graphtool.load(CNN))
    with pytest.raises(FormatError, match="byte 7145: .*group without its end"):
        graphtool.load(CNN + bytes([0x33, 0x08, 0x01]))


def test_text_errors_name_the_line_and_column():
    with pytest.raises(FormatError, match=r"^<bytes>: line 2, column 8: not a text GraphDef"):
        graphtool.load(b"node {\n  name 'a'\n}\n")
    with pytest.raises(FormatError, match=r"byte 14: text GraphDef is not UTF-8"):
        graphtool.load(b"node { name: '\xff' }")
    # protobuf's text parser lets this one out as a bare ValueError, with no position
    with pytest.raises(FormatError, match=r"^<bytes>: line 3: not a text GraphDef: Value out of range"):
        graphtool.load(b"node {\n  name: 'a' op: 'NoOp'\n  attr { key: 'T' value { type: -0x8000000000000001 } }\n}\n")


@pytest.mark.parametrize("text", [":0", ":7", "^:0x"])
def test_an_input_naming_no_node_is_refused(text):
    graph = pb.GraphDef()
    graph.node.add(name="a", op="NoOp")
    graph.node.add(name="b", op="Identity", input=[text])
    if text.startswith("^"):  # a control input on a node literally named ":0x" is only dangling
        assert graphtool.load(graph.SerializeToString())
        return
    with pytest.raises(FormatError, match=rf"node 1 \('b'\): input '{text}' names no node"):
        graphtool.load(graph.SerializeToString())
