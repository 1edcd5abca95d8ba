"""TFLite strip_unused_nodes, dedupe_buffers and strip_strings: checked with TensorFlow's
schema object API and by running LiteRT (these transforms are exact: outputs must be
bit-identical)."""
from __future__ import annotations

import numpy as np
import pytest

import graphtool
from graphtool.formats import tflite
from graphtool.ir import DType, Graph, Node, Ref, Tensor, make_const
from graphtool.passes import transform

from ...conftest import TFLITE_FIXTURES, random_inputs, run_litert, tflite_manifest

FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
MANIFEST = tflite_manifest()
RUNNABLE = [name for name, entry in MANIFEST.items() if entry["runs_in_litert"]]


def stats_of(graph: Graph, spec: str, **kwargs) -> dict:
    (report,) = transform(graph, spec, **kwargs).passes
    return report.stats


def model_t(data: bytes):
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def differences(a, b, path: str = "model") -> list[str]:
    """Paths where two schema object-API trees differ (arrays compared by value)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        same = a is not None and b is not None and np.array_equal(np.asarray(a), np.asarray(b))
        return [] if same else [path]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} entries"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    if hasattr(a, "__dict__") and type(a) is type(b):
        return [d for key in vars(a) for d in differences(getattr(a, key), getattr(b, key), f"{path}.{key}")]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def assert_same_outputs(before: bytes, after: bytes, seed: int = 0) -> None:
    from ai_edge_litert.interpreter import Interpreter

    inputs = random_inputs(Interpreter(model_content=before), seed)
    expected, actual = run_litert(before, inputs), run_litert(after, inputs)
    assert len(expected) == len(actual)
    for x, y in zip(expected, actual):
        np.testing.assert_array_equal(y, x)


def reloaded(graph: Graph) -> Graph:
    """Write and read back: what a user's edited model looks like as a file."""
    return graphtool.load(tflite.write(graph))


# -- every fixture ----------------------------------------------------------------------------

CLEANUPS = ["strip_unused_nodes", "dedupe_buffers", "strip_strings"]


def cleaned(name: str, spec: str) -> tuple[bytes, bytes]:
    """A fixture's bytes before and after `spec`."""
    original = (TFLITE_FIXTURES / name).read_bytes()
    graph = graphtool.load(original)
    transform(graph, spec)
    return original, tflite.write(graph)


@pytest.mark.parametrize("spec", CLEANUPS)
@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_every_fixture_does_not_grow(name, spec):
    original, after = cleaned(name, spec)
    assert len(after) <= len(original)
    if spec == "strip_unused_nodes" and name != "control_flow.tflite":
        assert after == original  # the converter leaves nothing unused ...


@pytest.mark.litert
@pytest.mark.parametrize("spec", CLEANUPS)
@pytest.mark.parametrize("name", RUNNABLE)
def test_every_runnable_fixture_stays_exact(name, spec):
    assert_same_outputs(*cleaned(name, spec))


@pytest.mark.tf
def test_strip_unused_nodes_drops_the_buffer_the_converter_orphaned():
    original = (TFLITE_FIXTURES / "control_flow.tflite").read_bytes()
    graph = graphtool.load(original)
    stats = stats_of(graph, "strip_unused_nodes")  # ... except one buffer here (two tensors share another)
    assert stats == {"removed": 0, "inputs_replaced": 0, "subgraphs_removed": 0, "buffers_dropped": 1,
                     "bytes_dropped": 0, "operator_codes_dropped": 0}
    after = model_t(tflite.write(graph))
    assert len(after.buffers) == len(model_t(original).buffers) - 1


# -- strip_unused_nodes -----------------------------------------------------------------------

def with_dead_code() -> bytes:
    """float_cnn plus a constant nothing uses (16 KiB) and two operators whose result
    nothing uses (TANH, MUL: TANH's operator code is new)."""
    graph = graphtool.load(FLOAT_CNN)
    conv = next(n for n in graph if n.op == "CONV_2D")
    shape = conv.outputs[0].shape
    graph.add_node(make_const("dead_weights", np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)))
    graph.add_node(Node("dead_tanh", "TANH", outputs=[Tensor("dead_tanh", DType.FLOAT32, shape)],
                        meta={"version": 1}), inputs=[Ref(conv.name)])
    graph.add_node(Node("dead_mul", "MUL", {"fused_activation_function": 0},
                        outputs=[Tensor("dead_mul", DType.FLOAT32, shape)],
                        meta={"version": 1, "tflite.options_type": "MulOptions"}),
                   inputs=[Ref("dead_tanh"), Ref("dead_tanh")])
    return tflite.write(graph.validate())


@pytest.mark.litert
def test_dead_weights_operators_buffers_and_operator_codes_go(tf):
    dead = with_dead_code()
    graph = graphtool.load(dead)
    stats = stats_of(graph, "strip_unused_nodes")
    assert stats == {"removed": 3, "inputs_replaced": 0, "subgraphs_removed": 0, "buffers_dropped": 1,
                     "bytes_dropped": 64 * 64 * 4, "operator_codes_dropped": 2}
    after = tflite.write(graph)
    assert len(dead) - len(after) >= 64 * 64 * 4
    assert after == FLOAT_CNN.read_bytes()  # what was added is gone without a trace
    before_t, after_t = model_t(dead), model_t(after)
    assert len(after_t.operatorCodes) == len(before_t.operatorCodes) - 2
    assert len(after_t.buffers) == len(before_t.buffers) - 1
    assert_same_outputs(dead, after)


def run_repeatedly(model: bytes, x: np.ndarray, times: int = 3) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    (detail,) = interpreter.get_input_details()
    results = []
    for _ in range(times):
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()
        results.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy())
    return results


@pytest.mark.litert
def test_state_changing_operators_stay_and_an_unused_read_goes():
    path = TFLITE_FIXTURES / "resource_variables.tflite"
    graph = graphtool.load(path)
    main = graph
    reader = next(n for n in main if n.op == "READ_VARIABLE")
    unused_read = Node("unused_read", "READ_VARIABLE", outputs=[Tensor("unused_read", DType.FLOAT32, ())],
                       meta={"version": 1})
    main.add_node(unused_read, inputs=graph.inputs_of(reader.name))
    edited = tflite.write(graph)
    graph = graphtool.load(edited)
    stats = stats_of(graph, "strip_unused_nodes")
    assert stats["removed"] == 1 and stats["subgraphs_removed"] == 0 and "unused_read" not in graph
    ops = [n.op for sub in [graph, *graph.subgraphs] for n in sub]
    assert ops.count("ASSIGN_VARIABLE") == 4 and ops.count("VAR_HANDLE") == 4 and ops.count("CALL_ONCE") == 1
    x = np.arange(4, dtype=np.float32)
    for a, b in zip(run_repeatedly(path.read_bytes(), x), run_repeatedly(tflite.write(graph), x)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.litert
def test_outputs_cut_the_main_subgraph_and_its_signature():
    from ai_edge_litert.interpreter import Interpreter

    path = TFLITE_FIXTURES / "strings.tflite"
    original = path.read_bytes()
    graph = graphtool.load(original)
    gather = next(n.name for n in graph if n.op == "GATHER")
    signature = graph.meta["signature_defs"][0]
    kept_name = next(name for name, t in signature["outputs"] if t is graph.node(gather).outputs[0])
    stats = stats_of(graph, "strip_unused_nodes", outputs=[gather])
    assert stats["removed"] == 5  # SLICE, RESHAPE and their three constants
    assert graph.inputs == ["serving_default_words:0", "serving_default_ids:0"]  # inputs stay
    after = tflite.write(graph)
    assert {n.op for n in graphtool.load(after)} == {"Input", "Const", "GATHER"}
    ids = np.array([4, 1], np.int32)
    words = np.array([b"a", b"b", b"c"], dtype=object)
    results = {}
    for model in (original, after):
        runner = Interpreter(model_content=model).get_signature_runner()
        results[model is after] = runner(ids=ids, words=words)
    assert list(results[True]) == [kept_name]
    np.testing.assert_array_equal(results[True][kept_name], results[False][kept_name])


@pytest.mark.tf
@pytest.mark.litert
def test_unreferenced_subgraphs_go():
    graph = graphtool.load(TFLITE_FIXTURES / "control_flow.tflite")
    spare = Graph(name="spare", format="tflite")
    spare.add_node(Node("spare_in", "Input", outputs=[Tensor("spare_in", DType.FLOAT32, (1,))]))
    spare.inputs, spare.outputs = ["spare_in"], [Ref("spare_in")]
    graph.subgraphs.append(spare)
    edited = tflite.write(graph)
    graph = graphtool.load(edited)
    assert stats_of(graph, "strip_unused_nodes")["subgraphs_removed"] == 1
    after = tflite.write(graph)
    assert len(model_t(after).subgraphs) == 5
    assert_same_outputs(edited, after)


# -- dedupe_buffers ---------------------------------------------------------------------------

def with_duplicate_weights() -> bytes:
    """float_cnn whose first FULLY_CONNECTED is computed twice from copies of its weights
    and bias, the two results added: 32 KiB + 128 bytes of duplicate data."""
    graph = graphtool.load(FLOAT_CNN)
    fc = next(n for n in graph if n.op == "FULLY_CONNECTED")
    x, weights, bias = graph.inputs_of(fc.name)
    users = graph.consumers(Ref(fc.name))
    for ref, copy in ((weights, "fc_weights_copy"), (bias, "fc_bias_copy")):
        graph.add_node(make_const(copy, np.array(graph.node(ref.node).outputs[0].data)))
    twin = Node("fc_twin", "FULLY_CONNECTED", dict(fc.attrs), outputs=[Tensor("fc_twin", DType.FLOAT32, (None, 32))],
                meta={"version": fc.meta["version"], "tflite.options_type": fc.meta["tflite.options_type"]})
    graph.add_node(twin, inputs=[x, "fc_weights_copy", "fc_bias_copy"])
    total = Node("fc_sum", "ADD", {"fused_activation_function": 0},
                 outputs=[Tensor("fc_sum", DType.FLOAT32, (None, 32))],
                 meta={"version": 1, "tflite.options_type": "AddOptions"})
    graph.add_node(total, inputs=[Ref(fc.name), Ref("fc_twin")])
    for user, slot in users:
        graph.set_input(user, slot, Ref("fc_sum"))
    graph.toposort()
    return tflite.write(graph.validate())


@pytest.mark.litert
def test_identical_weights_are_stored_once(tf):
    duplicated = with_duplicate_weights()
    graph = graphtool.load(duplicated)
    stats = stats_of(graph, "dedupe_buffers")
    assert stats["tensors_retargeted"] == 2 and stats["bytes_saved"] == 32 * 256 * 4 + 32 * 4
    assert stats["buffers_dropped"] == 2 + stats["empty_buffers_shared"]
    after = tflite.write(graph)
    assert len(duplicated) - len(after) >= stats["bytes_saved"]
    model = model_t(after)
    tensors = {t.name.decode(): t for t in model.subgraphs[0].tensors}
    assert tensors["fc_weights_copy"].buffer == tensors["digits_cnn/fc/MatMul"].buffer
    assert tensors["fc_bias_copy"].buffer == tensors["digits_cnn/fc/Relu;digits_cnn/fc/BiasAdd"].buffer
    assert all(model.buffers[t.buffer].data is None for t in tensors.values() if t.buffer == 0)
    assert_same_outputs(duplicated, after)
    again = graphtool.load(after)
    assert stats_of(again, "dedupe_buffers") == {"tensors_retargeted": 0, "empty_buffers_shared": 0,
                                                 "buffers_dropped": 0, "bytes_saved": 0}


@pytest.mark.litert
def test_weights_are_shared_across_subgraphs():
    from ai_edge_litert.interpreter import Interpreter

    graph = graphtool.load(TFLITE_FIXTURES / "multi_signature.tflite")
    encode = next(n for n in graph.subgraphs[0] if n.op == "Const").outputs[0]
    decode = next(n for n in graph if n.op == "Const").outputs[0]
    decode.data = np.ascontiguousarray(encode.data).reshape(decode.shape)  # same bytes, other shape
    edited = tflite.write(graph)
    graph = graphtool.load(edited)
    stats = stats_of(graph, "dedupe_buffers")
    assert stats["tensors_retargeted"] == 1 and stats["bytes_saved"] == 12 * 4
    after = tflite.write(graph)
    code, gain = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32), np.float32(1.5)
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    for key, kwargs in (("decode", {"code": code, "gain": gain}), ("encode", {"x": x})):
        expected = Interpreter(model_content=edited).get_signature_runner(key)(**kwargs)
        actual = Interpreter(model_content=after).get_signature_runner(key)(**kwargs)
        for name in expected:
            np.testing.assert_array_equal(actual[name], expected[name])


def test_same_bytes_of_another_dtype_stay_apart():
    graph = graphtool.load(FLOAT_CNN)
    shape_const = next(n for n in graph if n.op == "Const" and n.outputs[0].dtype == DType.INT32).outputs[0]
    graph.add_node(make_const("lookalike", np.array(shape_const.data).view(np.float32)))
    graph = reloaded(graph)
    assert stats_of(graph, "dedupe_buffers")["tensors_retargeted"] == 0


# -- strip_strings ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_strip_strings_matches_tensorflows_flatbuffer_utils(tf, name):
    from tensorflow.lite.tools import flatbuffer_utils

    original = (TFLITE_FIXTURES / name).read_bytes()
    graph = graphtool.load(original)
    stats = stats_of(graph, "strip_strings")
    assert stats["names_removed"] > 0 and stats["description_removed"]
    ours = tflite.write(graph)
    theirs = flatbuffer_utils.read_model_from_bytearray(bytearray(original))
    flatbuffer_utils.strip_strings(theirs)
    assert differences(model_t(ours), theirs) == []
    assert len(ours) < len(original)


@pytest.mark.litert
def test_signature_defs_can_be_kept():
    from ai_edge_litert.interpreter import Interpreter

    original = (TFLITE_FIXTURES / "multi_signature.tflite").read_bytes()
    graph = graphtool.load(original)
    stats = stats_of(graph, "strip_strings(keep_signature_defs=true)")
    assert stats["signature_defs_removed"] == 0
    after = tflite.write(graph)
    assert all(not n.outputs or n.outputs[0].name == "" for sub in [graph, *graph.subgraphs] for n in sub)
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    expected = Interpreter(model_content=original).get_signature_runner("encode")(x=x)
    actual = Interpreter(model_content=after).get_signature_runner("encode")(x=x)
    np.testing.assert_array_equal(actual["code"], expected["code"])
    signatures = Interpreter(model_content=original).get_signature_list()
    assert Interpreter(model_content=after).get_signature_list() == signatures


@pytest.mark.tf
def test_changed_tensors_lose_their_names_too():
    graph = graphtool.load(FLOAT_CNN)
    weights = next(n for n in graph if n.op == "Const" and n.outputs[0].dtype == DType.FLOAT32).outputs[0]
    weights.data = np.array(weights.data) * 2
    weights.shape = tuple(weights.shape)
    transform(graph, "strip_strings")
    model = model_t(tflite.write(graph))
    assert all(not t.name for t in model.subgraphs[0].tensors)
    assert model.description is None and model.subgraphs[0].name is None and model.signatureDefs is None
