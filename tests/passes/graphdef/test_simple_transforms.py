"""GTT's structural transforms on GraphDefs, checked in TensorFlow."""
import numpy as np
import pytest

import graphtool
from graphtool.formats import graphdef
from graphtool.passes import transform

from ...conftest import GRAPHDEF_FIXTURES, graphdef_manifest
from ...tf_runtime import run_graphdef


@pytest.fixture
def cnn_case():
    name = "keras2_cnn.pb"
    spec = graphdef_manifest()[name]
    feeds = {spec["inputs"][0]: np.random.default_rng(0).standard_normal((2, 8, 8, 1)).astype(np.float32)}
    return GRAPHDEF_FIXTURES / name, feeds, spec["outputs"]


def test_remove_identity_keeps_outputs_and_numbers(tf, cnn_case):
    path, feeds, outputs = cnn_case
    graph = graphtool.load(path)
    report = transform(graph, "remove_nodes(op=Identity, op=CheckNumerics)", outputs=["Identity"])
    assert report.passes[0].stats["removed"] == 14
    assert [n.name for n in graph if n.op == "Identity"] == ["Identity"]
    before = run_graphdef(tf, path.read_bytes(), feeds, outputs)
    after = run_graphdef(tf, graphdef.write(graph), feeds, outputs)
    np.testing.assert_array_equal(after[0], before[0])


def test_strip_unused_nodes_turns_inputs_into_placeholders(tf):
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        hidden = tf.nn.relu(x * 2.0, name="hidden")
        tf.identity(hidden + 1.0, name="out")
        tf.identity(x * 5.0, name="unused")
    data = g.as_graph_def().SerializeToString()
    graph = graphtool.load(data)
    transform(graph, 'strip_unused_nodes(type=float, shape="2,3")', inputs=["hidden"], outputs=["out"])
    names = {n.name for n in graph}
    assert "unused" not in names and "x" not in names
    assert graph.node("hidden").op == "Placeholder"
    value = np.arange(6, dtype=np.float32).reshape(2, 3)
    (result,) = run_graphdef(tf, graphdef.write(graph), {"hidden:0": value}, ["out:0"])
    np.testing.assert_array_equal(result, value + 1.0)
    t = tf.compat.v1.GraphDef.FromString(graphdef.write(graph))
    hidden = next(n for n in t.node if n.name == "hidden")
    assert [d.size for d in hidden.attr["shape"].shape.dim] == [2, 3]


def test_sort_by_execution_order_fixes_a_shuffled_graph(tf, cnn_case):
    path, feeds, outputs = cnn_case
    message = tf.compat.v1.GraphDef.FromString(path.read_bytes())
    nodes = list(message.node)[::-1]
    del message.node[:]
    message.node.extend(nodes)
    graph = graphtool.load(message.SerializeToString())
    transform(graph, "sort_by_execution_order")
    position = {n.name: i for i, n in enumerate(graph)}
    for node in graph:
        for ref in graph.inputs_of(node.name):
            assert position[ref.node] < position[node.name]
    np.testing.assert_array_equal(run_graphdef(tf, graphdef.write(graph), feeds, outputs)[0],
                                  run_graphdef(tf, path.read_bytes(), feeds, outputs)[0])


def test_renames_devices_and_control_edges(tf, cnn_case):
    path, feeds, outputs = cnn_case
    graph = graphtool.load(path)
    conv = next(n.name for n in graph if n.op == "Conv2D")
    transform(graph, f"rename_node(old_node_name={conv}, new_node_name=my_conv) "
                     'set_device(device="/device:CPU:0") remove_control_dependencies '
                     "rename_attribute(old_attribute_name=_class, new_attribute_name=_kept) "
                     "remove_attribute(attribute_name=_kept)")
    message = tf.compat.v1.GraphDef.FromString(graphdef.write(graph))
    assert any(n.name == "my_conv" for n in message.node)
    assert all(n.device == "/device:CPU:0" for n in message.node)
    assert not any(i.startswith("^") for n in message.node for i in n.input)
    np.testing.assert_array_equal(run_graphdef(tf, graphdef.write(graph), feeds, outputs)[0],
                                  run_graphdef(tf, path.read_bytes(), feeds, outputs)[0])
    transform(graph, "remove_device")
    assert all(not n.device for n in tf.compat.v1.GraphDef.FromString(graphdef.write(graph)).node)


def test_obfuscate_names_keeps_inputs_outputs_and_numbers(tf, cnn_case):
    path, feeds, outputs = cnn_case
    graph = graphtool.load(path)
    transform(graph, "obfuscate_names", inputs=["input"], outputs=["Identity"])
    names = [n.name for n in graph]
    assert "input" in names and "Identity" in names
    assert max(len(n) for n in names if n not in ("input", "Identity")) <= 2
    np.testing.assert_array_equal(run_graphdef(tf, graphdef.write(graph), feeds, outputs)[0],
                                  run_graphdef(tf, path.read_bytes(), feeds, outputs)[0])


def test_rename_op(tf):
    graph = graphtool.load(GRAPHDEF_FIXTURES / "keras2_cnn.pb")
    report = transform(graph, "rename_op(old_op_name=Relu6, new_op_name=Relu)")
    assert report.passes[0].stats["renamed"] == 1
    assert not any(n.op == "Relu6" for n in graph)
