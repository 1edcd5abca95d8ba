"""StridedSlice, by turning TensorFlow's sparse slice spec into a numpy index.

Bit i of the masks refers to entry i of begin/end/strides. Precedence is TensorFlow's:
ellipsis, then new axis, then shrink (an integer index: begin only, stride must be
positive, out of range is an error), else a slice whose begin/end are left open by
begin_mask/end_mask. Python's slice clamping is TensorFlow's canonicalisation."""
from __future__ import annotations

from typing import Any

import numpy as np

from ....ir import Node
from .base import EvalError, Value, arity, index_vector, int_attr, kernel, output


@kernel("StridedSlice")
def strided_slice(node: Node, inputs: list[Value]) -> Value:
    arity(node, inputs, 4)
    value, begin_value, end_value, strides_value = inputs
    begin = index_vector(node, begin_value, "begin")
    end = index_vector(node, end_value, "end")
    strides = index_vector(node, strides_value, "strides")
    if not len(begin) == len(end) == len(strides):
        raise EvalError(f"{node.name!r}: begin, end and strides differ in length")
    index = slice_index(node, begin, end, strides)
    try:
        return output(value.array[index], value.dtype)
    except IndexError as exc:
        raise EvalError(f"{node.name!r}: {exc}") from None


def slice_index(node: Node, begin: list[int], end: list[int], strides: list[int]) -> tuple[Any, ...]:
    masks = {key: int_attr(node, key, 0) for key in
             ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}

    def bit(key: str, i: int) -> bool:
        return bool(masks[key] >> i & 1)

    index: list[Any] = []
    seen_ellipsis = False
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        if bit("ellipsis_mask", i):
            if seen_ellipsis:
                raise EvalError(f"{node.name!r}: more than one ellipsis in the slice spec")
            seen_ellipsis = True
            index.append(Ellipsis)
        elif bit("new_axis_mask", i):
            index.append(np.newaxis)
        elif s == 0:
            raise EvalError(f"{node.name!r}: stride 0 at position {i}")
        elif bit("shrink_axis_mask", i):
            if s < 0:
                raise EvalError(f"{node.name!r}: only stride 1 allowed on non-range indexing")
            index.append(b)
        else:
            index.append(slice(None if bit("begin_mask", i) else b, None if bit("end_mask", i) else e, s))
    return tuple(index)
