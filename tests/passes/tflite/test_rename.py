"""rename_node and rename_signature on TFLite: LiteRT shows the new names, the outputs stay
bit-identical, and nothing but the names changes in the file."""
from __future__ import annotations

import numpy as np
import pytest

import graphtool
from graphtool import GraphtoolError
from graphtool.formats import tflite
from graphtool.passes import transform

from ...conftest import TFLITE_FIXTURES, random_inputs, run_litert

FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
FULL_INT8 = TFLITE_FIXTURES / "full_int8.tflite"
MULTI = TFLITE_FIXTURES / "multi_signature.tflite"
IMAGE, PROBS = "serving_default_image:0", "StatefulPartitionedCall:0"
MAXPOOL = "digits_cnn/maxpool/MaxPool"


def renamed(path, spec: str) -> tuple[bytes, list[dict]]:
    graph = graphtool.load(path)
    report = transform(graph, spec)
    return tflite.write(graph), [p.stats for p in report.passes]


def assert_same_outputs(before: bytes, after: bytes) -> None:
    from ai_edge_litert.interpreter import Interpreter

    for seed in (0, 1):
        inputs = random_inputs(Interpreter(model_content=before), seed)
        for x, y in zip(run_litert(before, inputs), run_litert(after, inputs)):
            np.testing.assert_array_equal(y, x)


def tensor_names(data: bytes) -> list[str]:
    return [t.name for node in graphtool.load(data) for t in node.outputs]


# -- rename_node -----------------------------------------------------------------------------------

@pytest.mark.litert
@pytest.mark.parametrize("path", [FLOAT_CNN, FULL_INT8])
def test_rename_node_renames_inputs_and_outputs_in_litert(path):
    from ai_edge_litert.interpreter import Interpreter

    before = path.read_bytes()
    after, stats = renamed(path, f'rename_node(old_node_name="{IMAGE}", new_node_name=pixels) '
                                 f'rename_node(old_node_name="{PROBS}", new_node_name=scores)')
    assert stats == [{"renamed": 1}, {"renamed": 1}]
    interpreter = Interpreter(model_content=after)
    assert [d["name"] for d in interpreter.get_input_details()] == ["pixels"]
    assert [d["name"] for d in interpreter.get_output_details()] == ["scores"]
    assert interpreter.get_signature_list() == Interpreter(model_content=before).get_signature_list()
    original = Interpreter(model_content=before).get_input_details()[0]
    detail = interpreter.get_input_details()[0]
    assert detail["quantization"] == original["quantization"]
    np.testing.assert_array_equal(detail["shape_signature"], original["shape_signature"])
    assert_same_outputs(before, after)


@pytest.mark.litert
def test_rename_node_renames_a_middle_tensor_and_its_operator():
    from ai_edge_litert.interpreter import Interpreter

    before = FLOAT_CNN.read_bytes()
    after, _ = renamed(FLOAT_CNN, f"rename_node(old_node_name={MAXPOOL}, new_node_name=pooled)")
    graph = graphtool.load(after)
    assert graph.node("pooled").op == "MAX_POOL_2D" and MAXPOOL not in graph
    details = {d["name"] for d in Interpreter(model_content=after).get_tensor_details()}
    assert "pooled" in details and MAXPOOL not in details
    assert_same_outputs(before, after)


def test_only_the_name_changes_in_the_file():
    before = FLOAT_CNN.read_bytes()
    after, _ = renamed(FLOAT_CNN, f"rename_node(old_node_name={MAXPOOL}, new_node_name=pooled)")
    assert [name for name in tensor_names(before) if name != MAXPOOL] == \
        [name for name in tensor_names(after) if name != "pooled"]
    again, _ = renamed(after, f"rename_node(old_node_name=pooled, new_node_name={MAXPOOL})")
    assert again == before  # and back: the same bytes


def test_rename_node_finds_a_tensor_in_another_subgraph():
    after, stats = renamed(MULTI, 'rename_node(old_node_name="encode_x:0", new_node_name=x)')
    graph = graphtool.load(after)
    assert stats == [{"renamed": 1}] and graph.subgraphs[0].inputs == ["x"]
    signature = next(sig for sig in graph.meta["signature_defs"] if sig["key"] == "encode")
    assert [(key, t.name) for key, t in signature["inputs"]] == [("x", "x")]


@pytest.mark.parametrize("spec, message", [
    ("rename_node(old_node_name=nope, new_node_name=x)", "no tensor named 'nope'"),
    (f'rename_node(old_node_name="{IMAGE}", new_node_name={MAXPOOL})', f"a tensor named '{MAXPOOL}' already exists"),
    ("rename_node(new_node_name=x)", "give old_node_name and new_node_name"),
])
def test_rename_node_refusals(spec, message):
    with pytest.raises(GraphtoolError, match=message):
        transform(graphtool.load(FLOAT_CNN), spec)


def test_rename_node_refuses_a_name_several_subgraphs_have():
    graph = graphtool.load(MULTI)
    graph.subgraphs[0].node("MatMul2").outputs[0].name = "MatMul1"
    with pytest.raises(GraphtoolError, match="'MatMul1' names tensors in subgraphs 0, 1"):
        transform(graph, "rename_node(old_node_name=MatMul1, new_node_name=y)")


# -- rename_signature ------------------------------------------------------------------------------

@pytest.mark.litert
def test_rename_signature_renames_the_key_and_its_inputs_and_outputs_in_litert():
    from ai_edge_litert.interpreter import Interpreter

    before = FLOAT_CNN.read_bytes()
    after, stats = renamed(FLOAT_CNN, "rename_signature(old_name=serving_default, new_name=classify, "
                                      "old_input_name=image, new_input_name=pixels, "
                                      "old_output_name=probs, new_output_name=scores)")
    assert stats == [{"signatures_renamed": 1, "inputs_renamed": 1, "outputs_renamed": 1}]
    interpreter = Interpreter(model_content=after)
    assert interpreter.get_signature_list() == {"classify": {"inputs": ["pixels"], "outputs": ["scores"]}}
    assert [d["name"] for d in interpreter.get_input_details()] == [IMAGE]  # tensor names stay
    x = np.random.default_rng(0).random((2, 8, 8, 1), np.float32)
    expected = Interpreter(model_content=before).get_signature_runner("serving_default")(image=x)["probs"]
    np.testing.assert_array_equal(interpreter.get_signature_runner("classify")(pixels=x)["scores"], expected)
    assert_same_outputs(before, after)


@pytest.mark.litert
def test_rename_signature_picks_one_of_several():
    from ai_edge_litert.interpreter import Interpreter

    after, _ = renamed(MULTI, "rename_signature(old_name=encode, new_name=embed, old_output_name=code, "
                              "new_output_name=embedding)")
    signatures = Interpreter(model_content=after).get_signature_list()
    assert signatures["embed"] == {"inputs": ["x"], "outputs": ["embedding"]}
    assert signatures["decode"] == Interpreter(model_path=str(MULTI)).get_signature_list()["decode"]
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    expected = Interpreter(model_path=str(MULTI)).get_signature_runner("encode")(x=x)["code"]
    np.testing.assert_array_equal(Interpreter(model_content=after).get_signature_runner("embed")(x=x)["embedding"],
                                  expected)


def test_rename_signature_keys_can_swap_and_only_keys_change():
    graph = graphtool.load(MULTI)
    transform(graph, "rename_signature(old_name=decode, old_input_name=code, new_input_name=gain, "
                     "old_input_name=gain, new_input_name=code)")
    (decode,) = [sig for sig in graph.meta["signature_defs"] if sig["key"] == "decode"]
    assert [(key, t.name) for key, t in decode["inputs"]] == [("gain", "decode_code:0"), ("code", "decode_gain:0")]
    back = graphtool.load(tflite.write(graph))
    transform(back, "rename_signature(old_name=decode, old_input_name=code, new_input_name=gain, "
                    "old_input_name=gain, new_input_name=code)")
    assert tflite.write(back) == MULTI.read_bytes()


@pytest.mark.parametrize("path, spec, message", [
    (MULTI, "rename_signature(new_name=x)", "has 2 signatures \\('decode', 'encode'\\): give old_name"),
    (MULTI, "rename_signature(old_name=nope, new_name=x)", "no signature named 'nope'"),
    (MULTI, "rename_signature(old_name=decode, new_name=encode)", "a signature named 'encode' already exists"),
    (FLOAT_CNN, "rename_signature(old_input_name=pixels, new_input_name=x)", "no 'serving_default' input named 'pixels'"),
    (FLOAT_CNN, "rename_signature(old_input_name=image)", "1 old and 0 new input names"),
    (MULTI, "rename_signature(old_name=decode, old_input_name=code, new_input_name=gain)",
     "two 'decode' inputs would be named 'gain'"),
    (FLOAT_CNN, "rename_signature", "nothing to rename"),
])
def test_rename_signature_refusals(path, spec, message):
    with pytest.raises(GraphtoolError, match=message):
        transform(graphtool.load(path), spec)


def test_rename_signature_refuses_a_model_without_signature_defs():
    graph = graphtool.load(FLOAT_CNN)
    graph.meta["signature_defs"] = None
    with pytest.raises(GraphtoolError, match="the model has no signature defs"):
        transform(graph, "rename_signature(new_name=x)")
