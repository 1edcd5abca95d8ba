"""Models changed through the IR come out right: subgraph references follow subgraphs,
changed weights are what LiteRT computes with, new graphs run, unknown fields are not
dropped silently."""
import dataclasses

import numpy as np
import pytest

import graphtool
from graphtool import FormatError
from graphtool.formats import tflite
from graphtool.formats.tflite import flatbuf
from graphtool.formats.tflite.schema import Field, Table, load_schema
from graphtool.ir import DType, Graph, Node, Ref, Tensor

from ...conftest import TFLITE_FIXTURES, random_inputs, run_litert

FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
FULL_INT8 = TFLITE_FIXTURES / "full_int8.tflite"


def model_t(data: bytes):
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def passthrough_subgraph(name: str) -> Graph:
    graph = Graph(name=name, format="tflite")
    graph.add_node(Node(f"{name}_in", "Input", outputs=[Tensor(f"{name}_in", DType.FLOAT32, (1,))]))
    graph.inputs = [f"{name}_in"]
    graph.outputs = [Ref(f"{name}_in")]
    return graph


@pytest.mark.litert
def test_subgraph_indices_follow_inserted_and_removed_subgraphs(tf):
    path = TFLITE_FIXTURES / "control_flow.tflite"
    original = path.read_bytes()
    graph = graphtool.load(path)
    graph.subgraphs.insert(0, passthrough_subgraph("inserted"))
    written = tflite.write(graph)

    before, after = model_t(original), model_t(written)
    assert len(after.subgraphs) == len(before.subgraphs) + 1
    shifted = 0
    for sg_before, sg_after in zip(before.subgraphs, after.subgraphs[:1] + after.subgraphs[2:]):
        for op_before, op_after in zip(sg_before.operators, sg_after.operators):
            if op_before.builtinOptions is None:
                continue
            options_before, options_after = vars(op_before.builtinOptions), vars(op_after.builtinOptions)
            for key, value in options_before.items():
                expected = value + 1 if key.endswith("SubgraphIndex") else value
                assert options_after[key] == expected, key
                shifted += key.endswith("SubgraphIndex")
    assert shifted >= 4  # WHILE's cond and body, IF's then and else
    from ai_edge_litert.interpreter import Interpreter

    inputs = random_inputs(Interpreter(model_content=original))
    for x, y in zip(run_litert(original, inputs), run_litert(written, inputs)):
        np.testing.assert_array_equal(x, y)

    graph.subgraphs.pop(0)
    assert tflite.write(graph) == original


@pytest.mark.litert
def test_signature_follows_its_subgraph():
    from ai_edge_litert.interpreter import Interpreter

    path = TFLITE_FIXTURES / "multi_signature.tflite"
    original = path.read_bytes()
    graph = graphtool.load(path)
    graph.subgraphs.insert(0, passthrough_subgraph("inserted"))
    written = tflite.write(graph)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    for model in (original, written):
        runner = Interpreter(model_content=model).get_signature_runner("encode")
        result = runner(x=x)
        if model is original:
            expected = result
    np.testing.assert_array_equal(result["code"], expected["code"])


def test_removing_a_referenced_subgraph_is_an_error():
    graph = graphtool.load(TFLITE_FIXTURES / "control_flow.tflite")
    graph.subgraphs.pop()
    with pytest.raises(FormatError, match="not in the model"):
        tflite.write(graph)


@pytest.mark.litert
def test_changed_weights_match_the_same_change_made_with_tensorflows_object_api(tf):
    from tensorflow.lite.tools import flatbuffer_utils

    path = TFLITE_FIXTURES / "float_cnn.tflite"
    graph = graphtool.load(path)
    fc = [n for n in graph if n.op == "FULLY_CONNECTED"][-1]
    weights = graph.node(graph.inputs_of(fc.name)[1].node).outputs[0]
    index = weights.meta["tflite.table"]["buffer"]
    weights.data = (weights.data * 2).astype(np.float32)
    ours = tflite.write(graph)

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(path.read_bytes()))
    buffer = model.buffers[index]
    buffer.data = (np.frombuffer(buffer.data.tobytes(), np.float32) * 2).view(np.uint8)
    theirs = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    inputs = [np.random.default_rng(1).standard_normal((3, 8, 8, 1)).astype(np.float32)]
    for x, y in zip(run_litert(ours, inputs), run_litert(theirs, inputs)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(run_litert(ours, inputs)[0], run_litert(path.read_bytes(), inputs)[0])


def fully_connected_model(weights: np.ndarray) -> Graph:
    """x[1, K] -> FULLY_CONNECTED(weights[M, K], no bias) -> y[1, M], built from nothing."""
    m, k = weights.shape
    graph = Graph(name="main", format="tflite")
    graph.add_node(Node("x", "Input", outputs=[Tensor("x", DType.FLOAT32, (1, k))]))
    graph.add_node(Node("w", "Const", outputs=[Tensor("w", DType.FLOAT32, (m, k), weights)]))
    graph.add_node(Node("y", "FULLY_CONNECTED", {"fused_activation_function": 0, "weights_format": 0,
                                                 "keep_num_dims": False, "asymmetric_quantize_inputs": False,
                                                 "quantized_bias_type": 0},
                        outputs=[Tensor("y", DType.FLOAT32, (1, m))],
                        meta={"tflite.options_type": "FullyConnectedOptions", "version": 1}),
                   inputs=["x", "w", None])
    graph.inputs, graph.outputs = ["x"], [Ref("y")]
    return graph.validate()


BUILT_WEIGHTS = np.random.default_rng(2).standard_normal((5, 3)).astype(np.float32)


def test_a_graph_built_from_nothing_reads_back():
    reread = graphtool.load(tflite.write(fully_connected_model(BUILT_WEIGHTS)))
    np.testing.assert_array_equal(reread.node("w").outputs[0].data, BUILT_WEIGHTS)


@pytest.mark.litert
def test_a_graph_built_from_nothing_runs_in_litert():
    model = tflite.write(fully_connected_model(BUILT_WEIGHTS))
    x = np.random.default_rng(3).standard_normal((1, 3)).astype(np.float32)
    (y,) = run_litert(model, [x])
    np.testing.assert_allclose(y, x @ BUILT_WEIGHTS.T, rtol=1e-5)


def _schema_with_extra_tensor_field() -> flatbuf.Schema:
    schema = load_schema()
    tensor = schema.tables["Tensor"]
    extra = Field("future_field", tensor.num_slots, "scalar", "int32", 0)
    tables = dict(schema.tables, Tensor=Table("Tensor", tensor.num_slots + 1, tensor.fields + (extra,)))
    return dataclasses.replace(schema, tables=tables)


def _float_cnn_with_a_future_field() -> bytes:
    """float_cnn.tflite with a Tensor field from a newer schema set on its first tensor."""
    model = flatbuf.Decoder(FLOAT_CNN.read_bytes(), load_schema()).root("Model")
    model["subgraphs"][0]["tensors"][0] = dict(model["subgraphs"][0]["tensors"][0], future_field=7)
    return b"".join(flatbuf.Encoder(_schema_with_extra_tensor_field()).finish(model, "Model"))


def test_fields_from_a_newer_schema_are_not_dropped_silently():
    graph = graphtool.load(_float_cnn_with_a_future_field())
    assert any("slot(s) [11]" in u for u in graph.meta["tflite.unknown"])
    with pytest.raises(FormatError, match="would drop.*future|would drop"):
        tflite.write(graph)
    dropped = tflite.write(graph, allow_unknown=True)
    assert graphtool.load(dropped).meta["tflite.unknown"] == []


@pytest.mark.litert
def test_dropping_fields_from_a_newer_schema_computes_the_same():
    dropped = tflite.write(graphtool.load(_float_cnn_with_a_future_field()), allow_unknown=True)
    inputs = [np.zeros((1, 8, 8, 1), np.float32)]
    np.testing.assert_array_equal(run_litert(dropped, inputs)[0], run_litert(FLOAT_CNN.read_bytes(), inputs)[0])


def _full_int8_with_changed_metadata() -> Graph:
    graph = graphtool.load(FULL_INT8)
    graph.meta["metadata"]["min_runtime_version"] = b"2.10.0".ljust(16, b"\0")
    graph.meta["metadata"]["graphtool"] = b"hello"
    del graph.meta["metadata"]["CONVERSION_METADATA"]
    return graph


def test_metadata_changes_are_written():
    reread = graphtool.load(tflite.write(_full_int8_with_changed_metadata()))
    assert reread.meta["metadata"] == {"min_runtime_version": b"2.10.0".ljust(16, b"\0"), "graphtool": b"hello"}


@pytest.mark.litert
def test_metadata_changes_compute_the_same():
    inputs = [np.zeros((1, 8, 8, 1), np.int8)]
    np.testing.assert_array_equal(run_litert(tflite.write(_full_int8_with_changed_metadata()), inputs)[0],
                                  run_litert(FULL_INT8.read_bytes(), inputs)[0])


def test_absent_flags_read_as_false_like_present_ones():
    """A bool option the file leaves out (its default) reads as False, not 0, so it compares
    and prints like a stored one."""
    fc = next(n for n in graphtool.load(FLOAT_CNN) if n.op == "FULLY_CONNECTED")
    assert fc.attrs["keep_num_dims"] is False and fc.attrs["asymmetric_quantize_inputs"] is False


@pytest.mark.tf
def test_a_flipped_flag_reads_as_true_in_tensorflows_schema():
    graph = graphtool.load(FLOAT_CNN)
    fc = next(n for n in graph if n.op == "FULLY_CONNECTED")
    fc.attrs["keep_num_dims"] = True
    options = [op.builtinOptions for op in model_t(tflite.write(graph)).subgraphs[0].operators
               if hasattr(op.builtinOptions, "keepNumDims")]
    assert any(o.keepNumDims is True for o in options) and any(o.keepNumDims is False for o in options)


def test_new_versions_take_the_slots_their_operators_were_read_with():
    """Two CONV_2D codes (v1 at 0, v3 at the end); raising them to v4 and v5 puts each new
    code where its operator's old one was, and every operator reads back its op and version."""
    graph = graphtool.load(TFLITE_FIXTURES / "float_cnn.tflite")
    next(n for n in graph if n.op == "CONV_2D").meta["version"] = 3
    graph = graphtool.load(tflite.write(graph))
    first, second = [n for n in graph if n.op == "CONV_2D"][:2]
    read_with = {first.name: first.meta["tflite.opcode_index"], second.name: second.meta["tflite.opcode_index"]}
    assert read_with[second.name] == 0 and read_with[first.name] > 0
    first.meta["version"], second.meta["version"] = 5, 4
    back = graphtool.load(tflite.write(graph))
    for node, version in ((first, 5), (second, 4)):
        copy = back.node(node.name)
        assert (copy.op, copy.meta["version"], copy.meta["tflite.opcode_index"]) == \
            ("CONV_2D", version, read_with[node.name])
