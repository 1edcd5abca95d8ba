"""Judging graphs by TensorFlow, for the tests: parse and import a GraphDef, build one with
tf.compat.v1, run it in a Session, and transform one with graphtool then compare both
versions' outputs in TensorFlow. TensorFlow is passed in (the `tf` fixture), never imported
here: the core must work without it."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from google.protobuf import text_format

import graphtool
from graphtool.formats import graphdef
from graphtool.passes import TransformReport, transform


def parse_graph_def(message_type, data: bytes, text: bool = False):
    """`data` parsed into a new `message_type` (a GraphDef class): binary, or text format."""
    message = message_type()
    if text:
        text_format.Parse(data.decode(), message)
    else:
        message.ParseFromString(data)
    return message


def import_graph(tf, graph_def):
    """A fresh tf.Graph holding `graph_def` (imported without a name prefix)."""
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    return graph


def run_graphdef(tf, data: bytes, feeds: dict | None, fetches):
    """Import the GraphDef `data` into a fresh tf.Graph and run `fetches` (a tensor name or a
    list of them) in a tf.compat.v1.Session on `feeds`; returns what Session.run does."""
    graph = import_graph(tf, tf.compat.v1.GraphDef.FromString(data))
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(fetches, feed_dict=feeds or {})


def build_graph(tf, body: Callable[[], Any], add_shapes: bool = False) -> tuple[Any, list[str]]:
    """Run `body()` in a fresh tf.Graph; returns its GraphDef and the names of the tensors
    `body` returned (one, a list or tuple of them, or none)."""
    with tf.Graph().as_default() as built:
        outputs = body()
    if outputs is None:
        outputs = []
    elif not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return built.as_graph_def(add_shapes=add_shapes), [t.name for t in outputs]


def build_graphdef(tf, body: Callable[[], Any], add_shapes: bool = False) -> tuple[bytes, list[str]]:
    """build_graph, serialized: (GraphDef bytes, names of the tensors `body` returned)."""
    graph_def, names = build_graph(tf, body, add_shapes)
    return graph_def.SerializeToString(), names


@dataclass
class Transformed:
    """A GraphDef after a graphtool transform."""

    report: TransformReport
    graph: graphtool.ir.Graph  # the graph transformed in place
    data: bytes  # as written
    graph_def: Any  # TensorFlow's parse of `data`
    nodes_before: int

    @property
    def stats(self) -> dict:
        """The last pass's stats."""
        return self.report.passes[-1].stats

    @property
    def ops(self) -> Counter:
        """Node count by op in the written GraphDef."""
        return Counter(n.op for n in self.graph_def.node)


def transform_graphdef(tf, data: bytes, spec: str, inputs: Iterable[str] = (),
                       outputs: Iterable[str] = ()) -> Transformed:
    """Load the GraphDef `data` into graphtool, apply `spec` and write it."""
    graph = graphtool.load(data)
    nodes_before = len(graph)
    report = transform(graph, spec, inputs=list(inputs), outputs=list(outputs))
    written = graphdef.write(graph)
    return Transformed(report, graph, written, tf.compat.v1.GraphDef.FromString(written), nodes_before)


def assert_outputs_match(expected: Sequence[np.ndarray], actual: Sequence[np.ndarray], *, rtol: float = 0.0,
                         atol: float = 0.0, exact: bool = False, same_dtype: bool = False) -> None:
    """Each actual output equals the expected one: exactly (assert_array_equal), or with the
    same shape (and dtype, when asked) and within assert_allclose's rtol/atol."""
    for want, got in zip(expected, actual):
        if exact:
            np.testing.assert_array_equal(got, want)
            continue
        assert got.shape == want.shape
        if same_dtype:
            assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def transform_and_compare(tf, data: bytes, spec: str, feeds: dict, fetches: list[str], *,
                          inputs: Iterable[str] | None = None, outputs: Iterable[str] | None = None,
                          **tolerance) -> Transformed:
    """Transform the GraphDef `data` with `spec`, run both versions in TensorFlow on `feeds`
    and compare each of `fetches` (assert_outputs_match with `tolerance`). The fed nodes are
    declared as inputs and the fetched ones as outputs unless `inputs`/`outputs` are given."""
    inputs = [k.split(":")[0] for k in feeds] if inputs is None else inputs
    outputs = [f.split(":")[0] for f in fetches] if outputs is None else outputs
    result = transform_graphdef(tf, data, spec, inputs, outputs)
    expected, actual = run_graphdef(tf, data, feeds, fetches), run_graphdef(tf, result.data, feeds, fetches)
    assert_outputs_match(expected, actual, **tolerance)
    return result


def transform_placeholder_graph(tf, body: Callable, spec: str, shapes: dict[str, Sequence], feeds: dict,
                                **tolerance) -> Transformed:
    """Build out = identity(body(*placeholders)), one float32 placeholder per `shapes` entry
    (name: shape), transform it with the placeholders as inputs and out as output, and
    compare both graphs in TensorFlow on `feeds` (see transform_and_compare)."""
    def build():
        placeholders = [tf.compat.v1.placeholder(tf.float32, shape, name=name) for name, shape in shapes.items()]
        return tf.identity(body(*placeholders), name="out")

    data, fetches = build_graphdef(tf, build)
    return transform_and_compare(tf, data, spec, feeds, fetches, inputs=list(shapes), **tolerance)
