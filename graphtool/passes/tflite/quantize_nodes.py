"""quantize_nodes for TFLite models: full-integer post-training quantization of a float .tflite,
calibrated in LiteRT, as the TFLite converter's full-integer (and 16x8) mode writes it.

The plan (which operators, which scales) is integer_plan's, from the rule table integer_ops;
integer_rewrite applies it; op versions and min_runtime_version follow
graphtool/formats/tflite/versions.py.
"""
from __future__ import annotations

import dataclasses
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ...errors import GraphtoolError
from ...formats import load, tflite
from ...formats.tflite import keys, ops, tables, versions
from ...ir import DType, Graph
from ..helpers import gptq, integer_plan, integer_rewrite
from ..helpers.keep import Keep
from ..helpers.samples_param import Samples, samples_of
from ..helpers.target_sqnr import FALLBACK_DOC, TARGET_DOC, mixed_precision, target_of
from ..registry import Context, PassError, PassResult, register
from .quantize_weights import store_float16

if TYPE_CHECKING:
    from ...runtime.calibrate import Calibration

ACTIVATIONS = {"int8": DType.INT8, "int16": DType.INT16}
ROUNDINGS = ("away", "even", "gptq")
QUANTIZED_TYPES = frozenset({DType.INT8, DType.UINT8, DType.INT16, DType.INT4})


@dataclass(frozen=True)
class Params:
    calibration: Samples = field(default=Samples(""), metadata={
        "doc": "representative samples: an .npz keyed by input tensor name or signature input key, samples on "
               "the first axis (run in LiteRT), or a .json of ranges from graphtool.calibrate; from Python also "
               "an iterable of feed dicts. Required"})
    activations: str = field(default="int8", metadata={
        "doc": "int8 (full integer) or int16 (16x8: int16 activations, int8 weights, int64 biases)"})
    per_channel: bool = field(default=True, metadata={
        "doc": "weights get one scale per output channel (false: one per tensor)"})
    method: str = field(default="minmax", metadata={
        "doc": "how a tensor's range comes from its calibrated values: minmax, percentile or mse (the range "
               "with the least quantization error)"})
    percentile: float = field(default=99.99, metadata={"doc": "percentile kept by method=percentile"})
    rounding: str = field(default="away", metadata={
        "doc": "how weights take their int8 grid point: away (nearest, halves away from zero, as the converter), "
               "even (nearest, halves to even, as ai-edge-quantizer) or gptq (error feedback over the calibrated "
               "inputs: lower output error, slower; needs .npz samples)"})
    keep: list[str] = field(default_factory=list, metadata={
        "doc": "operator (or its output tensor) to keep float (repeat for several)"})
    keep_op: list[str] = field(default_factory=list, metadata={
        "doc": "operator type to keep float, e.g. SOFTMAX (repeat or comma-separate)"})
    only: list[str] = field(default_factory=list, metadata={
        "doc": "operator (or its output tensor) to quantize alone; every other stays float (repeat for several)"})
    batch_size: int = field(default=32, metadata={
        "doc": "samples per LiteRT run while calibrating (fewer when their tensors would pass memory_mb)"})
    memory_mb: float = field(default=64.0, metadata={
        "doc": "most memory the tensors LiteRT keeps for one calibration run may take"})
    target_sqnr: float | None = field(default=None, metadata={"doc": TARGET_DOC + " (needs .npz samples)"})
    fallback: str = field(default="float16", metadata={"doc": FALLBACK_DOC})


@register("quantize_nodes", Params, formats=("tflite",), guarantee="quantization error")
def quantize_nodes(graph: Graph, params: Params, context: Context) -> PassResult:
    """Full-integer post-training quantization of a float model, calibrated in LiteRT on representative samples.

    calibration=SAMPLES.npz (keyed by input tensor name or signature input key, samples on the
    first axis: the format `verify --data` reads) runs the float model in LiteRT over the
    samples, a bounded batch at a time (memory_mb), with a progress bar on a terminal, and
    takes each float tensor's range (method=minmax, percentile or mse). A .json written by
    graphtool.calibrate gives ranges directly; from Python, calibration may be the samples
    themselves (a mapping of arrays, or an iterable of feed dicts). There is no default: no
    calibration is an error, never random data.

    The TFLite integer spec: weights int8 symmetric in [-127, 127], per output channel
    (quantized_dimension 0 for CONV_2D, FULLY_CONNECTED and TRANSPOSE_CONV, 3 for
    DEPTHWISE_CONV_2D; per_channel=false: per tensor); activations int8 asymmetric per tensor,
    the range widened to hold 0 and the zero point nudged onto the grid as the converter does;
    biases int32 with scale input scale x weight scale. activations=int16 (16x8): int16
    activations symmetric (zero point 0), int8 weights, int64 biases (quantized_bias_type
    INT64 where there is a bias), ADD and SUB with pot_scale_int16=false. Ranges narrower than
    1e-6 become +-1e-6, as the converter widens them; an output with a fused RELU6 keeps a
    scale above 6/2**30 (LiteRT quantizes that bound into int32). SOFTMAX and LOGISTIC outputs
    are fixed at 1/256 and -128 (int16: 1/32768, 0), TANH at 1/128 and 0, LOG_SOFTMAX at 16/256
    and 127, L2_NORMALIZATION at 1/128 and 0. Operators that only move values (RESHAPE,
    TRANSPOSE, pooling, PAD, RESIZE_*, CONCATENATION, PACK, SPLIT, GATHER, MAXIMUM, ...) share
    one scale and zero point between their inputs and outputs, from the union of their
    calibrated ranges. An input that cannot join without changing how something else reads it
    (a tensor other operators read too, whose range would widen) or that has another fixed
    scale is requantized instead: a QUANTIZE, int to int, before that operator only. Constants
    read as activations (an ADD's or MUL's constant, PRELU's alpha, PADV2's value) are
    quantized like activations. The rule table is graphtool/passes/helpers/integer_ops.py.

    Weights take their nearest grid point (rounding=away, halves away from zero as the
    converter rounds them; even, halves to even as ai-edge-quantizer does). rounding=gptq
    chooses each CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED weight's grid point with error
    feedback (GPTQ, graphtool/passes/helpers/gptq.py): calibration also sums each layer's input
    correlations, and the error each weight's rounding leaves is carried onto the weights of
    its output channel not yet rounded, so the layer's output on the samples moves least. The
    scales and everything else are those of nearest rounding; it needs .npz samples (or
    samples from Python), not a ranges .json.

    Operators with no integer kernel (or no int16 one), operators named by keep= (or whose
    output tensor is), operators of a type in keep_op= and, when only= is given, every operator
    it does not name stay float, with QUANTIZE and DEQUANTIZE where float meets integer; so do
    operators that only move values between float ones. The model's inputs and outputs stay
    float: a QUANTIZE after each float input, a DEQUANTIZE before each output, as the converter
    writes them (for int8, uint8 or int16 inputs and outputs, run set_io_types after it, which
    removes or converts those as TensorFlow's modify_model_interface does). Float tensors keep their names; the integer form of a tensor
    that is read both ways adds `_int8` (`_int16`). Op versions are raised as op_version.cc says (every operator of a
    builtin sharing the largest), min_runtime_version as runtime_version.cc says.

    target_sqnr=DB: automatic mixed precision, as on quantize_weights: the model is calibrated
    once, then operators (any that quantize_nodes made integer) go back to float, their
    weights stored as fallback= says (float16 behind DEQUANTIZE, or float32), until the output
    SQNR on the calibration samples (the lowest of the whole set's and each half's) reaches DB;
    the smallest variant tried that reaches it is written and stats["target_sqnr"] lists every
    variant tried with its size and SQNR (graphtool.runtime.mixed_precision). calibration must
    then be samples, not a .json of ranges.

    Refused with a one-line error and no output: models with custom operators, with more than
    one subgraph (control flow, several signatures), models already (even partly) quantized
    (QUANTIZE/DEQUANTIZE, integer or float16 weights: fold_constants(fold_dequantize=true)
    first for float16), calibration data whose names, shapes or dtypes do not match the inputs,
    empty or holding NaN. The same model and samples give the same bytes.

    stats: activations, quantized (integer operators by type), float (operators left float:
    type -> reason -> count), quantize_added, dequantize_added, requantize_added, weights,
    biases, bias_clipped (bias values outside int32/int64), samples, min_runtime_version,
    gptq_layers (with rounding=gptq: the layers rounded with error feedback).
    Within quantization error (the bounds measured per operator, int8 and 16x8, are in
    tests/passes/tflite/test_quantize_nodes.py)."""
    settings = _Settings.of(params)
    target = target_of("quantize_nodes", params.target_sqnr, settings.calibration, params.fallback)
    if target is not None:
        settings = dataclasses.replace(settings, calibration=target.calibration)  # samples read once
    _refuse(graph)
    data = tflite.write(graph)
    work = load(data)
    work.meta["source"] = graph.meta.get("source")
    keep = Keep.of("quantize_nodes", [work], settings.keep, settings.keep_op, ops.builtin_codes(),
                   settings.only)
    rounders = gptq.layers(work) if settings.rounding == "gptq" else {}
    ranges = _ranges(work, data, settings, {f"{ref.node}:{ref.port}": layer.update for ref, layer in rounders.values()})
    settings = dataclasses.replace(settings, rounders={name: layer for name, (_, layer) in rounders.items()})
    plan, stats = _quantize(work, ranges, settings, keep, context)
    if target is None:
        if plan.ops:
            graph.restore(work)
        return PassResult(bool(plan.ops), stats)

    def build(fallback: frozenset[str]) -> tuple[bytes, dict]:
        variant = load(data)
        _, variant_stats = _quantize(variant, ranges, settings, dataclasses.replace(keep, fallback=fallback),
                                     context)
        if fallback and target.fallback == "float16":
            store_float16(variant, fallback, context)
        return tflite.write(variant), variant_stats

    stats = mixed_precision("quantize_nodes", graph, data, list(plan.ops), build, target, context.log)
    return PassResult(True, stats)


def _quantize(work: Graph, ranges: "Calibration", settings: "_Settings", keep: Keep,
              context: Context) -> tuple[integer_plan.Plan, dict[str, Any]]:
    """Plan and rewrite `work` in place (left as is when no operator can run in integers)."""
    plan = integer_plan.plan(work, ranges.range_of, settings.dtype, keep, context.log)
    stats: dict[str, Any] = {"activations": settings.activations, "samples": ranges.samples}
    if not plan.ops:
        stats["float"] = _float_stats(plan)
        context.log.warning("quantize_nodes: no operator can run in integers")
        return plan, stats
    done = integer_rewrite.apply(work, plan, settings.per_channel, "away" if settings.rounding == "gptq"
                                 else settings.rounding, settings.rounders)
    versions.raise_versions([work], {n.op for n in work if ops.is_operator(n)} & versions.VERSIONED_OPS)
    stats["quantized"] = dict(sorted(Counter(op.node.op for op in plan.ops.values()).items()))
    stats["float"] = _float_stats(plan)
    stats.update({key: done.counts[key] for key in ("quantize_added", "dequantize_added", "requantize_added",
                                                   "weights", "biases")})
    stats["bias_clipped"] = done.bias_clipped
    if settings.rounding == "gptq":
        stats["gptq_layers"] = sum(1 for name in plan.ops if name in settings.rounders)
    stats["min_runtime_version"] = versions.raise_min_runtime(work)
    if plan.float_ops:
        context.log.info("quantize_nodes: %d operator(s) stay float: %s", len(plan.float_ops),
                         ", ".join(f"{op} ({reason})" for op, reason in sorted(set(plan.float_ops.values()))))
    return plan, stats


# -- parameters ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Settings:
    activations: str
    dtype: DType
    per_channel: bool
    method: str
    percentile: float
    keep: list[str]
    keep_op: list[str]
    only: list[str]
    batch_size: int
    memory_mb: float
    calibration: Any
    rounding: str = "away"
    rounders: Mapping[str, gptq.Layer] = field(default_factory=dict)  # operator -> its error-feedback rounding

    @classmethod
    def of(cls, params: Params) -> "_Settings":
        from ...runtime.calibrate import METHODS

        if params.activations not in ACTIVATIONS:
            raise PassError(f"quantize_nodes: activations must be int8 or int16, got {params.activations!r}")
        if params.method not in METHODS or params.method == "moving_average":
            raise PassError(f"quantize_nodes: method must be minmax, percentile or mse, got {params.method!r}")
        if not 50.0 < params.percentile <= 100.0:
            raise PassError(f"quantize_nodes: percentile must be in (50, 100], got {params.percentile}")
        if params.rounding not in ROUNDINGS:
            raise PassError(f"quantize_nodes: rounding must be away, even or gptq, got {params.rounding!r}")
        if params.batch_size < 1:
            raise PassError(f"quantize_nodes: batch_size must be at least 1, got {params.batch_size}")
        if not params.memory_mb > 0:
            raise PassError(f"quantize_nodes: memory_mb must be positive, got {params.memory_mb}")
        data = samples_of(params.calibration)
        if isinstance(data, str) and not data:
            raise PassError("quantize_nodes: needs calibration=SAMPLES.npz (representative inputs keyed by input "
                            "name, samples on the first axis) or a .json of ranges: activations are never "
                            "quantized from made-up data")
        return cls(params.activations, ACTIVATIONS[params.activations], params.per_channel, params.method,
                   params.percentile, list(params.keep), list(params.keep_op), list(params.only), params.batch_size,
                   params.memory_mb, data, params.rounding)


# -- what is refused -------------------------------------------------------------------------------

def _refuse(graph: Graph) -> None:
    """PassError for a model quantize_nodes does not quantize, naming what is in the way."""
    signatures = graph.meta.get(keys.SIGNATURE_DEFS) or []
    if len(signatures) > 1:
        raise PassError(f"quantize_nodes: the model has {len(signatures)} signatures "
                        f"({', '.join(sig['key'] for sig in signatures)}); it calibrates and quantizes a "
                        "single-subgraph model")
    if graph.subgraphs:
        callers = sorted({node.op for node in graph if tables.subgraphs_in(node.attrs)})
        what = f"control flow ({', '.join(callers)})" if callers else f"{len(graph.subgraphs)} more subgraph(s)"
        raise PassError(f"quantize_nodes: the model has {what}: LiteRT calibration sees the main subgraph only; "
                        "quantize_nodes quantizes single-subgraph models")
    for node in graph:
        if keys.is_custom(node):
            raise PassError(f"quantize_nodes: custom operator {node.op!r} ({node.name}): its integer form is "
                            "unknown; quantize_nodes quantizes models of builtin operators")
        if node.op in ("QUANTIZE", "DEQUANTIZE"):
            source = graph.inputs_of(node.name)
            tensor = graph.node(source[0].node).output(source[0].port) if source and source[0] else None
            hint = " (float16 weights: run fold_constants(fold_dequantize=true) first)" \
                if tensor is not None and tensor.dtype is DType.FLOAT16 else ""
            raise PassError(f"quantize_nodes: the model is already (partly) quantized: {node.op} "
                            f"{node.name!r}{hint}")
        for tensor in node.outputs:
            if tensor.quantization is not None or tensor.dtype in QUANTIZED_TYPES:
                raise PassError(f"quantize_nodes: the model is already (partly) quantized: tensor "
                                f"{tensor.name!r} is {tensor.dtype}"
                                + (" with a scale" if tensor.quantization is not None else ""))


# -- calibration -----------------------------------------------------------------------------------

def _ranges(graph: Graph, data: bytes, settings: _Settings,
            observe: Mapping[str, Callable[[Any], None]]) -> "Calibration":
    """The Calibration of every float tensor: from a ranges .json, or by running the model in
    LiteRT on the samples, handing the tensors in `observe` to their observers too (errors
    name the samples and the tensor)."""
    from ...runtime.calibrate import Calibration, calibrate, is_ranges_file

    source = settings.calibration
    try:
        if isinstance(source, (str, os.PathLike)) and is_ranges_file(source):
            if settings.rounding == "gptq":
                raise PassError(f"quantize_nodes: rounding=gptq needs calibration samples (.npz), not the ranges "
                                f"in {os.fspath(source)}")
            return Calibration.load(source)
        return calibrate(data, source, method=settings.method, percentile=settings.percentile,
                         batch_size=settings.batch_size, bits=16 if settings.dtype is DType.INT16 else 8,
                         symmetric=settings.dtype is DType.INT16, memory_mb=settings.memory_mb, observe=observe)
    except PassError:
        raise
    except GraphtoolError as exc:
        raise PassError(f"quantize_nodes: {exc}") from exc


# -- the report ------------------------------------------------------------------------------------

def _float_stats(plan: integer_plan.Plan) -> dict[str, dict[str, int]]:
    """Operators left float: type -> reason -> count."""
    found: dict[str, Counter] = {}
    for op, reason in plan.float_ops.values():
        found.setdefault(op, Counter())[reason] += 1
    return {op: dict(sorted(reasons.items())) for op, reasons in sorted(found.items())}

