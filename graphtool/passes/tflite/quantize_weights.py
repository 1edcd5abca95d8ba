"""quantize_weights for TFLite models: int8 weights run by LiteRT's hybrid kernels, int8
weights dequantized at load time, or float16 weights, as the TFLite converter writes them.

Op versions and the `min_runtime_version` metadata follow TensorFlow's versioning rules
(see graphtool/formats/tflite/versions.py for the sources).
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...formats import load, tflite
from ...formats.tflite import keys, versions
from ...formats.tflite.ops import builtin_codes
from ...ir import CONST_OP, DType, Graph, Node, Quantization, Ref, Tensor
from ...ir.quantization import QUANTIZE_CHUNK, ROUNDINGS, symmetric  # noqa: F401 (QUANTIZE_CHUNK: re-exported)
from ..helpers.keep import Keep
from ..helpers.samples_param import Samples
from ..helpers.target_sqnr import CALIBRATION_DOC, FALLBACK_DOC, TARGET_DOC, mixed_precision, target_of
from ..helpers.skips import Skips
from ..registry import Context, PassError, PassResult, register

MODES = ("dynamic", "weight_only", "float16")
FLOAT16_MAX = float(np.finfo(np.float16).max)
INT_WEIGHTS = frozenset({DType.INT8, DType.UINT8, DType.INT4})
Use = tuple[str, int]  # (consumer, input slot)


@dataclass(frozen=True)
class WeightInput:
    """How an operator reads a constant weight, and what its hybrid kernel accepts."""

    slot: int  # the weight input
    activation: int | None  # the float input a hybrid kernel quantizes on the fly (None: no such input)
    axis: Callable[[Node, int], int]  # output-channel axis of the weight, given the node and the weight's rank
    ranks: tuple[int, ...]  # weight ranks the kernel takes
    per_channel_layout: bool = False  # the hybrid kernel reads one scale per channel, even per-tensor
    asymmetric_inputs: bool = False  # options have asymmetric_quantize_inputs (the converter sets it)


def _first(node: Node, rank: int) -> int:
    return 0


def _matmul_columns(node: Node, rank: int) -> int:
    return rank - 2 if node.attrs.get("adj_y") else rank - 1


WEIGHT_INPUTS: dict[str, WeightInput] = {
    "CONV_2D": WeightInput(1, 0, _first, (4,)),
    "DEPTHWISE_CONV_2D": WeightInput(1, 0, lambda node, rank: 3, (4,), per_channel_layout=True),
    "FULLY_CONNECTED": WeightInput(1, 0, _first, (2,), asymmetric_inputs=True),
    "BATCH_MATMUL": WeightInput(1, 0, _matmul_columns, (2, 3, 4, 5), asymmetric_inputs=True),
    "TRANSPOSE_CONV": WeightInput(1, 2, _first, (4,)),
    "EMBEDDING_LOOKUP": WeightInput(1, None, _first, (2, 3, 4, 5, 6)),
}
DEFAULT_OPS = tuple(WEIGHT_INPUTS)
OPTIONS_TABLES = {"FULLY_CONNECTED": "FullyConnectedOptions", "BATCH_MATMUL": "BatchMatMulOptions"}


@dataclass(frozen=True)
class TfliteParams:
    mode: str = field(default="dynamic", metadata={
        "doc": "dynamic (int8 weights, LiteRT's hybrid kernels), weight_only (int8 weights + DEQUANTIZE, "
               "float compute) or float16 (FLOAT16 constants + DEQUANTIZE)"})
    per_channel: bool = field(default=True, metadata={
        "doc": "one int8 scale per output channel (false: one per tensor)"})
    bits: int = field(default=8, metadata={
        "doc": "8; 4 (INT4, weight_only only); float16 mode takes 8 or 16 and always stores 16"})
    minimum_size: int | None = field(default=None, metadata={
        "doc": "quantize constants with at least this many elements (default 1024; float16 mode: 0, "
               "every float constant, as the converter does)"})
    ops: list[str] = field(default_factory=list, metadata={
        "doc": "operators whose weights to quantize (repeat or comma-separate; default: " + ", ".join(DEFAULT_OPS)
               + "; float16 mode default: every operator)"})
    keep: list[str] = field(default_factory=list, metadata={
        "doc": "operator (or its output tensor) whose weights stay float (repeat for several)"})
    keep_op: list[str] = field(default_factory=list, metadata={
        "doc": "operator type whose weights stay float (repeat or comma-separate)"})
    only: list[str] = field(default_factory=list, metadata={
        "doc": "operator (or its output tensor) whose weights alone are quantized; every other stays float "
               "(repeat for several)"})
    rounding: str = field(default="away", metadata={
        "doc": "how w / scale becomes an integer: away reproduces the TFLite converter (divides in float64, "
               "exact halves away from zero), even reproduces ai-edge-quantizer (divides by the float32 scale, "
               "exact halves to even)"})
    target_sqnr: float | None = field(default=None, metadata={"doc": TARGET_DOC + " (dynamic and weight_only)"})
    calibration: Samples = field(default=Samples(""), metadata={"doc": CALIBRATION_DOC})
    fallback: str = field(default="float16", metadata={"doc": FALLBACK_DOC})


@register("quantize_weights", TfliteParams, formats=("tflite",), guarantee="quantization error")
def quantize_weights(graph: Graph, params: TfliteParams, context: Context) -> PassResult:
    """Store constant weights in int8 (or float16), as the TFLite converter's post-training modes do.

    Weights are the constant input 1 of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
    BATCH_MATMUL, TRANSPOSE_CONV and EMBEDDING_LOOKUP (the table). A FLOAT16 constant read
    through DEQUANTIZE (a published float16 model) counts as a float weight. Every subgraph is
    handled. int8 is symmetric in [-127, 127] with zero points 0; per_channel=true keeps one
    scale max|w_c|/127 per output channel: quantized_dimension 0 for CONV_2D, FULLY_CONNECTED,
    TRANSPOSE_CONV and EMBEDDING_LOOKUP, 3 for DEPTHWISE_CONV_2D, the output-column axis for
    BATCH_MATMUL (last, or second to last with adj_y: LiteRT's hybrid kernel reads per-channel
    scales there; the converter stays per-tensor, and op_version.cc has no version for it, so
    a runtime older than LiteRT's current kernel may not know it). A weight read by several
    operators is quantized once (one tensor, one buffer) on an axis they agree on, else per
    tensor.

    mode=dynamic: operators LiteRT runs hybrid (float activations, int8 weight) read the int8
    weight; FULLY_CONNECTED and BATCH_MATMUL get asymmetric_quantize_inputs=true as the
    converter sets it. Every other reader (an operator not in `ops`, a bias or other input, an
    int8 activation) reads it through one DEQUANTIZE. Biases stay float; a hybrid operator's
    FLOAT16 bias behind DEQUANTIZE goes back to FLOAT32 (LiteRT's XNNPACK delegate refuses a
    hybrid operator with a dequantized float16 input). DEPTHWISE_CONV_2D's hybrid kernel reads
    one scale per channel, so with per_channel=false its single scale is repeated per channel
    (a per-tensor hybrid depthwise weight gives wrong results in LiteRT, the converter's too).
    mode=weight_only: every reader gets the DEQUANTIZE (float compute; bits=4 stores INT4 in
    [-7, 7]). mode=float16: every float32 constant (biases too, any size, any operator, as the
    converter does; `ops` and minimum_size narrow it; inputs of hybrid operators excepted)
    becomes FLOAT16 + DEQUANTIZE. A new DEQUANTIZE takes the constant's place in the node
    order, so operators keep their order (stateful ones included).

    keep= (an operator's name, or its output tensor's) and keep_op= (an operator type) leave
    those operators' weights float, as on every quantizing transform; only= (names as keep=)
    quantizes the weights of the operators it names alone (skipped reason "only" for the rest).

    target_sqnr=DB with calibration=SAMPLES.npz (dynamic and weight_only): automatic mixed
    precision. The float model and its quantized variants run in LiteRT on the samples; layers
    (operators whose weights were quantized) go back to higher precision, fallback=float16
    (FLOAT16 weights and biases behind DEQUANTIZE) or float32, until the output SQNR (the lowest
    of the whole set's and each half's) reaches DB: the search of graphtool.runtime.mixed_precision,
    by output noise removed per byte, deterministic. The smallest variant tried that reaches
    the target is written; stats["target_sqnr"] holds the target, the layers in fallback, the
    SQNR reached, the file size (and the input's), and every variant tried (step, fallback,
    bytes, sqnr_db). An unreachable target is an error saying what every layer in fallback gave.

    stats: tensors rewritten, quantized (weight inputs per op), hybrid (dynamic), skipped
    (per weight input: not constant, not float, too small, op not in ops, keep, keep_op, only, fallback, sparse,
    non-finite, graph output; float16 mode per constant), dequantize_added, float16_restored,
    bytes_before/bytes_after (weight data), min_runtime_version. Op versions are raised as
    tensorflow/lite/tools/versioning/op_version.cc requires, every operator of a builtin
    sharing the largest (the converter's operator codes are shared); min_runtime_version
    metadata becomes the largest runtime_version.cc entry over all operators, never lower
    than before (added when missing). Each weight is off by at most scale/2 (int8) or float16
    rounding.
    """
    graphs = [graph, *graph.subgraphs]
    plan = dataclasses.replace(_Settings.of(params), keep=Keep.of("quantize_weights", graphs, params.keep,
                                                                  params.keep_op, builtin_codes(),
                                                                  params.only))
    target = target_of("quantize_weights", params.target_sqnr, params.calibration, params.fallback)
    if target is None:
        run = _apply(graph, plan, context)
        return PassResult(bool(run.rewritten), run.result())
    if plan.mode == "float16":
        raise PassError("quantize_weights: target_sqnr applies to the int8 modes (dynamic, weight_only), "
                        "not to float16")
    reference = tflite.write(graph)
    trial = _apply(load(reference), plan, context)
    layers = list(dict.fromkeys(trial.layers))

    def build(fallback: frozenset[str]) -> tuple[bytes, dict]:
        work = load(reference)
        kept = dataclasses.replace(plan.keep, fallback=fallback)
        run = _apply(work, dataclasses.replace(plan, keep=kept), context)
        if fallback and params.fallback == "float16":
            store_float16(work, fallback, context)
        return tflite.write(work), run.result()

    stats = mixed_precision("quantize_weights", graph, reference, layers, build, target, context.log)
    return PassResult(bool(stats["tensors"]) or bool(stats["target_sqnr"]["fallback"]), stats)


def _apply(graph: Graph, settings: "_Settings", context: Context) -> "_Run":
    """Quantize every subgraph of `graph` as `settings` say; the run holds the statistics."""
    graphs = [graph, *graph.subgraphs]
    run = _Run(settings, context)
    for subgraph in graphs:
        run.subgraph(subgraph)
    if run.rewritten:
        versions.raise_versions(graphs, run.touched)
        run.stats["min_runtime_version"] = versions.raise_min_runtime(graph)
    return run


def store_float16(graph: Graph, operators: frozenset[str], context: Context) -> None:
    """Store the float32 constants the named operators read as FLOAT16 behind DEQUANTIZE, as
    mode=float16 does (inputs of hybrid operators excepted): the float16 fallback of target_sqnr."""
    settings = _Settings("float16", True, 16, 0, None, "away", Keep(frozenset(), frozenset(), operators))
    _apply(graph, settings, context)


# -- parameters --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Settings:
    mode: str
    per_channel: bool
    bits: int
    minimum_size: int
    ops: frozenset[str] | None  # None: every operator (float16 mode default)
    rounding: str
    keep: Keep | None = None  # operators whose weights stay float (keep=, keep_op=)

    @classmethod
    def of(cls, params: TfliteParams) -> "_Settings":
        if params.mode not in MODES:
            raise PassError(f"quantize_weights: mode must be one of {', '.join(MODES)}, got {params.mode!r}")
        if params.rounding not in ROUNDINGS:
            raise PassError(f"quantize_weights: rounding must be one of {', '.join(ROUNDINGS)}, "
                            f"got {params.rounding!r}")
        float16 = params.mode == "float16"
        if float16 and params.bits not in (8, 16):
            raise PassError(f"quantize_weights: float16 mode stores 16 bits; bits={params.bits} does not apply")
        if not float16 and params.bits not in (4, 8):
            raise PassError(f"quantize_weights: bits must be 8 (or 4 with mode=weight_only), got {params.bits}")
        if params.bits == 4 and params.mode != "weight_only":
            raise PassError("quantize_weights: bits=4 needs mode=weight_only (LiteRT's hybrid kernels take "
                            "int8 weights; INT4 weights are dequantized by DEQUANTIZE)")
        minimum = params.minimum_size if params.minimum_size is not None else (0 if float16 else 1024)
        if minimum < 0:
            raise PassError(f"quantize_weights: minimum_size must be >= 0, got {minimum}")
        names = [name.strip().upper() for item in params.ops for name in item.split(",") if name.strip()]
        unknown = [name for name in names if name not in WEIGHT_INPUTS]
        if unknown and not float16:
            raise PassError(f"quantize_weights: cannot quantize the weights of {', '.join(unknown)}; "
                            f"ops takes {', '.join(DEFAULT_OPS)}")
        ops = frozenset(names) if names else (None if float16 else frozenset(DEFAULT_OPS))
        return cls(params.mode, params.per_channel, 16 if float16 else params.bits, minimum, ops, params.rounding)

    def selects(self, node: Node) -> bool:
        """True when `node`'s weights are to be quantized (its type selected, not kept)."""
        return self.excluded(node) is None

    def excluded(self, node: Node) -> str | None:
        """Why `node`'s weights stay as they are: "only", "fallback", "keep", "keep_op" or "op not in ops"."""
        kept = self.keep.reason(node) if self.keep is not None else None
        return kept or (None if self.ops is None or node.op in self.ops else "op not in ops")


# -- weights -----------------------------------------------------------------------------------

@dataclass
class _Weight:
    """A float constant and everything that reads its value."""

    const: Node
    views: list[str]  # DEQUANTIZE nodes a FLOAT16 constant is read through (empty for float32)
    uses: list[Use] = field(default_factory=list)  # (consumer, slot) of the float value
    name: str = ""  # the constant's node name (kept by the stored constant)

    def __post_init__(self) -> None:
        self.name = self.name or self.const.name

    @property
    def tensor(self) -> Tensor:
        return self.const.outputs[0]

    def values(self) -> np.ndarray:
        return np.asarray(self.tensor.data, dtype=np.float32)


@dataclass(frozen=True)
class _Layout:
    """Where the int8 scales go: per tensor (axis None), per channel, or one scale repeated."""

    axis: int | None
    repeated: bool = False


class _Run:
    """The rewrite of every subgraph, with shared statistics."""

    def __init__(self, settings: _Settings, context: Context):
        self.settings = settings
        self.log = context.log
        self.rewritten = 0
        self.touched: set[str] = set()  # op types whose version may change
        self.quantized: Counter[str] = Counter()
        self.hybrid: Counter[str] = Counter()
        self.skipped = Skips("quantize_weights", context.log)
        self.dequantize_added = 0
        self.float16_restored = 0
        self.layers: list[str] = []  # operators whose weight input now reads a quantized weight
        self.bytes_before = self.bytes_after = 0
        self.stats: dict = {}

    def result(self) -> dict:
        stats = {"mode": self.settings.mode, "tensors": self.rewritten,
                 "quantized": dict(sorted(self.quantized.items())),
                 "skipped": self.skipped.stats(),
                 "dequantize_added": self.dequantize_added,
                 "bytes_before": self.bytes_before, "bytes_after": self.bytes_after}
        if self.settings.mode == "dynamic":
            stats["hybrid"] = dict(sorted(self.hybrid.items()))
            stats["float16_restored"] = self.float16_restored
        stats.update(self.stats)
        return stats

    # -- planning ------------------------------------------------------------------------------
    def subgraph(self, graph: Graph) -> None:
        plan = self._float16_plan(graph) if self.settings.mode == "float16" else self._int8_plan(graph)
        staged = [self._store(graph, weight, hybrid) for weight, hybrid in plan]
        dequantized = self._insert_dequantize(graph, staged)
        for weight, hybrid in staged:
            self._rewire(graph, weight, hybrid)
        restored = self._restore_float32_inputs(graph, [use for _, hybrid in staged for use in hybrid])
        if dequantized or restored or any(weight.views for weight, _ in staged):
            self.touched.add("DEQUANTIZE")

    def _int8_plan(self, graph: Graph) -> list[tuple[_Weight, set[Use]]]:
        """Weights to quantize, each with the uses that will read the int8 tensor directly."""
        found: dict[str, _Weight | str] = {}  # constant name -> weight, or why it is left alone
        weight_uses: list[tuple[Node, str | None, str | None]] = []  # (operator, constant, reason)
        for node in graph:
            spec = WEIGHT_INPUTS.get(node.op)
            inputs = graph.inputs_of(node.name) if spec and not keys.is_custom(node) else []
            if not spec or spec.slot >= len(inputs) or inputs[spec.slot] is None:
                continue
            source = _float_source(graph, inputs[spec.slot])
            if isinstance(source, str):
                weight_uses.append((node, None, source))
                continue
            if source.const.name not in found:
                found[source.const.name] = self._rejection(graph, source) or source
            weight_uses.append((node, source.const.name, None))

        chosen: dict[str, _Weight] = {}
        for node, name, _ in weight_uses:
            if name is not None and isinstance(found[name], _Weight) and self.settings.selects(node):
                chosen[name] = found[name]
        for node, name, reason in weight_uses:
            if name in chosen:
                continue
            if name is not None:
                reason = self.settings.excluded(node) or found[name]
            self.skipped(name or node.name, reason)
        return [(weight, self._hybrid_uses(graph, weight)) for weight in chosen.values()]

    def _float16_plan(self, graph: Graph) -> list[tuple[_Weight, set[Use]]]:
        plan = []
        for node in list(graph):
            if node.op != CONST_OP or keys.is_custom(node) or not node.outputs:
                continue
            tensor = node.outputs[0]
            if tensor.dtype is DType.FLOAT16 and _dequantized_by(graph, node.name):
                self.skipped(node.name, "already float16")
                continue
            if tensor.dtype is not DType.FLOAT32 or not tensor.is_constant:
                continue
            weight = _Weight(node, [], graph.consumers(node.name))
            if not weight.uses:
                continue
            reason = self._rejection(graph, weight)
            if reason is None and not any(self.settings.selects(graph.node(c)) for c, _ in weight.uses):
                reason = self.settings.excluded(graph.node(weight.uses[0][0]))
            if reason is None and any(_reads_hybrid(graph, graph.node(c)) for c, _ in weight.uses):
                reason = "input of a hybrid op"  # XNNPACK refuses hybrid ops with dequantized float16 inputs
            if reason is None and np.abs(weight.values()).max(initial=0) > FLOAT16_MAX:
                reason = "exceeds float16 range"
            if reason:
                self.skipped(node.name, reason)
            else:
                plan.append((weight, set()))
        return plan

    def _rejection(self, graph: Graph, weight: _Weight) -> str | None:
        """Why this float constant is left alone, or None."""
        tensor = weight.tensor
        if keys.SPARSITY in tensor.meta:
            return "sparse"
        if any(ref.node == weight.const.name for ref in graph.outputs):
            return "graph output"
        if tensor.data is None or tensor.data.size == 0:
            return "empty"
        if tensor.data.size < self.settings.minimum_size:
            return "too small"
        if not np.isfinite(weight.values()).all():
            self.log.info("quantize_weights: %s holds NaN or infinity, left as is", weight.const.name)
            return "non-finite"
        return None

    def _hybrid_uses(self, graph: Graph, weight: _Weight) -> set[Use]:
        """Uses whose operator runs hybrid on the int8 weight (dynamic mode)."""
        if self.settings.mode != "dynamic":
            return set()
        rank = len(weight.tensor.shape or ())
        return {(consumer, slot) for consumer, slot in weight.uses
                if self.settings.selects(graph.node(consumer))
                and _runs_hybrid(graph, graph.node(consumer), slot, rank)}

    # -- rewriting -----------------------------------------------------------------------------
    def _store(self, graph: Graph, weight: _Weight, hybrid: set[Use]) -> tuple[_Weight, set[Use]]:
        """Replace the constant's data by its int8 (or float16) form; returns the uses that
        read it directly."""
        tensor = weight.tensor
        before = _stored_bytes(tensor.dtype, tensor.data.size)
        values = weight.values()
        if self.settings.mode == "float16":
            tensor.dtype, tensor.data, tensor.quantization = DType.FLOAT16, values.astype(np.float16), None
        else:
            layout = self._layout(graph, weight, hybrid)
            hybrid = {use for use in hybrid if _accepts(graph.node(use[0]), layout, values.ndim)}
            quantized, scales = symmetric(values, layout.axis, 2 ** (self.settings.bits - 1) - 1, layout.repeated,
                                          self.settings.rounding)
            tensor.dtype = DType.INT4 if self.settings.bits == 4 else DType.INT8
            tensor.data = quantized
            tensor.quantization = Quantization(scales, np.zeros(scales.size, np.int64),
                                               0 if layout.axis is None else layout.axis)
        self.rewritten += 1
        self.bytes_before += before
        self.bytes_after += _stored_bytes(tensor.dtype, values.size)
        for consumer, slot in weight.uses:
            op = graph.node(consumer).op
            if op in WEIGHT_INPUTS and WEIGHT_INPUTS[op].slot == slot and self.settings.selects(graph.node(consumer)):
                self.quantized[op] += 1
                self.layers.append(consumer)
        return weight, hybrid

    def _insert_dequantize(self, graph: Graph, staged: list[tuple[_Weight, set[Use]]]) -> int:
        """Give each float32 constant that other readers still need as float a DEQUANTIZE.

        The constant's node becomes the DEQUANTIZE, keeping its place in the node order
        (before every operator that reads it, so the operator order stays valid without a
        sort that could move stateful operators), and a new node named as the constant
        takes the stored tensor. Readers keep reading the old node, now the float value."""
        needing = [weight for weight, hybrid in staged if not weight.views
                   and any(use not in hybrid for use in weight.uses)]
        mapping: dict[str, str] = {}
        for weight in needing:  # the float value is named as the converter names it: weight + "1" (or "2", ...)
            mapping[weight.name] = graph.unique_name(weight.name, set(mapping.values()), separator="")
        if mapping:
            graph.rename_nodes(mapping)
        for weight in needing:
            node, tensor = weight.const, weight.tensor  # the same Node object, now named mapping[...]
            weight.const = graph.add_node(Node(weight.name, CONST_OP, outputs=[tensor]))
            node.op, node.attrs, node.meta = "DEQUANTIZE", {}, {"version": 1}
            node.outputs = [Tensor(node.name, DType.FLOAT32, tensor.shape)]
            graph.set_inputs(node.name, [Ref(weight.name, 0)])
        self.dequantize_added += len(needing)
        return len(needing)

    def _rewire(self, graph: Graph, weight: _Weight, hybrid: set[Use]) -> None:
        """Hybrid readers read the stored constant; unused DEQUANTIZE views go."""
        for consumer, slot in sorted(hybrid):
            graph.set_input(consumer, slot, Ref(weight.name, 0))
            self._mark_hybrid(graph.node(consumer))
        for view in weight.views:
            if not graph.is_used(view) and all(ref.node != view for ref in graph.outputs):
                graph.remove_node(view)

    def _restore_float32_inputs(self, graph: Graph, hybrid: list[Use]) -> int:
        """Hybrid operators read their other constants (biases) as float32: a FLOAT16
        constant behind DEQUANTIZE there goes back to FLOAT32 (exactly), as LiteRT's XNNPACK
        delegate refuses a hybrid operator whose bias is a dequantized FLOAT16."""
        restored = 0
        for consumer, weight_slot in sorted(set(hybrid)):
            for slot, ref in enumerate(graph.inputs_of(consumer)):
                const = _float16_behind(graph, ref) if slot != weight_slot else None
                if const is None:
                    continue
                views = _dequantized_by(graph, const.name) or []
                tensor = const.outputs[0]
                tensor.dtype, tensor.data = DType.FLOAT32, np.asarray(tensor.data, np.float32)
                for view in views:
                    graph.replace_uses(Ref(view, 0), Ref(const.name, 0))
                    graph.remove_node(view)
                restored += 1
        self.float16_restored += restored
        return restored

    def _layout(self, graph: Graph, weight: _Weight, hybrid: set[Use]) -> _Layout:
        """Per-channel on the axis every relevant reader agrees on, else per tensor (repeated
        per channel when the only hybrid readers need that form)."""
        rank = len(weight.tensor.shape)
        readers = hybrid or {(c, s) for c, s in weight.uses
                             if WEIGHT_INPUTS.get(graph.node(c).op) and WEIGHT_INPUTS[graph.node(c).op].slot == s
                             and self.settings.selects(graph.node(c))}
        axes = {WEIGHT_INPUTS[graph.node(c).op].axis(graph.node(c), rank) for c, _ in readers}
        if self.settings.per_channel and len(axes) == 1:
            return _Layout(axes.pop())
        needs_form = [WEIGHT_INPUTS[graph.node(c).op] for c, _ in hybrid]
        if needs_form and all(spec.per_channel_layout for spec in needs_form) and len(axes) == 1:
            return _Layout(axes.pop(), repeated=True)
        return _Layout(None)

    def _mark_hybrid(self, node: Node) -> None:
        self.hybrid[node.op] += 1
        self.touched.add(node.op)
        if WEIGHT_INPUTS[node.op].asymmetric_inputs:
            node.meta.setdefault(keys.OPTIONS_TYPE, OPTIONS_TABLES[node.op])
            node.attrs = {**node.attrs, "asymmetric_quantize_inputs": True}


def _float_source(graph: Graph, ref: Ref) -> _Weight | str:
    """The float constant a weight input reads (directly, or a FLOAT16 constant through
    DEQUANTIZE), or why there is none."""
    node = graph.node(ref.node)
    if node.op == CONST_OP and not keys.is_custom(node):
        tensor = node.outputs[ref.port]
        if tensor.dtype is not DType.FLOAT32 or not tensor.is_constant:
            return "not float"
        return _Weight(node, [], graph.consumers(node.name))
    if node.op == "DEQUANTIZE" and not keys.is_custom(node):
        (source,) = graph.inputs_of(node.name)[:1] or [None]
        const = graph.node(source.node) if source is not None else None
        if const is None or const.op != CONST_OP or keys.is_custom(const):
            return "not constant"
        if const.outputs[source.port].dtype is not DType.FLOAT16:
            return "not float"
        views = _dequantized_by(graph, const.name)
        if views is None:
            return "float16 read without DEQUANTIZE"
        return _Weight(const, views, [use for view in views for use in graph.consumers(view)])
    return "not constant"


def _dequantized_by(graph: Graph, const: str) -> list[str] | None:
    """The DEQUANTIZE nodes reading `const`, None unless every reader is one."""
    readers = graph.consumers(const)
    if not readers or any(graph.node(c).op != "DEQUANTIZE" for c, _ in readers):
        return None
    return sorted({c for c, _ in readers})


def _runs_hybrid(graph: Graph, node: Node, slot: int, rank: int) -> bool:
    """True when LiteRT runs `node` with an int8 weight at `slot` and float activations."""
    spec = WEIGHT_INPUTS.get(node.op)
    if spec is None or keys.is_custom(node) or slot != spec.slot or rank not in spec.ranks:
        return False
    if not node.outputs or node.outputs[0].dtype is not DType.FLOAT32:
        return False
    if spec.activation is not None:
        inputs = graph.inputs_of(node.name)
        activation = inputs[spec.activation] if spec.activation < len(inputs) else None
        if activation is None or graph.node(activation.node).outputs[activation.port].dtype is not DType.FLOAT32:
            return False
    if node.op == "FULLY_CONNECTED" and node.attrs.get("weights_format"):
        return False
    others = [ref for i, ref in enumerate(graph.inputs_of(node.name)) if i != slot and ref is not None]
    return all(graph.node(ref.node).op != "DEQUANTIZE" or _float16_behind(graph, ref) is not None for ref in others)


def _float16_behind(graph: Graph, ref: Ref | None) -> Node | None:
    """The FLOAT16 constant `ref` reads through DEQUANTIZE, when every reader of the constant
    is a DEQUANTIZE and none of those is a graph output (so it can go back to FLOAT32)."""
    node = graph.node(ref.node) if ref is not None else None
    if node is None or node.op != "DEQUANTIZE" or keys.is_custom(node):
        return None
    (source,) = graph.inputs_of(node.name)[:1] or [None]
    const = graph.node(source.node) if source is not None else None
    if const is None or const.op != CONST_OP or const.outputs[0].dtype is not DType.FLOAT16:
        return None
    views = _dequantized_by(graph, const.name)
    if views is None or any(ref.node in views for ref in graph.outputs):
        return None
    return const


def _reads_hybrid(graph: Graph, node: Node) -> bool:
    """True for an operator LiteRT runs hybrid: float output from a constant int weight."""
    if node.op == "DEQUANTIZE" or not node.outputs or node.outputs[0].dtype is not DType.FLOAT32:
        return False
    for ref in graph.inputs_of(node.name):
        source = graph.node(ref.node) if ref is not None else None
        if source is not None and source.op == CONST_OP and source.outputs[ref.port].dtype in INT_WEIGHTS:
            return True
    return False


def _accepts(node: Node, layout: _Layout, rank: int) -> bool:
    """Whether `node`'s hybrid kernel reads a weight with these scales correctly."""
    spec = WEIGHT_INPUTS[node.op]
    if layout.axis is None:
        return not spec.per_channel_layout
    return spec.axis(node, rank) == layout.axis


def _stored_bytes(dtype: DType, count: int) -> int:
    if dtype is DType.INT4:
        return math.ceil(count / 2)
    return count * (dtype.itemsize or 0)
