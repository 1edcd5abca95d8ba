"""Small helpers the GraphDef transforms share."""
from __future__ import annotations

from ...ir import DType, Graph, Node, Ref
from ...ir.attrs import TensorShape

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
