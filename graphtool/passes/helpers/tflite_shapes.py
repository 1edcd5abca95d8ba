"""Output shapes of TFLite operators from their inputs' shapes: rules per op family.

A shape is a tuple with an int per dimension, None where the size is known only when the
model runs (the -1 of a tensor's shape_signature). A rule sees one operator through
`Operands`: its input shapes, the values of its small integer operands where they are known
(shapes, axes, paddings, perms: constants, or computed from shapes), and its options; it
returns the output shapes, as LiteRT's kernels compute them when they prepare. A rule that
cannot give them raises ShapeError naming the operator. RESHAPE, TRANSPOSE_CONV and
BROADCAST_TO may ask to rewrite a constant shape that bakes the old batch (`Operands.rewrite`). Control flow
(WHILE, IF, CALL_ONCE) has no rule here: its outputs are its subgraphs', which the caller
propagates into.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ...ir import Node
from ..registry import PassError
from .folding.base import EvalError
from .folding.strided_slice import slice_index

Dim = int | None
Shape = tuple[Dim, ...]
SAME, VALID = 0, 1  # the schema's Padding enum
# Stand-ins for an unknown size (STRIDED_SLICE): a dimension of the result that differs
# between the two depends on the unknown size, and is unknown too.
UNKNOWN_PROBES = (1 << 40, (1 << 40) + 7)


class ShapeError(PassError):
    """An operator's output shape cannot be derived (or its inputs cannot have these shapes)."""


@dataclass
class Known:
    """The value of an integer tensor as far as it is known: `array`, and `known` (same shape,
    bool) saying which elements are; None when all are."""

    array: np.ndarray
    known: np.ndarray | None = None

    def items(self) -> list[int | None]:
        flat = self.array.reshape(-1).tolist()
        mask = [True] * len(flat) if self.known is None else self.known.reshape(-1).tolist()
        return [int(v) if k else None for v, k in zip(flat, mask)]

    @property
    def complete(self) -> bool:
        return self.known is None or bool(self.known.all())


@dataclass
class Operands:
    """What a rule sees of one operator: input shapes and values by slot (None for an absent
    optional input), the shapes the inputs and outputs had in the model as read, which inputs
    are constants (the ones a rule may rewrite), and the rewrites it asks for. `symbolic`:
    the shapes are worked out to be looked at, not written (a constant may then hold an
    unknown size that LiteRT would refuse)."""

    node: Node
    shapes: list[Shape | None]
    values: list[Known | None]
    old_inputs: list[Shape | None]
    old_outputs: list[Shape | None]
    constant: list[bool]
    rewrites: dict[int, tuple[list[Dim], list[int]]] = field(default_factory=dict)
    symbolic: bool = False

    def fail(self, message: str) -> ShapeError:
        return ShapeError(f"{self.node.op} {self.node.name!r}: {message}")

    def shape(self, slot: int = 0) -> Shape:
        shape = self.shapes[slot] if slot < len(self.shapes) else None
        if shape is None:
            raise self.fail(f"input {slot} is missing or has an unknown rank")
        return shape

    def has(self, slot: int) -> bool:
        return slot < len(self.shapes) and self.shapes[slot] is not None

    def ints(self, slot: int, what: str) -> list[int | None]:
        """The elements of integer input `slot` (flattened); ShapeError when its value is not known."""
        value = self.values[slot] if slot < len(self.values) else None
        if value is None:
            raise self.fail(f"its {what} (input {slot}) is computed by an operator graphtool cannot evaluate")
        return value.items()

    def static_ints(self, slot: int, what: str) -> list[int]:
        items = self.ints(slot, what)
        if any(v is None for v in items):
            raise self.fail(f"its {what} {show(items)} depends on a size known only at run time")
        return items  # type: ignore[return-value]

    def attr(self, name: str, default: Any = 0) -> Any:
        value = self.node.attrs.get(name, default)
        return default if value is None else value

    def positive(self, *names: str, default: int = 1) -> list[int]:
        """Options that must be positive ints (strides, dilations, block sizes)."""
        values = [int(self.attr(name, default)) for name in names]
        bad = [f"{n}={v}" for n, v in zip(names, values) if v <= 0]
        if bad:
            raise self.fail(f"option {', '.join(bad)} must be positive")
        return values

    def axis(self, axis: int, rank: int, what: str = "axis") -> int:
        """A possibly negative axis into `rank` dimensions, checked."""
        if not -rank <= axis < rank:
            raise self.fail(f"{what} {axis} is out of range for rank {rank}")
        return axis % rank

    def held(self, shape: list[Dim], what: str) -> list[Dim]:
        """A constant shape after a rewrite: a -1 (an unknown batch) it cannot hold is refused,
        or, when symbolic, read as unknown."""
        if -1 not in shape:
            return shape
        if not self.symbolic:
            raise self.fail(f"its {what} {show(shape)} cannot hold a batch known only at run time")
        return [None if d == -1 else d for d in shape]

    def rewrite(self, slot: int, old: list[Dim], new: list[int]) -> None:
        """Ask for constant input `slot` (-1: the new_shape option) to hold `new` instead of
        `old` (a shape that baked the old batch)."""
        self.rewrites[slot] = (old, new)


Rule = Callable[[Operands], list[Shape]]


def show(dims: Sequence[Dim] | None) -> str:
    """A shape as messages print it: [4, 224, 224, 3], ? for an unknown size."""
    return "unknown" if dims is None else "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def count(shape: Shape) -> int | None:
    """Elements of a shape; None when a size is unknown."""
    return None if any(d is None for d in shape) else math.prod(shape)  # type: ignore[arg-type]


def _merge(ops: Operands, a: Dim, b: Dim, what: str) -> Dim:
    """Two sizes that must be equal (one of them may be unknown)."""
    if a is not None and b is not None and a != b:
        raise ops.fail(f"{what}: {a} and {b} differ")
    return a if a is not None else b


def _divide(ops: Operands, size: Dim, by: int, what: str) -> Dim:
    if size is not None and size % by:
        raise ops.fail(f"{what}: {size} is not a multiple of {by}")
    return None if size is None else size // by


def _times(size: Dim, factor: int) -> Dim:
    return None if size is None else size * factor


# -- families ----------------------------------------------------------------------------------

def same_shape(ops: Operands) -> list[Shape]:
    """Output 0 has input 0's shape (activations, casts, quantize/dequantize, ...)."""
    return [ops.shape(0)]


def broadcast_shapes(ops: Operands, shapes: Sequence[Shape]) -> Shape:
    """NumPy broadcasting, as LiteRT's binary kernels do; an unknown size broadcast against
    a known one larger than 1 is that one (it must be 1 or equal at run time)."""
    rank = max(len(s) for s in shapes)
    out: list[Dim] = []
    for i in range(rank):
        dims = [s[i - rank + len(s)] for s in shapes if i - rank + len(s) >= 0]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ops.fail(f"cannot broadcast shapes {', '.join(show(s) for s in shapes)}")
        if known:
            out.append(known.pop())
        else:
            out.append(None if None in dims else 1)
    return tuple(out)


def broadcast(ops: Operands) -> list[Shape]:
    """Elementwise over every present input, with broadcasting."""
    return [broadcast_shapes(ops, [s for s in ops.shapes if s is not None])]


def select(ops: Operands) -> list[Shape]:
    """SELECT: the condition may be a vector over dim 0; the output is x's and y's shape."""
    return [broadcast_shapes(ops, [ops.shape(1), ops.shape(2)])]


def out_size(ops: Operands, size: Dim, kernel: int, stride: int, dilation: int, padding: int) -> Dim:
    """tflite::ComputeOutSize: a convolution or pooling window over one spatial dimension."""
    if size is None:
        return None
    effective = (kernel - 1) * dilation + 1
    if padding == SAME:
        return (size + stride - 1) // stride
    if padding != VALID:
        raise ops.fail(f"padding {padding} is neither SAME nor VALID")
    result = (size + stride - effective) // stride
    if result <= 0:
        raise ops.fail(f"a window of {effective} does not fit in a dimension of {size} (padding VALID)")
    return result


def _rank(ops: Operands, slot: int, rank: int, what: str) -> Shape:
    shape = ops.shape(slot)
    if len(shape) != rank:
        raise ops.fail(f"{what} has shape {show(shape)}, not rank {rank}")
    return shape


def conv_2d(ops: Operands) -> list[Shape]:
    """CONV_2D and DEPTHWISE_CONV_2D: NHWC input, OHWI (depthwise 1HWO) filter."""
    n, h, w, c = _rank(ops, 0, 4, "the input")
    out_c, kh, kw, in_c = _rank(ops, 1, 4, "the filter")
    stride_w, stride_h, dil_w, dil_h = ops.positive("stride_w", "stride_h", "dilation_w_factor",
                                                    "dilation_h_factor")
    if ops.node.op == "DEPTHWISE_CONV_2D":
        out_c = in_c
        if c is not None and out_c is not None and out_c % c:
            raise ops.fail(f"{out_c} output channels are not a multiple of the input's {c}")
    elif c is not None and in_c is not None and (c % in_c or out_c is not None and out_c % (c // in_c)):
        raise ops.fail(f"{c} input channels do not make groups of the filter's {in_c} for its {out_c} outputs")
    padding = int(ops.attr("padding"))
    return [(n, out_size(ops, h, kh, stride_h, dil_h, padding), out_size(ops, w, kw, stride_w, dil_w, padding), out_c)]


def conv_3d(ops: Operands) -> list[Shape]:
    """CONV_3D: NDHWC input, DHWIO filter."""
    n, d, h, w, _ = _rank(ops, 0, 5, "the input")
    kd, kh, kw, _, out_c = _rank(ops, 1, 5, "the filter")
    strides = ops.positive("stride_d", "stride_h", "stride_w")
    dilations = ops.positive("dilation_d_factor", "dilation_h_factor", "dilation_w_factor")
    padding = int(ops.attr("padding"))
    spatial = [out_size(ops, size, k, s, dl, padding) for size, k, s, dl in zip((d, h, w), (kd, kh, kw), strides,
                                                                               dilations)]
    return [(n, *spatial, out_c)]


def pool_2d(ops: Operands) -> list[Shape]:
    """AVERAGE_POOL_2D, MAX_POOL_2D, L2_POOL_2D."""
    n, h, w, c = _rank(ops, 0, 4, "the input")
    stride_w, stride_h, fw, fh = ops.positive("stride_w", "stride_h", "filter_width", "filter_height")
    padding = int(ops.attr("padding"))
    return [(n, out_size(ops, h, fh, stride_h, 1, padding), out_size(ops, w, fw, stride_w, 1, padding), c)]


def transpose_conv(ops: Operands) -> list[Shape]:
    """TRANSPOSE_CONV: the output is input 0's value (output_shape: a constant one whose first
    dim is the old batch follows the input's new batch); the input must be what a convolution
    of that output with these options gives."""
    out = _rank(ops, 2, 4, "the input")
    shape = ops.ints(0, "output_shape")
    if shape and shape[0] != out[0]:
        shape = ops.held(follow_batch(ops, 0, 2, shape, rest_ok=True) or shape, "output_shape")
    _, kh, kw, _ = _rank(ops, 1, 4, "the filter")
    stride_w, stride_h = ops.positive("stride_w", "stride_h")
    padding = int(ops.attr("padding"))
    if len(shape) != 4:
        raise ops.fail(f"output_shape {show(shape)} is not rank 4")
    for size, k, stride, given in ((shape[1], kh, stride_h, out[1]), (shape[2], kw, stride_w, out[2])):
        if size is not None and given is not None and out_size(ops, size, k, stride, 1, padding) != given:
            raise ops.fail(f"output_shape {show(shape)} does not fit an input of {show(out)}")
    _merge(ops, shape[0], out[0], "output_shape's batch and the input's")
    return [tuple(shape)]


def fully_connected(ops: Operands) -> list[Shape]:
    """FULLY_CONNECTED: [units, depth] weights; keep_num_dims keeps the input's leading dims,
    else the input is [elements / depth, depth]."""
    x = ops.shape(0)
    units, depth = _rank(ops, 1, 2, "the weights")
    if ops.attr("keep_num_dims", False):
        _merge(ops, x[-1] if x else 1, depth, "the input's last dimension and the weights' depth")
        return [(*x[:-1], units)]
    total = count(x)
    if depth is None:
        return [(None, units)]
    return [(None if total is None else _divide(ops, total, depth, "the input's elements over the weights' depth"),
             units)]


def batch_matmul(ops: Operands) -> list[Shape]:
    """BATCH_MATMUL: [..., M, K] x [..., K, N] (adj_x / adj_y transpose the last two), batch
    dimensions broadcast."""
    x, y = ops.shape(0), ops.shape(1)
    if len(x) < 2 or len(y) < 2:
        raise ops.fail(f"operands {show(x)} and {show(y)} need rank 2 or more")
    m, kx = (x[-1], x[-2]) if ops.attr("adj_x", False) else (x[-2], x[-1])
    ky, n = (y[-1], y[-2]) if ops.attr("adj_y", False) else (y[-2], y[-1])
    _merge(ops, kx, ky, "the contracted dimensions")
    return [(*broadcast_shapes(ops, [x[:-2], y[:-2]]), m, n)]


def follow_batch(ops: Operands, slot: int, data: int, shape: list[Dim], rest_ok: bool) -> list[Dim] | None:
    """`shape` (the value of constant input `slot`; slot -1: the new_shape option) with input
    `data`'s new batch first (-1 for an unknown one), recorded as a rewrite, when its first
    dim is that input's old batch and `rest_ok`; None when it does not bake the old batch."""
    old, new = ops.old_inputs[data], ops.shape(data)
    if not (slot < 0 or ops.constant[slot]) or not old or not new or old[0] is None or old[0] == new[0] \
            or not shape or shape[0] != old[0] or not rest_ok:
        return None
    first = -1 if new[0] is None else new[0]
    if first == -1 and -1 in shape[1:]:
        raise ops.fail(f"its shape {show(shape)} bakes batch {old[0]} and already has a -1: "
                       "it cannot take a batch known only at run time")
    rewritten = [first, *shape[1:]]
    ops.rewrite(slot, shape, rewritten)  # type: ignore[arg-type]
    return rewritten


def _rest_matches(rest: Sequence[Dim], old_rest: Shape) -> bool:
    """Whether the non-batch part of a shape holds as many elements as it did (one -1 allowed)."""
    total = count(old_rest)
    if total is None or any(d is None for d in rest):
        return False
    fixed = math.prod(d for d in rest if d != -1)  # type: ignore[misc]
    stretch = sum(1 for d in rest if d == -1)
    return fixed == total if stretch == 0 else stretch == 1 and fixed > 0 and total % fixed == 0


def reshape_dims(ops: Operands, shape: list[Dim], x: Shape) -> Shape:
    """tflite reshape's ResizeOutput for input `x`: at most one -1 (the rest of the
    elements); None where the target size is unknown."""
    total = count(x)
    mismatch = f"shape {show(shape)} does not fit the {total} elements of its input {show(x)}"
    stretch = [i for i, d in enumerate(shape) if d == -1]
    if len(stretch) > 1:
        raise ops.fail(f"shape {show(shape)} has more than one -1")
    if any(d is not None and d < -1 for d in shape):
        raise ops.fail(f"shape {show(shape)} has a negative size")
    known = [d for d in shape if d is not None and d != -1]
    fixed = math.prod(known)
    unknown = any(d is None for d in shape)
    out = list(shape)
    if stretch:
        if total is None or unknown:
            out[stretch[0]] = None
        elif fixed == 0 or total % fixed:
            raise ops.fail(mismatch)
        else:
            out[stretch[0]] = total // fixed
    elif total is not None and not unknown and fixed != total:
        raise ops.fail(mismatch)
    return tuple(out)


def reshape(ops: Operands) -> list[Shape]:
    """RESHAPE: the shape input (a 1-D tensor) or else the new_shape option. A constant shape
    that fits only the old input, its first dim the old batch and the rest as many elements as
    the rest was, follows the new batch (follow_batch); the option follows it too."""
    x = ops.shape(0)
    total = count(x)
    slot = 1 if ops.has(1) and len(ops.shape(1)) == 1 else -1
    option = [int(d) for d in np.asarray(ops.attr("new_shape", []), np.int64).reshape(-1)]
    shape = ops.ints(1, "shape") if slot == 1 else list(option)
    if slot < 0 and shape == [0]:
        return [()]  # the legacy form of a scalar
    if not _fits(shape, total):
        old = ops.old_inputs[0] or ()
        rewritten = follow_batch(ops, slot, 0, shape, _rest_matches(shape[1:], old[1:]))
        if rewritten is None and total is None:
            raise ops.fail(f"its shape {show(shape)} is fixed, but its input {show(x)} has a size known "
                           "only at run time")
        if rewritten is not None and slot == 1 and option == shape:
            ops.rewrite(-1, option, rewritten)  # type: ignore[arg-type]
        shape = rewritten or shape
    return [reshape_dims(ops, shape, x)]


def _fits(dims: list[Dim], total: int | None) -> bool:
    """Whether a reshape target can take `total` elements (None: known only at run time)."""
    if any(d is None for d in dims):
        return True
    if total is None:
        return -1 in dims
    fixed = math.prod(d for d in dims if d != -1)  # type: ignore[misc]
    return fixed == total if -1 not in dims else fixed > 0 and total % fixed == 0


def squeeze(ops: Operands) -> list[Shape]:
    """SQUEEZE: the squeeze_dims (every size-1 dimension when empty)."""
    x = ops.shape(0)
    dims = [int(d) for d in np.asarray(ops.attr("squeeze_dims", []), np.int64).reshape(-1)]
    if not dims:
        if None in x:
            raise ops.fail(f"squeezes every size-1 dimension of {show(x)}, whose sizes are not all known")
        return [tuple(d for d in x if d != 1)]
    drop = {ops.axis(d, len(x), "squeeze dim") for d in dims}
    for axis in drop:
        if x[axis] not in (1, None):
            raise ops.fail(f"squeezes dimension {axis} of {show(x)}, which is not 1")
    return [tuple(d for i, d in enumerate(x) if i not in drop)]


def expand_dims(ops: Operands) -> list[Shape]:
    x = ops.shape(0)
    (axis,) = _one(ops, ops.static_ints(1, "axis"), "axis")
    axis = ops.axis(axis, len(x) + 1)
    return [(*x[:axis], 1, *x[axis:])]


def _one(ops: Operands, items: list, what: str) -> list:
    if len(items) != 1:
        raise ops.fail(f"its {what} holds {len(items)} values, not one")
    return items


def transpose(ops: Operands) -> list[Shape]:
    x = ops.shape(0)
    perm = [ops.axis(p, len(x), "perm entry") for p in ops.static_ints(1, "perm")]
    if sorted(perm) != list(range(len(x))):
        raise ops.fail(f"perm {perm} is not a permutation of {len(x)} dimensions")
    return [tuple(x[p] for p in perm)]


def pad(ops: Operands) -> list[Shape]:
    """PAD, PADV2, MIRROR_PAD: [rank, 2] paddings."""
    x = ops.shape(0)
    paddings = ops.ints(1, "paddings")
    if len(paddings) != 2 * len(x):
        raise ops.fail(f"{len(paddings)} paddings for rank {len(x)}")
    out = []
    for i, size in enumerate(x):
        before, after = paddings[2 * i], paddings[2 * i + 1]
        out.append(None if size is None or before is None or after is None else size + before + after)
    return [tuple(out)]


def _axes(ops: Operands, slot: int, rank: int) -> set[int]:
    return {ops.axis(a, rank) for a in ops.static_ints(slot, "axes")}


def reduce(ops: Operands) -> list[Shape]:
    """MEAN, SUM, REDUCE_*: over the axes of input 1, keep_dims keeping them as 1."""
    x = ops.shape(0)
    axes = _axes(ops, 1, len(x)) if x else set()
    if ops.attr("keep_dims", False):
        return [tuple(1 if i in axes else d for i, d in enumerate(x))]
    return [tuple(d for i, d in enumerate(x) if i not in axes)]


def arg_reduce(ops: Operands) -> list[Shape]:
    """ARG_MAX, ARG_MIN: the axis goes."""
    x = ops.shape(0)
    (axis,) = _one(ops, ops.static_ints(1, "axis"), "axis")
    axis = ops.axis(axis, len(x))
    return [x[:axis] + x[axis + 1:]]


def concatenation(ops: Operands) -> list[Shape]:
    shapes = [ops.shape(i) for i in range(len(ops.shapes))]
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        raise ops.fail(f"inputs of different ranks: {', '.join(show(s) for s in shapes)}")
    axis = ops.axis(int(ops.attr("axis")), rank)
    out: list[Dim] = []
    for i in range(rank):
        column = [s[i] for s in shapes]
        if i == axis:
            out.append(None if None in column else sum(column))  # type: ignore[arg-type]
        else:
            out.append(_merge_all(ops, column, f"dimension {i} of the inputs"))
    return [tuple(out)]


def pack(ops: Operands) -> list[Shape]:
    shapes = [ops.shape(i) for i in range(len(ops.shapes))]
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        raise ops.fail(f"inputs of different shapes: {', '.join(show(s) for s in shapes)}")
    merged = tuple(_merge_all(ops, [s[i] for s in shapes], f"dimension {i} of the inputs") for i in range(rank))
    axis = ops.axis(int(ops.attr("axis")), rank + 1)
    return [(*merged[:axis], len(shapes), *merged[axis:])]


def _merge_all(ops: Operands, sizes: list[Dim], what: str) -> Dim:
    merged: Dim = None
    for size in sizes:
        merged = _merge(ops, merged, size, what)
    return merged


def unpack(ops: Operands) -> list[Shape]:
    x = ops.shape(0)
    axis = ops.axis(int(ops.attr("axis")), len(x))
    num = len(ops.old_outputs)
    _merge(ops, x[axis], num, f"dimension {axis} and the {num} outputs")
    return [x[:axis] + x[axis + 1:]] * num


def split(ops: Operands) -> list[Shape]:
    """SPLIT: input 0 the axis, input 1 the value, num_splits equal parts."""
    x = ops.shape(1)
    (axis,) = _one(ops, ops.static_ints(0, "axis"), "axis")
    axis = ops.axis(axis, len(x))
    parts = int(ops.attr("num_splits", len(ops.old_outputs)))
    if parts <= 0:
        raise ops.fail(f"num_splits {parts}")
    size = _divide(ops, x[axis], parts, f"dimension {axis} split in {parts}")
    return [(*x[:axis], size, *x[axis + 1:])] * parts


def split_v(ops: Operands) -> list[Shape]:
    """SPLIT_V: input 0 the value, input 1 the sizes (one may be -1), input 2 the axis."""
    x = ops.shape(0)
    (axis,) = _one(ops, ops.static_ints(2, "axis"), "axis")
    axis = ops.axis(axis, len(x))
    sizes: list[Dim] = list(ops.static_ints(1, "size_splits"))
    if sizes.count(-1) > 1:
        raise ops.fail(f"size_splits {sizes} has more than one -1")
    if -1 in sizes:
        rest = sum(s for s in sizes if s != -1)  # type: ignore[misc]
        sizes[sizes.index(-1)] = None if x[axis] is None else x[axis] - rest
    elif x[axis] is not None and sum(sizes) != x[axis]:  # type: ignore[arg-type]
        raise ops.fail(f"size_splits {sizes} do not add up to dimension {axis} of {show(x)}")
    if any(s is not None and s < 0 for s in sizes):
        raise ops.fail(f"size_splits {sizes} do not fit dimension {axis} of {show(x)}")
    return [(*x[:axis], s, *x[axis + 1:]) for s in sizes]


def slice_(ops: Operands) -> list[Shape]:
    """SLICE: begin and size (-1: to the end)."""
    x = ops.shape(0)
    begin, size = ops.ints(1, "begin"), ops.ints(2, "size")
    if len(begin) != len(x) or len(size) != len(x):
        raise ops.fail(f"begin {show(begin)} and size {show(size)} do not match rank {len(x)}")
    out: list[Dim] = []
    for dim, b, s in zip(x, begin, size):
        if s is not None and s != -1:
            out.append(s)
        else:
            out.append(None if dim is None or b is None or s is None else dim - b)
        if out[-1] is not None and (out[-1] < 0 or dim is not None and b is not None and b + out[-1] > dim):
            raise ops.fail(f"begin {show(begin)} and size {show(size)} fall outside {show(x)}")
    return [tuple(out)]


def strided_slice(ops: Operands) -> list[Shape]:
    """STRIDED_SLICE: TensorFlow's slice spec (masks; offset=true makes end relative to begin),
    as numpy indexes (folding's slice_index), each dimension's size by Python's slice rules.
    Dimensions that depend on an unknown size are unknown."""
    x = ops.shape(0)
    begin, end, strides = (ops.static_ints(i, what) for i, what in ((1, "begin"), (2, "end"), (3, "strides")))
    if not len(begin) == len(end) == len(strides):
        raise ops.fail("begin, end and strides differ in length")
    if ops.attr("offset", False):
        end = [b + e for b, e in zip(begin, end)]
    try:
        index = slice_index(ops.node, begin, end, strides)
        first, second = (_sliced(x, probe, index) for probe in UNKNOWN_PROBES)
    except (EvalError, IndexError) as exc:
        raise ops.fail(str(exc).removeprefix(f"{ops.node.name!r}: ")) from None
    if len(first) != len(second):
        raise ops.fail(f"its rank depends on a size of {show(x)} known only at run time")
    return [tuple(a if a == b else None for a, b in zip(first, second))]


def _sliced(x: Shape, probe: int, index: tuple) -> tuple[int, ...]:
    """The shape numpy gives `array[index]` for an array of shape `x` (unknown sizes: `probe`)."""
    dims = [probe if d is None else d for d in x]
    items = list(index)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        spread = len(dims) - sum(1 for item in items if item is not None and item is not Ellipsis)
        if spread < 0:
            raise IndexError(f"the slice spec indexes {len(dims) - spread} dimensions of {len(dims)}")
        items[at:at + 1] = [slice(None)] * spread
    out: list[int] = []
    axis = 0
    for item in items:
        if item is None:  # np.newaxis
            out.append(1)
            continue
        if axis >= len(dims):
            raise IndexError(f"the slice spec indexes more than the {len(dims)} dimensions")
        size = dims[axis]
        axis += 1
        if isinstance(item, slice):
            out.append(len(range(*item.indices(size))))
        elif not -size <= item < size:
            raise IndexError(f"index {item} is out of range for a dimension of {size}")
    return tuple(out + dims[axis:])


def gather(ops: Operands) -> list[Shape]:
    """GATHER: params[:axis] + indices[batch_dims:] + params[axis + 1:]."""
    params, indices = ops.shape(0), ops.shape(1)
    axis = ops.axis(int(ops.attr("axis")), len(params))
    batch_dims = int(ops.attr("batch_dims"))
    if batch_dims < 0:
        batch_dims += len(indices)
    if not 0 <= batch_dims <= min(axis, len(indices)):
        raise ops.fail(f"batch_dims {batch_dims} does not fit axis {axis} and indices {show(indices)}")
    return [(*params[:axis], *indices[batch_dims:], *params[axis + 1:])]


def gather_nd(ops: Operands) -> list[Shape]:
    params, indices = ops.shape(0), ops.shape(1)
    depth = indices[-1] if indices else None
    if depth is None or depth > len(params):
        raise ops.fail(f"indices {show(indices)} do not index params {show(params)}")
    return [(*indices[:-1], *params[depth:])]


def resize(ops: Operands) -> list[Shape]:
    """RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR: NHWC to input 1's [height, width]."""
    n, _, _, c = _rank(ops, 0, 4, "the input")
    size = ops.ints(1, "size")
    if len(size) != 2:
        raise ops.fail(f"size {show(size)} is not [height, width]")
    return [(n, size[0], size[1], c)]


def shape_of(ops: Operands) -> list[Shape]:
    return [(len(ops.shape(0)),)]


def rank_of(ops: Operands) -> list[Shape]:
    return [()]


def tile(ops: Operands) -> list[Shape]:
    x = ops.shape(0)
    multiples = ops.ints(1, "multiples")
    if len(multiples) != len(x):
        raise ops.fail(f"multiples {show(multiples)} do not match rank {len(x)}")
    return [tuple(None if d is None or m is None else d * m for d, m in zip(x, multiples))]


def fill(ops: Operands) -> list[Shape]:
    """FILL: the shape is input 0's value."""
    return [tuple(ops.ints(0, "dims"))]


def broadcast_to(ops: Operands) -> list[Shape]:
    """BROADCAST_TO: input 0 to the shape input 1 holds (each size 1 or the target's); a
    constant target whose first dim is the old batch follows the input's new batch."""
    x = ops.shape(0)
    target = ops.ints(1, "shape")
    if target and x and len(target) == len(x) and target[0] not in (x[0], None) and x[0] != 1:
        target = ops.held(follow_batch(ops, 1, 0, target, rest_ok=True) or target, "shape")
    if len(target) < len(x):
        raise ops.fail(f"cannot broadcast {show(x)} to the lower rank of {show(target)}")
    for size, want in zip(x, target[len(target) - len(x):]):
        if size not in (1, None) and want is not None and size != want:
            raise ops.fail(f"cannot broadcast {show(x)} to {show(target)}")
    return [tuple(target)]


def depth_to_space(ops: Operands) -> list[Shape]:
    n, h, w, c = _rank(ops, 0, 4, "the input")
    (block,) = ops.positive("block_size")
    return [(n, _times(h, block), _times(w, block), _divide(ops, c, block * block, "channels over block_size²"))]


def space_to_depth(ops: Operands) -> list[Shape]:
    n, h, w, c = _rank(ops, 0, 4, "the input")
    (block,) = ops.positive("block_size")
    return [(n, _divide(ops, h, block, "height over block_size"), _divide(ops, w, block, "width over block_size"),
             _times(c, block * block))]


def space_to_batch(ops: Operands) -> list[Shape]:
    """SPACE_TO_BATCH_ND: block_shape (input 1) and paddings (input 2) over the spatial dims."""
    x = ops.shape(0)
    block = ops.static_ints(1, "block_shape")
    paddings = ops.static_ints(2, "paddings")
    spatial = [_divide(ops, None if x[i + 1] is None else x[i + 1] + paddings[2 * i] + paddings[2 * i + 1], b,
                       f"padded dimension {i + 1} over block {b}") for i, b in enumerate(block)]
    return [(_times(x[0], math.prod(block)), *spatial, *x[len(block) + 1:])]


def batch_to_space(ops: Operands) -> list[Shape]:
    """BATCH_TO_SPACE_ND: block_shape (input 1) and crops (input 2)."""
    x = ops.shape(0)
    block = ops.static_ints(1, "block_shape")
    crops = ops.static_ints(2, "crops")
    spatial = [None if x[i + 1] is None else x[i + 1] * b - crops[2 * i] - crops[2 * i + 1]
               for i, b in enumerate(block)]
    return [(_divide(ops, x[0], math.prod(block), "batch over the block"), *spatial, *x[len(block) + 1:])]


def one_hot(ops: Operands) -> list[Shape]:
    indices = ops.shape(0)
    (depth,) = _one(ops, ops.ints(1, "depth"), "depth")
    axis = int(ops.attr("axis", -1))
    axis = len(indices) if axis == -1 else ops.axis(axis, len(indices) + 1)
    return [(*indices[:axis], depth, *indices[axis:])]


def top_k(ops: Operands) -> list[Shape]:
    x = ops.shape(0)
    (k,) = _one(ops, ops.ints(1, "k"), "k")
    return [(*x[:-1], k)] * 2


def embedding_lookup(ops: Operands) -> list[Shape]:
    return [(*ops.shape(0), *ops.shape(1)[1:])]


def where(ops: Operands) -> list[Shape]:
    """WHERE: one row per true element, known only at run time."""
    return [(None, len(ops.shape(0)))]


def range_(ops: Operands) -> list[Shape]:
    start, limit, delta = (_one(ops, ops.ints(i, what), what)[0] for i, what in
                           ((0, "start"), (1, "limit"), (2, "delta")))
    if None in (start, limit, delta):
        return [(None,)]
    if delta == 0:
        raise ops.fail("delta is 0")
    return [(max(0, -(-(limit - start) // delta)),)]


def no_outputs(ops: Operands) -> list[Shape]:
    """Operators without outputs (ASSIGN_VARIABLE, ...)."""
    return []


def as_read(ops: Operands) -> list[Shape]:
    """Outputs that do not follow the inputs' shapes (READ_VARIABLE): as the model says."""
    return [s for s in ops.old_outputs]  # type: ignore[misc]


SAME_SHAPE = ("ABS", "BITWISE_NOT", "CAST", "CEIL", "COS", "CUMSUM", "DENSIFY", "DEQUANTIZE", "ELU", "EXP",
              "FAKE_QUANT", "FLOOR", "GELU", "HARD_SWISH", "L2_NORMALIZATION", "LEAKY_RELU",
              "LOCAL_RESPONSE_NORMALIZATION", "LOG", "LOG_SOFTMAX", "LOGICAL_NOT", "LOGISTIC", "NEG", "ONES_LIKE",
              "QUANTIZE", "RELU", "RELU6", "RELU_0_TO_1", "RELU_N1_TO_1", "REVERSE_V2", "ROUND", "RSQRT", "SIGN", "SIN",
              "SOFTMAX", "SQRT", "SQUARE", "TANH", "ZEROS_LIKE", "DYNAMIC_UPDATE_SLICE")
BROADCAST = ("ADD", "ADD_N", "ATAN2", "BITWISE_XOR", "DIV", "EQUAL", "FLOOR_DIV", "FLOOR_MOD", "GREATER",
             "GREATER_EQUAL", "LESS", "LESS_EQUAL", "LOGICAL_AND", "LOGICAL_OR", "MAXIMUM", "MINIMUM", "MUL",
             "NOT_EQUAL", "POW", "PRELU", "RIGHT_SHIFT", "SELECT_V2", "SQUARED_DIFFERENCE", "SUB")
REDUCE = ("MEAN", "SUM", "REDUCE_PROD", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_ANY", "REDUCE_ALL")

RULES: dict[str, Rule] = {
    **dict.fromkeys(SAME_SHAPE, same_shape), **dict.fromkeys(BROADCAST, broadcast), **dict.fromkeys(REDUCE, reduce),
    "SELECT": select, "CONV_2D": conv_2d, "DEPTHWISE_CONV_2D": conv_2d, "CONV_3D": conv_3d,
    "AVERAGE_POOL_2D": pool_2d, "MAX_POOL_2D": pool_2d, "L2_POOL_2D": pool_2d, "TRANSPOSE_CONV": transpose_conv,
    "FULLY_CONNECTED": fully_connected, "BATCH_MATMUL": batch_matmul, "RESHAPE": reshape, "SQUEEZE": squeeze,
    "EXPAND_DIMS": expand_dims, "TRANSPOSE": transpose, "PAD": pad, "PADV2": pad, "MIRROR_PAD": pad,
    "ARG_MAX": arg_reduce, "ARG_MIN": arg_reduce, "CONCATENATION": concatenation, "PACK": pack, "UNPACK": unpack,
    "SPLIT": split, "SPLIT_V": split_v, "SLICE": slice_, "STRIDED_SLICE": strided_slice, "GATHER": gather,
    "GATHER_ND": gather_nd, "RESIZE_BILINEAR": resize, "RESIZE_NEAREST_NEIGHBOR": resize, "SHAPE": shape_of,
    "RANK": rank_of, "TILE": tile, "FILL": fill, "BROADCAST_TO": broadcast_to, "DEPTH_TO_SPACE": depth_to_space,
    "SPACE_TO_DEPTH": space_to_depth, "SPACE_TO_BATCH_ND": space_to_batch, "BATCH_TO_SPACE_ND": batch_to_space,
    "ONE_HOT": one_hot, "TOPK_V2": top_k, "EMBEDDING_LOOKUP": embedding_lookup, "WHERE": where, "RANGE": range_,
    "ASSIGN_VARIABLE": no_outputs, "READ_VARIABLE": as_read, "VAR_HANDLE": as_read,
}


def infer(ops: Operands) -> list[Shape]:
    """The output shapes of `ops.node` by its rule; ShapeError when it has none or it fails."""
    rule = RULES.get(ops.node.op)
    if rule is None:
        raise ops.fail("graphtool has no shape rule for this operator")
    try:
        shapes = rule(ops)
    except (ValueError, TypeError, IndexError, ZeroDivisionError, OverflowError) as exc:  # a malformed operator
        raise ops.fail(f"its inputs or options do not make an output shape ({type(exc).__name__}: {exc})") from None
    if len(shapes) != len(ops.old_outputs):
        raise ops.fail(f"gives {len(shapes)} outputs, the model has {len(ops.old_outputs)}")
    bad = [s for s in shapes if any(d is not None and d < 0 for d in s)]
    if bad:
        raise ops.fail(f"would give an output of shape {show(bad[0])}")
    return shapes
