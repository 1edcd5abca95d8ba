"""strip_unused_nodes on TFLite with --inputs: any tensor an operator computes becomes an input
and what only it needed goes, as the Graph Transform Tool does for GraphDefs. Checked in
LiteRT against the whole model's own intermediate values (bit-identical)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphtool
from graphtool import GraphtoolError
from graphtool.formats import tflite
from graphtool.ir import DType, Graph, Node, Ref, Tensor
from graphtool.passes import transform

from ...analysis.test_split import FC, FLATTEN, MAXPOOL, RESIDUAL_CONV_2, residual_net
from ...conftest import TFLITE_FIXTURES, random_inputs, run_litert

FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
FULL_INT8 = TFLITE_FIXTURES / "full_int8.tflite"


def stripped(data: bytes, inputs: list[str], outputs: list[str] = ()) -> tuple[bytes, dict]:
    graph = graphtool.load(data)
    (report,) = transform(graph, "strip_unused_nodes", inputs=inputs, outputs=list(outputs)).passes
    return tflite.write(graph), report.stats


def intermediates(data: bytes, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor's value when LiteRT runs the whole model, by name."""
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():  # "intended for debugging purposes only": it is what this is
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(model_content=data, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    values = {}
    for detail in interpreter.get_tensor_details():
        try:
            values[detail["name"]] = interpreter.get_tensor(detail["index"]).copy()
        except ValueError:  # constants LiteRT keeps no copy of
            continue
    return values


def assert_runs_like_the_middle_of(whole: bytes, cut: bytes, seed: int = 0) -> None:
    """`cut` fed the whole model's values of its inputs gives the whole model's values of its
    outputs, bit for bit."""
    from ai_edge_litert.interpreter import Interpreter

    values = intermediates(whole, random_inputs(Interpreter(model_content=whole), seed))
    interpreter = Interpreter(model_content=cut)
    names = [d["name"] for d in interpreter.get_input_details()]
    outputs = run_litert(cut, [values[name] for name in names])
    for detail, value in zip(interpreter.get_output_details(), outputs):
        np.testing.assert_array_equal(value, values[detail["name"]])


@pytest.mark.litert
def test_a_middle_tensor_becomes_the_input():
    from ai_edge_litert.interpreter import Interpreter

    whole = FLOAT_CNN.read_bytes()
    cut, stats = stripped(whole, [MAXPOOL], [FC])
    assert stats["inputs_replaced"] == 1 and stats["removed"] > 0 and stats["buffers_dropped"] > 0
    interpreter = Interpreter(model_content=cut)
    (detail,) = interpreter.get_input_details()
    assert detail["name"] == MAXPOOL and list(detail["shape_signature"]) == [-1, 4, 4, 64]
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": [MAXPOOL], "outputs": [FC]}}
    assert {node.op for node in graphtool.load(cut)} == {"Input", "Const", "AVERAGE_POOL_2D", "RESHAPE",
                                                        "FULLY_CONNECTED"}
    for seed in (0, 1):
        assert_runs_like_the_middle_of(whole, cut, seed)


@pytest.mark.litert
def test_a_quantized_input_keeps_its_quantization_and_the_output_its_signature_key():
    from ai_edge_litert.interpreter import Interpreter

    whole = FULL_INT8.read_bytes()
    cut, _ = stripped(whole, [FLATTEN])
    expected = {d["name"]: d for d in Interpreter(model_content=whole).get_tensor_details()}[FLATTEN]
    interpreter = Interpreter(model_content=cut)
    (detail,) = interpreter.get_input_details()
    assert detail["dtype"] == np.int8 and detail["quantization"] == expected["quantization"]
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": [FLATTEN], "outputs": ["probs"]}}
    assert_runs_like_the_middle_of(whole, cut)


@pytest.mark.litert
def test_model_inputs_still_needed_past_the_cut_stay_after_it(tf):
    """Cut before the first residual ADD: its skip input still needs the model's input."""
    from ai_edge_litert.interpreter import Interpreter

    whole = residual_net(tf)
    cut, stats = stripped(whole, [RESIDUAL_CONV_2])
    graph = graphtool.load(cut)
    assert graph.inputs == [RESIDUAL_CONV_2, "serving_default_image:0"] and stats["inputs_replaced"] == 1
    assert Interpreter(model_content=cut).get_signature_list()["serving_default"]["inputs"] == \
        sorted([RESIDUAL_CONV_2, "image"])
    assert [n.op for n in graph].count("CONV_2D") == 3  # the block's first two convolutions went
    assert_runs_like_the_middle_of(whole, cut)


def test_naming_the_inputs_the_model_has_changes_nothing():
    whole = FLOAT_CNN.read_bytes()
    cut, stats = stripped(whole, ["serving_default_image:0"])
    assert cut == whole and stats["inputs_replaced"] == 0 and not any(stats.values())


def test_the_same_cut_gives_the_same_bytes():
    whole = FULL_INT8.read_bytes()
    assert stripped(whole, [MAXPOOL], [FC])[0] == stripped(whole, [MAXPOOL], [FC])[0]


def two_outputs() -> Graph:
    """x -> UNPACK -> (a, b) -> ADD(a, b): an operator with two outputs."""
    graph = Graph("g", format="tflite")
    graph.add_node(Node("x", "Input", outputs=[Tensor("x", DType.FLOAT32, (2, 3))]))
    graph.add_node(Node("a", "UNPACK", {"num": 2, "axis": 0},
                        outputs=[Tensor("a", DType.FLOAT32, (3,)), Tensor("b", DType.FLOAT32, (3,))],
                        meta={"version": 1, "tflite.options_type": "UnpackOptions"}), ["x"])
    graph.add_node(Node("sum", "ADD", {"fused_activation_function": 0}, outputs=[Tensor("sum", DType.FLOAT32, (3,))],
                        meta={"version": 1, "tflite.options_type": "AddOptions"}), ["a", Ref("a", 1)])
    graph.inputs, graph.outputs = ["x"], [Ref("sum")]
    return graph


@pytest.mark.parametrize("inputs, message", [
    (["a"], "'a' cannot become an input: its operator 'a' \\(UNPACK\\) is still needed for another of its outputs"),
    (["nope"], "no tensor named 'nope' in the main subgraph"),
])
def test_refusals_name_the_tensor(inputs, message):
    graph = two_outputs()
    with pytest.raises(GraphtoolError, match=message):
        transform(graph, "strip_unused_nodes", inputs=inputs)


def test_both_outputs_of_an_operator_may_become_inputs():
    graph = two_outputs()
    transform(graph, "strip_unused_nodes", inputs=["a", "a:1"])
    assert graph.inputs == ["a", "b"] and [n.op for n in graph] == ["ADD", "Input", "Input"]
    assert graphtool.load(tflite.write(graph)).inputs == ["a", "b"]


def test_a_constant_is_refused_as_an_input():
    graph = graphtool.load(FLOAT_CNN)
    weights = next(node.name for node in graph if node.op == "Const")
    with pytest.raises(GraphtoolError, match=f"'{weights}' is a constant: an input must be a tensor an operator"):
        transform(graph, "strip_unused_nodes", inputs=[weights])
