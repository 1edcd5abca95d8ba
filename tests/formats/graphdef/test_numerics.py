"""Graphs changed through the IR run in TensorFlow with the expected numbers."""
import numpy as np

import graphtool
from graphtool.formats import graphdef
from graphtool.ir import DType, Node, Tensor

from ...conftest import GRAPHDEF_FIXTURES, graphdef_manifest
from ...tf_runtime import run_graphdef


def test_rewritten_constant_and_new_node_compute_what_they_should(tf):
    """Scale the final logits by a new constant: outputs before softmax scale exactly."""
    name = "keras2_cnn.pb"
    spec = graphdef_manifest()[name]
    path = GRAPHDEF_FIXTURES / name
    rng = np.random.default_rng(0)
    feeds = {spec["inputs"][0]: rng.standard_normal((3, 8, 8, 1)).astype(np.float32)}

    graph = graphtool.load(path)
    softmax = next(n for n in graph if n.op == "Softmax")
    logits = graph.inputs_of(softmax.name)[0]
    before = run_graphdef(tf, path.read_bytes(), feeds, f"{logits.node}:{logits.port}")

    two = np.array(2.0, dtype=np.float32)
    graph.add_node(Node("two", "Const", {"dtype": DType.FLOAT32, "value": Tensor("two", DType.FLOAT32, (), two)},
                        outputs=[Tensor("two", DType.FLOAT32, (), two)]))
    graph.add_node(Node("scaled", "Mul", {"T": DType.FLOAT32}), inputs=[logits, "two"])
    graph.set_input(softmax.name, 0, "scaled")
    graph.toposort().validate()
    after = run_graphdef(tf, graphdef.write(graph), feeds, "scaled:0")
    np.testing.assert_allclose(after, 2.0 * before, rtol=1e-6)


def test_changed_weights_are_what_tensorflow_reads(tf):
    path = GRAPHDEF_FIXTURES / "keras2_cnn.pb"
    graph = graphtool.load(path)
    const = max((n for n in graph if n.op == "Const"), key=lambda n: n.outputs[0].num_elements)
    tensor = const.outputs[0]
    tensor.data = (tensor.data * 0.5).astype(np.float32)
    written = tf.compat.v1.GraphDef.FromString(graphdef.write(graph))
    stored = next(n for n in written.node if n.name == const.name)
    np.testing.assert_array_equal(tf.make_ndarray(stored.attr["value"].tensor), tensor.data)
