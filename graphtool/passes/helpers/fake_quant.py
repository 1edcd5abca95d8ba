"""Where insert_fake_quant puts fake-quant ops in a GraphDef, and the ranges it gives them.

The placement follows the integer kernels TFLite will run (after Jacob et al., "Quantization
and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference"): weights
are quantized where a conv or matmul reads them; an activation is quantized where an
integer kernel writes it — after a conv/matmul with its bias and ReLU/ReLU6 (never in
between), after graph inputs, and after ops that compute new values (Add, Concat, Mean...).
Ops that only move values (MaxPool, Reshape, Pad...) keep their input's quantization, and
ops whose int8 kernels have a fixed output range (Softmax, Logistic, Tanh) get that range.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ...ir import DType, Graph, Node, Ref
from ...pattern import constant_value
from .skips import Skips

FAKE_QUANT = "FakeQuantWithMinMaxVars"
FAKE_QUANT_PER_CHANNEL = "FakeQuantWithMinMaxVarsPerChannel"
FAKE_QUANT_OPS = frozenset({FAKE_QUANT, FAKE_QUANT_PER_CHANNEL, "FakeQuantWithMinMaxArgs"})

WEIGHTED_OPS = frozenset({"Conv2D", "DepthwiseConv2dNative", "MatMul"})
BIAS_OPS = frozenset({"BiasAdd", "Add", "AddV2"})
FUSED_ACTIVATIONS = frozenset({"Relu", "Relu6"})
INPUT_OPS = frozenset({"Placeholder"})

# Ops whose int8 kernels write a new scale: an activation fake-quant goes after them.
REQUANTIZE_OPS = frozenset({
    "Add", "AddV2", "Sub", "Mul", "AddN", "BiasAdd", "ConcatV2", "Concat", "Pack", "Mean", "Sum",
    "Relu", "Relu6", "Elu", "LeakyRelu", "Selu", "Maximum", "Minimum", "SquaredDifference", "Square",
    "Neg", "Abs", "Rsqrt", "Sqrt", "Exp", "Log", "Conv2D", "DepthwiseConv2dNative", "MatMul",
    "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Conv2DBackpropInput", "ResizeBilinear",
})
# Ops whose int8 kernels keep their input's scale: nothing to add after them.
SAME_SCALE_OPS = frozenset({
    "Identity", "Snapshot", "StopGradient", "Reshape", "Squeeze", "ExpandDims", "MaxPool", "AvgPool",
    "Transpose", "StridedSlice", "Slice", "Pad", "PadV2", "MirrorPad", "ResizeNearestNeighbor",
    "SpaceToDepth", "DepthToSpace", "SpaceToBatchND", "BatchToSpaceND", "Gather", "GatherV2", "Tile",
    "Split", "SplitV", "Unpack", "Max", "Min", "BroadcastTo",
} | FAKE_QUANT_OPS)
# Ops whose int8 kernels have a fixed output scale and zero point (TFLite's quantization spec).
FIXED_RANGES = {
    "Softmax": (0.0, 255 / 256),      # scale 1/256, zero point -128
    "Sigmoid": (0.0, 255 / 256),      # LOGISTIC: scale 1/256, zero point -128
    "Tanh": (-1.0, 127 / 128),        # scale 1/128, zero point 0
    "LogSoftmax": (-255 / 16, 0.0),   # scale 16/256, zero point 127
}

BATCH_NORM_OPS = frozenset({"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3",
                            "BatchNormWithGlobalNormalization"})

# Reasons a weight or a tensor is left without fake-quant (stats["skipped"]).
NOT_NHWC = "conv not NHWC"
ALREADY = "already fake-quantized"


@dataclass
class WeightPoint:
    """Fake-quant the weights `weight` feeding input 1 of `consumer`."""

    consumer: Node
    weight: Ref
    data: np.ndarray
    per_channel: bool  # over the output channels of `consumer`


@dataclass
class ActivationPoint:
    """Fake-quant the tensor `ref`; `fixed` is its range when the kernel fixes it."""

    ref: Ref
    op: str
    fixed: tuple[float, float] | None = None
    is_input: bool = False


@dataclass
class Plan:
    skipped: Skips
    weights: list[WeightPoint] = field(default_factory=list)
    activations: list[ActivationPoint] = field(default_factory=list)
    left_float: Counter = field(default_factory=Counter)  # float ops placement knows nothing about

    @property
    def calibrated(self) -> list[ActivationPoint]:
        """The activation points that need a calibrated range."""
        return [p for p in self.activations if p.fixed is None]


def plan(graph: Graph, per_channel: bool, activations: bool, keep: set[str], log: logging.Logger) -> Plan:
    """Every place a fake-quant goes, in graph order. `keep`: declared inputs and outputs,
    whose values must stay visible (a chain is not fused through them)."""
    result = Plan(Skips("insert_fake_quant", log))
    interior: set[str] = set()  # ops inside a fused conv + bias + activation chain, not its end
    for node in graph:
        if node.op in WEIGHTED_OPS:
            weight = _weight_point(graph, node, per_channel, result.skipped)
            if weight is not None:
                result.weights.append(weight)
            interior.update(n.name for n in _chain(graph, node, keep)[:-1])
    for node in graph:  # Add + ReLU and the like, once the conv chains have claimed theirs
        if node.op in REQUANTIZE_OPS and node.name not in interior and _is_float(node):
            interior.update(n.name for n in _chain(graph, node, keep)[:-1])
    if not activations:
        return result
    for node in graph:
        point = _activation_point(graph, node, interior, result)
        if point is None:
            continue
        if _already_fake_quantized(graph, point.ref):
            result.skipped(point.ref.node, ALREADY)
        else:
            result.activations.append(point)
    return result


def unfolded_batch_norms(graph: Graph) -> list[str]:
    """Batch norms still in the graph: batch-norm ops, and Mul by a constant right after a
    conv/matmul (the form Keras 3 and tf.nn.batch_normalization leave)."""
    found = []
    for node in graph:
        if node.op in BATCH_NORM_OPS:
            found.append(node.name)
        elif node.op == "Mul":
            inputs = graph.inputs_of(node.name)
            if len(inputs) == 2 and None not in inputs and any(
                    graph.node(ref.node).op in WEIGHTED_OPS and constant_value(graph, other) is not None
                    for ref, other in (inputs, inputs[::-1])):
                found.append(node.name)
    return found


def _weight_point(graph: Graph, node: Node, per_channel: bool, skipped: Skips) -> WeightPoint | None:
    inputs = graph.inputs_of(node.name)
    if len(inputs) < 2 or inputs[1] is None:
        return None
    if graph.node(inputs[1].node).op in FAKE_QUANT_OPS:
        skipped(node.name, ALREADY)
        return None
    found = constant_value(graph, inputs[1])
    if found is None or np.asarray(found[1]).dtype != np.float32:
        return None  # not weights: the matmul of two activations
    data = np.asarray(found[1])
    if node.op != "MatMul" and node.attrs.get("data_format", "NHWC") != "NHWC":
        skipped(node.name, NOT_NHWC)
        return None
    # Per-channel fake-quant on MatMul weights makes TF 2.21's converter fail ("'tfl.transpose'
    # op has mismatched quantized axes"): FULLY_CONNECTED weights are per tensor here.
    return WeightPoint(node, inputs[1], data, per_channel and node.op != "MatMul" and data.ndim == 4)


def _chain(graph: Graph, start: Node, keep: set[str]) -> list[Node]:
    """`start`, then a constant bias (only after a weighted op), then ReLU/ReLU6: the ops one
    int8 kernel computes. Stops at a value used more than once or declared."""
    chain = [start]
    stages = ["bias", "activation"] if start.op in WEIGHTED_OPS else ["activation"]
    for stage in stages:
        node = chain[-1]
        if node.name in keep or graph.control_consumers(node.name):
            break
        consumers = graph.consumers(Ref(node.name, 0))
        if len(consumers) != 1:
            break
        consumer = graph.node(consumers[0][0])
        if stage == "bias" and _is_bias(graph, consumer, consumers[0][1]):
            chain.append(consumer)
        elif stage == "activation" and consumer.op in FUSED_ACTIVATIONS:
            chain.append(consumer)
            break
    return chain


def _is_bias(graph: Graph, node: Node, slot: int) -> bool:
    if node.op not in BIAS_OPS or (node.op == "BiasAdd" and slot != 0):
        return False
    inputs = graph.inputs_of(node.name)
    if len(inputs) != 2 or None in inputs:
        return False
    other = constant_value(graph, inputs[1 - slot])
    return other is not None and np.ndim(other[1]) <= 1


def _activation_point(graph: Graph, node: Node, interior: set[str], result: Plan) -> ActivationPoint | None:
    if node.name in interior or node.op == "Const":
        return None
    if node.op in INPUT_OPS:
        return ActivationPoint(Ref(node.name, 0), node.op, is_input=True) \
            if node.attrs.get("dtype") is DType.FLOAT32 else None
    if not _is_float(node) or node.op in SAME_SCALE_OPS:
        return None
    if node.op in FIXED_RANGES:
        return ActivationPoint(Ref(node.name, 0), node.op, fixed=FIXED_RANGES[node.op])
    if node.op in REQUANTIZE_OPS:
        return ActivationPoint(Ref(node.name, 0), node.op)
    result.left_float[node.op] += 1
    return None


def _is_float(node: Node) -> bool:
    return node.attrs.get("T") is DType.FLOAT32


def _already_fake_quantized(graph: Graph, ref: Ref) -> bool:
    consumers = graph.consumers(ref)
    return bool(consumers) and all(graph.node(c).op in FAKE_QUANT_OPS for c, _ in consumers)


# -- ranges --------------------------------------------------------------------------------------

def weight_ranges(data: np.ndarray, axes: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric (min, max) = (-a, a) with a = max|w| per channel along `axes` (flattened,
    in the order of those axes) or over the whole tensor (axes None, scalars). TFLite stores
    int8 weights with zero point 0, so the range is symmetric. An all-zero channel takes the
    tensor's largest magnitude (1 for an all-zero tensor), so its scale stays usable."""
    magnitude = np.abs(data.astype(np.float64))
    overall = float(magnitude.max()) if magnitude.size else 0.0
    overall = overall if overall > 0 else 1.0
    if axes is None:
        bound = np.float64(overall)
    else:
        others = tuple(a for a in range(data.ndim) if a not in axes)
        bound = magnitude.max(axis=others).reshape(-1) if others else magnitude.reshape(-1)
        bound = np.where(bound > 0, bound, overall)
    return (-bound).astype(np.float32), np.asarray(bound, dtype=np.float32)


def activation_range(low: float, high: float) -> tuple[float, float]:
    """A calibrated range widened to hold 0 (so zero is exact), never empty."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if high - low <= 0.0:
        high = low + 1.0
    return low, high


def input_stats(low: float, high: float) -> tuple[float, float]:
    """(mean, std_dev) for the converter's quantized_input_stats (real = (q - mean) / std_dev)
    of an int8 input fake-quantized to [low, high] (holding 0): mean is the int8 zero point,
    std_dev the inverse scale, in double as the converter computes them. The converter
    stores 8 bits whatever a fake-quant's num_bits, so these are 8-bit figures."""
    scale = (float(high) - float(low)) / 255
    zero_point = int(np.clip(np.round(-float(low) / scale), 0, 255))
    return float(zero_point - 128), 1.0 / scale
