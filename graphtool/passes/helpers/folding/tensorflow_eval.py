"""Evaluate one node in TensorFlow: its constant inputs become Consts of a tiny GraphDef,
imported into a private tf.Graph and run in a Session. TensorFlow is imported on first use
only, so folding with the numpy kernels never loads it."""
from __future__ import annotations

from typing import Any

import numpy as np

from ....errors import first_line
from ....ir import DType, Graph, Node, make_const
from ....ir.attrs import FuncAttr
from ....logs import prepare_tensorflow, quietly
from .base import EvalError, Unsupported, Value

# Output types whose numpy storage is a same-width view of what TensorFlow returns.
_VIEWABLE = frozenset({DType.FLOAT16, DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16, DType.INT8, DType.INT16,
                       DType.INT32, DType.INT64, DType.UINT8, DType.UINT16, DType.UINT32, DType.UINT64,
                       DType.BOOL, DType.COMPLEX64, DType.COMPLEX128, DType.QINT8, DType.QUINT8,
                       DType.QINT16, DType.QUINT16, DType.QINT32})


class TensorFlowEvaluator:
    """Runs single nodes on constant inputs; one Session serves a whole pass. Call close()."""

    def __init__(self) -> None:
        self._tf: Any = None
        self._graph: Any = None
        self._session: Any = None
        self._count = 0
        self.used = 0

    @quietly
    def evaluate(self, node: Node, inputs: list[Value]) -> list[Value]:
        """All outputs of `node` given its input values."""
        tf = self._start()
        from tensorflow.python.framework import op_def_registry

        op_def = op_def_registry.get(node.op)
        if op_def is None:
            raise Unsupported(f"{node.op} is not an op TensorFlow knows")
        if op_def.is_stateful:
            raise Unsupported(f"{node.op} is stateful", reason="stateful")
        if any(_is_function(v) for v in node.attrs.values()):
            raise Unsupported(f"{node.op} calls a function", reason="function")
        scope = f"fold_{self._count}"
        self._count += 1
        try:
            with self._graph.as_default():
                tf.graph_util.import_graph_def(_tiny_graph_def(tf, node, inputs), name=scope)
            op = self._graph.get_operation_by_name(f"{scope}/node")
            if not op.outputs:
                raise Unsupported(f"{node.op} has no outputs", reason="no_outputs")
            results = self._session.run(op.outputs)
        except (ValueError, TypeError, tf.errors.OpError) as exc:
            raise EvalError(f"TensorFlow could not evaluate {node.name!r}: {first_line(exc)}") from None
        self.used += 1
        return [_value(tensor, array) for tensor, array in zip(op.outputs, results)]

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _start(self) -> Any:
        if self._tf is None:
            prepare_tensorflow()
            try:
                import tensorflow as tf
            except ImportError:
                raise Unsupported("no numpy kernel, and TensorFlow is not installed") from None
            self._tf = tf
            self._graph = tf.Graph()
            config = tf.compat.v1.ConfigProto(device_count={"GPU": 0})
            self._session = tf.compat.v1.Session(graph=self._graph, config=config)
        return self._tf


def _tiny_graph_def(tf: Any, node: Node, inputs: list[Value]) -> Any:
    """A GraphDef of Consts input_0..input_n feeding a copy of `node` named "node"
    (internal attrs such as _class and _output_shapes left out: they name other nodes).
    The GraphDef format is imported here: folding a .tflite imports no protobuf."""
    from ....formats import graphdef

    tiny = Graph(format=graphdef.FORMAT)
    names = []
    for i, value in enumerate(inputs):
        names.append(tiny.add_node(make_const(f"input_{i}", value.array, value.dtype)).name)
    attrs = {k: v for k, v in node.attrs.items() if not k.startswith("_")}
    tiny.add_node(Node("node", node.op, attrs), inputs=names)
    return tf.compat.v1.GraphDef.FromString(graphdef.write(tiny))


def _value(tensor: Any, array: Any) -> Value:
    dtype = DType.from_tf(tensor.dtype.as_datatype_enum)
    if dtype == DType.STRING:
        return Value(np.asarray(array, dtype=object), dtype)
    if dtype not in _VIEWABLE:
        raise Unsupported(f"output of type {dtype}", reason="unfoldable_type")
    array = np.asarray(array)
    storage = dtype.numpy
    if array.dtype != storage:
        array = np.array(array, order="C").view(storage)
    array.setflags(write=False)
    return Value(array, dtype)


def _is_function(value: Any) -> bool:
    if isinstance(value, tuple):
        return any(isinstance(v, FuncAttr) for v in value)
    return isinstance(value, FuncAttr)

