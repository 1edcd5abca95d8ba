"""expand_constants: every non-scalar constant ends in tensor_content, every scalar with its
one value in the typed field, and TensorFlow reads the same values bit for bit (exact)."""
import numpy as np
import pytest

import graphtool
from graphtool.formats import graphdef
from graphtool.passes import PassError, transform

from ...conftest import TFLITE_FIXTURES, graphdef_fixture_paths, graphdef_manifest
from ...tf_runtime import run_graphdef

# One constant in each form TensorFlow reads, and two already in the standard form.
GRAPH = b"""
node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } }
       attr { key: "shape" value { shape { dim { size: 2 } dim { size: 3 } } } } }
node { name: "no_values" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } }
       attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 1 } dim { size: 3 } } } } } }
node { name: "broadcast" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } }
       attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 2 } dim { size: 3 } }
                                            float_val: -0.0 } } } }
node { name: "typed" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } }
       attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 3 } }
                                            float_val: 1.5 float_val: 1e-40 float_val: -3 } } } }
node { name: "empty_scalar" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } }
       attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { } } } } }
node { name: "axis" op: "Const" attr { key: "dtype" value { type: DT_INT32 } }
       attr { key: "value" value { tensor { dtype: DT_INT32 tensor_shape { }
                                            tensor_content: "\\000\\000\\000\\000" } } } }
node { name: "shape" op: "Const" attr { key: "dtype" value { type: DT_INT32 } }
       attr { key: "value" value { tensor { dtype: DT_INT32 tensor_shape { dim { size: 3 } }
                                            int_val: 12 int_val: 1 } } } }
node { name: "standard" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } }
       attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 3 } }
                                            tensor_content: "\\000\\000\\200?\\000\\000\\000@\\000\\000@@" } } } }
node { name: "two" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } }
       attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { } float_val: 2 } } } }
node { name: "a" op: "AddV2" input: "x" input: "no_values" attr { key: "T" value { type: DT_FLOAT } } }
node { name: "b" op: "AddV2" input: "a" input: "broadcast" attr { key: "T" value { type: DT_FLOAT } } }
node { name: "c" op: "Mul" input: "b" input: "typed" attr { key: "T" value { type: DT_FLOAT } } }
node { name: "d" op: "Sub" input: "c" input: "standard" attr { key: "T" value { type: DT_FLOAT } } }
node { name: "e" op: "Mul" input: "d" input: "two" attr { key: "T" value { type: DT_FLOAT } } }
node { name: "f" op: "AddV2" input: "e" input: "empty_scalar" attr { key: "T" value { type: DT_FLOAT } } }
node { name: "joined" op: "ConcatV2" input: "f" input: "x" input: "axis"
       attr { key: "N" value { i: 2 } } attr { key: "T" value { type: DT_FLOAT } }
       attr { key: "Tidx" value { type: DT_INT32 } } }
node { name: "out" op: "Reshape" input: "joined" input: "shape"
       attr { key: "T" value { type: DT_FLOAT } } attr { key: "Tshape" value { type: DT_INT32 } } }
"""
REWRITTEN = {"no_values", "broadcast", "typed", "empty_scalar", "axis", "shape"}


def expanded(data: bytes, spec: str = "expand_constants") -> tuple[dict, bytes]:
    graph = graphtool.load(data)
    report = transform(graph, spec, inputs=["x"], outputs=["out"])
    return report.passes[0].stats, graphdef.write(graph)


def tensors(data: bytes) -> dict:
    """name -> the TensorProto of each Const in the GraphDef `data` (graphtool's messages)."""
    return {n.name: n.attr["value"].tensor for n in graphdef.GraphDef.FromString(data).node if n.op == "Const"}


def test_every_form_is_rewritten_and_the_standard_one_kept():
    original = graphdef.write(graphtool.load(GRAPH))
    stats, data = expanded(GRAPH)
    assert stats == {"expanded": 6, "skipped": {}, "forms": {
        "broadcast": 2, "no values": 2, "scalar in tensor_content": 1, "typed field": 1}}
    before, after = tensors(original), tensors(data)
    for name, tensor in after.items():
        scalar = not tensor.tensor_shape.dim
        assert bool(tensor.tensor_content) != scalar, name
        assert tensor.HasField("tensor_shape")
        if name not in REWRITTEN:
            assert tensor.SerializeToString() == before[name].SerializeToString(), name
    assert list(after["axis"].int_val) == [0] and list(after["empty_scalar"].float_val) == [0.0]
    assert np.frombuffer(after["shape"].tensor_content, "<i4").tolist() == [12, 1, 1]
    again, data_again = expanded(data)
    assert again["expanded"] == 0 and data_again == data


def test_max_bytes_leaves_larger_constants_alone():
    stats, data = expanded(GRAPH, "expand_constants(max_bytes=12)")
    assert stats["expanded"] == 5 and stats["skipped"] == {"larger than max_bytes": 1}  # broadcast: 24 bytes
    assert not tensors(data)["broadcast"].tensor_content
    with pytest.raises(PassError, match="max_bytes must be >= 0"):
        expanded(GRAPH, "expand_constants(max_bytes=-1)")


def test_a_tflite_model_is_refused():
    with pytest.raises(PassError, match="expand_constants does not work on tflite models"):
        transform(graphtool.load(TFLITE_FIXTURES / "float_cnn.tflite"), "expand_constants")


def test_tensorflow_computes_the_same_bits(tf):
    from google.protobuf import text_format

    original = text_format.Parse(GRAPH.decode(), tf.compat.v1.GraphDef()).SerializeToString()
    _, data = expanded(GRAPH)
    feeds = {"x:0": np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)}
    before, after = run_graphdef(tf, original, feeds, "out:0"), run_graphdef(tf, data, feeds, "out:0")
    assert after.shape == (12, 1, 1) and after.tobytes() == before.tobytes()


@pytest.mark.parametrize("path", [p for p in graphdef_fixture_paths() if p.suffix == ".pb"], ids=lambda p: p.name)
def test_fixture_constants_keep_their_values_bit_for_bit(tf, path):
    """As TensorFlow's own parser and make_ndarray read them, non-scalars now from
    tensor_content; runnable fixtures compute the same bits."""
    original = path.read_bytes()
    graph = graphtool.load(original)
    transform(graph, "expand_constants")
    data = graphdef.write(graph)
    written = {n.name: n for n in tf.compat.v1.GraphDef.FromString(data).node}
    handles = (tf.resource.as_datatype_enum, tf.variant.as_datatype_enum)
    for node in tf.compat.v1.GraphDef.FromString(original).node:
        for key, attr in node.attr.items():
            if not attr.HasField("tensor") or attr.tensor.dtype in handles:
                continue
            tensor = written[node.name].attr[key].tensor
            want, got = tf.make_ndarray(attr.tensor), tf.make_ndarray(tensor)
            assert (got.dtype, got.shape) == (want.dtype, want.shape)
            if got.dtype == object:
                assert got.tolist() == want.tolist()
            else:
                assert got.tobytes() == want.tobytes()
                assert bool(tensor.tensor_content) == (got.ndim > 0 and got.size > 0), node.name
    entry = graphdef_manifest()[path.name]
    if entry["runnable"]:
        rng = np.random.default_rng(0)
        feeds = {name: rng.uniform(-1, 1, _input_shape(graph, name)).astype(np.float32) for name in entry["inputs"]}
        before = run_graphdef(tf, original, feeds, entry["outputs"])
        after = run_graphdef(tf, data, feeds, entry["outputs"])
        for want, got in zip(before, after):
            assert got.tobytes() == want.tobytes()


def _input_shape(graph, name: str) -> tuple:
    """The placeholder's shape, 2 for each unknown dimension."""
    return tuple(2 if d is None else d for d in graph.node(name.split(":")[0]).outputs[0].shape)
