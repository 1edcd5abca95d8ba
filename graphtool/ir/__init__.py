"""The format-independent IR: Graph, Node, Tensor, DType."""
from .dtypes import DType
from .graph import BACK_EDGE_OPS, Graph
from .node import CONTROL, MISSING_OP, Node, Ref
from .tensor import Quantization, Shape, Tensor

__all__ = ["BACK_EDGE_OPS", "CONTROL", "DType", "Graph", "MISSING_OP", "Node", "Quantization",
           "Ref", "Shape", "Tensor"]
