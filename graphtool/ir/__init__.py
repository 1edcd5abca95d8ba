"""The format-independent IR: Graph, Node, Tensor, DType."""
from .dtypes import DType
from .graph import BACK_EDGE_OPS, Graph
from .node import (
                   CONST_OP,
                   CONTROL,
                   INPUT_OP,
                   MISSING_OP,
                   TENSOR_OP,
                   TENSOR_SOURCE_OPS,
                   VARIABLE_OP,
                   Node,
                   Ref,
                   make_const,
)
from .tensor import Quantization, Shape, Tensor

__all__ = ["BACK_EDGE_OPS", "CONST_OP", "CONTROL", "INPUT_OP", "TENSOR_OP", "TENSOR_SOURCE_OPS", "VARIABLE_OP", "make_const", "DType", "Graph", "MISSING_OP", "Node", "Quantization",
           "Ref", "Shape", "Tensor"]
