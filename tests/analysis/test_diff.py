"""diff: a model against itself lists nothing; after fold_batch_norms the removed batch norms
and the changed conv weights; after quantize_weights the dtype changes and the SQNR of each
weight. Node sets are checked against TensorFlow's own parsers (graph_pb2, the TFLite
schema object API), numbers against numpy on the values those parsers read."""
from __future__ import annotations

import importlib
import json
import math
from collections import Counter

import numpy as np
import pytest

import graphtool
from graphtool.analysis.diff import diff, match_nodes
from graphtool.cli import diff_cmd
from graphtool.errors import GraphtoolError
from graphtool.ir import make_const

from ..conftest import GRAPHDEF_FIXTURES, TFLITE_FIXTURES, graphdef_fixture_paths, tflite_fixture_paths

CLI = importlib.import_module("graphtool.cli.main")
CNN = GRAPHDEF_FIXTURES / "keras2_cnn.pb"
FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
FOLD = "remove_nodes(op=Identity) fold_batch_norms fold_old_batch_norms"
ALL_FIXTURES = graphdef_fixture_paths() + tflite_fixture_paths()


def run_cli(monkeypatch, capsys, *argv) -> tuple[int, str, str]:
    """`graphtool diff ...` in this process (registering the command if main does not yet)."""
    if diff_cmd not in CLI.COMMANDS:
        monkeypatch.setattr(CLI, "COMMANDS", (*CLI.COMMANDS, diff_cmd))
    code = CLI.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def folded_cnn(tmp_path):
    graph = graphtool.load(CNN)
    graphtool.transform(graph, FOLD, outputs=["Identity"])
    path = tmp_path / "folded.pb"
    graphtool.save(graph, path)
    return path


# -- the same model --------------------------------------------------------------------------

@pytest.mark.parametrize("ignore_names", [False, True], ids=["by-name", "ignore-names"])
@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_a_model_diffed_with_itself_lists_nothing(path, ignore_names):
    report = diff(path, path, ignore_names=ignore_names)
    assert report.same
    assert not (report.removed or report.added or report.renamed or report.changed or report.weights
                or report.graph)
    assert report.nodes_a == report.nodes_b > 0


def test_cli_same_model_exits_0_and_prints_nothing(monkeypatch, capsys):
    for path in (CNN, FLOAT_CNN, TFLITE_FIXTURES / "control_flow.tflite"):
        code, out, err = run_cli(monkeypatch, capsys, "diff", path, path)
        assert (code, out, err) == (0, "", "")


# -- after fold_batch_norms ------------------------------------------------------------------

def test_fold_batch_norms_lists_removed_batch_norm_nodes_and_changed_conv_weights(tf, tmp_path):
    folded = folded_cnn(tmp_path)
    report = diff(CNN, folded)
    before = {n.name: n for n in tf.compat.v1.GraphDef.FromString(CNN.read_bytes()).node}
    after = {n.name: n for n in tf.compat.v1.GraphDef.FromString(folded.read_bytes()).node}

    assert {n.name for n in report.removed} == set(before) - set(after)
    assert {n.name for n in report.added} == set(after) - set(before)
    assert not report.renamed
    # every batch norm parameter is gone, and the batch norms themselves became BiasAdds
    bn_params = {i.split(":")[0] for n in before.values() if n.op == "FusedBatchNormV3" for i in n.input[1:]}
    assert bn_params <= {n.name for n in report.removed}
    changed = {c.name: c for c in report.changed}
    for bn in (n for n in before.values() if n.op == "FusedBatchNormV3"):
        ops = [(c.a, c.b) for c in changed[bn.name].changes if c.what == "op"]
        assert ops == [("FusedBatchNormV3", after[bn.name].op)] == [("FusedBatchNormV3", "BiasAdd")]

    # the conv weights changed, by what numpy says on TensorFlow's reading of both files
    conv_weights = {n.input[1] for n in before.values() if n.op in ("Conv2D", "DepthwiseConv2dNative")}
    conv_weights = {before[w].input[0] if before[w].op == "Identity" else w for w in conv_weights}
    weights = {w.name: w for w in report.weights}
    assert set(weights) == conv_weights
    for name in conv_weights:
        old = tf.make_ndarray(before[name].attr["value"].tensor).astype(np.float64)
        new = tf.make_ndarray(after[name].attr["value"].tensor).astype(np.float64)
        w = weights[name]
        assert w.dtype_a == w.dtype_b == "float32" and w.shape == list(old.shape)
        assert w.max_abs == pytest.approx(np.max(np.abs(new - old)), rel=1e-12) and w.max_abs > 0
        assert w.rel_l2 == pytest.approx(np.linalg.norm(new - old) / np.linalg.norm(old), rel=1e-9)
        assert w.sqnr_db == pytest.approx(10 * math.log10(np.sum(old ** 2) / np.sum((new - old) ** 2)), rel=1e-9)


def test_cli_text_after_fold_is_grouped_like_a_unified_diff(monkeypatch, capsys, tmp_path):
    folded = folded_cnn(tmp_path)
    code, out, err = run_cli(monkeypatch, capsys, "diff", CNN, folded)
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"--- {CNN}") and lines[1].startswith(f"+++ {folded}")
    assert "- keras2_cnn/bn1/ReadVariableOp/resource  (Const float32 [4])" in lines
    assert "+ keras2_cnn/conv/Conv2D_bn_offset  (Const float32 [4])" in lines
    assert "-   op: FusedBatchNormV3" in lines and "+   op: BiasAdd" in lines
    sections = [line for line in lines if line.startswith("@@")]
    assert [s.split(":")[0] for s in sections] == ["@@ removed", "@@ added", "@@ changed", "@@ weights"]
    assert any(line.startswith("  keras2_cnn/conv/Conv2D/ReadVariableOp/resource float32 [3,3,1,4]: max abs")
               and "SQNR" in line for line in lines)


def test_cli_json_is_the_report_as_a_dict(monkeypatch, capsys, tmp_path):
    folded = folded_cnn(tmp_path)
    code, out, _ = run_cli(monkeypatch, capsys, "diff", CNN, folded, "--json")
    assert code == 1
    assert json.loads(out) == json.loads(json.dumps(diff(CNN, folded).to_dict()))
    assert json.loads(out)["same"] is False
    code, out, _ = run_cli(monkeypatch, capsys, "diff", CNN, CNN, "--json")
    assert code == 0 and json.loads(out)["same"] is True


# -- after quantize_weights ------------------------------------------------------------------

def model_t(data: bytes):
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def tensor_values(model, tensor) -> np.ndarray:
    """A constant's real values, read with TensorFlow's schema object API."""
    raw = np.asarray(model.buffers[tensor.buffer].data, np.uint8)
    dtype = {0: np.float32, 9: np.int8}[tensor.type]
    values = raw.view(dtype).reshape(tensor.shape).astype(np.float64)
    q = tensor.quantization
    if tensor.type == 9:
        shape = [1] * values.ndim
        shape[q.quantizedDimension] = -1
        values = (values - np.reshape(q.zeroPoint, shape)) * np.reshape(q.scale, shape)
    return values


@pytest.mark.tf
def test_quantize_weights_lists_dtype_changes_and_sqnr_per_weight(tmp_path):
    graph = graphtool.load(FLOAT_CNN)
    graphtool.transform(graph, "quantize_weights")
    quantized = tmp_path / "quantized.tflite"
    graphtool.save(graph, quantized)
    report = diff(FLOAT_CNN, quantized)

    before, after = model_t(FLOAT_CNN.read_bytes()), model_t(quantized.read_bytes())
    tensors_before = {t.name.decode(): t for t in before.subgraphs[0].tensors}
    tensors_after = {t.name.decode(): t for t in after.subgraphs[0].tensors}
    retyped = {name for name, t in tensors_after.items() if t.type != tensors_before[name].type}
    assert retyped and all(tensors_after[n].type == 9 for n in retyped)  # INT8

    weights = {w.name: w for w in report.weights}
    assert set(weights) == retyped
    dtype_changes = {c.name: [(x.a, x.b) for x in c.changes if x.what == "output:0.dtype"] for c in report.changed}
    for name in retyped:
        assert dtype_changes[name] == [("float32", "int8")]
        w = weights[name]
        assert (w.dtype_a, w.dtype_b, w.quantization_a) == ("float32", "int8", None)
        assert w.quantization_b.startswith("per-channel")
        old = tensor_values(before, tensors_before[name])
        new = tensor_values(after, tensors_after[name])
        sqnr = 10 * math.log10(np.sum(old ** 2) / np.sum((new - old) ** 2))
        assert w.sqnr_db == pytest.approx(sqnr, rel=1e-6)
        assert 30 < w.sqnr_db < 60  # int8 per channel: ~44-47 dB measured on this model
        assert w.max_abs == pytest.approx(np.max(np.abs(new - old)), rel=1e-6)
        assert w.zeros_b == pytest.approx(np.mean(new == 0))
    versions = [c for c in report.changed if any(x.what == "version" for x in c.changes)]
    assert {c.op for c in versions} == {"CONV_2D", "FULLY_CONNECTED"}
    assert [c.what for c in report.graph] == ["metadata:min_runtime_version"]


def test_cli_text_after_quantize_weights_shows_dtype_and_sqnr(monkeypatch, capsys, tmp_path):
    graph = graphtool.load(FLOAT_CNN)
    graphtool.transform(graph, "quantize_weights")
    quantized = tmp_path / "quantized.tflite"
    graphtool.save(graph, quantized)
    code, out, _ = run_cli(monkeypatch, capsys, "diff", FLOAT_CNN, quantized)
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith("  digits_cnn/fc/MatMul float32 -> int8")]
    assert len(lines) == 1 and "SQNR" in lines[0] and "dB" in lines[0] and "per-channel" in lines[0]
    assert "-   output:0.dtype: float32" in out and "+   output:0.dtype: int8" in out


# -- tolerances, names, graph-level ----------------------------------------------------------

def nudge_constant(graph, name: str, delta: float) -> None:
    tensor = graph.node(name).output(0)
    data = np.array(tensor.data)
    data.flat[0] += delta
    tensor.data = data


def test_weight_tolerances_decide_what_counts_as_changed():
    name = "keras2_cnn/logits/MatMul/ReadVariableOp/resource"
    changed = graphtool.load(CNN)
    nudge_constant(changed, name, 1e-3)
    report = diff(CNN, changed)
    assert not report.same and [w.name for w in report.weights] == [name]
    assert report.weights[0].max_abs == pytest.approx(1e-3, rel=1e-3)
    assert not (report.changed or report.removed or report.added)
    assert diff(CNN, changed, atol=2e-3).same
    assert not diff(CNN, changed, atol=1e-4).same


def test_renamed_nodes_are_matched_by_structure():
    renamed = graphtool.load(CNN)
    graphtool.transform(renamed, "obfuscate_names", inputs=["input"], outputs=["Identity"])
    original = graphtool.load(CNN)
    report = diff(original, renamed)
    assert not (report.removed or report.added or report.changed or report.weights)
    assert len(report.renamed) == len(original) - 2  # all but the declared input and output
    # every pair is right: TensorFlow's import of the renamed graph gives each node the same
    # op and the same (renamed) inputs as its partner
    mapping = {r.a: r.b for r in report.renamed}
    for node in original:
        partner = renamed.node(mapping.get(node.name, node.name))
        assert partner.op == node.op
        assert [mapping.get(r.node, r.node) for r in original.inputs_of(node.name)] == \
            [r.node for r in renamed.inputs_of(partner.name)]
    assert diff(original, renamed, ignore_names=True).same


def test_ignore_names_still_reports_real_changes(tmp_path):
    folded_path = folded_cnn(tmp_path)
    obfuscated = graphtool.load(folded_path)
    graphtool.transform(obfuscated, "obfuscate_names", inputs=["input"], outputs=["Identity"])
    report = diff(CNN, obfuscated, ignore_names=True)
    assert not report.renamed
    removed = Counter(n.op for n in report.removed)
    assert removed["FusedBatchNormV3"] == 2 and removed["Identity"] == 14  # the ReadVariableOps
    # the conv weights are found, and measured as when the names are there
    with_names = {w.name: w.max_abs for w in diff(CNN, folded_path).weights}
    without_names = {w.a_name: w.max_abs for w in report.weights}
    assert len(with_names) == 2
    assert all(without_names[name] == value for name, value in with_names.items())


def test_match_nodes_pairs_by_name_first():
    a, b = graphtool.load(CNN), graphtool.load(CNN)
    assert match_nodes(a, b) == {n.name: n.name for n in a}


def test_signature_metadata_and_description_changes_are_listed():
    changed = graphtool.load(FLOAT_CNN)
    changed.meta["metadata"] = {**changed.meta["metadata"], "graphtool_note": b"hello"}
    changed.meta["description"] = "changed by a test"
    signature = changed.meta["signature_defs"][0]
    signature["inputs"] = [("pixels", tensor) for _, tensor in signature["inputs"]]
    report = diff(FLOAT_CNN, changed)
    whats = {c.what: c for c in report.graph}
    assert whats["metadata:graphtool_note"].a is None and whats["metadata:graphtool_note"].b == "hello"
    assert whats["description"].b == "changed by a test"
    sig = whats["signature:serving_default"]
    assert list(sig.a["inputs"]) == ["image"] and list(sig.b["inputs"]) == ["pixels"]


def test_attribute_and_added_constant_changes_in_a_tflite_model():
    changed = graphtool.load(FLOAT_CNN)
    conv = next(n for n in changed if n.op == "CONV_2D")
    conv.attrs = {**conv.attrs, "stride_w": 2}
    changed.add_node(make_const("extra", np.zeros(3, np.float32)))
    report = diff(FLOAT_CNN, changed)
    assert [(n.name, n.op) for n in report.added] == [("extra", "Const")]
    [node] = report.changed
    assert node.name == conv.name and [(c.what, c.a, c.b) for c in node.changes] == [("attr:stride_w", 1, 2)]


# -- bad input -------------------------------------------------------------------------------

def test_models_of_two_formats_are_refused():
    with pytest.raises(GraphtoolError, match="verify"):
        diff(CNN, FLOAT_CNN)


def test_cli_bad_input_exits_2_with_one_line(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "diff", CNN, FLOAT_CNN)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("graphtool: error: diff compares two models of one format")
    code, _, err = run_cli(monkeypatch, capsys, "diff", CNN, tmp_path / "missing.pb")
    assert code == 2 and "missing.pb: no such file" in err
    code, _, err = run_cli(monkeypatch, capsys, "diff", CNN, CNN, "--atol", "-1")
    assert code == 2 and "must not be negative" in err


def test_diff_and_draw_do_not_import_tensorflow_or_litert():
    import subprocess
    import sys

    script = f"""
import sys, graphtool
from graphtool.analysis.diff import diff
from graphtool.analysis.draw import to_dot
for path in ({str(CNN)!r}, {str(FLOAT_CNN)!r}):
    assert diff(path, path).same
    to_dot(graphtool.load(path))
print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'ai_edge_litert')))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
