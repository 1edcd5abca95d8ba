"""`check --target tflite` on GraphDefs agrees with TensorFlow's own TFLite converter
restricted to TFLITE_BUILTINS (and `tflite+select` with SELECT_TF_OPS added).

Every graph is built here with tf.compat.v1, frozen as a GraphDef, checked by graphtool,
then converted by tf.compat.v1.lite.TFLiteConverter: graphtool's verdict must equal
whether the converter succeeds. The corpus mixes convertible and unconvertible graphs:
ops with and without a builtin, element types TFLite does not compute in, unsupported
ops that the converter folds away (constant inputs, static shapes) or prunes (unused),
control flow and function calls.
"""
from __future__ import annotations

from typing import Callable

import pytest

import graphtool
from graphtool.analysis.check import check

Build = Callable[[], tuple[list, list]]


def _cases(tf) -> dict[str, Build]:
    v1, raw = tf.compat.v1, tf.raw_ops

    def x(shape=(1, 4), dtype=tf.float32, name="x"):
        return v1.placeholder(dtype, shape, name=name)

    def unary(fn, shape=(1, 4), dtype=tf.float32) -> Build:
        def build():
            a = x(shape, dtype)
            return [a], [fn(a)]
        return build

    def binary(fn, shape=(1, 4), dtype=tf.float32) -> Build:
        def build():
            a, b = x(shape, dtype), x(shape, dtype, "y")
            return [a, b], [fn(a, b)]
        return build

    def cnn():
        a = x((1, 8, 8, 3))
        h = tf.nn.relu6(tf.nn.bias_add(tf.nn.conv2d(a, tf.ones([3, 3, 3, 4]), 1, "SAME"), tf.ones([4])))
        h = tf.nn.depthwise_conv2d(h, tf.ones([3, 3, 4, 1]), [1, 1, 1, 1], "SAME")
        h = v1.nn.fused_batch_norm(h, tf.ones([4]), tf.zeros([4]), tf.zeros([4]), tf.ones([4]), is_training=False)[0]
        h = tf.nn.max_pool2d(h, 2, 2, "VALID")
        h = tf.reshape(h, [1, -1])
        return [a], [tf.nn.softmax(tf.matmul(h, tf.ones([64, 10])))]

    def cond_graph():
        a, p = x(), v1.placeholder(tf.bool, (), name="p")
        return [a, p], [tf.cond(p, lambda: a * 2.0, lambda: a + 1.0)]

    def while_graph():
        a = x()
        return [a], [tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * 2.0), [tf.constant(0), a])[1]]

    def function_call(op):
        @tf.function(input_signature=[tf.TensorSpec((1, 4), tf.float32)])
        def body(v):
            return op(v) + 1.0

        def build():
            a = x()
            return [a], [body(a)]
        return build

    return {
        # convertible
        "cnn": cnn,
        "conv_nchw": unary(lambda a: tf.nn.conv2d(a, tf.ones([2, 2, 1, 2]), 1, "VALID", data_format="NCHW"), (1, 1, 4, 4)),
        "conv_transpose": unary(lambda a: tf.nn.conv2d_transpose(a, tf.ones([2, 2, 2, 1]), [1, 8, 8, 2], 2), (1, 4, 4, 1)),
        "conv3d": unary(lambda a: tf.nn.conv3d(a, tf.ones([2, 2, 2, 1, 2]), [1] * 5, "VALID"), (1, 4, 4, 4, 1)),
        "batch_matmul": binary(lambda a, b: tf.matmul(a, b, transpose_b=True), (2, 3, 4)),
        "einsum": binary(lambda a, b: tf.einsum("ij,kj->ik", a, b)),
        "gelu": unary(tf.nn.gelu),
        "softplus_selu_softsign": unary(lambda a: tf.nn.softplus(a) + tf.nn.selu(a) + tf.nn.softsign(a)),
        "reductions": unary(lambda a: tf.reduce_mean(a, 1) + tf.reduce_max(a, 1) + tf.reduce_prod(a, 1)),
        "int32_math": binary(lambda a, b: tf.abs(a) * b + tf.math.floordiv(a, b), dtype=tf.int32),
        "strings_equal": binary(tf.equal, (2,), tf.string),
        "gather_topk": unary(lambda a: tf.math.top_k(tf.gather(a, [0, 2], axis=1), 1)[0]),
        "resize_pad_slice": unary(lambda a: tf.pad(v1.image.resize_bilinear(a, [8, 8]), [[0, 0], [1, 1], [1, 1], [0, 0]])[:, 1:5],
                                  (1, 4, 4, 1)),
        "where_select": binary(lambda a, b: tf.where(a > b, a, b)),
        "segment_cumsum": unary(lambda a: tf.math.cumsum(tf.math.unsorted_segment_sum(a, [0, 0, 1, 1], 2), 0), (4,)),
        "random_uniform": unary(lambda a: a + tf.random.uniform([1, 4])),
        "fake_quant": unary(lambda a: tf.quantization.fake_quant_with_min_max_args(a, -1.0, 1.0)),
        "cond": cond_graph,
        "while_loop": while_graph,
        "function_call_ok": function_call(tf.nn.relu),
        "erf_on_constant": unary(lambda a: a + tf.math.erf(tf.constant([1.0, 2.0, 3.0, 4.0]))),
        "svd_on_constant": unary(lambda a: a + tf.linalg.svd(tf.eye(4))[0], (4,)),
        "erf_on_static_shape": unary(lambda a: a + tf.math.erf(tf.cast(tf.shape(a), tf.float32)), (2,)),
        "cast_to_float64": unary(lambda a: tf.cast(a, tf.float64)),
        "uint8_reshape": unary(lambda a: tf.reshape(a, [4]), dtype=tf.uint8),
        "check_numerics_identity": unary(lambda a: tf.identity(tf.debugging.check_numerics(tf.stop_gradient(a), "m")) * 2.0),
        # not convertible
        "erf": unary(tf.math.erf),
        "tan": unary(tf.math.tan),
        "cumprod": unary(lambda a: tf.math.cumprod(a, axis=1)),
        "matrix_inverse": unary(tf.linalg.inv, (3, 3)),
        "svd": unary(lambda a: tf.linalg.svd(a)[0], (3, 3)),
        "resize_bicubic": unary(lambda a: v1.image.resize_bicubic(a, [8, 8]), (1, 4, 4, 1)),
        "crop_and_resize": unary(lambda a: tf.image.crop_and_resize(a, [[0, 0, 1, 1.0]], [0], [2, 2]), (1, 4, 4, 1)),
        "max_pool3d": unary(lambda a: tf.nn.max_pool3d(a, 2, 2, "VALID"), (1, 4, 4, 4, 1)),
        "extract_patches": unary(lambda a: tf.image.extract_patches(a, [1, 2, 2, 1], [1, 2, 2, 1], [1, 1, 1, 1], "VALID"),
                                 (1, 4, 4, 1)),
        "bitwise_and": binary(tf.bitwise.bitwise_and, dtype=tf.int32),
        "truncate_mod": binary(lambda a, b: raw.TruncateMod(x=a, y=b), dtype=tf.int32),
        "segment_mean": unary(lambda a: tf.math.segment_mean(a, [0, 0, 1, 1]), (4,)),
        "float64_add": binary(tf.add, dtype=tf.float64),
        "float16_relu": unary(tf.nn.relu, dtype=tf.float16),
        "uint8_add": binary(tf.add, dtype=tf.uint8),
        "int32_matmul": binary(tf.matmul, (4, 4), tf.int32),
        "string_join": unary(lambda a: tf.strings.join([a, a]), (2,), tf.string),
        "erf_times_zero": unary(lambda a: tf.math.erf(a) * 0.0 + a),
        "erf_deep_in_cnn": unary(lambda a: tf.nn.relu(tf.math.erf(tf.nn.conv2d(a, tf.ones([1, 1, 1, 2]), 1, "VALID"))),
                                 (1, 4, 4, 1)),
        "function_call_erf": function_call(tf.math.erf),
        "stateless_random": unary(lambda a: a + tf.random.stateless_uniform([1, 4], [1, 2])),
        "print_op": unary(lambda a: raw.Print(input=a, data=[a])),
    }


def _build(tf, build: Build):
    graph = tf.Graph()
    with graph.as_default():
        inputs, outputs = build()
    return graph, inputs, outputs


def _converts(tf, graph, inputs, outputs, select: bool) -> bool:
    with tf.compat.v1.Session(graph=graph) as session:
        converter = tf.compat.v1.lite.TFLiteConverter.from_session(session, inputs, outputs)
        ops = {tf.lite.OpsSet.TFLITE_BUILTINS}
        if select:
            ops.add(tf.lite.OpsSet.SELECT_TF_OPS)
        converter.target_spec.supported_ops = ops
        try:
            converter.convert()
        except Exception:  # the converter raises ConverterError and friends; any failure means "does not convert"
            return False
    return True


def _graphtool_verdict(graph, outputs, target: str):
    model = graphtool.load(graph.as_graph_def().SerializeToString())
    return check(model, target, outputs=[t.op.name for t in outputs])


@pytest.fixture(scope="module")
def corpus(tf):
    return _cases(tf)


def test_corpus_is_large_and_mixed(tf, corpus):
    verdicts = [_graphtool_verdict(*_build(tf, build)[::2], "tflite").compatible for build in corpus.values()]
    assert len(corpus) >= 30
    assert sum(verdicts) >= 10 and len(verdicts) - sum(verdicts) >= 10


@pytest.mark.slow
def test_tflite_target_agrees_with_the_converter(tf, corpus):
    disagreements = []
    for name, build in corpus.items():
        graph, inputs, outputs = _build(tf, build)
        report = _graphtool_verdict(graph, outputs, "tflite")
        converted = _converts(tf, graph, inputs, outputs, select=False)
        if report.compatible != converted:
            disagreements.append(f"{name}: graphtool {report.compatible}, converter {converted}: "
                                 f"{[f.reason for f in report.findings]}")
    assert not disagreements, "\n".join(disagreements)


SELECT_CASES = ("erf", "cumprod", "matrix_inverse", "svd", "string_join", "resize_bicubic", "cnn", "float64_add",
                "print_op", "truncate_mod")


@pytest.mark.slow
def test_select_target_agrees_with_the_converter(tf, corpus):
    disagreements = []
    for name in SELECT_CASES:
        graph, inputs, outputs = _build(tf, corpus[name])
        report = _graphtool_verdict(graph, outputs, "tflite+select")
        converted = _converts(tf, graph, inputs, outputs, select=True)
        if report.compatible != converted:
            disagreements.append(f"{name}: graphtool {report.compatible}, converter {converted}: "
                                 f"{[f.reason for f in report.findings]}")
    assert not disagreements, "\n".join(disagreements)


def test_findings_name_the_node_and_suggest_select(tf, corpus):
    graph, _, outputs = _build(tf, corpus["erf_deep_in_cnn"])
    report = _graphtool_verdict(graph, outputs, "tflite")
    (finding,) = report.findings
    assert (finding.op, finding.severity, finding.subgraph, finding.index) == ("Erf", "error", None, None)
    assert finding.node == [n.name for n in graph.as_graph_def().node if n.op == "Erf"][0]
    assert "SELECT_TF_OPS" in finding.fix


def test_folded_op_is_info_with_fold_constants_fix(tf, corpus):
    graph, _, outputs = _build(tf, corpus["erf_on_constant"])
    report = _graphtool_verdict(graph, outputs, "tflite")
    assert report.compatible
    assert [(f.op, f.severity, f.fix) for f in report.findings] == [("Erf", "info", "graphtool transform: fold_constants")]


def test_unused_unsupported_node_is_ignored_only_with_outputs(tf):
    graph = tf.Graph()
    with graph.as_default():
        a = tf.compat.v1.placeholder(tf.float32, (1, 4), name="x")
        tf.math.erf(a, name="unused")
        out = tf.identity(a + 1.0, name="out")
    model = graphtool.load(graph.as_graph_def().SerializeToString())
    assert not check(model, "tflite").compatible
    assert check(model, "tflite", outputs=[out.op.name]).compatible


def _freeze_convert(tf, path, inputs, outputs) -> bool:
    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(str(path), inputs, outputs)
    converter.target_spec.supported_ops = {tf.lite.OpsSet.TFLITE_BUILTINS}
    try:
        converter.convert()
    except Exception:  # ConverterError and friends: "does not convert"
        return False
    return True


@pytest.mark.slow
def test_graphdef_fixtures_agree_with_the_converter_and_the_fix_works(tf, tmp_path):
    from ..conftest import GRAPHDEF_FIXTURES, graphdef_manifest

    for name, entry in graphdef_manifest().items():
        if not name.endswith(".pb") or not entry["runnable"]:
            continue
        inputs = [t.split(":")[0] for t in entry["inputs"]]
        outputs = [t.split(":")[0] for t in entry["outputs"]]
        graph = graphtool.load(GRAPHDEF_FIXTURES / name)
        report = check(graph, "tflite", outputs=outputs)
        assert report.compatible == _freeze_convert(tf, GRAPHDEF_FIXTURES / name, inputs, outputs), name
        fixes = {f.fix for f in report.findings if f.fix and f.fix.startswith("graphtool transform: ")}
        if not report.compatible and fixes:  # function_library.pb: a _noinline call the converter keeps
            for fix in fixes:
                graphtool.transform(graph, fix.split(": ", 1)[1])
            assert check(graph, "tflite", outputs=outputs).compatible
            graphtool.save(graph, tmp_path / name)
            assert _freeze_convert(tf, tmp_path / name, inputs, outputs), f"{name} after {fixes}"
