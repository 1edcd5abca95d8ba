"""`check --target xnnpack|gpu|edgetpu` partitions.

XNNPACK's partitions are checked against LiteRT itself: its interpreter applies XNNPACK by
default, replaces each part it takes with one DELEGATE node, and lists that node with the
tensors it reads and writes. A part's operators are recovered from those tensors (the
operators computable from the node's inputs whose outputs the node writes or uses
itself); graphtool's partitions must equal them, DELEGATE node by DELEGATE node, on every
converter-made fixture and on the real-world models the tests build. The GPU and Edge TPU
partitioners cannot run here; their rules (max_delegated_partitions, the float16 DEQUANTIZE
rule, the compiler's single prefix) are checked on small cases.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys

import pytest

import graphtool
from graphtool.analysis.check import check
from graphtool.analysis.compat.partition import OperatorGraph, delegated_subsets, select

from ..conftest import FIXTURES, ROOT, TFLITE_FIXTURES, tflite_manifest
from ..model_zoo import MODELS, frozen_model

cli_main = importlib.import_module("graphtool.cli.main")  # graphtool.cli.main is also a function
CACHE = ROOT / "build" / "test-models"
CONVERTER_MADE = sorted(name for name, entry in tflite_manifest().items() if entry["runs_in_litert"])
SHAPE_MODELS = ["mobilenetv2_b1", "classifier_dyn", "attention_dyn", "lstm_b1", "loop_dyn", "zoo_b1", "zoo_dyn"]


def litert_partitions(model: bytes) -> list[list[int]]:
    """The operators of each DELEGATE node LiteRT's interpreter creates (XNNPACK by default)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    details = interpreter._get_ops_details()
    plain = [d for d in details if d["op_name"] != "DELEGATE"]
    outputs = {d["index"] for d in interpreter.get_output_details()}
    consumers: dict[int, set[int]] = {}
    for d in plain:
        for t in d["inputs"].tolist():
            consumers.setdefault(t, set()).add(d["index"])
    taken: set[int] = set()
    result = []
    for node in (d for d in details if d["op_name"] == "DELEGATE"):
        reads, writes = set(node["inputs"].tolist()), set(node["outputs"].tolist())
        members = _closure(plain, reads, taken)
        while True:  # drop what writes a tensor the node neither writes nor keeps inside
            keep = {d["index"] for d in plain if d["index"] in members and all(
                t in writes or (t not in reads and t not in outputs and consumers.get(t, set()) <= members)
                for t in d["outputs"].tolist())}
            keep = _closure([d for d in plain if d["index"] in keep], reads, taken)
            if keep == members:
                break
            members = keep
        taken |= members
        result.append(sorted(members))
    return result


def _closure(ops: list[dict], reads: set[int], taken: set[int]) -> set[int]:
    """The operators computable from `reads` and each other's outputs (an operator with no
    tensors at all, such as CALL_ONCE, belongs to no DELEGATE node: XNNPACK does not take it)."""
    available, members = set(reads), set()
    grew = True
    while grew:
        grew = False
        for d in ops:
            if d["index"] in members or d["index"] in taken or not (len(d["inputs"]) or len(d["outputs"])):
                continue
            if all(t < 0 or t in available for t in d["inputs"].tolist()):
                members.add(d["index"])
                available |= set(d["outputs"].tolist())
                grew = True
    return members


def graphtool_partitions(model: bytes, target: str = "xnnpack") -> list[list[int]]:
    return [p.operators for p in check(graphtool.load(model), target).partitions]


def _zoo_tflite(kind: str) -> bytes:
    """The frozen real-world model of tests/model_zoo.py converted to .tflite (cached)."""
    path, inputs, outputs = frozen_model(kind)
    digest = hashlib.sha256(path.read_bytes()[:1 << 20] + path.name.encode()).hexdigest()[:12]
    out = CACHE / f"partition-{kind}-{digest}.tflite"
    if not out.exists():
        script = ("import os, sys; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
                  "import tensorflow as tf\n"
                  "pb, i, o, shape, out = sys.argv[1:]\n"
                  "c = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(pb, [i.split(':')[0]], [o.split(':')[0]],"
                  " {i.split(':')[0]: [1, *map(int, shape.split(','))]})\n"
                  "open(out + '.partial', 'wb').write(c.convert()); os.replace(out + '.partial', out)\n")
        shape = ",".join(map(str, MODELS[kind][2].get("input_shape", [224, 224, 3])))
        result = subprocess.run([sys.executable, "-c", script, str(path), inputs, outputs, shape, str(out)], check=False,
                                capture_output=True, text=True, env=dict(os.environ, PYTHONHASHSEED="0"))
        if result.returncode:
            raise RuntimeError(result.stderr[-2000:])
    return out.read_bytes()


@pytest.mark.litert
@pytest.mark.parametrize("name", CONVERTER_MADE + ["demo/float_cnn.tflite"])
def test_xnnpack_partitions_equal_litert_on_the_fixtures(name):
    model = (FIXTURES / name if "/" in name else TFLITE_FIXTURES / name).read_bytes()
    assert graphtool_partitions(model) == litert_partitions(model)


@pytest.mark.litert
@pytest.mark.slow
@pytest.mark.parametrize("kind", SHAPE_MODELS)
def test_xnnpack_partitions_equal_litert_on_converter_made_test_models(kind, tf):
    from ..passes.tflite.shape_models import model as shape_model

    model = shape_model(kind)
    assert graphtool_partitions(model) == litert_partitions(model)


@pytest.mark.litert
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mobilenetv2", "mobilenetv3small", "efficientnetb0", "resnet50"])
def test_xnnpack_partitions_equal_litert_on_real_world_models(kind, tf):
    model = _zoo_tflite(kind)
    partitions = graphtool_partitions(model)
    assert partitions and partitions == litert_partitions(model)


@pytest.mark.litert
@pytest.mark.slow
@pytest.mark.parametrize("kind, spec", [
    ("efficientnetb0", "quantize_nodes(calibration=CAL)"),  # int8 LOGISTIC, MUL, ADD
    ("mobilenetv3small", "quantize_nodes(calibration=CAL, activations=int16)"),  # 16x8: little XNNPACK takes
    ("zoo_b1", "quantize_weights(mode=float16)"),  # a constant's DEQUANTIZE read by a CPU operator
    ("attention_b1", "quantize_nodes(calibration=CAL) set_io_types(inputs=int8, outputs=int8)"),  # ADD scale ratios
])
def test_xnnpack_partitions_equal_litert_on_quantized_test_models(kind, spec, tf, tmp_path):
    """graphtool's own quantizations of the test models (8 random calibration samples)."""
    import numpy as np

    from graphtool.formats import dumps

    from ..passes.tflite.shape_models import model as shape_model

    graph = graphtool.load(shape_model(kind) if kind.endswith("_b1") else _zoo_tflite(kind))
    name = graph.inputs[0]
    shape = [1 if d is None else d for d in graph.node(name).outputs[0].shape]
    samples = tmp_path / "calibration.npz"
    np.savez(samples, **{name: np.random.default_rng(0).normal(size=[8, *shape[1:]]).astype(np.float32)})
    graphtool.transform(graph, spec.replace("CAL", str(samples)))
    model = dumps(graph)
    assert graphtool_partitions(model) == litert_partitions(model)


@pytest.mark.litert
def test_the_oracle_sees_a_split_model():
    """The oracle itself: full_int8 splits around its int8 AVERAGE_POOL_2D and SOFTMAX."""
    model = (TFLITE_FIXTURES / "full_int8.tflite").read_bytes()
    assert litert_partitions(model) == [[0, 1, 2, 3], [5, 6, 7]]


def test_json_gains_partitions_counts_and_share(capsys):
    code = cli_main.main(["check", str(TFLITE_FIXTURES / "full_int8.tflite"), "-t", "xnnpack", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["verdict"] == "partial"
    assert list(data)[:8] == ["target", "compatible", "verdict", "partitions", "delegated_ops", "total_ops",
                              "delegated_macs_share", "findings"]
    assert [p["operators"] for p in data["partitions"]] == [[0, 1, 2, 3], [5, 6, 7]]
    assert data["partitions"][1]["names"][0].startswith("digits_cnn/")
    assert (data["delegated_ops"], data["total_ops"]) == (7, 9)
    assert data["delegated_macs_share"] == 1.0  # the pools and the softmax multiply-accumulate nothing


def test_text_shows_a_strip_and_the_first_op_of_every_cpu_gap(capsys):
    assert cli_main.main(["check", str(TFLITE_FIXTURES / "full_int8.tflite"), "-t", "xnnpack"]) == 1
    text = capsys.readouterr().out
    assert "partially delegated to xnnpack" in text
    assert "####.###." in text
    assert "CPU from [4] " in text and "AVERAGE_POOL_2D" in text and "CPU from [8] " in text


def test_output_is_byte_identical_across_runs(capsys):
    path = str(TFLITE_FIXTURES / "full_int8.tflite")
    outs = []
    for _ in range(2):
        cli_main.main(["check", path, "-t", "xnnpack", "--json"])
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]


def test_verdicts_compatible_partial_none():
    cnn = graphtool.load(TFLITE_FIXTURES / "float_cnn.tflite")
    assert check(cnn, "xnnpack").verdict == "compatible"
    assert check(graphtool.load(TFLITE_FIXTURES / "full_int8.tflite"), "xnnpack").verdict == "partial"
    assert check(graphtool.load(TFLITE_FIXTURES / "custom_op.tflite"), "xnnpack").verdict == "none"
    none = check(cnn, "edgetpu")
    assert none.verdict == "none" and none.partitions == [] and none.delegated_ops == 0


def test_the_runtime_partitions_greedily():
    """graph_info.cc: a supported operator that only waits for the first part joins it,
    even after an unsupported one in execution order."""
    ops = OperatorGraph(names=("a", "b", "c", "d"), ops=("X",) * 4, producers=((), (0,), (0,), (1, 2)),
                        consumers=((1, 2), (3,), (3,), ()))
    assert delegated_subsets(ops, {0, 2, 3}) == [[0, 2], [3]]
    assert select(ops, {0, 2, 3}, max_partitions=1) == [[0, 2]]
    assert select(ops, {0, 2, 3}, max_partitions=None, min_size=2) == [[0, 2]]


def test_gpu_keeps_only_the_largest_partition(tf):
    report = check(graphtool.load(build_split_model()), "gpu")
    sizes = [len(p.operators) for p in report.partitions]
    assert sizes == [max(sizes)] and len(report.partitions) == 1
    assert any("largest partition" in gap.reason for gap in report.cpu_gaps)


def test_gpu_delegates_float16_dequantize_with_its_consumers():
    report = check(graphtool.load(TFLITE_FIXTURES / "float16.tflite"), "gpu")
    assert report.verdict == "compatible" and report.delegated_ops == report.total_ops == 19


def test_edgetpu_maps_the_prefix_up_to_the_first_unsupported_op(tf):
    report = check(graphtool.load(TFLITE_FIXTURES / "full_int8.tflite"), "edgetpu")
    assert report.verdict == "compatible" and [p.operators for p in report.partitions] == [list(range(9))]
    split = check(graphtool.load(build_split_model(quantized=True)), "edgetpu")
    (part,) = split.partitions
    (gap,) = split.cpu_gaps  # from TOPK_V2 to the end
    assert part.operators == list(range(gap.first)) and gap.op == "TOPK_V2" and gap.last == split.total_ops - 1
    assert split.verdict == "partial"


def build_split_model(quantized: bool = False) -> bytes:
    """A converter-made model (cached) whose middle op (TOPK_V2) no delegate takes:
    conv -> relu -> reshape -> top_k -> fully connected -> tanh -> sub."""
    CACHE.mkdir(parents=True, exist_ok=True)
    script = r'''
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
quantized, out = sys.argv[1] == "1", sys.argv[2]
rng = np.random.default_rng(0)
k = tf.constant(rng.normal(0, 0.3, (3, 3, 3, 4)).astype(np.float32))
w = tf.constant(rng.normal(0, 0.3, (8, 6)).astype(np.float32))
@tf.function(input_signature=[tf.TensorSpec((1, 6, 6, 3), tf.float32)])
def f(x):
    h = tf.reshape(tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME")), [1, -1])
    v = tf.math.top_k(h, 8)[0]
    return tf.tanh(tf.matmul(v, w)) - 0.5
c = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
if quantized:
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = lambda: ([rng.normal(size=(1, 6, 6, 3)).astype(np.float32)] for _ in range(8))
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = c.inference_output_type = tf.int8
open(out + ".partial", "wb").write(c.convert()); os.replace(out + ".partial", out)
'''
    digest = hashlib.sha256(script.encode()).hexdigest()[:12]
    out = CACHE / f"partition-split{'-int8' if quantized else ''}-{digest}.tflite"
    if not out.exists():
        result = subprocess.run([sys.executable, "-c", script, "1" if quantized else "0", str(out)], check=False,
                                capture_output=True, text=True, env=dict(os.environ, PYTHONHASHSEED="0"))
        if result.returncode:
            raise RuntimeError(result.stderr[-2000:])
    return out.read_bytes()
