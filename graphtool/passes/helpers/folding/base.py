"""What every folding kernel shares: the value type, the two ways a kernel declines, the
registry, and small checks on operands."""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ....errors import GraphtoolError
from ....ir import DType, Node


class Value(NamedTuple):
    """A constant: numpy storage (`dtype.numpy`; bfloat16 as its uint16 bits) and its type."""

    array: np.ndarray
    dtype: DType


class Unsupported(GraphtoolError):
    """The numpy kernel does not cover this case (a dtype, an attr); TensorFlow may.

    `reason` is the short key fold_constants counts skips under."""

    def __init__(self, message: str, reason: str = "no_kernel"):
        super().__init__(message)
        self.reason = reason


class EvalError(GraphtoolError):
    """The node cannot be evaluated on these values: the graph would fail at run time too."""


Kernel = Callable[[Node, list[Value]], Value]
KERNELS: dict[str, Kernel] = {}

# Types whose numpy storage is their own arithmetic (no bfloat16, quantized, complex, bool).
REAL_NUMERIC = frozenset({DType.FLOAT16, DType.FLOAT32, DType.FLOAT64, DType.INT8, DType.INT16, DType.INT32,
                          DType.INT64, DType.UINT8, DType.UINT16, DType.UINT32, DType.UINT64})
NATIVE_FLOATS = frozenset({DType.FLOAT16, DType.FLOAT32, DType.FLOAT64})
INDEX_TYPES = frozenset({DType.INT32, DType.INT64})


def kernel(*ops: str) -> Callable[[Kernel], Kernel]:
    """Register a numpy kernel for `ops`."""
    def decorate(function: Kernel) -> Kernel:
        for op in ops:
            if op in KERNELS:
                raise ValueError(f"two folding kernels for {op}")
            KERNELS[op] = function
        return function

    return decorate


def arity(node: Node, inputs: list[Value], count: int) -> None:
    if len(inputs) != count:
        raise EvalError(f"{node.op} takes {count} inputs, {node.name!r} has {len(inputs)}")


def same_dtype(node: Node, inputs: list[Value]) -> DType:
    """The one dtype all operands share (and attr T names, when present)."""
    dtypes = {value.dtype for value in inputs}
    declared = node.attrs.get("T")
    if isinstance(declared, DType):
        dtypes.add(declared)
    if len(dtypes) != 1:
        raise EvalError(f"{node.name!r}: operand types differ ({', '.join(sorted(map(str, dtypes)))})")
    return dtypes.pop()


def index_vector(node: Node, value: Value, what: str, scalar_ok: bool = False) -> list[int]:
    """An int32/int64 operand (shape, perm, begin...) as Python ints."""
    if value.dtype not in INDEX_TYPES:
        raise EvalError(f"{node.name!r}: {what} must be int32 or int64, not {value.dtype}")
    array = value.array
    if array.ndim > 1 or (array.ndim == 0 and not scalar_ok):
        raise EvalError(f"{node.name!r}: {what} must be a vector, has shape {array.shape}")
    return [int(v) for v in array.reshape(-1)]


def index_scalar(node: Node, value: Value, what: str) -> int:
    """A scalar (or one-element) int32/int64 operand, like an axis."""
    items = index_vector(node, value, what, scalar_ok=True)
    if len(items) != 1:
        raise EvalError(f"{node.name!r}: {what} must hold one value, has {len(items)}")
    return items[0]


def int_attr(node: Node, key: str, default: int = 0) -> int:
    value = node.attrs.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise EvalError(f"{node.name!r}: attr {key!r} should be an int, is {value!r}")
    return value


def flush_denormals(array: np.ndarray) -> np.ndarray:
    """float32/float64 subnormals to signed zero: TensorFlow's CPU kernels run with
    flush-to-zero and denormals-are-zero set, so its arithmetic neither sees nor makes them."""
    if array.dtype not in (np.float32, np.float64):
        return array
    with np.errstate(invalid="ignore"):
        tiny = np.abs(array) < np.finfo(array.dtype).tiny
    return np.where(tiny, np.copysign(np.zeros((), array.dtype), array), array) if tiny.any() else array


def output(array: np.ndarray, dtype: DType) -> Value:
    """A kernel result: a fresh, contiguous, read-only array in `dtype`'s storage."""
    result = np.array(array, dtype=dtype.numpy, copy=True, order="C")
    result.setflags(write=False)
    return Value(result, dtype)
