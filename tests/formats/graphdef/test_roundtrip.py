"""Read -> write with no pass loses nothing: TensorFlow's own graph_pb2 parses the output
into a message equal to the input's, bytes are identical, text <-> binary round trips."""
import pytest

import graphtool
from graphtool.formats import graphdef

from ...conftest import graphdef_fixture_paths
from ...tf_runtime import parse_graph_def

FIXTURES = graphdef_fixture_paths()


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_no_pass_round_trip_equals_input_in_tensorflows_parser(tf_graph_pb2, path):
    text = path.suffix == ".pbtxt"
    original = path.read_bytes()
    graph = graphtool.load(path)
    written = graphdef.write(graph, text=text)
    parsed = parse_graph_def(tf_graph_pb2.GraphDef, written, text)
    assert parsed == parse_graph_def(tf_graph_pb2.GraphDef, original, text)
    if not text:  # fixtures are written with deterministic serialization
        assert written == original


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_writing_is_deterministic(path):
    graph = graphtool.load(path)
    first = graphdef.write(graph)
    assert graphdef.write(graph) == first
    assert graphdef.write(graphtool.load(first)) == first


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_text_and_binary_round_trip(tf_graph_pb2, path):
    graph = graphtool.load(path)
    binary = graphdef.write(graph)
    text = graphdef.write(graph, text=True)
    from_text = graphdef.read(text, text=True)
    assert graphdef.write(from_text) == binary
    assert parse_graph_def(tf_graph_pb2.GraphDef, text, True) == parse_graph_def(tf_graph_pb2.GraphDef, binary, False)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_every_fixture_reads_into_a_valid_graph(path):
    graph = graphtool.load(path)
    graph.validate()
    assert len(graph) > 0


def test_text_fixture_matches_its_binary_twin(tf_graph_pb2):
    from ...conftest import GRAPHDEF_FIXTURES

    text = graphtool.load(GRAPHDEF_FIXTURES / "keras2_cnn.pbtxt")
    binary = (GRAPHDEF_FIXTURES / "keras2_cnn.pb").read_bytes()
    assert graphdef.write(text) == binary


def test_unknown_fields_survive(tf_graph_pb2):
    """A field graphtool's schema lacks (here: a made-up NodeDef field 99) is kept."""
    from graphtool.formats.graphdef import messages as pb

    node = pb.NodeDef(name="c", op="NoOp")
    node.attr["x"].i = 3
    extra = b"\x9a\x06\x05hello"  # field 99, length-delimited, "hello"
    node_bytes = node.SerializeToString(deterministic=True) + extra
    data = b"\x0a" + bytes([len(node_bytes)]) + node_bytes  # GraphDef.node (field 1)
    written = graphdef.write(graphtool.load(data))
    assert extra in written
    assert tf_graph_pb2.GraphDef.FromString(written) == tf_graph_pb2.GraphDef.FromString(data)


def test_changed_attrs_and_edges_are_written(tf_graph_pb2):
    from ...conftest import GRAPHDEF_FIXTURES

    graph = graphtool.load(GRAPHDEF_FIXTURES / "keras2_cnn.pb")
    conv = next(n for n in graph if n.op == "Conv2D")
    conv.attrs["padding"] = "VALID"
    conv.meta["device"] = "/device:CPU:0"
    message = tf_graph_pb2.GraphDef.FromString(graphdef.write(graph))
    written = next(n for n in message.node if n.name == conv.name)
    assert written.attr["padding"].s == b"VALID"
    assert written.device == "/device:CPU:0"
