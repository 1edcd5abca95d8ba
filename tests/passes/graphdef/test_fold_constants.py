"""fold_constants, judged by TensorFlow. Each graph is built with tf.compat.v1, folded, and both
versions run in a Session on the same random inputs, compared at GTT's 1e-5 (relative). Ported
in spirit from GTT's fold_constants_test.cc (TestSimpleAdd, expect_removed/expect_remains,
TestRemoveUnusedNodes) plus exclusions, the size limit, Identity chains, Shape of a known shape,
StridedSlice, control dependencies, the TensorFlow fallback and the Keras 3 fixture. The numpy
kernels are compared one by one against TensorFlow's with hypothesis."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import graphtool
from graphtool.formats import graphdef
from graphtool.ir import DType, Node
from graphtool.passes import transform
from graphtool.passes.helpers.folding import KERNELS, EvalError, Unsupported, Value

from ...conftest import GRAPHDEF_FIXTURES, graphdef_manifest
from ...tf_runtime import Transformed, build_graphdef, transform_and_compare

RTOL = 1e-5


def _random_feeds(graph_def, seed: int = 0, batch: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for node in graph_def.node:
        if node.op == "Placeholder":
            shape = [batch if d.size < 0 else d.size for d in node.attr["shape"].shape.dim]
            feeds[f"{node.name}:0"] = rng.uniform(-2, 2, shape).astype(np.float32)
    return feeds


def fold_and_compare(tf, data: bytes, fetches: list[str], spec: str = "fold_constants",
                     feeds: dict | None = None, declare: bool = True) -> Transformed:
    """Fold `data` with `spec`, run both graphs in TensorFlow and compare at RTOL."""
    feeds = _random_feeds(tf.compat.v1.GraphDef.FromString(data)) if feeds is None else feeds
    undeclared = {} if declare else {"inputs": [], "outputs": []}
    return transform_and_compare(tf, data, spec, feeds, fetches, rtol=RTOL, atol=0, same_dtype=True, **undeclared)


def iota(width: int, start: float = 1.0) -> np.ndarray:
    return np.arange(start, start + width, dtype=np.float32)


# -- GTT's cases ---------------------------------------------------------------------------------

def test_simple_add(tf):
    """TestSimpleAdd: Add of two Consts folds; the Consts go, placeholder and output stay."""
    def body():
        a = tf.constant(iota(100), name="a_expect_removed")
        b = tf.constant(iota(100), name="b_expect_removed")
        add = tf.raw_ops.Add(x=a, y=b, name="add_expect_folded")
        placeholder = tf.compat.v1.placeholder(tf.float32, [100], name="placeholder_expect_remains")
        return tf.multiply(add, placeholder, name="output_expect_remains")

    data, fetches = build_graphdef(tf, body)
    result = fold_and_compare(tf, data, fetches)
    names = {n.name: n.op for n in result.graph}
    assert "a_expect_removed" not in names and "b_expect_removed" not in names
    assert names["add_expect_folded"] == "Const"
    assert names["placeholder_expect_remains"] == "Placeholder" and names["output_expect_remains"] == "Mul"
    np.testing.assert_array_equal(result.graph.node("add_expect_folded").outputs[0].data, iota(100) * 2)
    assert result.stats["folded"] == 1 and result.stats["folded_ops"] == {"Add": 1}
    assert result.stats["removed"] == 2


def test_exclude_op_and_exclude_node(tf):
    """Excluded nodes stay computed, and so does everything that depends on them."""
    def body():
        x = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        c = tf.constant(iota(4), name="c")
        summed = tf.raw_ops.AddV2(x=c, y=c, name="summed")
        scaled = tf.raw_ops.Mul(x=summed, y=tf.constant(3.0), name="scaled")
        other = tf.raw_ops.Sub(x=c, y=tf.constant(1.0), name="other")
        return tf.identity(x * scaled + other, name="output")

    data, fetches = build_graphdef(tf, body)
    by_op = fold_and_compare(tf, data, fetches, spec="fold_constants(exclude_op=AddV2)")
    ops = {n.name: n.op for n in by_op.graph}
    assert ops["summed"] == "AddV2" and ops["scaled"] == "Mul" and ops["other"] == "Const"
    assert by_op.stats["skipped"] == {"excluded_op": 1}

    by_node = fold_and_compare(tf, data, fetches, spec="fold_constants(exclude_node=scaled, exclude_node=other)")
    ops = {n.name: n.op for n in by_node.graph}
    assert ops["summed"] == "Const" and ops["scaled"] == "Mul" and ops["other"] == "Sub"
    assert by_node.stats["skipped"] == {"excluded_node": 2}

    everything = fold_and_compare(tf, data, fetches)
    assert everything.stats["folded"] == 3 and "Sub" not in everything.ops
    assert everything.ops["Mul"] == 1 and everything.ops["AddV2"] == 1  # only x's ops compute


def test_max_constant_size(tf):
    """Results over max_constant_size_in_bytes stay computed, and so do their consumers."""
    def body():
        x = tf.compat.v1.placeholder(tf.float32, [1000], name="x")
        big = tf.raw_ops.Fill(dims=tf.constant([1000]), value=tf.constant(0.5), name="big")  # 4000 bytes
        small = tf.raw_ops.Fill(dims=tf.constant([10]), value=tf.constant(2.0), name="small")  # 40 bytes
        big_scaled = tf.raw_ops.Mul(x=big, y=tf.constant(4.0), name="big_scaled")
        return tf.identity(x * big_scaled + tf.reduce_sum(small), name="output")

    data, fetches = build_graphdef(tf, body)
    limited = fold_and_compare(tf, data, fetches, spec="fold_constants(max_constant_size_in_bytes=4000)")
    assert limited.graph.node("big_scaled").op == "Const" and "big" not in limited.graph  # 4000 is not over 4000
    limited = fold_and_compare(tf, data, fetches, spec="fold_constants(max_constant_size_in_bytes=3999)")
    ops = {n.name: n.op for n in limited.graph}
    assert ops["big"] == "Fill" and ops["big_scaled"] == "Mul" and "small" not in ops
    assert limited.stats["folded_ops"] == {"Fill": 1, "Sum": 1} and limited.stats["skipped"] == {"too_big": 1}
    nothing = fold_and_compare(tf, data, fetches, spec="fold_constants(max_constant_size_in_bytes=0)")
    assert nothing.stats["folded"] == 0 and nothing.stats["skipped"]["too_big"] >= 2


def test_identity_chains_collapse_into_one_const(tf):
    """Const -> Identity -> Identity -> Identity: the last Identity becomes the Const."""
    def body():
        x = tf.compat.v1.placeholder(tf.float32, [3], name="x")
        value = tf.constant(np.float32([1.5, -2, 3]), name="weights")
        for i in range(3):
            value = tf.identity(value, name=f"id_{i}")
        return tf.multiply(x, value, name="output")

    data, fetches = build_graphdef(tf, body)
    result = fold_and_compare(tf, data, fetches)
    assert "Identity" not in result.ops
    assert [n.name for n in result.graph if n.op == "Const"] == ["id_2"]
    assert result.graph.inputs_of("output")[1].node == "id_2"
    assert result.stats["removed"] == 3


def test_remove_only_the_constants_left_behind(tf):
    """TestRemoveUnusedNodes, as far as fold_constants goes: inputs of folded nodes go when
    nothing else uses them; an unrelated unused Const and shared Consts stay."""
    def body():
        x = tf.compat.v1.placeholder(tf.float32, [3], name="x")
        a = tf.constant(np.float32([1, 2, 3]), name="a")
        b = tf.constant(np.float32([4, 5, 6]), name="b")
        tf.constant(np.float32([7, 8, 9]), name="unused")
        folded = tf.raw_ops.AddV2(x=a, y=b, name="folded")
        return tf.identity(x * folded + x * b, name="output")

    data, fetches = build_graphdef(tf, body)
    result = fold_and_compare(tf, data, fetches)
    names = {n.name for n in result.graph}
    assert "a" not in names and {"b", "unused", "folded"} <= names


def test_shape_of_fully_known_placeholder(tf):
    """Shape/Size/Rank of a statically known shape fold (the Const keeps a control input on
    the measured tensor); StridedSlice, Pack, Cast and Fill on the results fold too."""
    def body():
        x = tf.compat.v1.placeholder(tf.float32, [2, 3, 4], name="x")
        shape = tf.raw_ops.Shape(input=tf.nn.relu(x), name="shape")
        first = tf.raw_ops.StridedSlice(input=shape, begin=[0], end=[1], strides=[1], shrink_axis_mask=1,
                                        name="first")
        target = tf.raw_ops.Pack(values=[first, tf.constant(-1)], axis=0, name="target")
        flat = tf.raw_ops.Reshape(tensor=x, shape=target, name="flat")
        size = tf.raw_ops.Cast(x=tf.raw_ops.Size(input=x, name="size"), DstT=tf.float32, name="size_f")
        rank = tf.raw_ops.Cast(x=tf.raw_ops.Rank(input=x, name="rank"), DstT=tf.float32, name="rank_f")
        ones = tf.raw_ops.Fill(dims=shape, value=tf.constant(1.0), name="ones")
        return tf.identity(flat * size + rank, name="output"), tf.multiply(x, ones, name="output2")

    data, fetches = build_graphdef(tf, body)
    result = fold_and_compare(tf, data, fetches)
    ops = {n.name: n.op for n in result.graph}
    for name in ("shape", "first", "target", "size", "size_f", "rank", "rank_f", "ones"):
        assert ops.get(name, "Const") == "Const", name
    assert "Shape" not in result.ops and "StridedSlice" not in result.ops and "Pack" not in result.ops
    assert ops["flat"] == "Reshape"
    assert result.graph.control_inputs_of("target") == ["Relu"]
    assert result.graph.control_inputs_of("size_f") == ["x"]


def test_shape_of_partly_known_placeholder_does_not_fold_but_rank_does(tf):
    def body():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        shape = tf.raw_ops.Shape(input=x, name="shape")
        rank = tf.raw_ops.Rank(input=x, name="rank")
        return tf.identity(tf.cast(tf.reduce_prod(shape), tf.float32) + tf.cast(rank, tf.float32), name="output")

    data, fetches = build_graphdef(tf, body)
    result = fold_and_compare(tf, data, fetches)
    ops = {n.name: n.op for n in result.graph}
    assert ops["shape"] == "Shape" and "Rank" not in result.ops and result.stats["folded_ops"] == {"Rank": 1, "Cast": 1}


def test_strided_slice_masks(tf):
    values = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)

    def body():
        x = tf.compat.v1.placeholder(tf.float32, [3, 1, 2], name="x")
        c = tf.constant(values)
        cases = [
            dict(begin=[1, 0, -1], end=[0, 3, 0], strides=[1, 1, -2], begin_mask=2, end_mask=1, shrink_axis_mask=1),
            dict(begin=[0, 1], end=[0, 3], strides=[1, 2], ellipsis_mask=1),
            dict(begin=[0, 0, 0, 0], end=[1, 3, 2, 1], strides=[1, 1, 1, 1], new_axis_mask=4,
                 shrink_axis_mask=1),
        ]
        outs = []
        for i, case in enumerate(cases):
            arrays = {k: tf.constant(v) for k, v in case.items() if k in ("begin", "end", "strides")}
            masks = {k: v for k, v in case.items() if k.endswith("_mask")}
            sliced = tf.raw_ops.StridedSlice(input=c, **arrays, **masks, name=f"slice_{i}")
            outs.append(tf.identity(tf.reduce_sum(sliced) * x, name=f"output_{i}"))
        return outs

    data, fetches = build_graphdef(tf, body)
    result = fold_and_compare(tf, data, fetches)
    assert "StridedSlice" not in result.ops and result.stats["folded_ops"]["StridedSlice"] == 3


def test_control_dependencies_move_onto_the_constant(tf):
    """TF's rule: control inputs from computed nodes do not block folding; the Const keeps them
    (also the ones its constant inputs had), and control inputs from constants are dropped."""
    def body():
        x = tf.compat.v1.placeholder(tf.float32, [2], name="x")
        gate = tf.identity(x, name="gate")
        with tf.control_dependencies([gate]):
            gated = tf.constant(np.float32([1, 2]), name="gated")
        plain = tf.constant(np.float32([3, 4]), name="plain")
        with tf.control_dependencies([plain]):
            summed = tf.raw_ops.AddV2(x=gated, y=plain, name="summed")
        return tf.multiply(x, summed, name="output")

    data, fetches = build_graphdef(tf, body)
    result = fold_and_compare(tf, data, fetches)
    assert result.graph.node("summed").op == "Const"
    assert result.graph.control_inputs_of("summed") == ["gate"]
    assert "gated" not in result.graph and "plain" not in result.graph


def test_constants_other_nodes_colocate_with_stay(tf):
    """A Const named by another node's _class (loc:@) stays even when folding leaves it unused:
    TensorFlow refuses a graph whose colocation target is missing."""
    def body():
        x = tf.compat.v1.placeholder(tf.float32, [2], name="x")
        w = tf.constant(np.float32([1, 2]), name="w")
        with tf.compat.v1.colocate_with(w):
            near = tf.identity(x, name="near")
        return tf.multiply(near, tf.raw_ops.AddV2(x=w, y=w, name="twice"), name="output")

    data, fetches = build_graphdef(tf, body)
    result = fold_and_compare(tf, data, fetches)  # imports and runs in TensorFlow
    assert result.graph.node("twice").op == "Const" and "w" in result.graph
    assert result.graph.node("near").attrs["_class"] == ("loc:@w",)


def test_declared_inputs_are_not_constants(tf):
    """A declared input is fed at run time: what depends on it stays, even if it is a Const."""
    def body():
        c = tf.constant(np.float32([1, 2]), name="c")
        return tf.raw_ops.Mul(x=c, y=tf.constant(np.float32(2)), name="output")

    data, fetches = build_graphdef(tf, body)
    graph = graphtool.load(data)
    report = transform(graph, "fold_constants", inputs=["c"], outputs=["output"])
    assert graph.node("output").op == "Mul" and report.passes[0].stats["folded"] == 0
    result = fold_and_compare(tf, data, fetches, feeds={}, declare=True)
    assert result.graph.node("output").op == "Const"


def test_tensorflow_fallback_and_use_tensorflow_false(tf):
    """Ops without a numpy kernel run in TensorFlow (multi-output ones get a Const per used
    port); with use_tensorflow=false they are skipped as no_kernel."""
    rng = np.random.default_rng(3)

    def body():
        x = tf.compat.v1.placeholder(tf.float32, [2, 3], name="x")
        w = tf.constant(rng.standard_normal((3, 3)).astype(np.float32), name="w")
        product = tf.raw_ops.MatMul(a=w, b=w, name="product")
        parts = tf.raw_ops.Unpack(value=product, num=3, axis=0, name="parts")
        bias = tf.raw_ops.AddV2(x=parts[0], y=parts[2], name="bias")
        return tf.identity(tf.matmul(x, product) + bias + parts[1], name="output")

    data, fetches = build_graphdef(tf, body)
    with_tf = fold_and_compare(tf, data, fetches)
    assert with_tf.stats["by_tensorflow"] == 2 and with_tf.stats["folded"] == 3
    assert with_tf.ops["MatMul"] == 1 and "Unpack" not in with_tf.ops  # only x's MatMul computes
    assert "parts__cf__1" in with_tf.graph and with_tf.graph.node("parts__cf__1").op == "Const"
    assert "parts__cf__0" not in with_tf.graph and "parts" not in with_tf.graph  # used only by folded nodes

    without = fold_and_compare(tf, data, fetches, spec="fold_constants(use_tensorflow=false)")
    assert without.stats["folded"] == 0 and without.stats["skipped"] == {"no_kernel": 1}
    assert without.ops["MatMul"] == 2 and without.ops["Unpack"] == 1


def test_stateful_ops_and_placeholders_with_default_stay(tf):
    def body():
        x = tf.compat.v1.placeholder(tf.float32, [3], name="x")
        noise = tf.raw_ops.RandomUniform(shape=tf.constant([3]), dtype=tf.float32, seed=1, seed2=2, name="noise")
        default = tf.compat.v1.placeholder_with_default(tf.constant(np.float32([1, 2, 3])), [3], name="default")
        return tf.identity(x + 0 * noise + default, name="output")

    data, fetches = build_graphdef(tf, body)
    result = fold_and_compare(tf, data, fetches)
    ops = {n.name: n.op for n in result.graph}
    assert ops["noise"] == "RandomUniform" and ops["default"] == "PlaceholderWithDefault"
    assert result.stats["skipped"] == {"placeholder": 1, "stateful": 1}


def test_clear_output_shapes(tf):
    def body():
        x = tf.compat.v1.placeholder(tf.float32, [2], name="x")
        return tf.multiply(x, tf.raw_ops.AddV2(x=tf.constant(1.0), y=tf.constant(2.0)), name="output")

    data, fetches = build_graphdef(tf, body, add_shapes=True)
    cleared = fold_and_compare(tf, data, fetches)
    assert cleared.stats["output_shapes_cleared"] >= 2
    assert not any("_output_shapes" in n.attrs for n in cleared.graph)
    kept = fold_and_compare(tf, data, fetches, spec="fold_constants(clear_output_shapes=false)")
    assert kept.stats["output_shapes_cleared"] == 0
    assert "_output_shapes" in kept.graph.node("output").attrs


def test_no_declared_outputs_keeps_folded_names_for_consumers(tf):
    """Without --inputs/--outputs the graph still folds and runs (names are kept)."""
    def body():
        x = tf.compat.v1.placeholder(tf.float32, [2], name="x")
        scale = tf.raw_ops.Rsqrt(x=tf.constant(np.float32([4, 16])), name="scale")
        return tf.multiply(x, scale, name="output")

    data, fetches = build_graphdef(tf, body)
    result = fold_and_compare(tf, data, fetches, declare=False)
    assert result.graph.node("scale").op == "Const" and result.stats["folded"] == 1


def test_bad_parameters_and_unknown_names_are_errors():
    graph = graphtool.load(GRAPHDEF_FIXTURES / "keras3_cnn.pb")
    with pytest.raises(graphtool.GraphtoolError, match="max_constant_size_in_bytes"):
        transform(graph, "fold_constants(max_constant_size_in_bytes=-1)")
    with pytest.raises(graphtool.GraphtoolError, match="no node named 'nope'"):
        transform(graph, "fold_constants", inputs=["input"], outputs=["nope:0"])
    assert len(graph) == 64  # untouched


# -- fixtures --------------------------------------------------------------------------------------

def test_keras3_fixture(tf):
    """Keras 3's decomposed batch norm (AddV2/Rsqrt/Mul/Sub of ReadVariableOp Identities) and the
    Reshape/Squeeze of the biases fold; outputs equal the original within 1e-5 relative."""
    data = (GRAPHDEF_FIXTURES / "keras3_cnn.pb").read_bytes()
    before = len(graphtool.load(data))
    feeds = {"input:0": np.random.default_rng(5).uniform(-1, 1, (4, 8, 8, 1)).astype(np.float32)}
    result = fold_and_compare(tf, data, ["Identity:0"], feeds=feeds)
    assert (before, len(result.graph)) == (64, 38)
    assert result.stats["folded_ops"] == {"AddV2": 2, "Identity": 14, "Mul": 4, "Reshape": 2, "Rsqrt": 2,
                                          "Squeeze": 2, "Sub": 2}
    assert result.stats["by_tensorflow"] == 0 and result.stats["skipped"] == {}
    assert not {"Rsqrt", "Sub", "Reshape", "Squeeze"} & set(result.ops)


@pytest.mark.parametrize("name", sorted(k for k, v in graphdef_manifest().items() if v["runnable"]))
def test_runnable_fixtures_compute_the_same(tf, name):
    manifest = graphdef_manifest()[name]
    data = (GRAPHDEF_FIXTURES / name).read_bytes()
    if name.endswith(".pbtxt"):
        data = graphdef.write(graphtool.load(GRAPHDEF_FIXTURES / name))
    graph_def = tf.compat.v1.GraphDef.FromString(data)
    feeds = {k: v for k, v in _random_feeds(graph_def, seed=1).items() if k in manifest["inputs"]}
    result = fold_and_compare(tf, data, manifest["outputs"], feeds=feeds)
    assert "error" not in result.stats["skipped"]


# -- TensorFlow stays unimported on the numpy path ---------------------------------------------------

NUMPY_ONLY_RUN = """
import sys, graphtool
from graphtool.passes import transform
graph = graphtool.load(sys.argv[1])
report = transform(graph, "fold_constants", inputs=["x"], outputs=["output"])
stats = report.passes[0].stats
print(stats["folded"], stats["by_tensorflow"], sorted(stats["skipped"]))
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")))
"""


def numpy_kernel_graph(tf):
    """A graph whose constant subgraphs use every numpy kernel (and only those)."""
    rng = np.random.default_rng(11)

    def const(*shape, dtype=np.float32):
        return tf.constant(rng.uniform(0.5, 2, shape).astype(dtype))

    def body():
        x = tf.compat.v1.placeholder(tf.float32, [2, 3], name="x")
        a = tf.raw_ops.Identity(input=const(3, 2))
        b = tf.raw_ops.Transpose(x=a, perm=[1, 0])
        c = tf.raw_ops.Add(x=b, y=const(3))
        c = tf.raw_ops.Sub(x=tf.raw_ops.Mul(x=c, y=const(2, 1)), y=const(1))
        c = tf.raw_ops.RealDiv(x=c, y=tf.raw_ops.Maximum(x=const(2, 3), y=const(2, 3)))
        c = tf.raw_ops.Minimum(x=c, y=tf.raw_ops.Sqrt(x=const(3)))
        c = tf.raw_ops.AddV2(x=c, y=tf.raw_ops.Reciprocal(x=tf.raw_ops.Rsqrt(x=const(2, 3))))
        d = tf.raw_ops.Reshape(tensor=tf.raw_ops.ConcatV2(values=[c, c], axis=tf.constant(1)), shape=[2, 2, 3])
        d = tf.raw_ops.StridedSlice(input=d, begin=[0, 1], end=[0, 2], strides=[1, 1], begin_mask=1, end_mask=1,
                                    shrink_axis_mask=2)
        e = tf.raw_ops.Squeeze(input=tf.raw_ops.ExpandDims(input=d, axis=tf.constant(0)), axis=[0])
        packed = tf.raw_ops.Pack(values=[e, e], axis=0)
        shape = tf.raw_ops.Shape(input=x)
        filled = tf.raw_ops.Fill(dims=shape, value=tf.raw_ops.Cast(x=tf.raw_ops.Size(input=x), DstT=tf.float32))
        rank = tf.raw_ops.Cast(x=tf.raw_ops.Rank(input=packed), DstT=tf.float32)
        return tf.identity(x * packed[1] + filled * rank, name="output")

    return build_graphdef(tf, body)


def test_numpy_path_does_not_import_tensorflow(tf, tmp_path):
    data, fetches = numpy_kernel_graph(tf)
    result = fold_and_compare(tf, data, fetches)
    expected_ops = {"Identity", "Transpose", "Add", "Sub", "Mul", "RealDiv", "Maximum", "Minimum", "Sqrt", "AddV2",
                    "Reciprocal", "Rsqrt", "Reshape", "ConcatV2", "StridedSlice", "Squeeze", "ExpandDims", "Pack",
                    "Shape", "Fill", "Cast", "Size", "Rank"}
    assert set(result.stats["folded_ops"]) == expected_ops and result.stats["by_tensorflow"] == 0
    path = tmp_path / "numpy_only.pb"
    path.write_bytes(data)
    run = subprocess.run([sys.executable, "-c", NUMPY_ONLY_RUN, str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    counts, modules = run.stdout.strip().splitlines()
    assert counts == f"{result.stats['folded']} 0 []"
    assert modules == "[]"


# -- each numpy kernel against TensorFlow's ----------------------------------------------------------

KERNEL_SETTINGS = settings(max_examples=60, deadline=None,
                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TF_NAMES = {DType.FLOAT16: "float16", DType.FLOAT32: "float32", DType.FLOAT64: "float64", DType.INT8: "int8",
            DType.INT16: "int16", DType.INT32: "int32", DType.INT64: "int64", DType.UINT8: "uint8",
            DType.UINT16: "uint16", DType.UINT32: "uint32", DType.UINT64: "uint64", DType.BOOL: "bool",
            DType.BFLOAT16: "bfloat16"}


def to_tf(tf, value: Value):
    if value.dtype == DType.BFLOAT16:
        return tf.constant(value.array.view(tf.bfloat16.as_numpy_dtype))
    return tf.constant(value.array, dtype=getattr(tf, TF_NAMES[value.dtype]))


def from_tf(result) -> np.ndarray:
    array = np.asarray(result.numpy())
    return array.view(np.uint16) if array.dtype.name == "bfloat16" else array


def run_kernel(op: str, attrs: dict, inputs: list[Value]) -> np.ndarray:
    value = KERNELS[op](Node("n", op, attrs), inputs)
    return value.array


def tf_or_error(tf, function):
    try:
        return from_tf(function())
    except (tf.errors.InvalidArgumentError, ValueError):
        return None


shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def broadcast_pair(draw):
    shape = draw(shapes)
    other = tuple(1 if draw(st.booleans()) else d for d in shape)
    return (shape, other[draw(st.integers(0, len(other))):]) if draw(st.booleans()) else \
        (other[draw(st.integers(0, len(other))):], shape)


def random_array(seed: int, shape: tuple, dtype: DType, low: float = -100, high: float = 100) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == DType.BOOL:
        return rng.integers(0, 2, shape).astype(bool)
    numpy_type = dtype.numpy
    if numpy_type.kind in "iu":
        info = np.iinfo(numpy_type)
        return rng.integers(max(info.min, int(low)), min(info.max, int(high)) + 1, shape, dtype=numpy_type)
    return rng.uniform(low, high, shape).astype(numpy_type)


BINARY = {"Add": "Add", "AddV2": "AddV2", "Sub": "Sub", "Mul": "Mul", "RealDiv": "RealDiv",
          "Maximum": "Maximum", "Minimum": "Minimum"}


@KERNEL_SETTINGS
@given(op=st.sampled_from(sorted(BINARY)), pair=broadcast_pair(), seed=st.integers(0, 2**31),
       dtype=st.sampled_from([DType.FLOAT32, DType.FLOAT16, DType.FLOAT64, DType.INT32, DType.INT64, DType.UINT8,
                              DType.INT8]),
       specials=st.booleans())
def test_binary_kernels_match_tensorflow(tf, op, pair, seed, dtype, specials):
    assume(not (op == "RealDiv" and not dtype.is_float))
    a = random_array(seed, pair[0], dtype)
    b = random_array(seed + 1, pair[1], dtype)
    if specials and dtype.is_float and a.size:
        a = a.copy()
        a.flat[0] = np.nan
        a.flat[-1] = np.inf
        b = b.copy()
        b.flat[0] = 0
    va, vb = Value(a, dtype), Value(b, dtype)
    ours = run_kernel(op, {"T": dtype}, [va, vb])
    try:
        theirs = from_tf(getattr(tf.raw_ops, op)(x=to_tf(tf, va), y=to_tf(tf, vb)))
    except tf.errors.NotFoundError:  # TensorFlow has no CPU kernel for this type
        assume(False)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("dtype", [DType.FLOAT32, DType.FLOAT64, DType.FLOAT16])
def test_binary_kernels_on_special_values_match_tensorflow(tf, op, dtype):
    """NaN on either side, signed zeros, infinities, ties, and float32/float64 subnormals (which
    TensorFlow's CPU kernels flush to zero)."""
    a = np.array([np.nan, 1, -0.0, 0.0, 2, np.inf, -np.inf, 1e-40, 3e-39, 1e-310, 5], dtype=dtype.numpy)
    b = np.array([1, np.nan, 0.0, -0.0, 2, np.inf, 1, 1, 0.25, 1e-10, 1e-40], dtype=dtype.numpy)
    ours = run_kernel(op, {"T": dtype}, [Value(a, dtype), Value(b, dtype)])
    theirs = from_tf(getattr(tf.raw_ops, op)(x=a, y=b))
    np.testing.assert_array_equal(ours, theirs)
    # max/min(-0, +0): TensorFlow's sign depends on whether its vector or scalar path ran
    zero_tie = (a == 0) & (b == 0) if op in ("Maximum", "Minimum") else np.zeros(a.shape, bool)
    np.testing.assert_array_equal(np.signbit(ours)[~zero_tie], np.signbit(theirs)[~zero_tie])


@KERNEL_SETTINGS
@given(op=st.sampled_from(["Sqrt", "Rsqrt", "Reciprocal"]), shape=shapes, seed=st.integers(0, 2**31),
       dtype=st.sampled_from([DType.FLOAT32, DType.FLOAT16, DType.FLOAT64]))
def test_unary_kernels_match_tensorflow(tf, op, shape, seed, dtype):
    x = Value(random_array(seed, shape, dtype, 1e-3, 1e3), dtype)
    ours = run_kernel(op, {"T": dtype}, [x])
    theirs = from_tf(getattr(tf.raw_ops, op)(x=to_tf(tf, x)))
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    if op == "Sqrt":
        np.testing.assert_array_equal(ours, theirs)  # IEEE sqrt on both sides
    else:  # TensorFlow's Rsqrt/Reciprocal are refined estimates (up to 3 ulp off); ours are correctly rounded
        np.testing.assert_array_max_ulp(ours, theirs, maxulp=3)


CAST_TYPES = [DType.FLOAT16, DType.BFLOAT16, DType.FLOAT32, DType.FLOAT64, DType.INT8, DType.INT16, DType.INT32,
              DType.INT64, DType.UINT8, DType.UINT16, DType.UINT32, DType.UINT64, DType.BOOL]


@KERNEL_SETTINGS
@given(src=st.sampled_from(CAST_TYPES), dst=st.sampled_from(CAST_TYPES), shape=shapes,
       seed=st.integers(0, 2**31), magnitude=st.sampled_from([3.0, 300.0, 7e4, 3e9]), truncate=st.booleans())
def test_cast_matches_tensorflow(tf, src, dst, shape, seed, magnitude, truncate):
    if src == DType.BFLOAT16:
        from graphtool.passes.helpers.folding.cast import float32_to_bfloat16

        array = float32_to_bfloat16(random_array(seed, shape, DType.FLOAT32, -magnitude, magnitude))
    else:
        array = random_array(seed, shape, src, -magnitude, magnitude)
    value = Value(array, src)
    try:
        ours = run_kernel("Cast", {"SrcT": src, "DstT": dst, "Truncate": truncate}, [value])
    except Unsupported:
        assume(False)
    theirs = from_tf(tf.raw_ops.Cast(x=to_tf(tf, value), DstT=getattr(tf, TF_NAMES[dst]), Truncate=truncate))
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("values", [[np.nan], [1e20], [-np.inf], [2.5, 3e9]])
def test_cast_declines_what_cpp_leaves_undefined(values):
    """float -> int of NaN, infinities or out-of-range values is undefined behaviour in C++
    (TensorFlow's answer depends on the CPU), so the kernel declines it."""
    value = Value(np.float32(values), DType.FLOAT32)
    with pytest.raises(Unsupported):
        run_kernel("Cast", {"SrcT": DType.FLOAT32, "DstT": DType.INT32}, [value])


def test_cast_special_values_match_tensorflow(tf):
    """NaN of both signs, infinities, subnormals, rounding ties and overflow between the float
    types, with and without Truncate (exhaustive over the pairs, unlike the random test)."""
    specials = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -3e-39, 1e-310, 65504, 65519, 65520,
                         7e4, 3.4028235e38, 3.5e38, 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-11, 1 + 2**-24 + 2**-30,
                         np.pi, -np.e, 6e-8, 1e-5], dtype=np.float64)
    floats = [DType.FLOAT16, DType.BFLOAT16, DType.FLOAT32, DType.FLOAT64, DType.INT32, DType.BOOL]
    for src in floats[:4]:
        with np.errstate(all="ignore"):
            source = tf.cast(tf.constant(specials), getattr(tf, TF_NAMES[src]))
        array = from_tf(source)
        for dst in floats:
            for truncate in (False, True):
                theirs = from_tf(tf.raw_ops.Cast(x=source, DstT=getattr(tf, TF_NAMES[dst]), Truncate=truncate))
                try:
                    ours = run_kernel("Cast", {"SrcT": src, "DstT": dst, "Truncate": truncate}, [Value(array, src)])
                except Unsupported:
                    assert dst == DType.INT32 and src != dst
                    continue
                np.testing.assert_array_equal(ours, theirs, err_msg=f"{src} -> {dst}, Truncate={truncate}")
                if ours.dtype.kind == "f":
                    np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))


@KERNEL_SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=4).map(tuple), data=st.data())
def test_transpose_reshape_expand_squeeze_match_tensorflow(tf, shape, data):
    x = Value(random_array(1, shape, DType.FLOAT32), DType.FLOAT32)
    perm = data.draw(st.permutations(range(len(shape))))
    perm_value = Value(np.array(perm, np.int32), DType.INT32)
    np.testing.assert_array_equal(run_kernel("Transpose", {}, [x, perm_value]),
                                  from_tf(tf.raw_ops.Transpose(x=to_tf(tf, x), perm=perm)))
    size = int(np.prod(shape))
    target = data.draw(st.sampled_from([[size], [-1], [1, size, 1], [size, -1], [-1, 1]]))
    target_value = Value(np.array(target, np.int64), DType.INT64)
    np.testing.assert_array_equal(run_kernel("Reshape", {}, [x, target_value]),
                                  from_tf(tf.raw_ops.Reshape(tensor=to_tf(tf, x), shape=np.int64(target))))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    expanded = run_kernel("ExpandDims", {}, [x, Value(np.array(axis, np.int32), DType.INT32)])
    np.testing.assert_array_equal(expanded, from_tf(tf.raw_ops.ExpandDims(input=to_tf(tf, x), axis=axis)))
    ones = [i for i, d in enumerate(shape) if d == 1]
    dims = tuple(data.draw(st.lists(st.sampled_from(ones), unique=True))) if ones else ()
    dims = tuple(d - len(shape) if data.draw(st.booleans()) else d for d in dims)
    np.testing.assert_array_equal(run_kernel("Squeeze", {"squeeze_dims": dims}, [x]),
                                  from_tf(tf.raw_ops.Squeeze(input=to_tf(tf, x), axis=list(dims))))


@KERNEL_SETTINGS
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple), count=st.integers(2, 3),
       data=st.data(), dtype=st.sampled_from([DType.FLOAT32, DType.INT32, DType.BOOL, DType.BFLOAT16]))
def test_concat_pack_fill_match_tensorflow(tf, shape, count, data, dtype):
    rank = len(shape)
    axis = data.draw(st.integers(-rank, rank - 1))
    parts = []
    for i in range(count):
        part_shape = list(shape)
        part_shape[axis] = data.draw(st.integers(0, 3))
        array = random_array(i, tuple(part_shape), DType.UINT16 if dtype == DType.BFLOAT16 else dtype)
        parts.append(Value(array, dtype))
    axis_value = Value(np.array(axis, np.int32), DType.INT32)
    ours = run_kernel("ConcatV2", {"N": count}, parts + [axis_value])
    theirs = tf.raw_ops.ConcatV2(values=[to_tf(tf, p) for p in parts], axis=axis)
    np.testing.assert_array_equal(ours, from_tf(theirs))

    same = [Value(random_array(i, shape, DType.UINT16 if dtype == DType.BFLOAT16 else dtype), dtype)
            for i in range(count)]
    pack_axis = data.draw(st.integers(-rank - 1, rank))
    np.testing.assert_array_equal(run_kernel("Pack", {"N": count, "axis": pack_axis}, same),
                                  from_tf(tf.raw_ops.Pack(values=[to_tf(tf, v) for v in same], axis=pack_axis)))

    dims = Value(np.array(shape, np.int32), DType.INT32)
    scalar = Value(same[0].array.reshape(-1)[:1].reshape(()), dtype)
    np.testing.assert_array_equal(run_kernel("Fill", {}, [dims, scalar]),
                                  from_tf(tf.raw_ops.Fill(dims=shape, value=to_tf(tf, scalar))))


@st.composite
def slice_spec(draw):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    length = draw(st.integers(1, len(shape) + 1))
    begin = draw(st.lists(st.integers(-6, 6), min_size=length, max_size=length))
    end = draw(st.lists(st.integers(-6, 6), min_size=length, max_size=length))
    strides = draw(st.lists(st.sampled_from([-3, -2, -1, 1, 1, 1, 2, 3]), min_size=length, max_size=length))
    bits = st.integers(0, 2**length - 1)
    masks = {"begin_mask": draw(bits), "end_mask": draw(bits), "new_axis_mask": draw(bits),
             "shrink_axis_mask": draw(bits)}
    if draw(st.booleans()):
        masks["ellipsis_mask"] = 1 << draw(st.integers(0, length - 1))
    return shape, begin, end, strides, masks


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=slice_spec())
def test_strided_slice_matches_tensorflow(tf, spec):
    shape, begin, end, strides, masks = spec
    x = Value(np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape), DType.FLOAT32)
    index = [Value(np.array(v, np.int32), DType.INT32) for v in (begin, end, strides)]
    try:
        ours = run_kernel("StridedSlice", masks, [x] + index)
    except EvalError:
        ours = None
    theirs = tf_or_error(tf, lambda: tf.raw_ops.StridedSlice(input=to_tf(tf, x), begin=begin, end=end,
                                                             strides=strides, **masks))
    if theirs is None or ours is None:
        assert ours is None and theirs is None, (ours, theirs)
        return
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)
