"""quantize_weights: store large float constants in eight bits, dequantized at run time.

GTT mode (the default) is the Graph Transform Tool's transform; per_channel=true is a
graphtool extension (tensorflow#24881 asked for it) that keeps one int8 scale per output
channel. Only GraphDefs for now: the registered function dispatches on the graph's format,
so a TFLite implementation can be added next to `_quantize_graphdef`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ...formats.graphdef import keys
from ...ir import DType, Graph, Node, Tensor, make_const
from ..helpers.graphdef_nodes import float32_consts
from ..helpers.skips import Skips
from ..registry import Context, PassError, PassResult, register

# Ops whose output is their input: weights often reach a Conv2D through a ReadVariableOp Identity.
PASS_THROUGH_OPS = frozenset({"Identity"})


@dataclass(frozen=True)
class Params:
    minimum_size: int = field(default=1024, metadata={
        "doc": "quantize float32 Consts with at least this many elements"})
    per_channel: bool = field(default=False, metadata={
        "doc": "int8 symmetric weights, one scale per output channel, dequantized by Cast+Mul "
               "(graphtool extension; default is GTT's per-tensor quint8)"})


@register("quantize_weights", Params, formats=("graphdef",), guarantee="quantization error")
def quantize_weights(graph: Graph, params: Params, context: Context) -> PassResult:
    """Replace float32 Consts of at least minimum_size elements by eight-bit ones plus a dequantize.

    Every matching Const is rewritten, whatever it feeds; the node computing the float value
    again keeps the Const's name, device, consumers and control inputs. New node names add a
    suffix to the Const's name `W` (and `_1`, `_2`... should that name be taken). Consts with
    NaN or infinity, and empty ones, are left alone (counted in stats["skipped"]).

    GTT mode (per_channel=false), as the Graph Transform Tool writes it:

        W_quantized_const  Const quint8, same shape    ─┐
        W_quantized_min    Const float32 scalar         ├─▶ W  Dequantize(T=quint8, mode=MIN_FIRST)
        W_quantized_max    Const float32 scalar        ─┘

    [min, max] is the tensor's range widened to include 0 ([0, 1] for all zeros); values are
    quantized as TensorFlow's MIN_FIRST does (256 steps over the range, rounding half away
    from zero), so each weight is off by at most about (max - min) / 255.

    per_channel=true (graphtool extension), int8 symmetric, zero point 0:

        W_quantized_const  Const int8 in [-127, 127] ─▶ W_quantized_cast  Cast(SrcT=int8, DstT=float) ─┐
        W_quantized_scale  Const float32 ──────────────────────────────────────────────────────────────┴─▶ W  Mul

    scale_c = max|W_c| / 127 (1 for an all-zero channel), q = round(W / scale_c). The scale
    Const has W's rank with 1 on every axis but the channel axes, so Mul broadcasts it:
    last axis for Conv2D/Conv3D filters and MatMul [in, out] (axis 0 with transpose_b),
    axis 2 for Conv2DBackpropInput [h, w, out, in], and for DepthwiseConv2dNative
    [h, w, in, mult] one scale per (in, mult) pair, i.e. per output channel in*mult (the
    TFLite convention). Uses are followed through Identity. A Const that feeds no such
    weight input, or feeds them with disagreeing axes, gets one scale (a scalar Const).
    Each weight is off by at most scale_c / 2. Cast and Mul are plain ops every TensorFlow
    device runs; TF's per-axis Dequantize would need a Reshape for depthwise filters.
    """
    if params.minimum_size < 0:
        raise PassError(f"quantize_weights: minimum_size must be >= 0, got {params.minimum_size}")
    implementation = _IMPLEMENTATIONS.get(graph.format)
    if implementation is None:
        raise PassError(f"quantize_weights: {graph.format} models are not supported yet")
    return implementation(graph, params, context)


# -- GraphDef ---------------------------------------------------------------------------------

def _quantize_graphdef(graph: Graph, params: Params, context: Context) -> PassResult:
    plan: list[tuple[Node, np.ndarray]] = []
    skipped = Skips("quantize_weights", context.log)
    for node, data in float32_consts(graph, skipped):
        if data.size < params.minimum_size:
            skipped(node.name, "below minimum_size")
        elif data.size == 0:
            skipped(node.name, "empty")
        elif not np.isfinite(data).all():
            skipped(node.name, "non-finite")
            context.log.info("quantize_weights: %s holds NaN or infinity, left as is", node.name)
        else:
            plan.append((node, data))

    per_channel = 0
    for node, data in plan:
        if params.per_channel:
            axes = _channel_axes(graph, node.name, data.ndim)
            per_channel += axes is not None
            _to_int8_cast_mul(graph, node, data, axes)
        else:
            _to_quint8_dequantize(graph, node, data)
    if plan:
        graph.toposort()
    stats: dict = {"quantized": len(plan), "skipped": skipped.stats()}
    if params.per_channel:
        stats.update(per_channel=per_channel, per_tensor=len(plan) - per_channel)
    return PassResult(bool(plan), stats)


def _to_quint8_dequantize(graph: Graph, node: Node, data: np.ndarray) -> None:
    quantized, low, high = min_first_quint8(data)
    device = node.meta.get(keys.DEVICE, "")
    const = _add(graph, make_const(graph.unique_name(node.name + "_quantized_const"), quantized, DType.QUINT8), device)
    low_node = _add(graph, make_const(graph.unique_name(node.name + "_quantized_min"), np.float32(low)), device)
    high_node = _add(graph, make_const(graph.unique_name(node.name + "_quantized_max"), np.float32(high)), device)
    _become(graph, node, "Dequantize", {"T": DType.QUINT8, "mode": "MIN_FIRST"}, [const, low_node, high_node])


def _to_int8_cast_mul(graph: Graph, node: Node, data: np.ndarray, axes: tuple[int, ...] | None) -> None:
    quantized, scale = symmetric_int8(data, axes)
    device = node.meta.get(keys.DEVICE, "")
    const = _add(graph, make_const(graph.unique_name(node.name + "_quantized_const"), quantized, DType.INT8), device)
    cast_name = graph.unique_name(node.name + "_quantized_cast")
    cast = Node(cast_name, "Cast", {"SrcT": DType.INT8, "DstT": DType.FLOAT32, "Truncate": False},
                outputs=[Tensor(cast_name, DType.FLOAT32, data.shape)])
    _add(graph, cast, device, inputs=[const])
    scale_node = _add(graph, make_const(graph.unique_name(node.name + "_quantized_scale"), scale), device)
    _become(graph, node, "Mul", {"T": DType.FLOAT32}, [cast, scale_node])


def min_first_quint8(data: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(quint8 values, min, max) as GTT stores a float tensor: the range includes 0 and
    values are quantized like TensorFlow's FloatToQuantized<quint8> (MIN_FIRST)."""
    low = min(float(np.min(data)), 0.0)
    high = max(float(np.max(data)), 0.0)
    if low == high:  # both 0: the quantized kernels need a non-empty range
        high = low + 1.0
    width = float(np.float32(high) - np.float32(low))  # float arithmetic, as TF does
    range_scale = 256.0 / (width * (256.0 / 255.0))
    steps = _round_half_away(data.astype(np.float64) * range_scale) - _round_half_away(low * range_scale)
    return np.clip(steps, 0, 255).astype(np.uint8), low, high


def symmetric_int8(data: np.ndarray, axes: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values in [-127, 127], float32 scales) with scale = max|w| / 127 over everything
    but `axes` (kept with size 1 so they broadcast); one scalar scale when `axes` is None."""
    reduce = tuple(range(data.ndim)) if axes is None else tuple(a for a in range(data.ndim) if a not in axes)
    absmax = np.max(np.abs(data), axis=reduce, keepdims=axes is not None)
    scale = np.asarray(absmax / np.float32(127), dtype=np.float32)
    scale = np.where(scale > 0, scale, np.float32(1)).astype(np.float32)
    quantized = np.clip(_round_half_away(data / scale), -127, 127).astype(np.int8)
    return quantized, scale


def _channel_axes(graph: Graph, name: str, rank: int) -> tuple[int, ...] | None:
    """Output-channel axes of the weight inputs `name` feeds (through Identity); None unless
    there is at least one and all agree."""
    found: set[tuple[int, ...]] = set()
    pending, seen = [name], {name}
    while pending:
        for consumer, slot in graph.consumers(pending.pop()):
            node = graph.node(consumer)
            if node.op in PASS_THROUGH_OPS:
                if consumer not in seen:
                    seen.add(consumer)
                    pending.append(consumer)
                continue
            axes = _weight_axes(node, slot, rank)
            if axes is not None:
                found.add(axes)
    return found.pop() if len(found) == 1 else None


def _weight_axes(node: Node, slot: int, rank: int) -> tuple[int, ...] | None:
    """Output-channel axes when input `slot` of `node` is a weight tensor of this rank."""
    if slot != 1:
        return None
    if node.op in ("Conv2D", "Conv3D") and rank == (4 if node.op == "Conv2D" else 5):
        return (rank - 1,)
    if node.op == "DepthwiseConv2dNative" and rank == 4:
        return (2, 3)
    if node.op == "Conv2DBackpropInput" and rank == 4:
        return (2,)
    if node.op == "MatMul" and rank == 2:
        return (0,) if node.attrs.get("transpose_b") else (1,)
    return None


def _round_half_away(values: np.ndarray) -> np.ndarray:
    """C's round(): halves go away from zero (numpy's round goes to even)."""
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def _add(graph: Graph, node: Node, device: str, inputs: Sequence[Node] = ()) -> Node:
    if device:
        node.meta[keys.DEVICE] = device
    return graph.add_node(node, inputs=inputs)


def _become(graph: Graph, node: Node, op: str, attrs: dict, inputs: list[Node]) -> None:
    """Turn the Const `node` into `op` over `inputs` in place: its name, place in the order,
    consumers, control inputs and device stay; the NodeDef it was read from goes."""
    shape = node.outputs[0].shape
    node.op, node.attrs = op, attrs
    node.outputs = [Tensor(node.name, DType.FLOAT32, shape)]
    keys.forget_source(node)
    graph.set_inputs(node.name, inputs)


_IMPLEMENTATIONS: dict[str, Callable[[Graph, Params, Context], PassResult]] = {"graphdef": _quantize_graphdef}
