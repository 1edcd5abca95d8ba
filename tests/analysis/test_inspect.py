"""inspect's inputs, outputs and op counts equal what TensorFlow reports for each fixture."""
from collections import Counter

import numpy as np
import pytest

import graphtool

from ..conftest import graphdef_fixture_paths
from ..tf_runtime import import_graph, parse_graph_def

NOT_OUTPUTS = {"Const", "Assign", "NoOp", "Placeholder"}


def tensorflow_summary(tf, path):
    """Import the GraphDef into a tf.Graph and read inputs/outputs/ops off TensorFlow."""
    graph_def = parse_graph_def(tf.compat.v1.GraphDef, path.read_bytes(), text=path.suffix == ".pbtxt")
    ops = import_graph(tf, graph_def).get_operations()
    inputs = []
    for op in ops:
        if op.type == "Placeholder":
            shape = op.outputs[0].shape
            dims = None if shape.rank is None else shape.as_list()
            inputs.append((op.name, op.outputs[0].dtype.name, dims))
    outputs = sorted(op.name for op in ops if op.type not in NOT_OUTPUTS
                     and not op._control_outputs and all(not t.consumers() for t in op.outputs))
    return inputs, outputs, Counter(op.type for op in ops)


@pytest.mark.parametrize("path", graphdef_fixture_paths(), ids=lambda p: p.name)
def test_inputs_outputs_and_ops_match_tensorflow(tf, path):
    summary = graphtool.inspect(graphtool.load(path))
    inputs, outputs, ops = tensorflow_summary(tf, path)
    assert [(i.name, i.dtype, i.shape) for i in summary.inputs] == inputs
    assert sorted(o.name for o in summary.outputs) == outputs
    assert summary.ops == dict(ops)
    assert summary.num_nodes == sum(ops.values())


def test_parameters_count_constant_elements_and_bytes(tf):
    from ..conftest import GRAPHDEF_FIXTURES

    path = GRAPHDEF_FIXTURES / "keras2_cnn.pb"
    graph_def = tf.compat.v1.GraphDef.FromString(path.read_bytes())
    consts = [tf.make_ndarray(n.attr["value"].tensor) for n in graph_def.node if n.op == "Const"]
    summary = graphtool.inspect(graphtool.load(path))
    assert summary.parameters.count == sum(c.size for c in consts)
    assert summary.parameters.bytes == sum(c.nbytes for c in consts)
    assert summary.parameters.by_dtype["float32"].count == sum(c.size for c in consts if c.dtype.name == "float32")


def test_invalid_inputs_and_control_edges_are_reported():
    from graphtool.formats.graphdef import messages as pb

    message = pb.GraphDef()
    message.node.add(name="a", op="NoOp")
    message.node.add(name="b", op="Identity", input=["missing:1", "^a"], device="/device:CPU:0")
    summary = graphtool.inspect(graphtool.load(message.SerializeToString()))
    assert [(i.node, i.input) for i in summary.invalid_inputs] == [("b", "missing:1")]
    assert summary.control_edges == 1
    assert summary.devices == {"/device:CPU:0": 1}
    assert summary.num_nodes == 2
    assert [o.name for o in summary.outputs] == ["b"]


@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 9, 10), (8, 8), (1, 1), (2, 1, 3)])
def test_weights_without_zeros_count_their_blocks_without_a_pass(shape):
    """A weight with no zero skips the block pass; the block totals are what the pass counts."""
    from graphtool.analysis.inspect import BLOCKS, no_zero_blocks, zero_blocks

    for block in BLOCKS.values():
        counted = zero_blocks(np.zeros(shape, bool), block)
        assert (counted.blocks, counted.zero) == (no_zero_blocks(shape, block).blocks, 0)
