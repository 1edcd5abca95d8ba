"""insert_fake_quant: make a float frozen graph that TensorFlow's converter turns into a fully
int8 TFLite model — tf.contrib.quantize's create_eval_graph for models already trained."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ...errors import GraphtoolError
from ...formats.graphdef import keys
from ...ir import DType, Graph, Node, Ref, Tensor, make_const
from ..helpers import fake_quant as fq
from ..helpers.graphdef_nodes import protected
from ..registry import Context, PassError, PassResult, register

ZIP_MAGIC = b"PK\x03\x04"
MAX_LISTED = 5


@dataclass(frozen=True)
class Params:
    calibration: str = field(default="", metadata={
        "doc": "representative samples (.npz keyed by input name, samples on the first axis: the graph "
               "is run in TensorFlow) or ranges written by graphtool.calibrate (.json)"})
    per_channel: bool = field(default=True, metadata={
        "doc": "conv and depthwise weights get one range per output channel (MatMul weights are always "
               "per tensor: the converter rejects per-channel FULLY_CONNECTED weights from fake-quant)"})
    narrow_range: bool = field(default=True, metadata={
        "doc": "weights use [-127, 127] (TFLite's int8 weights); activations always use the full range"})
    num_bits: int = field(default=8, metadata={
        "doc": "bits of every fake-quant, 2..8 (the TFLite converter stores 8 bits whatever this is)"})
    activations: bool = field(default=True, metadata={
        "doc": "false: fake-quant the weights only (no calibration needed)"})
    method: str = field(default="minmax", metadata={
        "doc": "with .npz samples: minmax, moving_average or percentile (see calibrate)"})
    percentile: float = field(default=99.99, metadata={"doc": "percentile kept by method=percentile"})
    decay: float = field(default=0.9, metadata={"doc": "averaging decay of method=moving_average"})
    batch_size: int = field(default=32, metadata={"doc": "samples per TensorFlow run when calibrating"})


@register("insert_fake_quant", Params, formats=("graphdef",), guarantee="quantization error")
def insert_fake_quant(graph: Graph, params: Params, context: Context) -> PassResult:
    """Insert fake-quant ops with constant ranges where TFLite's int8 kernels will quantize.

    Weights (Const, through Identity) read by Conv2D and DepthwiseConv2dNative get
    FakeQuantWithMinMaxVarsPerChannel over their output channels (per_channel=true; for
    depthwise [h, w, in, m] the weights are reshaped to [h, w, in*m] around it, the form the
    converter reads), MatMul weights FakeQuantWithMinMaxVars; ranges are symmetric,
    ±max|w|, so zero points are 0 as TFLite's int8 weights need. Batch norms must be folded
    first (fold_old_batch_norms, fold_batch_norms): one left is an error, since weights are
    quantized as they are.

    Activations get FakeQuantWithMinMaxVars with calibrated constant ranges (widened to hold
    0): after each float graph input; after each conv/matmul together with its constant bias
    (BiasAdd/Add) and Relu/Relu6 — never between them, they become one int8 kernel; after
    ops computing new values (Add, AddV2, Sub, Mul, ConcatV2, Mean, standalone Relu...,
    again after a following Relu/Relu6). Ops that only move values (MaxPool, AvgPool,
    Reshape, Squeeze, Pad, Identity...) keep their input's quantization; Softmax, Sigmoid,
    Tanh and LogSoftmax get the fixed ranges of their int8 kernels. Float ops outside these
    lists are left alone and counted in stats["left_float"]. A declared output that gets a
    fake-quant keeps its name: the fake-quant takes it, the op becomes `<name>/float`.

    calibration=FILE.npz runs the graph (as it is when this transform runs) in TensorFlow on
    the samples and takes each tensor's range by `method`; calibration=FILE.json reads
    ranges from graphtool.calibrate. Without calibration, activations=false
    quantizes the weights only; otherwise every activation needing a range is an error
    (activations already followed by a fake-quant need none).

    stats: weights_per_channel, weights_per_tensor, activations, fixed_range, skipped,
    left_float, input_ranges {input: [min, max]} and quantized_input_stats {input: [mean,
    std_dev]}: what tf.compat.v1.lite.TFLiteConverter needs with inference_type=tf.int8
    (graphtool.runtime.tensorflow.convert_fake_quant_graphdef runs it). Within quantization
    error: TensorFlow then computes what the int8 model does, up to rounding."""
    _check(params)
    batch_norms = fq.unfolded_batch_norms(graph)
    if batch_norms:
        raise PassError(f"insert_fake_quant: {len(batch_norms)} batch norm(s) not folded into weights "
                        f"({', '.join(batch_norms[:MAX_LISTED])}{', …' if len(batch_norms) > MAX_LISTED else ''}): "
                        "run fold_old_batch_norms and fold_batch_norms first")
    keep = protected(graph, context.inputs + context.outputs)
    plan = fq.plan(graph, params.per_channel, params.activations, keep, context.log)
    ranges = _ranges(graph, plan, params, context) if plan.calibrated else {}
    declared = {Ref.parse(name).node for name in context.outputs} | {r.node for r in graph.outputs if r.port == 0}

    for point in plan.weights:
        _quantize_weights(graph, point, params)
    input_ranges: dict[str, list[float]] = {}
    for point in plan.activations:
        low, high = point.fixed if point.fixed is not None else fq.activation_range(*ranges[point.ref])
        _quantize_activation(graph, point, low, high, params.num_bits,
                             rename=point.ref.node in declared and not point.is_input)
        if point.is_input:
            input_ranges[point.ref.node] = [low, high]
    if plan.weights or plan.activations:
        graph.toposort()

    stats = {
        "weights_per_channel": sum(p.per_channel for p in plan.weights),
        "weights_per_tensor": sum(not p.per_channel for p in plan.weights),
        "activations": len(plan.calibrated),
        "fixed_range": len(plan.activations) - len(plan.calibrated),
        "skipped": plan.skipped.stats(),
        "left_float": dict(sorted(plan.left_float.items())),
        "input_ranges": input_ranges,
        "quantized_input_stats": {name: list(fq.input_stats(low, high))
                                  for name, (low, high) in input_ranges.items()},
    }
    if plan.left_float:
        context.log.warning("insert_fake_quant: no fake-quant after %s; the converter may keep them float",
                            ", ".join(f"{count} {op}" for op, count in sorted(plan.left_float.items())))
    return PassResult(bool(plan.weights or plan.activations), stats)


def _check(params: Params) -> None:
    if not 2 <= params.num_bits <= 8:
        raise PassError(f"insert_fake_quant: num_bits must be 2..8, got {params.num_bits}")
    from ...runtime.calibrate import METHODS

    if params.method not in METHODS:
        raise PassError(f"insert_fake_quant: method must be one of {', '.join(METHODS)}, got {params.method!r}")


# -- ranges ----------------------------------------------------------------------------------------

def _ranges(graph: Graph, plan: fq.Plan, params: Params, context: Context) -> dict[Ref, tuple[float, float]]:
    """The calibrated (min, max) of every activation point: PassError naming what is missing."""
    needed = [p.ref for p in plan.calibrated]
    if not params.calibration:
        raise PassError(f"insert_fake_quant: {len(needed)} activation(s) need a range "
                        f"({_listed(needed)}): give calibration=SAMPLES.npz or RANGES.json, "
                        "or activations=false to quantize the weights only")
    calibration = _calibration(graph, params, needed, context)
    ranges = {ref: calibration.range_of(ref) for ref in needed}
    missing = [ref for ref, value in ranges.items() if value is None]
    if missing:
        raise PassError(f"insert_fake_quant: {params.calibration} has no range for {len(missing)} "
                        f"tensor(s) ({_listed(missing)}); calibrate the graph as it is when this "
                        "transform runs (after folding batch norms)")
    return ranges


def _calibration(graph: Graph, params: Params, needed: list[Ref], context: Context):
    from ...runtime.calibrate import Calibration, calibrate

    path = params.calibration
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise PassError(f"insert_fake_quant: calibration={path}: {exc.strerror or exc}") from None
    try:
        if head == ZIP_MAGIC:
            inputs = [n.name for n in graph if n.op in fq.INPUT_OPS]
            if context.inputs:
                inputs = [Ref.parse(name).node for name in context.inputs]
            return calibrate(graph, path, method=params.method, decay=params.decay, percentile=params.percentile,
                             batch_size=params.batch_size, inputs=inputs,
                             tensors=[f"{ref.node}:{ref.port}" for ref in needed])
        if head.lstrip()[:1] == b"{" or os.path.splitext(path)[1].lower() == ".json":
            return Calibration.load(path)
    except GraphtoolError as exc:
        raise PassError(f"insert_fake_quant: {exc}") from exc
    raise PassError(f"insert_fake_quant: calibration={path} is neither an .npz of samples nor a .json of ranges")


def _listed(refs: list[Ref]) -> str:
    names = [str(ref) for ref in refs[:MAX_LISTED]]
    return ", ".join(names) + (f", … ({len(refs) - MAX_LISTED} more)" if len(refs) > MAX_LISTED else "")


# -- rewriting -------------------------------------------------------------------------------------

def _quantize_weights(graph: Graph, point: fq.WeightPoint, params: Params) -> None:
    conv = point.consumer
    base = f"{conv.name}/weights_fake_quant"
    device = conv.meta.get(keys.DEVICE, "")
    data = point.data
    if not point.per_channel:
        low, high = fq.weight_ranges(data, None)
        fake = _fake_quant(graph, base, point.weight, low, high, params.num_bits, params.narrow_range, device)
    elif conv.op == "DepthwiseConv2dNative":  # [h, w, in, m] -> [h, w, in*m]: one range per output channel
        h, w, channels, multiplier = data.shape
        low, high = fq.weight_ranges(data, (2, 3))
        flat = _reshape(graph, f"{base}/reshape", point.weight, (h, w, channels * multiplier), device)
        quantized = _fake_quant(graph, base, flat, low, high, params.num_bits, params.narrow_range, device)
        fake = _reshape(graph, f"{base}/reshape_back", Ref(quantized.name, 0), data.shape, device)
    else:  # Conv2D [h, w, in, out]: the op's channel axis is the last
        low, high = fq.weight_ranges(data, (data.ndim - 1,))
        fake = _fake_quant(graph, base, point.weight, low, high, params.num_bits, params.narrow_range, device)
    graph.set_input(conv.name, 1, Ref(fake.name, 0))


def _quantize_activation(graph: Graph, point: fq.ActivationPoint, low: float, high: float, num_bits: int,
                         rename: bool) -> None:
    producer = graph.node(point.ref.node)
    device = producer.meta.get(keys.DEVICE, "")
    uses = graph.consumers(point.ref)
    if rename:  # a declared output: the fake-quant takes the name its readers know
        outputs = list(graph.outputs)
        float_name = graph.unique_name(f"{producer.name}/float")
        graph.rename_node(producer.name, float_name)
        graph.outputs = outputs
        name, source = point.ref.node, Ref(float_name, point.ref.port)
    else:
        name = f"{point.ref.node}/fake_quant" + (f"_{point.ref.port}" if point.ref.port else "")
        source = point.ref
    fake = _fake_quant(graph, name, source, np.float32(low), np.float32(high), num_bits, False, device)
    for consumer, slot in uses:
        graph.set_input(consumer, slot, Ref(fake.name, 0))


def _fake_quant(graph: Graph, name: str, source: Ref, low: np.ndarray, high: np.ndarray, num_bits: int,
                narrow_range: bool, device: str) -> Node:
    """FakeQuantWithMinMaxVars (scalar range) or …PerChannel (vector range, last axis) over `source`."""
    name = graph.unique_name(name)
    per_channel = np.ndim(low) > 0
    low_node = _add(graph, make_const(graph.unique_name(f"{name}/min"), np.asarray(low, np.float32)), device)
    high_node = _add(graph, make_const(graph.unique_name(f"{name}/max"), np.asarray(high, np.float32)), device)
    node = Node(name, fq.FAKE_QUANT_PER_CHANNEL if per_channel else fq.FAKE_QUANT,
                {"num_bits": int(num_bits), "narrow_range": bool(narrow_range)},
                outputs=[Tensor(name, DType.FLOAT32, None)])
    return _add(graph, node, device, [source, Ref(low_node.name, 0), Ref(high_node.name, 0)])


def _reshape(graph: Graph, name: str, source: Ref, shape: tuple, device: str) -> Node:
    name = graph.unique_name(name)
    shape_node = _add(graph, make_const(graph.unique_name(f"{name}/shape"), np.asarray(shape, np.int32)), device)
    node = Node(name, "Reshape", {"T": DType.FLOAT32, "Tshape": DType.INT32},
                outputs=[Tensor(name, DType.FLOAT32, tuple(shape))])
    return _add(graph, node, device, [source, Ref(shape_node.name, 0)])


def _add(graph: Graph, node: Node, device: str, inputs: list | None = None) -> Node:
    if device:
        node.meta[keys.DEVICE] = device
    return graph.add_node(node, inputs=inputs or [])
