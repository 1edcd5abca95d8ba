"""graphtool.split: converter-made models cut at tensors, the parts chained in LiteRT giving
bit-identical outputs to the whole model; skip connections crossing cuts; quantized cut
tensors; signature defs of the parts; refusals; all-or-nothing output directories."""
from __future__ import annotations

import os

import numpy as np
import pytest

import graphtool
from graphtool import GraphtoolError
from graphtool.analysis.split import SplitError, SplitReport, split
from graphtool.formats import tflite
from graphtool.formats.tflite import keys
from graphtool.ir import DType, Graph, Node, Ref, Tensor

from ..conftest import FIXTURES, TFLITE_FIXTURES, random_inputs, run_litert

FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
FULL_INT8 = TFLITE_FIXTURES / "full_int8.tflite"
MAXPOOL, FLATTEN = "digits_cnn/maxpool/MaxPool", "digits_cnn/flatten/Reshape"
FC = "digits_cnn/fc/MatMul;digits_cnn/fc/Relu;digits_cnn/fc/BiasAdd"
SPARSE_FC1 = "digits_mlp/fc1/MatMul;digits_mlp/fc1/Relu;digits_mlp/fc1/BiasAdd2"
SPARSE_FC2 = "digits_mlp/fc2/MatMul;digits_mlp/fc2/Relu;digits_mlp/fc2/BiasAdd2"
# the residual net's tensors: two blocks h + conv(relu(conv(h))), each ending in ADD + ReLU
RESIDUAL_INNER_1, RESIDUAL_INNER_2 = "Relu_1;Conv2D_1", "Relu_3;Conv2D_3"
RESIDUAL_ADD_1, RESIDUAL_CONV_2, RESIDUAL_CONV_4 = "Relu_2;add", "Conv2D_21", "Conv2D_41"


def residual_net(tf) -> bytes:
    """A ResNet-style CNN by TensorFlow's converter: conv + ReLU, then two residual blocks
    (h -> relu(h + conv(relu(conv(h))))), flatten, a dense layer; serving_default signature."""
    rng = np.random.default_rng(0)
    stem = rng.normal(0, 0.5, (3, 3, 1, 8)).astype(np.float32)
    kernels = [rng.normal(0, 0.2, (3, 3, 8, 8)).astype(np.float32) for _ in range(4)]
    dense = rng.normal(0, 0.1, (8 * 8 * 8, 10)).astype(np.float32)

    def net(image):
        h = tf.nn.relu(tf.nn.conv2d(image, stem, 1, "SAME"))
        for block in range(2):
            r = tf.nn.relu(tf.nn.conv2d(h, kernels[2 * block], 1, "SAME"))
            h = tf.nn.relu(h + tf.nn.conv2d(r, kernels[2 * block + 1], 1, "SAME"))
        return {"logits": tf.matmul(tf.reshape(h, (-1, 8 * 8 * 8)), dense)}

    module = tf.Module()
    module.net = tf.function(net, input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32, name="image")])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.net.get_concrete_function()], module)
    return bytes(converter.convert())


@pytest.fixture(scope="module")
def residual(tf) -> bytes:
    return residual_net(tf)


def model_bytes(name: str, residual_model: bytes | None = None) -> bytes:
    return residual_model if name == "residual" else (TFLITE_FIXTURES / f"{name}.tflite").read_bytes()


def chain(report: SplitReport, model_inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run the parts in LiteRT one after the other, each on the tensors it names: the model's
    inputs and the outputs of the parts before it. Returns the model's outputs."""
    values = dict(zip(report.inputs, model_inputs))
    for part in report.parts:
        values.update(zip(part.outputs, run_litert(part.data, [values[name] for name in part.inputs])))
    return [values[name] for name in report.outputs]


def assert_chain_is_the_model(data: bytes, report: SplitReport, seeds: tuple[int, ...] = (0, 1, 2)) -> None:
    from ai_edge_litert.interpreter import Interpreter

    for seed in seeds:
        inputs = random_inputs(Interpreter(model_content=data), seed)
        whole = run_litert(data, inputs)
        parts = chain(report, inputs)
        assert len(parts) == len(whole)
        for a, b in zip(parts, whole):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


# -- the chain of parts is the model ---------------------------------------------------------------

CUTS = {  # model -> cut points; each is split at either one and at both
    "float_cnn": (MAXPOOL, FLATTEN),
    "full_int8": (MAXPOOL, FC),
    "residual": (RESIDUAL_INNER_1, RESIDUAL_INNER_2),
    "sparse": (SPARSE_FC1, SPARSE_FC2),  # an MLP whose weights DENSIFY: constant operators go with their users
}
CASES = [pytest.param(name, at, id=f"{name}-{'+'.join(str(i) for i, _ in enumerate(points) if _ in at)}",
                      marks=[pytest.mark.tf] if name == "residual" else [])  # the converter makes it
         for name, points in CUTS.items() for at in ([points[0]], [points[1]], list(points))]


@pytest.mark.litert
@pytest.mark.parametrize("name, at", CASES)
def test_the_parts_chained_in_litert_are_the_model_bit_for_bit(request, name, at):
    data = model_bytes(name, request.getfixturevalue("residual") if name == "residual" else None)
    report = split(data, at)
    assert len(report.parts) == len(at) + 1
    assert report.parts[0].inputs == report.inputs and report.parts[-1].outputs == report.outputs
    original = sum(1 for node in graphtool.load(data) if node.op not in ("Input", "Const"))
    assert sum(part.operators for part in report.parts) >= original
    assert_chain_is_the_model(data, report)


@pytest.mark.litert
def test_skip_connections_cross_the_cuts_as_extra_outputs_and_inputs(residual):
    """Cut inside both residual blocks: each block's input h is still needed by its ADD after
    the cut, so the part before passes it on beside the cut tensor."""
    report = split(residual, [RESIDUAL_INNER_1, RESIDUAL_INNER_2])
    first, second, third = report.parts
    assert first.outputs == ["Relu;Conv2D", RESIDUAL_INNER_1]
    assert second.inputs == ["Relu;Conv2D", RESIDUAL_INNER_1]
    assert second.outputs == [RESIDUAL_ADD_1, RESIDUAL_INNER_2]
    assert third.inputs == [RESIDUAL_ADD_1, RESIDUAL_INNER_2] and third.outputs == ["PartitionedCall:0"]
    assert_chain_is_the_model(residual, report)
    later = split(residual, [RESIDUAL_CONV_2, RESIDUAL_CONV_4])  # cut before each ADD: the skip jumps a part
    assert [part.inputs for part in later.parts] == [
        ["serving_default_image:0"], ["Relu;Conv2D", RESIDUAL_CONV_2], [RESIDUAL_ADD_1, RESIDUAL_CONV_4]]
    assert_chain_is_the_model(residual, later)


@pytest.mark.litert
def test_the_parts_keep_a_signature_def_naming_their_inputs_and_outputs(residual):
    from ai_edge_litert.interpreter import Interpreter

    report = split(residual, [RESIDUAL_INNER_1, RESIDUAL_INNER_2])
    lists = [Interpreter(model_content=part.data).get_signature_list() for part in report.parts]
    assert lists[0] == {"serving_default": {"inputs": ["image"], "outputs": ["Relu;Conv2D", RESIDUAL_INNER_1]}}
    assert lists[1]["serving_default"]["inputs"] == sorted(["Relu;Conv2D", RESIDUAL_INNER_1])
    assert lists[2] == {"serving_default": {"inputs": sorted([RESIDUAL_ADD_1, RESIDUAL_INNER_2]),
                                            "outputs": ["logits"]}}
    x = np.random.default_rng(3).standard_normal((1, 8, 8, 1)).astype(np.float32)
    values = {"image": x}
    for part in report.parts:  # the signature runners chain too, by key
        runner = Interpreter(model_content=part.data).get_signature_runner("serving_default")
        keys = Interpreter(model_content=part.data).get_signature_list()["serving_default"]["inputs"]
        values.update(runner(**{key: values[key] for key in keys}))
    expected = Interpreter(model_content=residual).get_signature_runner()(image=x)["logits"]
    np.testing.assert_array_equal(values["logits"], expected)


@pytest.mark.litert
def test_quantized_cut_tensors_keep_their_quantization():
    from ai_edge_litert.interpreter import Interpreter

    data = FULL_INT8.read_bytes()
    whole = {d["name"]: d for d in Interpreter(model_content=data).get_tensor_details()}
    report = split(data, [MAXPOOL, FC])
    for part in report.parts:
        interpreter = Interpreter(model_content=part.data)
        for detail in interpreter.get_input_details() + interpreter.get_output_details():
            expected = whole[detail["name"]]
            assert detail["dtype"] == expected["dtype"] == np.int8
            assert detail["quantization"] == expected["quantization"] and detail["quantization"][0] > 0
            np.testing.assert_array_equal(detail["shape_signature"], expected["shape_signature"])


def test_parts_keep_op_versions_and_drop_what_they_do_not_use():
    graph = graphtool.load(FULL_INT8)
    versions = {node.name: node.meta["version"] for node in graph if node.op not in ("Input", "Const")}
    report = split(graph, [MAXPOOL, FC])
    for part in report.parts:
        again = graphtool.load(part.data)
        assert {n.name: n.meta["version"] for n in again if n.op not in ("Input", "Const")}.items() <= versions.items()
        codes = {(code.get("builtin_code"), code.get("version")) for code in again.meta["tflite.operator_codes"]}
        assert len(codes) == len(again.meta["tflite.operator_codes"]) == len({n.op for n in again
                                                                               if n.op not in ("Input", "Const")})
    assert sum(part.size for part in report.parts) < 2 * FULL_INT8.stat().st_size  # weights go to one part each


def test_parts_go_without_the_whole_models_io_metadata():
    """TFLite Support metadata and its zipped labels describe the model's inputs and outputs;
    a part has others, so it keeps the rest of the metadata but not those."""
    graph = graphtool.load(FLOAT_CNN)
    graphtool.transform(graph, [("set_metadata", {"file": str(FIXTURES / "metadata" / "digits_classifier.json")})])
    written = graphtool.load(tflite.write(graph))
    assert keys.SUPPORT_METADATA in written.meta[keys.METADATA] and written.meta.get(keys.ASSOCIATED_FILES)
    for part in split(written, [MAXPOOL]).parts:
        again = graphtool.load(part.data)
        assert keys.SUPPORT_METADATA not in again.meta[keys.METADATA]
        assert not again.meta.get(keys.ASSOCIATED_FILES)
        assert "min_runtime_version" in again.meta[keys.METADATA]


def test_the_same_split_gives_the_same_bytes_and_leaves_the_model_alone():
    graph = graphtool.load(FLOAT_CNN)
    before = tflite.write(graph)
    first, second = split(graph, [MAXPOOL, FLATTEN]), split(FLOAT_CNN, f"{MAXPOOL},{FLATTEN}")
    assert [p.data for p in first.parts] == [p.data for p in second.parts]
    assert tflite.write(graph) == before
    assert first.to_dict() == second.to_dict()


def test_to_dict_is_the_parts_names_and_sizes(tmp_path):
    report = split(FLOAT_CNN, [MAXPOOL], tmp_path / "parts")
    data = report.to_dict()
    assert data["inputs"] == ["serving_default_image:0"] and data["outputs"] == ["StatefulPartitionedCall:0"]
    assert [part["path"] for part in data["parts"]] == [str(tmp_path / "parts" / f"part_{i}.tflite") for i in (0, 1)]
    for part in data["parts"]:
        assert part["size"] == os.path.getsize(part["path"]) and set(part) == {
            "index", "path", "inputs", "outputs", "operators", "size"}
    assert data["parts"][0]["outputs"] == data["parts"][1]["inputs"] == [MAXPOOL]
    assert sorted(os.listdir(tmp_path)) == ["parts"]  # the staging directory is gone


# -- refusals --------------------------------------------------------------------------------------

@pytest.mark.parametrize("at, message", [
    (["nope"], "no tensor named 'nope'"),
    (["serving_default_image:0"], "is an input"),
    ([MAXPOOL, MAXPOOL], "is given twice"),
    ([FLATTEN, MAXPOOL], "a later cut: give the cuts in the order they are computed"),
    (["StatefulPartitionedCall:0"], "part 1 would compute nothing"),
    ([MAXPOOL, "digits_cnn/avgpool/AvgPool"], None),  # one operator between: fine
    ([], "give the tensors to cut at"),
])
def test_bad_cuts_are_refused_in_one_line(at, message):
    if message is None:
        assert len(split(FLOAT_CNN, at).parts) == 3
        return
    with pytest.raises(GraphtoolError, match=message.replace("(", r"\(")) as caught:
        split(FLOAT_CNN, at)
    assert "\n" not in str(caught.value)


def test_a_cut_at_a_constant_is_refused():
    graph = graphtool.load(FLOAT_CNN)
    weights = next(node.name for node in graph if node.op == "Const")
    with pytest.raises(SplitError, match="is a constant: cut at tensors operators compute"):
        split(graph, [weights])


@pytest.mark.parametrize("name, message", [
    ("control_flow.tflite", "runs other subgraphs: split cuts models without control flow"),
    ("resource_variables.tflite", "holds state"),
    ("multi_signature.tflite", r"2 subgraphs \(signatures 'decode', 'encode'\): split cuts one"),
])
def test_state_control_flow_and_several_subgraphs_are_refused(name, message):
    with pytest.raises(SplitError, match=message):
        split(TFLITE_FIXTURES / name, ["x"])


def test_a_graphdef_is_refused():
    with pytest.raises(SplitError, match="split cuts TFLite models; this is a graphdef model"):
        split(graphtool.load(TFLITE_FIXTURES.parent / "graphdef" / "keras2_cnn.pb"), ["x"])


def test_tensors_passed_between_parts_need_distinct_names():
    graph = graphtool.load(FLOAT_CNN)
    graph.node(MAXPOOL).outputs[0].name = "serving_default_image:0"
    with pytest.raises(SplitError, match="pass between parts under one name, 'serving_default_image:0': rename"):
        split(graph, [MAXPOOL])


def test_an_output_computed_from_constants_only_is_refused():
    graph = Graph("g", format="tflite")
    graph.add_node(Node("x", "Input", outputs=[Tensor("x", DType.FLOAT32, (2,))]))
    graph.add_node(Node("c", "Const", outputs=[Tensor("c", DType.FLOAT32, (2,), np.ones(2, np.float32))]))
    for name, inputs in (("y", ["x", "x"]), ("z", ["y", "y"]), ("k", ["c", "c"])):
        graph.add_node(Node(name, "ADD", outputs=[Tensor(name, DType.FLOAT32, (2,))], meta={"version": 1}), inputs)
    graph.inputs, graph.outputs = ["x"], [Ref("z"), Ref("k")]
    with pytest.raises(SplitError, match="output 'k' is computed from constants only"):
        split(graph, ["y"])
    with pytest.raises(SplitError, match="'k' is computed from constants only: cut at tensors computed from"):
        split(graph, ["k"])


# -- the output directory --------------------------------------------------------------------------

def test_an_existing_non_empty_directory_is_refused_before_any_work(tmp_path):
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "keep.txt").write_text("mine")
    with pytest.raises(SplitError, match="exists and is not an empty directory"):
        split(tmp_path / "missing.tflite", [MAXPOOL], tmp_path / "parts")
    assert os.listdir(tmp_path / "parts") == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(SplitError, match="exists and is not an empty directory"):
        split(FLOAT_CNN, [MAXPOOL], tmp_path / "file")


def test_an_empty_directory_is_filled(tmp_path):
    (tmp_path / "parts").mkdir()
    report = split(FLOAT_CNN, [MAXPOOL], tmp_path / "parts")
    assert sorted(os.listdir(tmp_path / "parts")) == ["part_0.tflite", "part_1.tflite"]
    assert [p.data for p in report.parts] == [None, None]
    again = split(FLOAT_CNN, [MAXPOOL])
    assert [(tmp_path / "parts" / f"part_{i}.tflite").read_bytes() for i in (0, 1)] == [p.data for p in again.parts]


def test_a_failed_split_leaves_no_directory(tmp_path):
    with pytest.raises(GraphtoolError):
        split(FLOAT_CNN, ["nope"], tmp_path / "parts")
    graph = graphtool.load(FLOAT_CNN)
    graph.meta["tflite.unknown"] = ["a field from a newer schema"]  # writing the parts fails
    with pytest.raises(GraphtoolError, match="newer schema"):
        split(graph, [MAXPOOL], tmp_path / "parts")
    assert os.listdir(tmp_path) == []
