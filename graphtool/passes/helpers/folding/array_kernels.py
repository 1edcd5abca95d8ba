"""Kernels that only move or describe values (any dtype, bits kept): Identity, Reshape,
Transpose, ConcatV2/Concat, Pack, Squeeze, ExpandDims, Fill, Shape, Size, Rank."""
from __future__ import annotations

import numpy as np

from ....ir import DType, Node
from .base import (
    INDEX_TYPES,
    EvalError,
    Unsupported,
    Value,
    arity,
    index_scalar,
    index_vector,
    int_attr,
    kernel,
    output,
)


@kernel("Identity")
def identity(node: Node, inputs: list[Value]) -> Value:
    arity(node, inputs, 1)
    return inputs[0]


@kernel("Reshape")
def reshape(node: Node, inputs: list[Value]) -> Value:
    arity(node, inputs, 2)
    value, shape = inputs
    if shape.array.ndim != 1:
        raise Unsupported(f"{node.name!r}: Reshape to a shape given as a {shape.array.ndim}-D tensor")
    dims = index_vector(node, shape, "shape")
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise EvalError(f"{node.name!r}: bad target shape {dims}")
    try:
        return output(value.array.reshape(dims), value.dtype)
    except ValueError as exc:
        raise EvalError(f"{node.name!r}: {exc}") from None


@kernel("Transpose")
def transpose(node: Node, inputs: list[Value]) -> Value:
    arity(node, inputs, 2)
    value, perm_value = inputs
    perm = index_vector(node, perm_value, "perm")
    if sorted(perm) != list(range(value.array.ndim)):
        raise EvalError(f"{node.name!r}: perm {perm} is not a permutation of the {value.array.ndim} dims")
    return output(np.transpose(value.array, perm), value.dtype)


@kernel("ConcatV2", "Concat")
def concat(node: Node, inputs: list[Value]) -> Value:
    if len(inputs) < 3:
        raise EvalError(f"{node.name!r}: {node.op} needs at least two values and an axis")
    if node.op == "ConcatV2":
        *values, axis_value = inputs
    else:
        axis_value, *values = inputs
    _same_type(node, values)
    return _join(node, np.concatenate, values, index_scalar(node, axis_value, "axis"), values[0].array.ndim)


@kernel("Pack")
def pack(node: Node, inputs: list[Value]) -> Value:
    if not inputs:
        raise EvalError(f"{node.name!r}: Pack of nothing")
    _same_type(node, inputs)
    return _join(node, np.stack, inputs, int_attr(node, "axis", 0), inputs[0].array.ndim + 1)


def _join(node: Node, function, values: list[Value], axis: int, rank: int) -> Value:
    """`function` (np.concatenate or np.stack) of `values` along `axis` of a rank-`rank` result."""
    if not -rank <= axis < rank:  # never for rank 0
        raise EvalError(f"{node.name!r}: axis {axis} out of range for rank {rank}")
    try:
        return output(function([v.array for v in values], axis=axis), values[0].dtype)
    except ValueError as exc:
        raise EvalError(f"{node.name!r}: {exc}") from None


@kernel("Squeeze")
def squeeze(node: Node, inputs: list[Value]) -> Value:
    arity(node, inputs, 1)
    (value,) = inputs
    array = value.array
    dims = node.attrs.get("squeeze_dims", ())
    if not isinstance(dims, tuple) or not all(isinstance(d, int) for d in dims):
        raise EvalError(f"{node.name!r}: squeeze_dims should be a list of ints, is {dims!r}")
    if not dims:
        return output(array.reshape([d for d in array.shape if d != 1]), value.dtype)
    rank = array.ndim
    for d in dims:
        if not -rank <= d < rank or array.shape[d] != 1:
            raise EvalError(f"{node.name!r}: cannot squeeze dim {d} of shape {array.shape}")
    drop = {d % rank for d in dims}
    return output(array.reshape([n for i, n in enumerate(array.shape) if i not in drop]), value.dtype)


@kernel("ExpandDims")
def expand_dims(node: Node, inputs: list[Value]) -> Value:
    arity(node, inputs, 2)
    value, dim_value = inputs
    dim = index_scalar(node, dim_value, "dim")
    rank = value.array.ndim
    if not -(rank + 1) <= dim <= rank:
        raise EvalError(f"{node.name!r}: dim {dim} out of range for rank {rank}")
    return output(np.expand_dims(value.array, dim), value.dtype)


@kernel("Fill")
def fill(node: Node, inputs: list[Value]) -> Value:
    arity(node, inputs, 2)
    dims_value, value = inputs
    dims = index_vector(node, dims_value, "dims")
    if any(d < 0 for d in dims):
        raise EvalError(f"{node.name!r}: negative dimension in {dims}")
    if value.array.ndim != 0:
        raise EvalError(f"{node.name!r}: value must be a scalar, has shape {value.array.shape}")
    return output(np.broadcast_to(value.array, dims), value.dtype)


@kernel("Shape")
def shape(node: Node, inputs: list[Value]) -> Value:
    arity(node, inputs, 1)
    return shape_value(node, inputs[0].array.shape)


@kernel("Size")
def size(node: Node, inputs: list[Value]) -> Value:
    arity(node, inputs, 1)
    return size_value(node, inputs[0].array.shape)


@kernel("Rank")
def rank(node: Node, inputs: list[Value]) -> Value:
    arity(node, inputs, 1)
    return rank_value(node, inputs[0].array.ndim)


def shape_value(node: Node, dims: tuple[int, ...]) -> Value:
    """What Shape yields for a tensor of fully known shape `dims`."""
    out_type = _out_type(node)
    _fits(node, max(dims, default=0), out_type)
    return output(np.array(dims, dtype=out_type.numpy), out_type)


def size_value(node: Node, dims: tuple[int, ...]) -> Value:
    out_type = _out_type(node)
    count = int(np.prod(dims, dtype=np.int64))
    _fits(node, count, out_type)
    return output(np.array(count), out_type)


def rank_value(node: Node, rank: int) -> Value:
    return output(np.array(rank), DType.INT32)


def _out_type(node: Node) -> DType:
    out_type = node.attrs.get("out_type", DType.INT32)
    if out_type not in INDEX_TYPES:
        raise EvalError(f"{node.name!r}: out_type must be int32 or int64, is {out_type}")
    return out_type


def _fits(node: Node, number: int, out_type: DType) -> None:
    if out_type == DType.INT32 and number > np.iinfo(np.int32).max:
        raise Unsupported(f"{node.name!r}: {number} does not fit {node.op}'s int32 output")


def _same_type(node: Node, values: list[Value]) -> None:
    dtypes = {v.dtype for v in values}
    if len(dtypes) != 1:
        raise EvalError(f"{node.name!r}: inputs of different types ({', '.join(sorted(map(str, dtypes)))})")
