"""fold_constants for TFLite: operators whose inputs are all constant become constants."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...errors import GraphError
from ...formats.tflite import keys, ops, tables
from ...ir import CONST_OP, DType, Graph, Node, Ref, Tensor
from ..helpers import tflite_rewrite
from ..helpers.folding import KERNELS, EvalError, Unsupported, Value
from ..helpers.folding.base import output
from ..helpers.skips import Skips
from ..registry import Context, PassError, PassResult, register

DEQUANTIZE = "DEQUANTIZE"
# Ops that only move values: on quantized tensors they fold when every tensor involved
# has the same per-tensor quantization (TFLite requires that of them anyway).
MOVES = frozenset({"RESHAPE", "TRANSPOSE", "SQUEEZE", "EXPAND_DIMS", "PACK", "CONCATENATION"})


@dataclass(frozen=True)
class Params:
    exclude_op: list[str] = field(default_factory=list, metadata={"doc": "op never to fold (repeat for several)"})
    exclude_node: list[str] = field(default_factory=list,
                                    metadata={"doc": "node never to fold (repeat for several)"})
    max_constant_size_in_bytes: int = field(default=10 * 1024 * 1024,
                                            metadata={"doc": "results larger than this stay computed"})
    fold_dequantize: bool = field(default=False, metadata={
        "doc": "also fold DEQUANTIZE of constant weights (float16/int8 weights become float32)"})


TfliteKernel = Callable[[Node, list["Value | None"], list["Tensor | None"], Tensor], Value]
"""(operator, input values, input tensors (for their quantization), output tensor) -> value."""
TFLITE_KERNELS: dict[str, TfliteKernel] = {}


@register("fold_constants", Params, formats=("tflite",), guarantee="float rounding")
def fold_constants(graph: Graph, params: Params, context: Context) -> PassResult:
    """Evaluate every operator whose inputs are all constant and make it a constant.

    The folded operator becomes a Const node holding the same tensor (name, index, and the
    place subgraph outputs and signatures refer to), with the value as its data; constants
    only it used are removed, and so are the buffers and operator codes nothing uses any
    more. Every subgraph is folded. Kernels (numpy, TFLite semantics): ADD, SUB, MUL, DIV
    (float) and CONCATENATION with their fused activation (NONE, RELU, RELU_N1_TO_1,
    RELU6), MAXIMUM, MINIMUM, NEG, SQRT, RSQRT, EXP, CAST, RESHAPE (shape input or
    new_shape), TRANSPOSE, SQUEEZE, EXPAND_DIMS, PACK, FILL, STRIDED_SLICE, SHAPE (of a
    constant), DEQUANTIZE (int8/uint8/int16 per tensor or per channel, float16). On quantized tensors only the ops
    that move values fold, when all share one per-tensor quantization.

    DEQUANTIZE is kept unless fold_dequantize=true: a DEQUANTIZE of constant weights is how
    TFLite stores float16 and weight-only int8 models, the runtime evaluates it once when
    it prepares the model, and folding it makes those weights float32 (2-4x the bytes).
    Never folded: custom ops, ops without a kernel here (control flow, variables, ...),
    exclude_op/exclude_node, results over max_constant_size_in_bytes (their consumers
    then stay computed too). Results agree with LiteRT's kernels up to float rounding
    (subnormals flush to zero; SQRT, RSQRT, EXP are computed in float64, rounded once)."""
    if params.max_constant_size_in_bytes < 0:
        raise PassError("fold_constants: max_constant_size_in_bytes must be >= 0")
    buffers_before, codes_before = tables.used_buffers(graph), tables.used_operator_codes(graph)
    folded: Counter[str] = Counter()
    skipped = Skips("fold_constants", context.log)
    removed = 0
    for sub in tables.subgraphs(graph):
        plan = _plan(sub, params, skipped)
        folded.update(node.op for node, _ in plan)
        removed += _rewrite(sub, plan, tflite_rewrite.pinned(graph, sub))
    buffers, buffer_bytes = tables.compact_buffers(graph, buffers_before)
    opcodes = tables.compact_operator_codes(graph, codes_before)
    stats = {"folded": sum(folded.values()), "folded_ops": dict(sorted(folded.items())), "removed": removed,
             "buffers_dropped": buffers, "bytes_dropped": buffer_bytes, "operator_codes_dropped": opcodes,
             "skipped": skipped.stats()}
    return PassResult(bool(folded or removed or buffers or opcodes), stats)


def _plan(graph: Graph, params: Params, skipped: Skips) -> list[tuple[Node, Value]]:
    """(operator, value) for each operator to fold, in dataflow order. Reads the graph only."""
    values: dict[Ref, Tensor | Value] = {}
    plan: list[tuple[Node, Value]] = []
    try:
        order = graph.topological_order()
    except GraphError:
        raise PassError("fold_constants: the graph has a cycle") from None
    for name in order:
        node = graph.node(name)
        tensor = tflite_rewrite.constant(graph, Ref(name, 0))
        if tensor is not None:
            values[Ref(name, 0)] = tensor
            continue
        if not ops.is_operator(node) or len(node.outputs) != 1:
            continue
        refs = graph.inputs_of(name)
        present = [r for r in refs if r is not None]
        if not present or not all(r in values for r in present):
            continue
        reason, detail = _refusal(node, params), ""
        if reason is None:
            try:
                value = _evaluate(graph, node, refs, values)
            except Unsupported as exc:
                reason, detail = exc.reason, str(exc)
            except EvalError as exc:
                reason, detail = "error", str(exc)
            else:
                size = _nbytes(value)
                if size <= params.max_constant_size_in_bytes:
                    values[Ref(name, 0)] = value
                    plan.append((node, value))
                    continue
                reason, detail = "too_big", f"{size} bytes"
        skipped(f"{name} ({node.op})", reason, detail)
    return plan


def _nbytes(value: Value) -> int:
    if value.array.dtype == object:
        return sum(len(item) for item in value.array.flat)
    return value.array.nbytes


def _refusal(node: Node, params: Params) -> str | None:
    if keys.is_custom(node):
        return "custom_op"
    if node.name in params.exclude_node:
        return "excluded_node"
    if node.op in params.exclude_op:
        return "excluded_op"
    if node.op == DEQUANTIZE and not params.fold_dequantize:
        return "dequantize_kept"
    if node.op not in TFLITE_KERNELS:
        return "no_kernel"
    return None


def _evaluate(graph: Graph, node: Node, refs: list[Ref | None], values: dict) -> Value:
    out = node.outputs[0]
    tensors = [None if ref is None else graph.node(ref.node).outputs[ref.port] for ref in refs]
    inputs: list[Value | None] = []
    for ref, tensor in zip(refs, tensors):
        if ref is None:
            inputs.append(None)
            continue
        _check_quantization(node, tensor, out)
        known = values[ref]
        if isinstance(known, Tensor):
            if known.dtype is None or known.dtype.numpy is None or keys.SPARSITY in known.meta:
                raise Unsupported(f"input {known.name!r} of type {known.dtype}", reason="dtype")
            known = values[ref] = Value(known.data, known.dtype)
        inputs.append(known)
    if out.quantization is not None and node.op not in MOVES:
        raise Unsupported(f"quantized output {out.name!r}", reason="quantized")
    value = TFLITE_KERNELS[node.op](node, inputs, tensors, out)
    if value.dtype != out.dtype:
        raise EvalError(f"{node.name!r}: computed {value.dtype}, the tensor is {out.dtype}")
    if out.shape is not None and (len(out.shape) != value.array.ndim or any(
            d is not None and d != n for d, n in zip(out.shape, value.array.shape))):
        raise EvalError(f"{node.name!r}: computed shape {value.array.shape}, the tensor is {out.shape}")
    return value


def _check_quantization(node: Node, tensor: Tensor, out: Tensor) -> None:
    if tensor.quantization is None and out.quantization is None or node.op == DEQUANTIZE:
        return
    if node.op in MOVES:
        if _same_per_tensor(tensor, out):
            return
        if tensor.quantization is None and tensor.dtype in (DType.INT32, DType.INT64) and tensor.dtype != out.dtype:
            return  # a shape, perm or axis operand
    raise Unsupported(f"quantized tensor in {node.name!r}", reason="quantized")


def _same_per_tensor(a: Tensor, b: Tensor) -> bool:
    qa, qb = a.quantization, b.quantization
    return (qa is not None and qb is not None and qa.scale.size == qb.scale.size == 1
            and np.array_equal(qa.scale, qb.scale) and np.array_equal(qa.zero_point, qb.zero_point))


def _rewrite(graph: Graph, plan: list[tuple[Node, Value]], keep: set[str]) -> int:
    """Make each planned operator a Const holding its own output tensor, then remove the
    constants left unused. Returns how many nodes were removed."""
    left_behind: list[str] = []
    for node, value in plan:
        left_behind += [r.node for r in graph.inputs_of(node.name) if r is not None]
        graph.set_inputs(node.name, [])
        tensor = node.outputs[0]
        tensor.data = value.array
        if tensor.shape != tuple(value.array.shape):
            tensor.shape = tuple(value.array.shape)
        node.op, node.attrs = CONST_OP, {}
        node.meta = {k: v for k, v in node.meta.items() if k not in keys.OPERATOR_KEYS}
    return tflite_rewrite.remove_unused(graph, left_behind, keep)


# -- kernels ---------------------------------------------------------------------------------

def tflite_kernel(*ops: str) -> Callable[[TfliteKernel], TfliteKernel]:
    def decorate(function: TfliteKernel) -> TfliteKernel:
        for op in ops:
            TFLITE_KERNELS[op] = function
        return function

    return decorate


def _as(node: Node, tf_op: str, attrs: dict | None = None) -> Node:
    """The node as the TensorFlow op whose numpy kernel has the same semantics."""
    return Node(node.name, tf_op, attrs or {})


def _present(node: Node, inputs: list[Value | None]) -> list[Value]:
    if any(v is None for v in inputs):
        raise EvalError(f"{node.name!r}: {node.op} with an input left out")
    return inputs  # type: ignore[return-value]


def _activated(node: Node, value: Value) -> Value:
    code = int(node.attrs.get("fused_activation_function", 0))
    if code == tflite_rewrite.NONE:
        return value
    if value.dtype not in (DType.FLOAT32, DType.FLOAT16, DType.INT32, DType.INT64):
        raise Unsupported(f"fused activation on {value.dtype}", reason="activation")
    return output(tflite_rewrite.activate(value.array, code), value.dtype)


ELEMENTWISE = {"ADD": "AddV2", "SUB": "Sub", "MUL": "Mul", "DIV": "RealDiv", "MAXIMUM": "Maximum",
               "MINIMUM": "Minimum", "SQRT": "Sqrt", "RSQRT": "Rsqrt"}


@tflite_kernel(*ELEMENTWISE)
def elementwise(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    value = KERNELS[ELEMENTWISE[node.op]](_as(node, ELEMENTWISE[node.op]), _present(node, inputs))
    return _activated(node, value)


@tflite_kernel("NEG")
def neg(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    (x,) = _present(node, inputs)
    if x.dtype not in (DType.FLOAT32, DType.FLOAT16, DType.INT8, DType.INT32, DType.INT64):
        raise Unsupported(f"NEG on {x.dtype}", reason="dtype")
    with np.errstate(all="ignore"):
        return output(np.negative(x.array), x.dtype)


@tflite_kernel("EXP")
def exp(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    (x,) = _present(node, inputs)
    if x.dtype not in (DType.FLOAT32, DType.FLOAT16):
        raise Unsupported(f"EXP on {x.dtype}", reason="dtype")
    with np.errstate(all="ignore"):
        return output(np.exp(x.array.astype(np.float64)), x.dtype)


@tflite_kernel("CAST")
def cast(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    (x,) = _present(node, inputs)
    return KERNELS["Cast"](_as(node, "Cast", {"SrcT": x.dtype, "DstT": out.dtype}), [x])


@tflite_kernel("RESHAPE")
def reshape(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    x, shape = (inputs + [None])[:2]
    if x is None:
        raise EvalError(f"{node.name!r}: RESHAPE without data")
    if shape is None or shape.array.ndim != 1:
        new_shape = node.attrs.get("new_shape")
        if new_shape is None:
            raise EvalError(f"{node.name!r}: RESHAPE without a shape input or new_shape")
        shape = Value(np.asarray(new_shape, np.int32).reshape(-1), DType.INT32)
    return KERNELS["Reshape"](_as(node, "Reshape"), [x, shape])


@tflite_kernel("TRANSPOSE")
def transpose(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    return KERNELS["Transpose"](_as(node, "Transpose"), _present(node, inputs))


@tflite_kernel("SQUEEZE")
def squeeze(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    dims = tuple(int(d) for d in np.asarray(node.attrs.get("squeeze_dims", ()), np.int64).reshape(-1))
    return KERNELS["Squeeze"](_as(node, "Squeeze", {"squeeze_dims": dims}), _present(node, inputs))


@tflite_kernel("EXPAND_DIMS")
def expand_dims(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    return KERNELS["ExpandDims"](_as(node, "ExpandDims"), _present(node, inputs))


@tflite_kernel("PACK")
def pack(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    return KERNELS["Pack"](_as(node, "Pack", {"axis": int(node.attrs.get("axis", 0))}), _present(node, inputs))


@tflite_kernel("CONCATENATION")
def concatenation(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    axis = Value(np.array(int(node.attrs.get("axis", 0)), np.int32), DType.INT32)
    value = KERNELS["ConcatV2"](_as(node, "ConcatV2"), [*_present(node, inputs), axis])
    return _activated(node, value)


@tflite_kernel("FILL")
def fill(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    return KERNELS["Fill"](_as(node, "Fill"), _present(node, inputs))


@tflite_kernel("STRIDED_SLICE")
def strided_slice(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    if node.attrs.get("offset"):
        raise Unsupported(f"{node.name!r}: STRIDED_SLICE with offset=true", reason="no_kernel")
    masks = {k: int(node.attrs.get(k, 0)) for k in
             ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}
    return KERNELS["StridedSlice"](_as(node, "StridedSlice", masks), _present(node, inputs))


@tflite_kernel("SHAPE")
def shape(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    return KERNELS["Shape"](_as(node, "Shape", {"out_type": out.dtype}), _present(node, inputs))


@tflite_kernel(DEQUANTIZE)
def dequantize(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    """int8/uint8/int16: scale * (q - zero_point) in float32 (per channel along the
    quantized dimension), as TFLite's kernel; float16: widened, exactly."""
    (x,) = _present(node, inputs)
    if out.dtype != DType.FLOAT32:
        raise Unsupported(f"DEQUANTIZE to {out.dtype}", reason="dtype")
    if x.dtype == DType.FLOAT16:
        return output(x.array.astype(np.float32), DType.FLOAT32)
    q = tensors[0].quantization
    if x.dtype not in (DType.INT8, DType.UINT8, DType.INT16) or q is None:
        raise Unsupported(f"DEQUANTIZE of {x.dtype}{'' if q else ' without quantization'}", reason="dtype")
    shape = [1] * x.array.ndim
    if q.scale.size > 1:
        axis = int(q.axis or 0)
        if not 0 <= axis < x.array.ndim or x.array.shape[axis] != q.scale.size:
            raise EvalError(f"{node.name!r}: {q.scale.size} scales for shape {x.array.shape} axis {axis}")
        shape[axis] = q.scale.size
    scale = np.asarray(q.scale, np.float32).reshape(shape)
    zero_point = np.broadcast_to(np.asarray(q.zero_point, np.int32), q.scale.shape).reshape(shape)
    return output((x.array.astype(np.int32) - zero_point).astype(np.float32) * scale, DType.FLOAT32)
