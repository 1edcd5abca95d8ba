"""`check --target tflite` on a GraphDef sees what the TFLite converter does: a corpus of
small tf.compat.v1 graphs — ops with a one-to-one builtin, ops the converter only lowers
into builtins (lower_tf.td: Selu, Softsign, DivNoNan, Xlogy, Lgamma, ...), a pattern it fuses
(tf.nn.gelu's Erfc into GELU), ops it lowers into something with no builtin (Erfc -> Erf),
ops with no builtin at all, and a float64
computation — each converted with TFLITE_BUILTINS only (and with SELECT_TF_OPS for
`tflite+select`); check's verdict must equal the converter's success on every one."""
from __future__ import annotations

import pytest

import graphtool
from graphtool.analysis.check import check


def _positive(tf, x):
    return tf.abs(x) + 1.0


def _matrix(tf, x):
    return tf.reshape(x[:, :4, :4, 0], [1, 4, 4])


# name -> the graph's body on x: float32 [1, 4, 4, 3]
CORPUS = {
    "conv_relu": lambda tf, x: tf.nn.relu(tf.nn.conv2d(x, tf.ones([3, 3, 3, 4]), 1, "SAME")),
    "matmul_bias_softmax": lambda tf, x: tf.nn.softmax(
        tf.nn.bias_add(tf.matmul(tf.reshape(x, [1, -1]), tf.ones([48, 5])), tf.ones([5]))),
    "mean_tanh": lambda tf, x: tf.reduce_mean(tf.tanh(x), axis=[1, 2]),
    "concat_transpose": lambda tf, x: tf.transpose(tf.concat([x, x], axis=3), [0, 3, 1, 2]),
    "slice_pad_pool": lambda tf, x: tf.nn.max_pool2d(tf.pad(x[:, 1:], [[0, 0], [1, 1], [1, 1], [0, 0]]), 2, 2, "VALID"),
    "atan2": lambda tf, x: tf.math.atan2(x, _positive(tf, x)),
    "log1p": lambda tf, x: tf.math.log1p(_positive(tf, x)),
    # lowered (lower_tf.td) into builtins: no TFLite op of their own
    "selu": lambda tf, x: tf.nn.selu(x),
    "softsign": lambda tf, x: tf.nn.softsign(x),
    "softplus": lambda tf, x: tf.nn.softplus(x),
    "ones_like": lambda tf, x: tf.ones_like(x) + x,
    "div_no_nan": lambda tf, x: tf.math.divide_no_nan(x, x - 1.0),
    "mul_no_nan": lambda tf, x: tf.math.multiply_no_nan(x, x),
    "is_finite": lambda tf, x: tf.cast(tf.math.is_finite(x), tf.float32),
    "l2_loss": lambda tf, x: tf.nn.l2_loss(x),
    "xlogy": lambda tf, x: tf.math.xlogy(x, _positive(tf, x)),
    "expm1": lambda tf, x: tf.math.expm1(x),
    "rint": lambda tf, x: tf.math.rint(x),
    "size": lambda tf, x: tf.cast(tf.size(x), tf.float32) * x,
    "roll": lambda tf, x: tf.roll(x, 1, axis=1),
    "reciprocal": lambda tf, x: tf.math.reciprocal(_positive(tf, x)),
    "lgamma": lambda tf, x: tf.math.lgamma(_positive(tf, x)),
    "gelu": lambda tf, x: tf.nn.gelu(x),  # its Erfc is fused into GELU (optimize_patterns.td)
    # lowered into an op with no builtin, or no builtin at all
    "erfc": lambda tf, x: tf.math.erfc(x),  # alone: lowered to 1 - Erf, and Erf has no builtin
    "digamma": lambda tf, x: tf.math.digamma(_positive(tf, x)),
    "matrix_determinant": lambda tf, x: tf.linalg.det(_matrix(tf, x)),
    "matrix_inverse": lambda tf, x: tf.linalg.inv(_matrix(tf, x)),
    "cholesky": lambda tf, x: tf.linalg.cholesky(_matrix(tf, x)),
    "bessel_i0e": lambda tf, x: tf.math.bessel_i0e(x),
    "igamma": lambda tf, x: tf.math.igamma(_positive(tf, x), _positive(tf, x)),
    "acos": lambda tf, x: tf.math.acos(tf.tanh(x)),
    "sinh": lambda tf, x: tf.math.sinh(x),
    "float64_add": lambda tf, x: tf.cast(tf.cast(x, tf.float64) + tf.cast(x, tf.float64), tf.float32),
}


def _graph_and_verdicts(tf, body) -> tuple[bytes, bool, bool]:
    """The frozen graph, and whether the converter converts it with builtins only / with Select TF ops."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    verdicts = []
    with graph.as_default():
        x = v1.placeholder(tf.float32, [1, 4, 4, 3], name="x")
        y = tf.identity(body(tf, x), name="y")
        with v1.Session(graph=graph) as session:
            for ops in ([tf.lite.OpsSet.TFLITE_BUILTINS], [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]):
                converter = v1.lite.TFLiteConverter.from_session(session, [x], [y])
                converter.target_spec.supported_ops = ops
                try:
                    converter.convert()
                    verdicts.append(True)
                except Exception as exc:  # the converter's ConverterError (its module moves between versions)
                    if "ConverterError" not in type(exc).__name__:
                        raise
                    verdicts.append(False)
    return graph.as_graph_def().SerializeToString(), verdicts[0], verdicts[1]


@pytest.mark.slow
def test_check_agrees_with_the_converter_on_every_graph_of_the_corpus(tf):
    assert len(CORPUS) >= 20
    disagreements, outcomes = [], []
    for name, body in CORPUS.items():
        graph_def, builtins, select = _graph_and_verdicts(tf, body)
        graph = graphtool.load(graph_def)
        for target, converted in (("tflite", builtins), ("tflite+select", select)):
            verdict = check(graph, target, outputs=["y"]).compatible
            outcomes.append(converted)
            if verdict != converted:
                disagreements.append(f"{name} --target {target}: converter {converted}, check {verdict}")
    assert not disagreements, "\n".join(disagreements)
    assert outcomes.count(True) >= 10 and outcomes.count(False) >= 8  # the corpus has both kinds
