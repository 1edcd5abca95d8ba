"""decompose_ops for TFLite: operators a delegate may lack, rewritten as builtins every
delegate takes (ADD, MUL, MAXIMUM, MINIMUM), computing the same values."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ...formats.tflite import keys, tables, versions
from ...ir import DType, Graph, Node, Ref, Tensor
from ..helpers import tflite_edit
from ..helpers.skips import Skip, Skips
from ..registry import Context, PassError, PassResult, register

RELU6 = 3  # ActivationFunctionType
NEW_OPS = frozenset({"ADD", "MUL", "MAXIMUM", "MINIMUM"})


@dataclass(frozen=True)
class Params:
    op: list[str] = field(default_factory=list, metadata={
        "doc": "operator to decompose: HARD_SWISH or LEAKY_RELU (repeat for several; default: both)"})


@register("decompose_ops", Params, formats=("tflite",), guarantee="float rounding")
def decompose_ops(graph: Graph, params: Params, context: Context) -> PassResult:
    """Rewrite operators a delegate may lack as the builtins every delegate takes: HARD_SWISH and LEAKY_RELU.

    HARD_SWISH(x) becomes MUL(MUL(x, ADD(x, 3) with a fused RELU6), 1/6): x * relu6(x + 3) / 6,
    the formula of TFLite's kernel. LEAKY_RELU(x) becomes MAXIMUM(x, MUL(x, alpha)) for
    0 <= alpha <= 1 and MINIMUM(x, MUL(x, alpha)) for alpha > 1. The last operator keeps the
    original's output tensor (its name, its place in signatures); the constants (3, 1/6,
    alpha: float32 scalars) are shared within a subgraph. Every subgraph is rewritten. Left
    alone, with the reason in stats["skipped"]: quantized or non-float32 operators (their
    integer kernels rescale; a decomposition would need scales for its intermediates),
    LEAKY_RELU with alpha < 0 (neither MAXIMUM nor MINIMUM picks the right branch). LEAKY_RELU's
    decomposition is exact (x * alpha is the kernel's product; max/min picks what its branch
    picks); HARD_SWISH's multiplies by the float32 1/6 where the kernel divides by 6 and differs
    by float rounding (measured in LiteRT, with and without XNNPACK: at most 1.8e-7 x max(1,
    |output|), 2 ulp; bounded by 1e-6 in tests/passes/tflite/test_model_surgery.py). Op
    versions are raised as op_version.cc says. stats: decomposed (op -> count), skipped."""
    wanted = _wanted(params.op)
    skipped = Skips("decompose_ops", context.log)
    decomposed: Counter[str] = Counter()
    for sub in tables.subgraphs(graph):
        constants = _Constants(sub)
        done = 0
        for node in [n for n in sub if n.op in wanted and not keys.is_custom(n)]:
            op = node.op
            try:
                DECOMPOSITIONS[op](sub, node, constants)
            except Skip as skip:
                skipped.add(node.name, skip)
                continue
            decomposed[op] += 1
            done += 1
        if done:
            sub.toposort()
    if decomposed:
        versions.raise_versions(tables.subgraphs(graph), set(NEW_OPS))
        versions.raise_min_runtime(graph)
    return PassResult(bool(decomposed), {"decomposed": dict(sorted(decomposed.items())), "skipped": skipped.stats()})


def _wanted(names: list[str]) -> set[str]:
    wanted = {name.strip().upper() for item in names for name in item.split(",") if name.strip()}
    unknown = sorted(wanted - set(DECOMPOSITIONS))
    if unknown:
        raise PassError(f"decompose_ops: no decomposition of {unknown[0]!r}; it decomposes "
                        f"{', '.join(sorted(DECOMPOSITIONS))}")
    return wanted or set(DECOMPOSITIONS)


class _Constants:
    """The float32 scalars a subgraph's decompositions read, one node per value."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.refs: dict[tuple[str, float], Ref] = {}

    def scalar(self, name: str, value: float) -> Ref:
        key = (name, float(np.float32(value)))
        if key not in self.refs:
            self.refs[key] = tflite_edit.add_constant(self.graph, name, np.array(value, np.float32))
        return self.refs[key]


def _float_input(graph: Graph, node: Node) -> Ref:
    """The operator's input, if it and the output are plain float32; Skip otherwise."""
    inputs = graph.inputs_of(node.name)
    if not inputs or inputs[0] is None:
        raise Skip("no_input")
    source = graph.tensor(inputs[0])
    out = node.outputs[0]
    if {source.dtype, out.dtype} != {DType.FLOAT32} or source.quantization or out.quantization:
        raise Skip("not_float32", f"{source.dtype.value} -> {out.dtype.value}")
    return inputs[0]


def _intermediate(graph: Graph, node: Node, op: str, inputs: list[Ref], suffix: str,
                  options: str, attrs: dict) -> Ref:
    out = node.outputs[0]
    added = tflite_edit.add_operator(graph, op, inputs, Tensor(f"{out.name}/{suffix}", DType.FLOAT32, out.shape),
                                     options, attrs)
    return Ref(added.name, 0)


def _hard_swish(graph: Graph, node: Node, constants: _Constants) -> None:
    x = _float_input(graph, node)
    shifted = _intermediate(graph, node, "ADD", [x, constants.scalar("hard_swish/three", 3.0)], "relu6",
                            "AddOptions", {"fused_activation_function": RELU6, "pot_scale_int16": True})
    product = _intermediate(graph, node, "MUL", [x, shifted], "mul", "MulOptions", {"fused_activation_function": 0})
    graph.set_inputs(node.name, [product, constants.scalar("hard_swish/one_sixth", 1.0 / 6.0)])
    tflite_edit.retype_operator(node, "MUL", "MulOptions", {"fused_activation_function": 0})


def _leaky_relu(graph: Graph, node: Node, constants: _Constants) -> None:
    alpha = float(node.attrs.get("alpha", 0.0))
    if not alpha >= 0:
        raise Skip("negative_alpha", f"alpha {alpha}")
    x = _float_input(graph, node)
    scaled = _intermediate(graph, node, "MUL", [x, constants.scalar("leaky_relu/alpha", alpha)], "mul",
                           "MulOptions", {"fused_activation_function": 0})
    graph.set_inputs(node.name, [x, scaled])
    tflite_edit.retype_operator(node, "MAXIMUM" if alpha <= 1 else "MINIMUM")  # no options, as the converter


DECOMPOSITIONS: dict[str, Callable[[Graph, Node, _Constants], None]] = {
    "HARD_SWISH": _hard_swish, "LEAKY_RELU": _leaky_relu}
