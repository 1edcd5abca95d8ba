"""Evaluating constant subgraphs for fold_constants: numpy kernels (registered on import),
static shapes for Shape/Size/Rank, and the optional TensorFlow evaluator (lazy)."""
from . import array_kernels, cast, math_kernels, strided_slice  # noqa: F401  (register kernels)
from .array_kernels import rank_value, shape_value, size_value
from .base import KERNELS, EvalError, Unsupported, Value
from .static_shape import fully_known, static_shape
from .tensorflow_eval import TensorFlowEvaluator

__all__ = ["KERNELS", "EvalError", "TensorFlowEvaluator", "Unsupported", "Value", "fully_known", "rank_value",
           "shape_value", "size_value", "static_shape"]
