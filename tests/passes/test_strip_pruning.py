"""strip_pruning on what a TF-MOT-pruned Keras model was exported as, without strip_pruning:
a SavedModel directory (frozen GraphDef out, run in TensorFlow) and a .tflite converted with
resource variables (run in LiteRT). Judged against the pruned Keras model's own outputs on
the digits test split (fixtures/pruned, from fixtures/make_pruned_fixtures.py) and against
TF-MOT's own route (strip_pruning on the Keras object, then the converter)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import graphtool
from graphtool.cli import main
from graphtool.errors import FormatError
from graphtool.formats import graphdef, savedmodel, tflite
from graphtool.passes import PassError, transform

from ..conftest import FIXTURES, run_litert
from ..tf_runtime import run_graphdef

PRUNED = FIXTURES / "pruned"
SAVED_MODEL = PRUNED / "pruned_cnn_savedmodel"
PRUNED_TFLITE = PRUNED / "pruned_cnn.tflite"
TFMOT_TFLITE = PRUNED / "tfmot_stripped.tflite"
MANIFEST = json.loads((PRUNED / "MANIFEST.json").read_text())
TARGET = MANIFEST["model"]["target_sparsity"]
KERNELS = sorted(MANIFEST["model"]["pruned_kernels"])  # conv, fc, probs, pw
OUTPUT_ATOL = 1e-5  # the bound against the pruned Keras model
VARIABLE_OPS = {"VarHandleOp", "ReadVariableOp", "AssignVariableOp", "AssignAddVariableOp", "VariableV2"}
TFLITE_VARIABLE_OPS = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"}


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(PRUNED / "reference.npz"))


@pytest.fixture(scope="module")
def loaded_savedmodel(tf):
    """The SavedModel read once (TensorFlow loads it); tests take copies."""
    return graphtool.load(SAVED_MODEL)


def run_frozen(tf, graph, images):
    signature = graph.meta[savedmodel.SIGNATURE]
    (input_node,) = signature["inputs"].values()
    (output,) = signature["outputs"].values()
    return run_graphdef(tf, graphdef.write(graph), {f"{input_node}:0": images}, f"{output}:0")


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def kernel_sparsity(summary, names) -> dict[str, float]:
    """Zero share of each pruned kernel, found by its layer's name in the weight's name."""
    found = {}
    for name in names:
        (weight,) = [w for w in summary.weights if f"prune_low_magnitude_{name}/" in w.name]
        found[name] = weight.zeros
    return found


def test_reference_outputs_are_on_the_digits_test_split(reference):
    split = np.load(FIXTURES / "tflite" / "digits_test.npz")
    np.testing.assert_array_equal(reference["images"], split["images"])
    np.testing.assert_array_equal(reference["labels"], split["labels"])
    assert accuracy(reference["probs"], reference["labels"]) == float(reference["accuracy"]) > 0.9


# -- SavedModel ---------------------------------------------------------------------------------

def test_savedmodel_reads_as_its_serving_signature_with_the_masked_kernels_as_variables(loaded_savedmodel):
    graph = loaded_savedmodel
    assert graph.format == "graphdef"
    assert graph.meta[savedmodel.SIGNATURE]["key"] == "serving_default"
    assert graph.inputs == ["image"] and len(graph.outputs) == 1
    table = graph.meta[savedmodel.VARIABLES]
    assert sorted(v.name for v in table.values()) == sorted(f"{k}/kernel" for k in KERNELS)
    assert sorted(n.name for n in graph if n.op == "VarHandleOp") == sorted(table)
    assert sum(1 for n in graph if n.op == "AssignVariableOp") == len(KERNELS)
    # every variable only read (batch norm, biases, depthwise kernel, masks) is a Const already
    summary = graphtool.inspect(graph)
    assert sorted(v.name for v in summary.variables) == sorted(table)
    assert savedmodel.unfrozen(graph) == sorted(f"{k}/kernel" for k in KERNELS)


def test_strip_pruning_leaves_a_frozen_graph_equal_to_the_pruned_keras_model(tf, loaded_savedmodel, reference):
    graph = loaded_savedmodel.copy()
    report = transform(graph, "strip_pruning")
    stats = report.passes[0].stats
    assert stats["masked"] == len(KERNELS)
    assert stats["zeros"] == {f"{k}/kernel": TARGET for k in KERNELS}
    ops = {n.op for n in graph}
    assert not ops & (VARIABLE_OPS | {"NoOp"}), ops & (VARIABLE_OPS | {"NoOp"})
    assert not [n.name for n in graph if n.name.endswith("/Mul") or "/mask" in n.name]
    assert all(not graph.control_inputs_of(n.name) for n in graph)
    assert savedmodel.unfrozen(graph) == []
    probs = run_frozen(tf, graph, reference["images"])
    np.testing.assert_allclose(probs, reference["probs"], rtol=0, atol=OUTPUT_ATOL)
    assert accuracy(probs, reference["labels"]) == float(reference["accuracy"])
    assert kernel_sparsity(graphtool.inspect(graph), KERNELS) == {k: TARGET for k in KERNELS}


def test_strip_pruning_applies_the_mask_to_kernels_that_are_not_masked_yet(tf, loaded_savedmodel, reference):
    """A kernel still holding values where its mask is 0 (saved between an optimizer step
    and the next mask update): the frozen weight must be kernel * mask, as Keras computes."""
    graph = loaded_savedmodel.copy()
    table = dict(graph.meta[savedmodel.VARIABLES])
    rng = np.random.default_rng(0)
    for handle, variable in table.items():
        noisy = np.where(variable.value == 0, rng.normal(0, 1, variable.value.shape), variable.value)
        table[handle] = savedmodel.VariableValue(variable.name, noisy.astype(np.float32))
    graph.meta[savedmodel.VARIABLES] = table
    transform(graph, "strip_pruning")
    assert kernel_sparsity(graphtool.inspect(graph), KERNELS) == {k: TARGET for k in KERNELS}
    np.testing.assert_allclose(run_frozen(tf, graph, reference["images"]), reference["probs"], rtol=0,
                               atol=OUTPUT_ATOL)


def test_strip_pruning_first_in_a_longer_pipeline(tf, loaded_savedmodel, reference):
    graph = loaded_savedmodel.copy()
    transform(graph, "strip_pruning remove_nodes(op=Identity) fold_old_batch_norms fold_constants "
                     "strip_unused_nodes")
    assert "FusedBatchNormV3" not in {n.op for n in graph}
    probs = run_frozen(tf, graph, reference["images"])
    np.testing.assert_allclose(probs, reference["probs"], rtol=0, atol=OUTPUT_ATOL)
    assert accuracy(probs, reference["labels"]) == float(reference["accuracy"])


def test_transform_command_writes_a_frozen_graphdef_from_the_directory(tf, tmp_path, reference, capsys):
    out = tmp_path / "stripped.pb"
    assert main(["transform", str(SAVED_MODEL), str(out), "--transforms", "strip_pruning"]) == 0
    assert "strip_pruning: changed" in capsys.readouterr().err
    stripped = graphtool.load(out)
    assert not {n.op for n in stripped} & VARIABLE_OPS
    probs = run_graphdef(tf, out.read_bytes(), {"image:0": reference["images"]}, "Identity:0")
    np.testing.assert_allclose(probs, reference["probs"], rtol=0, atol=OUTPUT_ATOL)


@pytest.mark.tf
def test_inspect_command_reads_the_directory(capsys):
    assert main(["inspect", "--json", str(SAVED_MODEL)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "graphdef"
    assert sorted(v["name"] for v in data["variables"]) == sorted(f"{k}/kernel" for k in KERNELS)


def test_strip_pruning_refuses_a_variable_written_by_anything_else(loaded_savedmodel):
    graph = loaded_savedmodel.copy()
    assign = next(n.name for n in graph if n.op == "AssignVariableOp")
    graph.node(assign).op = "AssignAddVariableOp"
    with pytest.raises(PassError, match="AssignAddVariableOp"):
        transform(graph, "strip_pruning")


def test_strip_pruning_refuses_a_mask_that_is_not_zeros_and_ones(loaded_savedmodel):
    graph = loaded_savedmodel.copy()
    multiply = next(n.name for n in graph if n.op == "Mul" and "prune_low_magnitude_fc" in n.name)
    mask = next(r.node for r in graph.inputs_of(multiply) if graph.node(r.node).op == "Const")
    tensor = graph.node(mask).outputs[0]
    tensor.data = np.full(tensor.data.shape, 0.5, np.float32)
    with pytest.raises(PassError, match="other than 0 and 1"):
        transform(graph, "strip_pruning")


def test_a_plain_savedmodel_loads_frozen_and_computes_what_the_module_does(tf, tmp_path):
    class Affine(tf.Module):
        def __init__(self):
            super().__init__()
            rng = np.random.default_rng(1)
            self.w = tf.Variable(rng.normal(size=(4, 3)).astype(np.float32), name="w")
            self.b = tf.Variable(rng.normal(size=(3,)).astype(np.float32), name="b")

        @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32, name="x")])
        def __call__(self, x):
            return {"y": tf.nn.relu(tf.matmul(x, self.w) + self.b)}

    module = Affine()
    tf.saved_model.save(module, str(tmp_path / "affine"), signatures=module.__call__.get_concrete_function())
    graph = graphtool.load(tmp_path / "affine")
    assert not {n.op for n in graph} & VARIABLE_OPS
    assert graph.meta[savedmodel.VARIABLES] == {}
    x = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(run_frozen(tf, graph, x), module(tf.constant(x))["y"].numpy())
    assert transform(graph, "strip_pruning").passes[0].changed is False


def test_a_savedmodel_with_state_keeps_its_variable_and_strip_pruning_refuses_it(tf, tmp_path):
    class Counter(tf.Module):
        def __init__(self):
            super().__init__()
            self.count = tf.Variable(0.0, name="count")

        @tf.function(input_signature=[tf.TensorSpec((2,), tf.float32, name="x")])
        def __call__(self, x):
            self.count.assign_add(1.0)
            return {"y": x * self.count}

    module = Counter()
    tf.saved_model.save(module, str(tmp_path / "counter"), signatures=module.__call__.get_concrete_function())
    graph = graphtool.load(tmp_path / "counter")
    assert [v.name for v in graph.meta[savedmodel.VARIABLES].values()] == ["count"]
    with pytest.raises(PassError, match="count.*AssignAddVariableOp"):
        transform(graph, "strip_pruning")


@pytest.mark.tf
def test_a_broken_savedmodel_is_a_format_error(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"\x08\x01garbage")
    with pytest.raises(FormatError, match="broken"):
        graphtool.load(broken)


# -- TFLite ---------------------------------------------------------------------------------------

def stripped_tflite(spec: str = "strip_pruning") -> tuple[graphtool.Graph, bytes]:
    graph = graphtool.load(PRUNED_TFLITE)
    transform(graph, spec)
    return graph, tflite.write(graph)


def test_strip_pruning_tflite_leaves_one_subgraph_of_constant_weights():
    graph, data = stripped_tflite()
    assert graph.subgraphs == []
    ops = graphtool.inspect(graphtool.load(data)).ops
    assert not set(ops) & (TFLITE_VARIABLE_OPS | {"TRANSPOSE"}), ops
    assert ops["MUL"] == 1  # the batch norm's scale; the four mask products are folded
    weights = [w for w in graphtool.inspect(graph).weights if w.shape[0] in (16, 32, 10) and len(w.shape) in (2, 4)
               and "prune_low_magnitude_dw" not in w.name]
    assert len(weights) == len(KERNELS)
    assert all(w.zeros == TARGET for w in weights), [(w.name, w.zeros) for w in weights]


@pytest.mark.litert
def test_strip_pruning_tflite_computes_what_the_pruned_keras_model_does(reference):
    _, data = stripped_tflite()
    probs = run_litert(data, [reference["images"]])[0]
    np.testing.assert_allclose(probs, reference["probs"], rtol=0, atol=OUTPUT_ATOL)
    assert accuracy(probs, reference["labels"]) == float(reference["accuracy"])


def test_strip_pruning_tflite_has_no_more_operators_than_tfmot_route():
    """graphtool's route from the exported file vs TF-MOT's from the Keras object."""
    _, ours = stripped_tflite("strip_pruning fold_batch_norms")
    theirs = TFMOT_TFLITE.read_bytes()
    our_ops = graphtool.inspect(graphtool.load(ours)).ops
    their_ops = graphtool.inspect(graphtool.load(theirs)).ops
    assert sum(our_ops.values()) <= sum(their_ops.values()), (our_ops, their_ops)
    assert graphtool.inspect(graphtool.load(ours)).parameters.count == \
        graphtool.inspect(graphtool.load(theirs)).parameters.count


@pytest.mark.litert
def test_strip_pruning_tflite_computes_what_tfmot_route_does(reference):
    _, ours = stripped_tflite("strip_pruning fold_batch_norms")
    images = [reference["images"]]
    np.testing.assert_allclose(run_litert(ours, images)[0], run_litert(TFMOT_TFLITE.read_bytes(), images)[0],
                               rtol=0, atol=OUTPUT_ATOL)
