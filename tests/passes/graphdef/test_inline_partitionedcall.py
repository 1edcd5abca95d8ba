"""inline_partitionedcall, judged by TensorFlow: the function_library fixture and graphs
that call tf.functions lose their PartitionedCall/StatefulPartitionedCall nodes and give
the same outputs in a Session."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import graphtool
from graphtool.formats import graphdef
from graphtool.passes import PassError, transform
from graphtool.passes.graphdef.inline_partitionedcall import OUTPUT_ARGS

from ...conftest import GRAPHDEF_FIXTURES, graphdef_manifest
from ...tf_runtime import run_graphdef, transform_graphdef

CALLS = ("PartitionedCall", "StatefulPartitionedCall")


def inline(tf, original: bytes, inputs: list[str], outputs: list[str]):
    """Inline calls; returns (stats, output GraphDef, written bytes)."""
    result = transform_graphdef(tf, original, "inline_partitionedcall", [i.split(":")[0] for i in inputs],
                                [o.split(":")[0] for o in outputs])
    return result.stats, result.graph_def, result.data


def test_function_library_fixture(tf):
    manifest = graphdef_manifest()["function_library.pb"]
    original = (GRAPHDEF_FIXTURES / "function_library.pb").read_bytes()
    stats, out, written = inline(tf, original, manifest["inputs"], manifest["outputs"])
    ops = Counter(n.op for n in out.node)
    assert ops["StatefulPartitionedCall"] == 0
    assert ops["StatelessIf"] == ops["StatelessWhile"] == 1  # control flow stays, with its functions
    assert stats["inlined"] == 1
    assert {f.signature.name for f in out.library.function} == \
        {f.signature.name for f in tf.compat.v1.GraphDef.FromString(original).library.function}
    assert "StatefulPartitionedCall/MatMul" in {n.name for n in out.node}
    for seed in range(3):
        feeds = {manifest["inputs"][0]: np.random.default_rng(seed).standard_normal((2, 4)).astype(np.float32)}
        want = run_graphdef(tf, original, feeds, manifest["outputs"])
        got = run_graphdef(tf, written, feeds, manifest["outputs"])
        for w, g in zip(want, got):
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-6)


@pytest.mark.parametrize("declared", [True, False])
def test_declared_output_call_keeps_its_name(tf, declared):
    """dtypes_consts.pb's call_fn is a declared output: it stays as an Identity."""
    original = (GRAPHDEF_FIXTURES / "dtypes_consts.pb").read_bytes()
    stats, out, written = inline(tf, original, [], ["call_fn:0"] if declared else [])
    nodes = {n.name: n for n in out.node}
    assert "call_fn/add" in nodes and nodes["call_fn/add"].op == "AddV2"
    assert list(nodes["call_fn/add"].input) == ["f32_content", "f32_content"]
    if declared:
        assert nodes["call_fn"].op == "Identity" and list(nodes["call_fn"].input) == ["call_fn/add"]
        got = run_graphdef(tf, written, {}, ["call_fn:0"])[0]
        want = run_graphdef(tf, original, {}, ["call_fn:0"])[0]
        np.testing.assert_array_equal(got, want)
    else:
        assert "call_fn" not in nodes


def build_calls(tf):
    """A graph calling tf.functions: two outputs (TopKV2's values and indices), a nested
    call, and a control dependency on a call."""
    @tf.function
    def scaled(v, k):
        return v * k

    @tf.function
    def top(x, k):
        values, indices = tf.math.top_k(x, 2)
        return scaled(values, k), indices

    with tf.Graph().as_default() as built:
        x = tf.compat.v1.placeholder(tf.float32, (3, 5), name="x")
        values, indices = top(x, tf.constant(2.0, name="k"))
        with tf.control_dependencies([values]):
            after = tf.identity(x, name="after")
        tf.identity(values, name="values")
        tf.identity(indices, name="indices")
        tf.identity(after, name="after_out")
    return built.as_graph_def().SerializeToString()


def test_multi_output_nested_call(tf):
    original = build_calls(tf)
    outputs = ["values:0", "indices:0", "after_out:0"]
    stats, out, written = inline(tf, original, ["x:0"], outputs)
    assert not [n for n in out.node if n.op in CALLS]
    assert stats["inlined"] == 2  # the outer call, then the call inlined from its body
    indices = next(n for n in out.node if n.name == "indices")
    assert indices.input[0].endswith("/Identity_1")
    feeds = {"x:0": np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32)}
    for want, got in zip(run_graphdef(tf, original, feeds, outputs), run_graphdef(tf, written, feeds, outputs)):
        np.testing.assert_array_equal(got, want)
    after = next(n for n in out.node if n.name == "after")
    assert [i for i in after.input if i.startswith("^")], "the control dependency on the call is kept"


def test_output_args_table_matches_tf_registry(tf):
    from tensorflow.python.framework import op_def_registry

    for op, names in OUTPUT_ARGS.items():
        op_def = op_def_registry.get(op)
        assert op_def is not None, op
        assert tuple(a.name for a in op_def.output_arg) == names, op
        assert not any(a.number_attr or a.type_list_attr for a in op_def.output_arg), op


def test_missing_function_is_an_error(tf):
    graph_def = tf.compat.v1.GraphDef.FromString(build_calls(tf))
    del graph_def.library.function[:]
    graph = graphtool.load(graph_def.SerializeToString())
    with pytest.raises(PassError, match="not in the graph's function library"):
        transform(graph, "inline_partitionedcall")


def test_unknown_multi_output_op_is_an_error(tf):
    """Without TF's registry the order of an unknown op's output args is unknown."""
    graph_def = tf.compat.v1.GraphDef.FromString(build_calls(tf))
    for function in graph_def.library.function:
        for node in function.node_def:
            if node.op == "TopKV2":
                node.op = "MyTopK"
    graph = graphtool.load(graph_def.SerializeToString())
    with pytest.raises(PassError, match="does not know their order"):
        transform(graph, "inline_partitionedcall")


def test_graph_without_calls_is_unchanged(tf):
    original = (GRAPHDEF_FIXTURES / "keras2_cnn.pb").read_bytes()
    graph = graphtool.load(original)
    report = transform(graph, "inline_partitionedcall")
    assert not report.changed
    assert graphdef.write(graph) == graphdef.write(graphtool.load(original))
