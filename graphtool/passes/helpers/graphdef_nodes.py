"""Small helpers the GraphDef transforms share."""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ...ir import DType, Graph, Node, Ref
from ...ir.attrs import TensorShape
from .skips import Skips

DTYPE_NAMES = {"float": DType.FLOAT32, "float32": DType.FLOAT32, "double": DType.FLOAT64,
               "float64": DType.FLOAT64, "half": DType.FLOAT16, "float16": DType.FLOAT16,
               "bfloat16": DType.BFLOAT16, "int8": DType.INT8, "int16": DType.INT16, "int32": DType.INT32,
               "int64": DType.INT64, "uint8": DType.UINT8, "uint16": DType.UINT16, "bool": DType.BOOL,
               "string": DType.STRING, "quint8": DType.QUINT8, "qint8": DType.QINT8, "qint32": DType.QINT32}


def protected(graph: Graph, names: list[str]) -> set[str]:
    """Nodes a transform must keep: the declared inputs and outputs (by node name)."""
    keep = {Ref.parse(n).node for n in names}
    keep |= {r.node for r in graph.outputs} | set(graph.inputs)
    return keep


def float32_consts(graph: Graph, skipped: Skips | None = None) -> Iterator[tuple[Node, np.ndarray]]:
    """(node, value) of each Const holding a constant float32 tensor, in graph order. Consts
    of other types are passed over, and recorded as skipped ("not float32") when `skipped` is given."""
    for node in graph:
        if node.op != "Const" or not node.outputs or not node.outputs[0].is_constant:
            continue
        tensor = node.outputs[0]
        if tensor.dtype is not DType.FLOAT32:
            if skipped is not None:
                skipped(node.name, "not float32")
            continue
        yield node, tensor.data


def nodes_with_attr(graph: Graph, attribute: str, op_name: str = "*") -> list[Node]:
    """The nodes of op `op_name` (any op for "*") that have attr `attribute`."""
    return [node for node in graph if op_name in ("*", node.op) and attribute in node.attrs]


def placeholder(name: str, dtype: DType, dims: tuple | None) -> Node:
    from ...ir import Tensor

    return Node(name, "Placeholder", {"dtype": dtype, "shape": TensorShape(dims)},
                outputs=[Tensor(name, dtype, dims)])


def parse_dtype(text: str) -> DType:
    try:
        return DTYPE_NAMES[text.lower()]
    except KeyError:
        raise ValueError(f"unknown type {text!r}; one of {', '.join(sorted(DTYPE_NAMES))}") from None


def parse_shape(text: str) -> tuple | None:
    """"1,224,224,3" -> (1, 224, 224, 3); -1 or ? for unknown dims; "" -> unknown rank."""
    if not text.strip():
        return None
    return tuple(None if d.strip() in ("-1", "?") else int(d) for d in text.split(","))
