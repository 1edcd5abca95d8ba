"""Static shapes of values that are not constant, so Shape/Size/Rank can fold.

Graphtool reads a GraphDef without shape inference; this knows what a Placeholder's shape
attr says and follows ops whose output has their first input's shape. Anything else is
unknown (None). `_output_shapes` attrs are never trusted: they may be stale (GTT clears
them for that reason)."""
from __future__ import annotations

from typing import Callable

from ....ir import Graph, Ref
from ....ir.attrs import TensorShape

PLACEHOLDERS = frozenset({"Placeholder", "PlaceholderV2", "PlaceholderWithDefault"})

# Ops whose output 0 has the shape of input 0.
SHAPE_PRESERVING = frozenset({
    "Identity", "StopGradient", "Snapshot", "CheckNumerics", "Cast", "BiasAdd",
    "Relu", "Relu6", "Elu", "Selu", "LeakyRelu", "Sigmoid", "Tanh", "Softplus", "Softsign",
    "Softmax", "LogSoftmax", "Neg", "Abs", "Sign", "Square", "Sqrt", "Rsqrt", "Reciprocal",
    "Exp", "Log", "Floor", "Ceil", "Round", "Erf",
    "FakeQuantWithMinMaxArgs", "FakeQuantWithMinMaxVars",
})

Shape = tuple | None  # tuple of int | None per dim; None: unknown rank


def static_shape(graph: Graph, ref: Ref, constant_shape: Callable[[Ref], tuple | None],
                 fed: frozenset[str] = frozenset()) -> Shape:
    """The shape `ref` has whenever the graph runs, as far as known without running it.

    `constant_shape(ref)` gives the shape of a value already known to be constant; `fed`
    names nodes the user feeds (declared inputs), whose shape only a Placeholder states."""
    seen = 0
    while seen < len(graph):  # bounded walk up the chain of shape-preserving ops
        known = constant_shape(ref)
        if known is not None:
            return known
        node = graph.node(ref.node)
        if node.op in PLACEHOLDERS and ref.port == 0:
            shape = node.attrs.get("shape")
            return shape.dims if isinstance(shape, TensorShape) else None
        inputs = graph.inputs_of(ref.node)
        if node.name in fed or node.op not in SHAPE_PRESERVING or ref.port != 0 or not inputs or inputs[0] is None:
            return None
        ref = inputs[0]
        seen += 1
    return None


def fully_known(shape: Shape) -> bool:
    return shape is not None and all(d is not None and d >= 0 for d in shape)
