"""thin_channels for TFLite: output channels that are the same for every input (all-zero
filters) leave their layer, and the layers that read them."""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ...formats.tflite import keys, tables
from ...ir import CONST_OP, INPUT_OP, DType, Graph, Node, Quantization, Ref, Tensor, make_const
from ...ir.quantization import dequantize
from ..helpers import tflite_rewrite
from ..helpers.channel_thinning import FUNCTIONS, KEEPS_ZERO, ChannelGraph, Plan, binary, concat_offsets, take
from ..registry import Context, NoParams, PassResult, register

# Weights axes: CONV_2D [out, h, w, in], DEPTHWISE_CONV_2D [1, h, w, out], FULLY_CONNECTED [out, in],
# TRANSPOSE_CONV [out, h, w, in]; the weights are input 1 of each.
OUT_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0, "TRANSPOSE_CONV": 0}
IN_AXIS = {"CONV_2D": 3, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 3}
INPUT_SLOT = {"TRANSPOSE_CONV": 2}  # the data input's slot, 0 for the others
BIAS_SLOT = {"TRANSPOSE_CONV": 3}  # the bias's slot, 2 for the others
VALID = 1  # the schema's Padding enum


# Ops that compute each output channel from the same input channel alone: the function
# (helpers.channel_thinning.FUNCTIONS; None: a zero stays a zero, nothing else is known).
UNARY = {"RELU": "relu", "RELU6": "relu6", "RELU_N1_TO_1": "relu_n1_to_1", "RELU_0_TO_1": "relu_0_to_1",
         "LOGISTIC": "sigmoid", "TANH": "tanh", "HARD_SWISH": "hard_swish", "LEAKY_RELU": "leaky_relu",
         "ABS": "abs", "NEG": "neg", "QUANTIZE": None, "DEQUANTIZE": None}
POOLS = ("MAX_POOL_2D", "AVERAGE_POOL_2D")
REDUCES = {"MEAN": True, "REDUCE_MAX": True, "REDUCE_MIN": True, "SUM": False}  # keeps a constant's value
BINARY = ("ADD", "SUB", "MUL")


@dataclass
class _Linear:
    """A CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED or TRANSPOSE_CONV with constant weights
    and bias."""

    node: Node
    absorbs: bool  # it takes the input channels that go out of its weights


class Analysis:
    """One subgraph described as channels (see helpers/channel_thinning.py)."""

    def __init__(self, graph: Graph, keep: set[str]):
        self.graph = graph
        self.keep = keep
        self.channels = ChannelGraph()
        self.linears: list[_Linear] = []
        self.sliced: list[tuple[str, int]] = []  # (node, slot) of per-channel constant operands
        self.reshapes: list[str] = []  # flattening RESHAPEs
        for name in graph.topological_order():
            self._visit(graph.node(name))
        for name in sorted(keep):
            for port in range(len(graph.node(name).outputs)):
                self.channels.block(Ref(name, port), "model_output")

    # -- the walk ------------------------------------------------------------------------
    def _visit(self, node: Node) -> None:
        cg = self.channels
        if node.op == INPUT_OP:
            self._add(Ref(node.name, 0), None)
            cg.block(Ref(node.name, 0), "model_input")
            return
        if node.op == CONST_OP:
            return
        refs = self.graph.inputs_of(node.name)
        handled: set[int] = set()
        if not keys.is_custom(node) and len(node.outputs) == 1:
            rule = self._rule(node.op)
            if rule is not None:
                handled = rule(node, refs)
        for slot, ref in enumerate(refs):
            if ref is not None and slot not in handled and ref in cg:
                cg.block(ref, f"read_by_{node.op}")

    def _rule(self, op: str):
        if op in OUT_AXIS:
            return self._linear
        if op in UNARY:
            return self._unary
        if op in POOLS:
            return self._pool
        if op in ("PAD", "PADV2", "MIRROR_PAD"):
            return self._pad
        if op in REDUCES:
            return self._reduce
        if op in BINARY:
            return self._binary
        if op == "CONCATENATION":
            return self._concat
        if op == "RESHAPE":
            return self._flatten
        return None

    def _add(self, ref: Ref, values: np.ndarray | None) -> bool:
        """Register the tensor at `ref` (values None: varying); False when its last axis is
        not a known channel count."""
        count = _channels(self.graph.tensor(ref))
        if count is None or (values is not None and values.size != count):
            return False
        tensor = self.graph.tensor(ref)
        if values is None:
            values = np.full(count, np.nan)
        elif tensor.quantization is not None:
            values = np.where(values == 0, 0.0, np.nan)  # only an exact zero is known exactly
        self.channels.add(ref, values)
        return True

    def _values(self, ref: Ref) -> np.ndarray:
        return self.channels.values[ref]

    def _same_count(self, a: Ref, b: Ref) -> bool:
        return a in self.channels and b in self.channels and self.channels.count(a) == self.channels.count(b)

    def _linear(self, node: Node, refs: list[Ref | None]) -> set[int]:
        out = Ref(node.name, 0)
        kind = _linear_kind(self.graph, node, refs)
        if kind is None:
            self._add(out, None)
            return set()
        weights = tflite_rewrite.constant(self.graph, refs[1]).data
        bias = _bias(self.graph, node, refs)
        axis = OUT_AXIS[node.op]
        count = weights.shape[axis]
        if _channels(node.outputs[0]) != count:
            self._add(out, None)
            return set()
        zero_filter = ~np.any(np.moveaxis(weights, axis, 0).reshape(count, -1) != 0, axis=1)
        activation = int(node.attrs.get("fused_activation_function", 0))
        x = refs[INPUT_SLOT.get(node.op, 0)]
        if kind == "float":
            bias_values = np.zeros(count) if bias is None else bias.astype(np.float64)
            values = np.where(zero_filter, bias_values, np.nan)
            if node.op == "DEPTHWISE_CONV_2D" and x in self.channels:
                values = self._depthwise_values(node, weights, bias_values, values, x)
            values = _activate(values, activation)
        else:
            bias_zero = np.ones(count, bool) if bias is None else bias == 0
            if bias is not None and activation in (tflite_rewrite.RELU, tflite_rewrite.RELU6):
                bias_zero |= bias < 0  # the activation clamps a negative sum to the zero point
            quiet = zero_filter
            if node.op == "DEPTHWISE_CONV_2D" and x in self.channels:
                quiet = quiet | (self._values(x) == 0)
            values = np.where(quiet & bias_zero, 0.0, np.nan)
        if not self._add(out, values):
            return set()
        if node.op == "DEPTHWISE_CONV_2D":
            if int(node.attrs.get("depth_multiplier", 1)) != 1 or not self._same_count(x, out):
                self.channels.block(out, "depth_multiplier")
                return set()
            self.channels.link_all(x, out)
            self.linears.append(_Linear(node, absorbs=False))
            return {0}
        self.linears.append(_Linear(node, absorbs=False))
        if x not in self.channels or self.channels.count(x) != weights.shape[IN_AXIS[node.op]]:
            return set()
        self.linears[-1].absorbs = True
        foldable = kind == "float" and (node.op == "FULLY_CONNECTED" or node.op == "CONV_2D" and (
            weights.shape[1:3] == (1, 1) or int(node.attrs.get("padding", 0)) == VALID))
        if not foldable:
            values = self._values(x)
            self.channels.block(x, f"constant_into_padded_{node.op}",
                                np.flatnonzero(~np.isnan(values) & (values != 0)))
        return {INPUT_SLOT.get(node.op, 0)}

    def _depthwise_values(self, node: Node, weights: np.ndarray, bias: np.ndarray, values: np.ndarray,
                          x: Ref) -> np.ndarray:
        """Output channels of a float depthwise conv that are constant because their input
        channel is: zero (padding adds zeros), or anything when nothing is padded."""
        inputs = self._values(x)
        if inputs.size != values.size:
            return values
        unpadded = weights.shape[1:3] == (1, 1) or int(node.attrs.get("padding", 0)) == VALID
        sums = weights.astype(np.float64).reshape(-1, values.size).sum(axis=0)
        known = ~np.isnan(inputs) & ((inputs == 0) | unpadded)
        return np.where(np.isnan(values) & known, bias + np.nan_to_num(inputs) * sums, values)

    def _unary(self, node: Node, refs: list[Ref | None]) -> set[int]:
        x, out = refs[0], Ref(node.name, 0)
        if x is None or x not in self.channels:
            return set()
        function = UNARY[node.op]
        values = self._values(x)
        quantized = node.outputs[0].quantization is not None or self.graph.tensor(x).quantization is not None
        if quantized or function is None:
            keeps_zero = function is None or function in KEEPS_ZERO
            values = np.where(values == 0, 0.0, np.nan) if keeps_zero else np.full(values.size, np.nan)
        else:
            values = FUNCTIONS[function](values, float(node.attrs.get("alpha", 0.2)))
        return self._through(x, out, values)

    def _through(self, x: Ref, out: Ref, values: np.ndarray) -> set[int]:
        """Output channel c is input channel c, with these values."""
        if not self._add(out, values) or not self._same_count(x, out):
            return set()
        self.channels.link_all(x, out)
        return {0}

    def _pool(self, node: Node, refs: list[Ref | None]) -> set[int]:
        x = refs[0]
        if x is None or x not in self.channels:
            return set()
        return self._through(x, Ref(node.name, 0),
                             _activate(self._values(x), int(node.attrs.get("fused_activation_function", 0))))

    def _pad(self, node: Node, refs: list[Ref | None]) -> set[int]:
        x = refs[0]
        paddings = tflite_rewrite.constant(self.graph, refs[1] if len(refs) > 1 else None)
        if x is None or x not in self.channels or paddings is None or paddings.data.ndim != 2 \
                or np.any(paddings.data[-1] != 0):
            return set()
        values = self._values(x)
        if node.op != "MIRROR_PAD":
            fill = 0.0
            if node.op == "PADV2":
                constant = tflite_rewrite.constant(self.graph, refs[2] if len(refs) > 2 else None)
                if constant is None or constant.quantization is not None or constant.data.size != 1:
                    return set()
                fill = float(constant.data.reshape(-1)[0])
            values = np.where(values == fill, values, np.nan)
        return self._through(x, Ref(node.name, 0), values)

    def _reduce(self, node: Node, refs: list[Ref | None]) -> set[int]:
        x = refs[0]
        axes = tflite_rewrite.constant(self.graph, refs[1] if len(refs) > 1 else None)
        shape = self.graph.tensor(x).shape if x is not None else None
        if x is None or x not in self.channels or axes is None or not shape:
            return set()
        rank = len(shape)
        if any(int(a) % rank == rank - 1 for a in axes.data.reshape(-1)):
            return set()
        values = self._values(x)
        if not REDUCES[node.op]:
            values = np.where(values == 0, 0.0, np.nan)
        return self._through(x, Ref(node.name, 0), values)

    def _binary(self, node: Node, refs: list[Ref | None]) -> set[int]:
        out = Ref(node.name, 0)
        if len(refs) != 2 or None in refs:
            return set()
        activation = int(node.attrs.get("fused_activation_function", 0))
        quantized = node.outputs[0].quantization is not None
        a, b = refs
        if a in self.channels and b in self.channels:
            if not self._same_count(a, b):
                return set()
            va, vb = self._values(a), self._values(b)
            if quantized:
                values = np.where((va == 0) & (vb == 0), 0.0, np.nan)
            else:
                values = _activate(binary(node.op.lower(), va, vb), activation)
            if not self._add(out, values) or not self._same_count(a, out):
                return set()
            self.channels.link_all(a, out)
            self.channels.link_all(b, out)
            return {0, 1}
        for slot, ref in enumerate(refs):
            other = refs[1 - slot]
            constant = tflite_rewrite.constant(self.graph, other)
            if ref not in self.channels or constant is None:
                continue
            count = self.channels.count(ref)
            per_channel = _per_channel(constant, count)
            values = self._values(ref)
            if quantized or constant.quantization is not None:
                values = np.where((values == 0) if node.op == "MUL" else np.zeros(count, bool), 0.0, np.nan)
            elif per_channel is None:
                values = np.full(count, np.nan)
            else:
                pair = (values, per_channel) if slot == 0 else (per_channel, values)
                values = _activate(binary(node.op.lower(), *pair), activation)
            handled = self._through(ref, out, values)
            if handled and constant.data.ndim and constant.data.shape[-1] == count and count > 1:
                self.sliced.append((node.name, 1 - slot))
            return {slot} if handled else set()
        return set()

    def _flatten(self, node: Node, refs: list[Ref | None]) -> set[int]:
        """A RESHAPE of [batch, ..., C] to [batch, positions * C]: channel c is every C-th
        element of the output, from c on."""
        x, out = refs[0], Ref(node.name, 0)
        before, after = self.graph.tensor(x).shape if x is not None else None, node.outputs[0].shape
        if x not in self.channels or not before or not after or len(after) != 2 or len(before) < 3 \
                or any(d is None for d in before[1:]) or after[1] != int(np.prod(before[1:])):
            return set()
        count = self.channels.count(x)
        positions = after[1] // count
        if not self._add(out, np.tile(self._values(x), positions)):
            return set()
        for position in range(positions):
            self.channels.link_all(x, out, position * count)
        self.reshapes.append(node.name)
        return {0}

    def _concat(self, node: Node, refs: list[Ref | None]) -> set[int]:
        out = Ref(node.name, 0)
        shape = node.outputs[0].shape
        if not shape or int(node.attrs.get("axis", 0)) % len(shape) != len(shape) - 1:
            return set()
        counts = [_channels(self.graph.tensor(ref)) if ref is not None else None for ref in refs]
        if None in counts:
            return set()
        values = np.full(sum(counts), np.nan)
        offsets = concat_offsets(counts)
        for ref, offset, count in zip(refs, offsets, counts):
            if ref in self.channels:
                values[offset:offset + count] = self._values(ref)
        if not self._add(out, _activate(values, int(node.attrs.get("fused_activation_function", 0)))):
            return set()
        handled = set()
        for slot, (ref, offset) in enumerate(zip(refs, offsets)):
            if ref in self.channels:
                self.channels.link_all(ref, out, offset)
                handled.add(slot)
        return handled


# -- helpers ---------------------------------------------------------------------------------
def _channels(tensor: Tensor | None) -> int | None:
    if tensor is None or not tensor.shape or tensor.shape[-1] is None:
        return None
    return int(tensor.shape[-1])


def _activate(values: np.ndarray, code: int) -> np.ndarray:
    """A fused activation on channel values (NaN stays NaN); NaN for one not worked out here."""
    if code == 4:  # TANH
        return np.tanh(values)
    if code != tflite_rewrite.NONE and code not in tflite_rewrite.CLAMPS:
        return np.full(values.shape, np.nan)
    return tflite_rewrite.activate(values, code)


def _per_channel(constant: Tensor, count: int) -> np.ndarray | None:
    """The constant as one value per channel when it is the same everywhere else."""
    data = constant.data
    if data.ndim and any(d != 1 for d in data.shape[:-1]):
        return None
    if data.ndim and data.shape[-1] not in (1, count):
        return None
    return np.broadcast_to(data.reshape(-1).astype(np.float64), (count,))


def _bias_ref(node: Node, refs: list[Ref | None]) -> Ref | None:
    slot = BIAS_SLOT.get(node.op, 2)
    return refs[slot] if len(refs) > slot else None


def _bias(graph: Graph, node: Node, refs: list[Ref | None]) -> np.ndarray | None:
    bias = tflite_rewrite.constant(graph, _bias_ref(node, refs))
    return None if bias is None else bias.data


def _linear_kind(graph: Graph, node: Node, refs: list[Ref | None]) -> str | None:
    """"float", "integer" (int8 weights, per channel or not, zero points 0), or None when
    the op is not one thin_channels edits (weights not constant, sparse, hybrid, ...)."""
    slot = INPUT_SLOT.get(node.op, 0)
    if len(refs) < max(2, slot + 1) or refs[slot] is None or int(node.attrs.get("weights_format", 0)) != 0:
        return None
    weights = tflite_rewrite.constant(graph, refs[1])
    x, out = graph.tensor(refs[slot]), node.outputs[0]
    if weights is None or keys.SPARSITY in weights.meta or weights.data is None or x is None:
        return None
    bias_ref = _bias_ref(node, refs)
    bias = tflite_rewrite.constant(graph, bias_ref)
    if weights.data.ndim != (2 if node.op == "FULLY_CONNECTED" else 4) or (
            node.op == "TRANSPOSE_CONV" and tflite_rewrite.constant(graph, refs[0]) is None):
        return None
    if bias_ref is not None and (bias is None or bias.data.shape != (weights.data.shape[OUT_AXIS[node.op]],)):
        return None
    tensors = [t for t in (x, weights, bias, out) if t is not None]
    if all(t.dtype == DType.FLOAT32 and t.quantization is None for t in tensors):
        return "float"
    if x.dtype == out.dtype == weights.dtype == DType.INT8 and all(t.quantization is not None for t in tensors) \
            and not np.any(weights.quantization.zero_point) and (bias is None or bias.dtype == DType.INT32):
        return "integer"
    return None


def _slice_quantization(q: Quantization | None, removed: np.ndarray) -> Quantization | None:
    if q is None or q.scale.size <= 1:
        return q
    keep = np.flatnonzero(~removed)

    def cut(array: np.ndarray | None) -> np.ndarray | None:
        return array if array is None or array.size != removed.size else array.reshape(-1)[keep]

    return dataclasses.replace(q, scale=cut(q.scale), zero_point=cut(q.zero_point), min=cut(q.min), max=cut(q.max))


def set_constant(graph: Graph, node: Node, slot: int, data: np.ndarray, quantization: Quantization | None,
                  keep: set[str], what: str) -> None:
    """Input `slot` of `node` becomes `data`: in place when only `node` reads that constant,
    else a new constant (also when the slot was empty)."""
    refs = graph.inputs_of(node.name)
    ref = refs[slot] if slot < len(refs) else None
    if ref is not None and graph.consumers(ref) == [(node.name, slot)] and ref.node not in keep:
        tensor = graph.tensor(ref)
        tensor.data, tensor.shape, tensor.quantization = data, tuple(data.shape), quantization
        return
    old = graph.tensor(ref) if ref is not None else None
    const = make_const(graph.unique_name(f"{node.name}/thinned_{what}"), data,
                       old.dtype if old is not None else DType.from_numpy(data.dtype))
    const.outputs[0].quantization = quantization
    graph.add_node(const)
    if slot < len(refs):
        graph.set_input(node.name, slot, Ref(const.name, 0))
    else:
        graph.set_inputs(node.name, [*refs, *[None] * (slot - len(refs)), Ref(const.name, 0)])
    if ref is not None:
        tflite_rewrite.remove_unused(graph, [ref.node], keep)


# -- the rewrite -----------------------------------------------------------------------------
def rewrite(graph: Graph, analysis: Analysis, plan: Plan) -> dict[str, int]:
    """Cut the planned channels; returns channels removed per linear layer's output."""
    per_layer: dict[str, int] = {}
    for linear in analysis.linears:
        node = linear.node
        refs = graph.inputs_of(node.name)
        out_mask = plan.mask(Ref(node.name, 0))
        x = refs[INPUT_SLOT.get(node.op, 0)]
        in_mask = plan.mask(x) if linear.absorbs else None
        if out_mask is None and in_mask is None:
            continue
        weights_tensor = graph.tensor(refs[1])
        weights, quantization = weights_tensor.data, weights_tensor.quantization
        bias_tensor = tflite_rewrite.constant(graph, _bias_ref(node, refs))
        bias = None if bias_tensor is None else bias_tensor.data
        bias_quantization = None if bias_tensor is None else bias_tensor.quantization
        if in_mask is not None:
            values = np.where(in_mask, np.nan_to_num(analysis.channels.values[x]), 0.0)
            if np.any(values):  # constant input channels move into the bias (float only)
                columns = np.moveaxis(weights.astype(np.float64), IN_AXIS[node.op], -1)
                extra = (columns * values).reshape(weights.shape[0], -1).sum(axis=1)
                bias = (extra if bias is None else bias.astype(np.float64) + extra).astype(np.float32)
            weights = take(weights, in_mask, IN_AXIS[node.op])
        if out_mask is not None:
            axis = OUT_AXIS[node.op]
            weights = take(weights, out_mask, axis)
            quantization = _slice_quantization(quantization, out_mask)
            if bias is not None:
                bias = take(bias, out_mask, 0)
                bias_quantization = _slice_quantization(bias_quantization, out_mask)
            per_layer[node.name] = int(out_mask.sum())
            if node.op == "TRANSPOSE_CONV":  # the output shape it is given names the channels
                shape = graph.tensor(refs[0]).data
                set_constant(graph, node, 0, np.array([*shape[:-1], weights.shape[0]], shape.dtype), None,
                             analysis.keep, "output_shape")
        set_constant(graph, node, 1, np.ascontiguousarray(weights), quantization, analysis.keep, "weights")
        if bias is not None:
            set_constant(graph, node, BIAS_SLOT.get(node.op, 2), np.ascontiguousarray(bias), bias_quantization,
                         analysis.keep, "bias")
    for name, slot in analysis.sliced:
        mask = plan.mask(Ref(name, 0))
        if mask is not None:
            constant = graph.tensor(graph.inputs_of(name)[slot])
            set_constant(graph, graph.node(name), slot, np.ascontiguousarray(take(constant.data, mask, -1)),
                          _slice_quantization(constant.quantization, mask), analysis.keep, "operand")
    for name in analysis.reshapes:  # the new shape names the new size
        mask = plan.mask(Ref(name, 0))
        if mask is None:
            continue
        node, size = graph.node(name), int((~mask).sum())
        refs = graph.inputs_of(name)
        shape = tflite_rewrite.constant(graph, refs[1] if len(refs) > 1 else None)
        if shape is not None:
            set_constant(graph, node, 1, np.array([*shape.data.reshape(-1)[:-1], size], shape.data.dtype), None,
                         analysis.keep, "shape")
        if node.attrs.get("new_shape") is not None:
            node.attrs = {**node.attrs, "new_shape": (*tuple(node.attrs["new_shape"])[:-1], size)}
    for ref, mask in plan.removed.items():
        tensor = graph.tensor(ref)
        tensor.shape = (*tensor.shape[:-1], int((~mask).sum()))
        if tensor.quantization is not None and tensor.quantization.scale.size == mask.size > 1:
            tensor.quantization = _slice_quantization(tensor.quantization, mask)
    return per_layer


def weight_count(graph: Graph) -> int:
    """Elements of the constant weights of the CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED
    and TRANSPOSE_CONV operators of every subgraph."""
    total = 0
    for sub in tables.subgraphs(graph):
        for node in sub:
            if node.op in OUT_AXIS:
                refs = sub.inputs_of(node.name)
                weights = tflite_rewrite.constant(sub, refs[1] if len(refs) > 1 else None)
                total += 0 if weights is None else int(np.prod(weights.shape or ()))
    return total


@register("thin_channels", NoParams, formats=("tflite",), guarantee="float rounding")
def thin_channels(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Remove output channels that are the same for every input, and what reads them.

    A CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED or TRANSPOSE_CONV output channel whose
    filter is all zeros is a constant: its bias, through the fused activation. Such a
    channel goes from its layer (weights, bias, per-channel quantization scales and zero
    points) and from every tensor it flows into, followed through activations (RELU, RELU6,
    LOGISTIC, TANH, HARD_SWISH, ...), MAX/AVERAGE_POOL_2D, PAD (when it pads zeros onto a
    zero), MEAN and other reductions over other axes, ADD/SUB/MUL by a constant (per-channel
    constants are cut too), residual ADD/SUB/MUL (only when the channel is constant on every
    branch), DEPTHWISE_CONV_2D (which loses the same channels; a zero input channel makes
    its output channel the bias), CONCATENATION along channels (index remapping) and a
    RESHAPE that flattens [batch, ..., C] to [batch, positions × C] (its shape constant
    follows). Where it reaches a CONV_2D or FULLY_CONNECTED, the input channel leaves the
    weights; a non-zero constant is first added into the layer's bias, which is exact but
    for float rounding for FULLY_CONNECTED, 1x1 and VALID convolutions, and the channel
    stays otherwise (a TRANSPOSE_CONV takes only zeros; its output shape follows its
    channels). A channel stays when anything else reads it (other RESHAPEs, SOFTMAX, a model
    output, ...), and every tensor keeps one channel. Float32 layers and int8 ones (weights
    zero points 0, int32 biases) are thinned; int8 ones lose only channels that are an exact
    zero (a zero bias or, under a fused RELU or RELU6, a negative one), so their outputs
    stay bit-identical. Hybrid, sparse and float16 weights are left alone. Shapes follow;
    operators, signature defs and op versions stay. Stats: channels_removed, layers
    (channels removed per layer output), weights_before / weights_after (elements of conv,
    depthwise, fully connected and transpose conv weights), kept (constant channels that
    stayed, by reason), buffers_dropped. A model with nothing to remove is left
    byte-identical."""
    buffers_before = tables.used_buffers(graph)
    weights_before = weight_count(graph)
    layers: dict[str, int] = {}
    kept: Counter[str] = Counter()
    for sub in tables.subgraphs(graph):
        keep = tflite_rewrite.pinned(graph, sub)
        analysis = Analysis(sub, keep)
        plan = analysis.channels.solve()
        kept.update(plan.kept)
        if plan:
            layers.update(rewrite(sub, analysis, plan))
            for skip in plan.kept:
                context.log.debug("thin_channels: %d constant channel(s) kept: %s", plan.kept[skip], skip)
    changed = bool(layers) or weight_count(graph) != weights_before
    buffers, _ = tables.compact_buffers(graph, buffers_before) if changed else (0, 0)
    stats = {"channels_removed": sum(layers.values()), "layers": dict(sorted(layers.items())),
             "weights_before": weights_before, "weights_after": weight_count(graph),
             "kept": dict(sorted(kept.items())), "buffers_dropped": buffers}
    return PassResult(changed, stats)


# -- what prune_channels asks of a TFLite layer ----------------------------------------------
PRUNABLE_OPS = tuple(OUT_AXIS)


def filters(graph: Graph, node: Node) -> np.ndarray | None:
    """The layer's real-valued weights, one row per output channel (int8 ones dequantized);
    None when thin_channels would not edit the layer."""
    refs = graph.inputs_of(node.name)
    if node.op not in OUT_AXIS or keys.is_custom(node) or _linear_kind(graph, node, refs) is None:
        return None
    weights = tflite_rewrite.constant(graph, refs[1])
    data = weights.data.astype(np.float64)
    q = weights.quantization
    if q is not None:
        data = dequantize(data, q.scale, q.zero_point, q.axis)
    axis = OUT_AXIS[node.op]
    return np.moveaxis(data, axis, 0).reshape(data.shape[axis], -1)


def zero_channels(graph: Graph, node: Node, channels: np.ndarray, keep: set[str]) -> None:
    """Zero output channels `channels` (a boolean mask) of the layer: filters and bias, so
    each is exactly zero before the fused activation."""
    refs = graph.inputs_of(node.name)
    axis = OUT_AXIS[node.op]
    weights = graph.tensor(refs[1])
    index = [slice(None)] * weights.data.ndim
    index[axis] = channels
    data = np.array(weights.data)
    data[tuple(index)] = 0
    set_constant(graph, node, 1, data, weights.quantization, keep, "weights")
    bias = tflite_rewrite.constant(graph, _bias_ref(node, refs))
    if bias is not None and np.any(bias.data[channels]):
        data = np.array(bias.data)
        data[channels] = 0
        set_constant(graph, node, BIAS_SLOT.get(node.op, 2), data, bias.quantization, keep, "bias")
