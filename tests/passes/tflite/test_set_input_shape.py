"""set_input_shape on TFLite: new input shapes propagated through every operator and written
into each tensor's shape and shape_signature.

The oracle is LiteRT: a result is loaded as it is (no resize_tensor_input unless a size is
left unknown), allocated and invoked, and the shape LiteRT gives every tensor of every
subgraph must be the one graphtool wrote (sizes left unknown: those that differ between a run
at batch 3 and one at batch 5). Numerics: each row of a batch must equal the model's output
for that row alone, relative 1e-5 of the largest output (LiteRT's kernels at another batch
size; in practice the bits are the same).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import graphtool
from graphtool.cli import main
from graphtool.formats import tflite
from graphtool.formats.tflite import keys, tables
from graphtool.ir import Graph, Node
from graphtool.passes import PassError, transform
from graphtool.passes.helpers import tflite_shapes as shapes

from ...conftest import TFLITE_FIXTURES
from .shape_models import model

RTOL = 1e-5
FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
CONTROL_FLOW = TFLITE_FIXTURES / "control_flow.tflite"
PROBES = (3, 5)  # the batch sizes LiteRT runs a result whose batch is left unknown at
CONVERTED = [pytest.mark.tf, pytest.mark.tf_keras, pytest.mark.litert, pytest.mark.slow]


def reshaped(data: bytes, spec: str) -> tuple[bytes, dict]:
    """The model written after `spec`, and the stats of set_input_shape."""
    graph = graphtool.load(data)
    (report,) = transform(graph, spec).passes
    return tflite.write(graph), report.stats


# -- the LiteRT oracle -------------------------------------------------------------------------

def _feed(detail: dict, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "O" or dtype.kind == "S":
        return np.full(shape, b"tool", dtype=object)
    return np.full(shape, 2, dtype)


def litert_shapes(data: bytes, batch: int) -> dict[tuple[int, int], tuple[int, ...]]:
    """(subgraph, tensor index) -> the shape LiteRT gives it after running every signature (or
    the model) with unknown sizes set to `batch`. Without XNNPACK: LiteRT leaves the tensors
    inside a delegated partition at the shapes the file gives them."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=data, experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    rng = np.random.default_rng(0)

    def shape_of(detail: dict) -> list[int]:
        return [batch if d < 0 else int(d) for d in detail["shape_signature"]]

    signatures = interpreter.get_signature_list()
    if signatures:
        for key in signatures:
            runner = interpreter.get_signature_runner(key)
            runner(**{name: _feed(d, shape_of(d), rng) for name, d in runner.get_input_details().items()})
    else:
        details = interpreter.get_input_details()
        for detail in details:
            interpreter.resize_tensor_input(detail["index"], shape_of(detail))
        interpreter.allocate_tensors()
        for detail in details:
            interpreter.set_tensor(detail["index"], _feed(detail, shape_of(detail), rng))
        interpreter.invoke()
    return {(i, d["index"]): tuple(int(x) for x in d["shape"])
            for i in range(interpreter.num_subgraphs()) for d in interpreter.get_tensor_details(i)}


def used_tensors(graph: Graph) -> list[tuple[int, object]]:
    """(subgraph index, tensor) for every tensor something reads or a subgraph outputs (LiteRT
    does not resize a loop-condition input nothing reads)."""
    found = []
    for i, sub in enumerate(tables.subgraphs(graph)):
        outputs = {r.node for r in sub.outputs}
        for node in sub:
            if sub.consumers(node.name) or node.name in outputs:
                found += [(i, t) for t in node.outputs]
    return found


def assert_shapes_match_litert(data: bytes) -> int:
    """Every used tensor's shape as written equals LiteRT's, None exactly where LiteRT's size
    changes with the batch. Returns how many tensors were compared."""
    graph = graphtool.load(data)
    small, large = (litert_shapes(data, batch) for batch in PROBES)
    wrong = []
    for index, tensor in used_tensors(graph):
        key = (index, tensor.meta[keys.INDEX])
        expected = tuple(a if a == b else None for a, b in zip(small[key], large[key]))
        if tensor.shape != expected or len(small[key]) != len(large[key]):
            wrong.append(f"subgraph {index} {tensor.name}: graphtool {tensor.shape}, LiteRT {small[key]}/{large[key]}")
    assert not wrong, "\n".join(wrong[:20])
    return len(used_tensors(graph))


# model, spec, how many constants must have been rewritten
ORACLE_CASES = [
    ("mobilenetv2_b1", "batch=4", 0),
    ("mobilenetv2_b1", "batch=-1", 0),
    ("classifier_b1", "batch=4", 2),
    ("classifier_b1", "batch=-1", 2),
    ("classifier_dyn", "batch=4", 0),
    ("attention_dyn", "batch=3", 0),
    ("loop_b1", 'name=x, shape="4,4"', 2),
    ("loop_b1", 'name=x, shape="-1,4"', 2),
    ("loop_dyn", 'name=x, shape="3,4"', 0),
    ("zoo_b1", "batch=3", 3),
    ("zoo_dyn", "batch=3", 0),
]


@pytest.mark.parametrize("kind, params, rewritten", [pytest.param(*case, marks=CONVERTED, id=f"{case[0]}-{case[1]}")
                                                     for case in ORACLE_CASES])
def test_shapes_match_litert_on_converter_models(kind, params, rewritten):
    data, stats = reshaped(model(kind), f"set_input_shape({params})")
    assert stats["constants_rewritten"] == rewritten
    assert stats["operators"] > 0
    assert assert_shapes_match_litert(data) > 10


FIXTURE_CASES = [("control_flow.tflite", 'set_input_shape(name=x, shape="4")'),
                 ("float_cnn.tflite", "set_input_shape(batch=4)"),
                 ("multi_signature.tflite", "set_input_shape(batch=4)"),
                 ("sparse.tflite", "set_input_shape(batch=-1)"),
                 ("strings.tflite", 'set_input_shape(name=ids, shape="4")')]


@pytest.mark.litert
@pytest.mark.parametrize("name, spec", FIXTURE_CASES)
def test_shapes_match_litert_on_fixtures(name, spec):
    data, _ = reshaped((TFLITE_FIXTURES / name).read_bytes(), spec)
    assert_shapes_match_litert(data)


# -- numerics ----------------------------------------------------------------------------------

def run_rows(original: bytes, data: bytes, batch: int, resize: bool = False) -> None:
    """Run `data` on a batch (as loaded, unless `resize`: it has an unknown batch) and the
    original on each row alone; every output row must agree."""
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(1)
    interpreter = Interpreter(model_content=data)
    details = interpreter.get_input_details()
    feeds = [rng.uniform(-1, 1, [batch, *d["shape_signature"][1:]]).astype(np.float32) if d["dtype"] == np.float32
             else np.array(3, d["dtype"]) for d in details]
    if resize:
        for detail, feed in zip(details, feeds):
            interpreter.resize_tensor_input(detail["index"], feed.shape)
    for detail, feed in zip(details, feeds):
        assert tuple(detail["shape"]) == feed.shape or resize
    interpreter.allocate_tensors()
    for detail, feed in zip(details, feeds):
        interpreter.set_tensor(detail["index"], feed)
    interpreter.invoke()
    together = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    alone = []
    for row in range(batch):
        one = Interpreter(model_content=original)
        one.allocate_tensors()
        for detail, feed in zip(one.get_input_details(), feeds):
            one.set_tensor(detail["index"], feed[row:row + 1] if feed.ndim else feed)
        one.invoke()
        alone.append([one.get_tensor(d["index"]) for d in one.get_output_details()])
    for index, output in enumerate(together):
        expected = np.concatenate([outputs[index] for outputs in alone])
        assert output.shape[0] == batch
        np.testing.assert_allclose(output, expected, rtol=RTOL, atol=RTOL * float(np.abs(expected).max()))


@pytest.mark.tf
@pytest.mark.tf_keras
@pytest.mark.litert
@pytest.mark.slow
def test_mobilenetv2_at_batch_4_runs_without_resizing():
    original = model("mobilenetv2_b1")
    data, stats = reshaped(original, "set_input_shape(batch=4)")
    assert stats["inputs"] == {"x": "4,96,96,3"} and stats["tensors_reshaped"] > 60
    run_rows(original, data, 4)


@pytest.mark.tf
@pytest.mark.tf_keras
@pytest.mark.litert
@pytest.mark.slow
@pytest.mark.parametrize("kind, spec, batch, resize", [
    ("classifier_b1", "set_input_shape(batch=4)", 4, False),
    ("classifier_b1", "set_input_shape(batch=-1)", 3, True),
    ("zoo_b1", "set_input_shape(batch=3)", 3, False),
    ("loop_b1", 'set_input_shape(name=x, shape="3,4")', 3, False),
])
def test_rows_equal_the_batch_1_model(kind, spec, batch, resize, caplog):
    """The constants that baked batch 1 (RESHAPE's [1, 36], TRANSPOSE_CONV's output_shape,
    BROADCAST_TO's shape, RESHAPEs inside a WHILE body) follow the new batch, and the check
    that batch rows stay apart ran."""
    original = model(kind)
    with caplog.at_level("WARNING", logger="graphtool.passes"):
        data, stats = reshaped(original, spec)
    assert stats["constants_rewritten"] >= 2
    assert not [r for r in caplog.records if "not checked" in r.getMessage()]
    run_rows(original, data, batch, resize)


@pytest.mark.tf
@pytest.mark.tf_keras
@pytest.mark.slow
@pytest.mark.parametrize("kind, spec, message", [
    ("attention_b1", "set_input_shape(batch=4)", r"MEAN '[^']*layer_normalization[^']*' would mix batch rows"),
    ("attention_b1", "set_input_shape(batch=-1)", "would mix batch rows"),
    ("lstm_b1", "set_input_shape(batch=4)", r"shape \[5, 1, 3\] does not fit the 60 elements of its input \[4, 5, 3\]"),
    ("zoo_b1", "set_input_shape(batch=-1)", r"TRANSPOSE_CONV '[^']*': its output_shape \[-1, 8, 8, 4\] cannot hold"),
])
def test_converter_models_it_refuses(kind, spec, message):
    """A LayerNormalization converted at batch 1 reshapes [1, 8, 16] to [1, 8, 16, 1] and
    averages over axes 0-2: reading that shape's 1 as the batch would average over the batch
    too. The LSTM's [1, 5, 3] -> [5, 1, 3] is a transpose the converter wrote as a reshape."""
    graph = graphtool.load(model(kind))
    with pytest.raises(PassError, match=message) as caught:
        transform(graph, spec)
    assert "\n" not in str(caught.value)


# -- without a runtime -------------------------------------------------------------------------

@pytest.mark.parametrize("path, spec", [
    (FLOAT_CNN, "set_input_shape(batch=-1)"),
    (FLOAT_CNN, 'set_input_shape(name=image, shape="-1,8,8,1")'),
    (CONTROL_FLOW, 'set_input_shape(name="serving_default_x:0", shape="4")'),
])
def test_the_same_shapes_give_the_same_bytes(path: Path, spec: str):
    data, stats = reshaped(path.read_bytes(), spec)
    assert data == path.read_bytes()
    assert stats["tensors_reshaped"] == 0 and stats["operators"] == 0


def test_a_new_batch_reaches_every_tensor_and_the_file():
    data, stats = reshaped(FLOAT_CNN.read_bytes(), "set_input_shape(batch=4)")
    assert stats == {"inputs": {"serving_default_image:0": "4,8,8,1"}, "tensors_reshaped": 10,
                     "constants_rewritten": 0, "operators": 9}
    assert data == reshaped(FLOAT_CNN.read_bytes(), "set_input_shape(batch=4)")[0]  # deterministic
    graph = graphtool.load(data)
    computed = [t for node in graph if node.op not in ("Const",) for t in node.outputs]
    assert len(computed) == 10 and all(t.shape[0] == 4 for t in computed)
    for tensor in computed:  # the file's own fields, as LiteRT reads them
        table = keys.table_of(tensor)
        assert list(table["shape"]) == list(tensor.shape) == list(table["shape_signature"])
    assert graph.node(graph.outputs[0].node).outputs[0].shape == (4, 10)


def test_a_dynamic_batch_is_written_as_minus_one():
    data, _ = reshaped(reshaped(FLOAT_CNN.read_bytes(), "set_input_shape(batch=2)")[0],
                       "set_input_shape(batch=-1)")
    graph = graphtool.load(data)
    tensor = graph.node(graph.outputs[0].node).outputs[0]
    assert tensor.shape == (None, 10)
    assert list(keys.table_of(tensor)["shape_signature"]) == [-1, 10]
    assert list(keys.table_of(tensor)["shape"]) == [1, 10]
    assert data == FLOAT_CNN.read_bytes()  # back to the converter's own bytes


def test_every_signature_takes_the_batch():
    data, stats = reshaped((TFLITE_FIXTURES / "multi_signature.tflite").read_bytes(), "set_input_shape(batch=6)")
    assert stats["inputs"] == {"decode_code:0": "6,3", "encode_x:0": "6,4"}  # gain, a scalar, has no batch
    graph = graphtool.load(data)
    for sig in graph.meta[keys.SIGNATURE_DEFS]:
        assert all(t.shape[0] == 6 for _, t in sig["outputs"])


@pytest.mark.parametrize("path, spec, message", [
    (FLOAT_CNN, 'set_input_shape(name=nope, shape="1,8,8,1")', "the model has no input 'nope'; its inputs: "),
    (FLOAT_CNN, 'set_input_shape(shape="4,8,8")', "has rank 3; the input has shape [?, 8, 8, 1], rank 4"),
    (FLOAT_CNN, 'set_input_shape(shape="4,8,x,1")', "'x' is not a size"),
    (FLOAT_CNN, "set_input_shape(batch=0)", "batch 0 is not a size"),
    (FLOAT_CNN, "set_input_shape(batch=2147483648)", "is not a size"),
    (FLOAT_CNN, 'set_input_shape(batch=2, shape="2,8,8,1")', "not both"),
    (FLOAT_CNN, 'set_input_shape(name=image, name=image, shape="1,8,8,1")', "2 name(s) and 1 shape(s)"),
    (FLOAT_CNN, 'set_input_shape(shape="3,4,4,1")',
     "RESHAPE 'digits_cnn/flatten/Reshape': shape [-1, 256] does not fit the 192 elements of its input [3, 1, 1, 64]"),
    (FLOAT_CNN, 'set_input_shape(shape="4,2,2,1")', "AVERAGE_POOL_2D 'digits_cnn/avgpool/AvgPool': a window of 2"),
    (CONTROL_FLOW, 'set_input_shape(shape="8")', "the model has 2 inputs"),
    (CONTROL_FLOW, 'set_input_shape(name=x, shape="8")', "ADD 'while/cond/add': cannot broadcast shapes [4], [8]"),
    (CONTROL_FLOW, "set_input_shape(name=steps, batch=3)",
     "'serving_default_steps:0' has shape []: it has no batch dimension"),
    (TFLITE_FIXTURES / "custom_op.tflite", "set_input_shape(batch=2)",
     "AudioSpectrogram 'AudioSpectrogram': graphtool has no shape rule for this operator"),
    (TFLITE_FIXTURES / "resource_variables.tflite", 'set_input_shape(shape="8")', "cannot broadcast"),
])
def test_refusals_name_what_is_wrong(path: Path, spec: str, message: str):
    graph = graphtool.load(path)
    before = tflite.write(graph)
    with pytest.raises(PassError) as caught:
        transform(graph, spec)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert tflite.write(graph) == before  # nothing was changed


def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, capsys):
    out = tmp_path / "out.tflite"
    for spec in ('set_input_shape(name=nope, shape="1,8,8,1")', 'set_input_shape(shape="1,8")',
                 'set_input_shape(shape="4,3,3,1")'):
        code = main(["transform", str(FLOAT_CNN), str(out), "--transforms", spec])
        _, err = capsys.readouterr()
        assert code == 2 and err.startswith("graphtool: error: ") and err.count("\n") == 1, err
        assert not out.exists()


# -- the rules, one at a time -------------------------------------------------------------------

def operands(op: str, inputs: list, attrs: dict | None = None, values: dict | None = None,
             outputs: int = 1) -> shapes.Operands:
    """One operator's view: input shapes, integer operand values by slot."""
    values = values or {}
    known = [None if i not in values else shapes.Known(np.asarray(values[i])) for i in range(len(inputs))]
    return shapes.Operands(Node("n", op, attrs or {}), list(inputs), known, list(inputs), [()] * outputs,
                           [i in values for i in range(len(inputs))])


@pytest.mark.parametrize("op, inputs, attrs, values, expected", [
    ("CONV_2D", [(2, 9, 9, 3), (8, 3, 3, 3)], {"padding": 0, "stride_w": 2, "stride_h": 2}, {}, (2, 5, 5, 8)),
    ("CONV_2D", [(None, 9, 9, 3), (8, 3, 3, 3)], {"padding": 1, "stride_w": 1, "stride_h": 1,
                                                  "dilation_w_factor": 2, "dilation_h_factor": 3}, {}, (None, 3, 5, 8)),
    ("DEPTHWISE_CONV_2D", [(1, 8, 8, 4), (1, 3, 3, 8)], {"padding": 1, "stride_w": 1, "stride_h": 1}, {},
     (1, 6, 6, 8)),
    ("FULLY_CONNECTED", [(2, 3, 16), (5, 16)], {"keep_num_dims": True}, {}, (2, 3, 5)),
    ("FULLY_CONNECTED", [(2, 3, 16), (5, 16)], {}, {}, (6, 5)),
    ("BATCH_MATMUL", [(1, 2, 3, 4), (5, 1, 6, 4)], {"adj_y": True}, {}, (5, 2, 3, 6)),
    ("ADD", [(None, 1, 3), (4, 1)], {}, {}, (None, 4, 3)),
    ("RESHAPE", [(None, 6), (2,)], {}, {1: [-1, 3]}, (None, 3)),
    ("RESHAPE", [(2, 6), (3,)], {}, {1: [3, -1, 2]}, (3, 2, 2)),
    ("STRIDED_SLICE", [(None, 8, 8), (3,), (3,), (3,)], {"begin_mask": 1, "end_mask": 1, "shrink_axis_mask": 4},
     {1: [0, 1, 2], 2: [0, -1, 3], 3: [1, 2, 1]}, (None, 3)),
    ("STRIDED_SLICE", [(None, 8), (2,), (2,), (2,)], {"end_mask": 2}, {1: [0, 0], 2: [1, 0], 3: [1, 1]}, (1, 8)),
    ("MEAN", [(2, 3, 4), (2,)], {"keep_dims": True}, {1: [-1, 1]}, (2, 1, 1)),
    ("PAD", [(1, 4), (2, 2)], {}, {1: [[0, 0], [2, 3]]}, (1, 9)),
    ("GATHER", [(5, 6, 7), (2, 3)], {"axis": 1}, {}, (5, 2, 3, 7)),
    ("TRANSPOSE_CONV", [(4,), (6, 3, 3, 4), (1, 4, 4, 4)], {"padding": 0, "stride_w": 2, "stride_h": 2},
     {0: [1, 8, 8, 6]}, (1, 8, 8, 6)),
])
def test_rules(op, inputs, attrs, values, expected):
    assert shapes.infer(operands(op, inputs, attrs, values)) == [expected]


def test_a_constant_shape_baking_the_old_batch_follows_the_new_one():
    view = operands("RESHAPE", [(4, 1, 1, 1280), (2,)], values={1: [1, 1280]})
    view.old_inputs = [(1, 1, 1, 1280), (2,)]
    assert shapes.infer(view) == [(4, 1280)]
    assert view.rewrites == {1: ([1, 1280], [4, 1280])}
    view = operands("RESHAPE", [(4, 1, 1, 1280), (2,)], values={1: [1, 1000]})  # the rest does not match
    view.old_inputs = [(1, 1, 1, 1280), (2,)]
    with pytest.raises(shapes.ShapeError, match=r"RESHAPE 'n': shape \[1, 1000\] does not fit the 5120 elements"):
        shapes.infer(view)
