"""Element-wise arithmetic with TensorFlow's broadcasting, on the types numpy computes the
way TensorFlow does (float16/32/64 and fixed-width integers; integers wrap). float32/float64
subnormals are flushed to zero going in and coming out, as on TensorFlow's CPU."""
from __future__ import annotations

import numpy as np

from ....ir import DType, Node
from .base import (
    NATIVE_FLOATS,
    REAL_NUMERIC,
    EvalError,
    Kernel,
    Unsupported,
    Value,
    arity,
    flush_denormals,
    kernel,
    output,
    same_dtype,
)


def _operands(node: Node, inputs: list[Value], allowed: frozenset) -> tuple[DType, list[np.ndarray]]:
    dtype = same_dtype(node, inputs)
    if dtype not in allowed:
        raise Unsupported(f"{node.op} on {dtype}")
    return dtype, [flush_denormals(value.array) for value in inputs]


def _binary(node: Node, inputs: list[Value], allowed: frozenset = REAL_NUMERIC) -> tuple[DType, np.ndarray, np.ndarray]:
    arity(node, inputs, 2)
    dtype, (a, b) = _operands(node, inputs, allowed)
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise EvalError(f"{node.name!r}: shapes {a.shape} and {b.shape} do not broadcast") from None
    return dtype, a, b


def _elementwise(function, allowed: frozenset = REAL_NUMERIC) -> Kernel:
    """A kernel computing `function(a, b)` on two operands of one type among `allowed`."""
    def compute(node: Node, inputs: list[Value]) -> Value:
        dtype, a, b = _binary(node, inputs, allowed)
        with np.errstate(all="ignore"):
            return _result(function(a, b), dtype)

    return compute


add = kernel("Add", "AddV2")(_elementwise(np.add))
sub = kernel("Sub")(_elementwise(np.subtract))
mul = kernel("Mul")(_elementwise(np.multiply))
real_div = kernel("RealDiv")(_elementwise(np.divide, NATIVE_FLOATS))
# Both propagate NaN from either side. On max(-0, +0) TensorFlow's sign depends on
# whether its vector or scalar loop ran, so no choice here matches it always.
maximum = kernel("Maximum")(_elementwise(np.maximum))
minimum = kernel("Minimum")(_elementwise(np.minimum))


def _result(array: np.ndarray, dtype: DType) -> Value:
    return output(flush_denormals(np.asarray(array, dtype=dtype.numpy)), dtype)


def _float_unary(node: Node, inputs: list[Value], function) -> Value:
    """Computed one precision up (float16 in float32, float32 in float64) and rounded once,
    so the result is the correctly rounded one; float64 is computed as is."""
    arity(node, inputs, 1)
    dtype, (x,) = _operands(node, inputs, NATIVE_FLOATS)
    wide = {DType.FLOAT16: np.float32, DType.FLOAT32: np.float64, DType.FLOAT64: np.float64}[dtype]
    with np.errstate(all="ignore"):
        return _result(function(x.astype(wide)), dtype)


@kernel("Sqrt")
def sqrt(node: Node, inputs: list[Value]) -> Value:
    return _float_unary(node, inputs, np.sqrt)


@kernel("Rsqrt")
def rsqrt(node: Node, inputs: list[Value]) -> Value:
    return _float_unary(node, inputs, lambda x: 1 / np.sqrt(x))


@kernel("Reciprocal")
def reciprocal(node: Node, inputs: list[Value]) -> Value:
    return _float_unary(node, inputs, lambda x: 1 / x)
