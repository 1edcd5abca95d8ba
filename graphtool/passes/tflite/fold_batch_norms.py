"""fold_batch_norms for TFLite: a per-channel MUL/ADD/SUB after a conv or fully connected
layer goes into its weights and bias."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ...formats.tflite import keys, tables
from ...ir import DType, Graph, Node, Ref, Tensor, make_const
from ..helpers import tflite_rewrite
from ..helpers.skips import Skip, Skips
from ..registry import Context, NoParams, PassResult, register

# Output-channel axis of the weights: CONV_2D [out, h, w, in], DEPTHWISE_CONV_2D
# [1, h, w, out], FULLY_CONNECTED [out, in].
CHANNEL_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
AFFINE_OPS = ("MUL", "ADD", "SUB")


@dataclass
class _Step:
    """One MUL/ADD/SUB to fold into `linear`: y = linear(x) * scale + offset, per channel."""

    linear: Node
    affine: Node
    scale: np.ndarray  # float64 [channels]
    offset: np.ndarray  # float64 [channels]
    weights: Ref
    bias: Ref | None


@register("fold_batch_norms", NoParams, formats=("tflite",), guarantee="float rounding")
def fold_batch_norms(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Fold a per-channel MUL/ADD after a conv or fully connected op into its weights.

    y = op(x) * scale + offset goes into op's weights and bias, op being CONV_2D,
    DEPTHWISE_CONV_2D or FULLY_CONNECTED. Follows op's output through a chain of MUL, ADD
    and SUB (x - c, or c - x: the weights are negated) by a constant float32 that is per
    output channel (shape [C], [1, 1, 1, C], or a scalar), as long as op has no fused
    activation (it would have to run after the MUL/ADD): the weights are scaled along the
    output channel (CONV_2D axis 0, DEPTHWISE_CONV_2D axis 3, FULLY_CONNECTED axis 0), the
    bias becomes bias * scale + offset (a new bias constant when op has none), and the
    MUL/ADD's fused activation moves to op, which takes over its output tensor (name,
    subgraph outputs and signatures stay). Requires constant float32 weights (run
    fold_constants(fold_dequantize=true) first for float16 models) and bias, and op's output
    used only by the MUL/ADD and not a subgraph output. Weights or bias also used elsewhere
    are copied; constants, buffers and operator codes left unused are removed. Skipped
    candidates are counted by reason in stats["skipped"]. Exact up to float rounding."""
    buffers_before, codes_before = tables.used_buffers(graph), tables.used_operator_codes(graph)
    folded: Counter[str] = Counter()
    skipped = Skips("fold_batch_norms", context.log)
    for sub in tables.subgraphs(graph):
        keep = tflite_rewrite.pinned(graph, sub)
        for name in [n.name for n in sub if n.op in CHANNEL_AXIS and not keys.is_custom(n)]:
            while True:
                try:
                    step = _next_step(sub, name, keep)
                except Skip as skip:
                    skipped.add(name, skip)
                    break
                if step is None:
                    break
                folded[step.affine.op] += 1
                name = _fold(sub, step, keep)
    buffers, _ = tables.compact_buffers(graph, buffers_before)
    opcodes = tables.compact_operator_codes(graph, codes_before)
    stats = {"folded": sum(folded.values()), "folded_ops": dict(sorted(folded.items())),
             "buffers_dropped": buffers, "operator_codes_dropped": opcodes, "skipped": skipped.stats()}
    return PassResult(bool(folded), stats)


def _next_step(graph: Graph, name: str, keep: set[str]) -> _Step | None:
    """The MUL/ADD/SUB by a constant that `name` feeds, checked; None when there is none."""
    linear = graph.node(name)
    users = graph.consumers(Ref(name, 0))
    candidates = [(graph.node(u), slot) for u, slot in users if _with_constant(graph, graph.node(u), slot)]
    if not candidates:
        return None
    if len(users) > 1 or name in keep:
        raise Skip("intermediate_used_elsewhere")
    affine, slot = candidates[0]
    if int(linear.attrs.get("fused_activation_function", 0)) != tflite_rewrite.NONE:
        raise Skip("activation_before", f"{linear.op} has fused activation "
                                         f"{linear.attrs.get('fused_activation_function')}")
    if int(affine.attrs.get("fused_activation_function", 0)) not in (tflite_rewrite.NONE, *tflite_rewrite.CLAMPS):
        raise Skip("activation_not_movable")
    out, result = linear.outputs[0], affine.outputs[0]
    if not all(_plain_float(t) for t in (out, result)):
        raise Skip("not_float32")
    refs = graph.inputs_of(name)
    weights = tflite_rewrite.constant(graph, refs[1] if len(refs) > 1 else None)
    if weights is None:
        raise Skip("weights_not_constant")
    if not _plain_float(weights) or keys.SPARSITY in weights.meta or linear.attrs.get("weights_format", 0) != 0:
        raise Skip("weights_not_float32")
    axis = CHANNEL_AXIS[linear.op]
    if weights.data.ndim <= axis:
        raise Skip("weights_not_float32", f"weights of shape {weights.data.shape}")
    channels = weights.data.shape[axis]
    bias_ref = refs[2] if len(refs) > 2 else None
    if bias_ref is not None:
        bias = tflite_rewrite.constant(graph, bias_ref)
        if bias is None or not _plain_float(bias) or bias.data.shape != (channels,):
            raise Skip("bias_not_constant")
    constant = tflite_rewrite.constant(graph, graph.inputs_of(affine.name)[1 - slot])
    if not _plain_float(constant):
        raise Skip("not_float32", "the MUL/ADD operand is not float32")
    scale, offset = _affine(affine.op, slot, _per_channel(constant.data, channels, out.shape))
    return _Step(linear, affine, scale, offset, refs[1], bias_ref)


def _affine(op: str, slot: int, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scale, offset) of y = output * scale + offset for `op` with the output in `slot` and
    the constant `value` (per channel) in the other."""
    ones, zeros = np.ones_like(value), np.zeros_like(value)
    if op == "MUL":
        return value, zeros
    if op == "ADD":
        return ones, value
    return (ones, -value) if slot == 0 else (-ones, value)  # SUB: output - c, or c - output


def _with_constant(graph: Graph, node: Node, slot: int) -> bool:
    if node.op not in AFFINE_OPS or keys.is_custom(node):
        return False
    refs = graph.inputs_of(node.name)
    return len(refs) == 2 and tflite_rewrite.constant(graph, refs[1 - slot]) is not None


def _plain_float(tensor: Tensor) -> bool:
    return tensor.dtype == DType.FLOAT32 and tensor.quantization is None


def _per_channel(value: np.ndarray, channels: int, shape: tuple | None) -> np.ndarray:
    """The constant as one float64 value per output channel, if broadcasting it against
    the output (channels last) changes nothing but the channel values."""
    if not shape or value.ndim > len(shape) or shape[-1] not in (None, channels):
        raise Skip("not_per_channel", f"constant of shape {value.shape} against output {shape}")
    if any(d != 1 for d in value.shape[:-1]) or (value.ndim and value.shape[-1] not in (1, channels)):
        raise Skip("not_per_channel", f"constant of shape {value.shape} for {channels} channels")
    return np.broadcast_to(value.reshape(-1).astype(np.float64), (channels,))


def _fold(graph: Graph, step: _Step, keep: set[str]) -> str:
    """Rewrite one step; returns the linear node's name afterwards (the MUL/ADD's)."""
    linear, affine = step.linear, step.affine
    weights = graph.node(step.weights.node).outputs[step.weights.port].data
    channels = step.scale.size
    if np.any(step.scale != 1):
        shape = [1] * weights.ndim
        shape[CHANNEL_AXIS[linear.op]] = channels
        scale = step.scale.reshape(shape).astype(np.float32)
        _set_constant(graph, linear, 1, (weights * scale).astype(np.float32), keep, "weights")
    if step.bias is not None or np.any(step.offset != 0):
        bias = (np.zeros(channels, np.float64) if step.bias is None
                else graph.node(step.bias.node).outputs[step.bias.port].data.astype(np.float64))
        _set_constant(graph, linear, 2, (bias * step.scale + step.offset).astype(np.float32), keep, "bias")
    linear.attrs = {**linear.attrs, "fused_activation_function": int(affine.attrs.get("fused_activation_function", 0))}

    operands = [r.node for r in graph.inputs_of(affine.name) if r is not None and r.node != linear.name]
    graph.replace_uses(Ref(affine.name, 0), Ref(linear.name, 0))
    graph.outputs = [Ref(linear.name, 0) if r == Ref(affine.name, 0) else r for r in graph.outputs]
    graph.remove_node(affine.name)
    tflite_rewrite.remove_unused(graph, operands, keep)
    linear.outputs = [affine.outputs[0]]
    graph.rename_node(linear.name, affine.name)
    return affine.name


def _set_constant(graph: Graph, linear: Node, slot: int, value: np.ndarray, keep: set[str], what: str) -> None:
    """Give input `slot` of `linear` the value: in place when only it uses that constant,
    else as a new constant."""
    refs = graph.inputs_of(linear.name)
    ref = refs[slot] if slot < len(refs) else None
    if ref is not None and graph.consumers(ref) == [(linear.name, slot)] and ref.node not in keep:
        graph.node(ref.node).outputs[ref.port].data = value
        return
    name = graph.unique_name(f"{linear.name}/folded_{what}")
    graph.add_node(make_const(name, value, DType.FLOAT32))
    old = ref.node if ref is not None else None
    if slot < len(refs):
        graph.set_input(linear.name, slot, Ref(name, 0))
    else:
        graph.set_inputs(linear.name, [*refs, *[None] * (slot - len(refs)), Ref(name, 0)])
    if old is not None:
        tflite_rewrite.remove_unused(graph, [old], keep)
