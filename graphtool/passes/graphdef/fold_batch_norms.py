"""fold_batch_norms: fold a batch norm written as Mul (and Add) into the weights before it."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...ir import Graph, Node, Ref
from ..helpers import batch_norm as bn
from ..helpers.graphdef_nodes import protected
from ..helpers.skips import Skip, Skips
from ..registry import Context, NoParams, PassResult, register

ADD_OPS = ("Add", "AddV2", "Sub", "BiasAdd")


@register("fold_batch_norms", NoParams, formats=("graphdef",), guarantee="float rounding")
def fold_batch_norms(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Fold y = x * scale (+ offset) after a conv or matmul into its weights.

    GTT's pattern is `Mul(Conv2D|MatMul|DepthwiseConv2dNative(*, Const), Const)`: the weights
    are multiplied by the per-output-channel scale (DepthwiseConv2dNative [h, w, in, multiplier]:
    channel in*multiplier) and the conv takes the Mul's name. graphtool also folds what
    tf.nn.batch_normalization and Keras 3 emit, `Add|AddV2(Mul(producer, scale), offset)` (or
    Sub, or BiasAdd, for the offset), into the conv followed by BiasAdd(Const
    `<producer>_bn_offset`) named as the Add. scale and offset may be constant subexpressions
    (Rsqrt/Mul/Sub/AddV2 of constants, through Identity, Reshape, Squeeze): they are evaluated
    with numpy. The producer is Conv2D, DepthwiseConv2dNative or MatMul with constant weights
    (through Identity), optionally followed by constant biases (BiasAdd, Add, AddV2, or Sub
    x - c: they become bias*scale + offset), BatchToSpaceND or a Reshape keeping channels
    last; or a ConcatV2 of such producers. NHWC and NCHW (scale broadcast along the conv's
    channel axis). A producer that ends in a bias and is followed by more constant sums
    (Add|AddV2|BiasAdd(producer, Const), Sub(producer, Const); Keras 3's hard sigmoid adds
    3.0 after a conv's BiasAdd) ends with one BiasAdd holding their total, named as the last
    sum; Sub(Const, producer) negates the weights. Scalars count as per channel.

    Skipped, counted by reason in stats["skipped"]: a Mul whose other operand is not such a
    producer, an intermediate used elsewhere, a scale or offset not per channel. Weights
    still used elsewhere stay; constants left unused are removed. Repeats until nothing
    folds. Exact up to float rounding."""
    keep = protected(graph, context.inputs + context.outputs)

    def find(graph: Graph, consts: bn.Constants, skipped: Skips) -> list[bn.Fold]:
        folds: list[bn.Fold] = []
        claimed: set[str] = set()
        for node in list(graph):  # Mul + Add first, so the Mul of a pair is not folded alone
            if node.op in ADD_OPS:
                _try(folds, skipped, node, lambda: _plan_pair(graph, node, consts, keep, claimed))
        for node in list(graph):
            if node.op == "Mul" and node.name not in claimed and _mul_operands(graph, node, consts):
                _try(folds, skipped, node, lambda: _plan_mul(graph, node, consts, keep))
        roots = {fold.root.name for fold in folds}
        for node in reversed(list(graph)):  # the last sum of a chain first: it takes the whole chain
            if node.op in ADD_OPS and node.name not in roots:
                _try(folds, skipped, node, lambda: _plan_sum(graph, node, consts, keep))
        return _disjoint(folds)

    stats = bn.run_rounds(graph, keep, find, "fold_batch_norms", context.log)
    return PassResult(stats["folded"] > 0, stats)


def _try(folds: list[bn.Fold], skipped: Skips, node: Node, plan: Callable[[], bn.Fold | None]) -> None:
    try:
        fold = plan()
    except Skip as skip:
        skipped.add(node.name, skip)
        return
    if fold is not None:
        folds.append(fold)


def _split_operands(graph: Graph, node: Node, consts: bn.Constants) -> tuple[int, Ref, np.ndarray] | None:
    """(the slot of the variable operand, that operand, the constant one) of a binary op with
    one float constant operand, else None."""
    inputs = graph.inputs_of(node.name)
    if len(inputs) != 2 or None in inputs:
        return None
    values = [consts.value(ref) for ref in inputs]
    if (values[0] is None) == (values[1] is None):
        return None
    variable = 0 if values[0] is None else 1
    constant = np.asarray(values[1 - variable])
    return (variable, inputs[variable], constant) if constant.dtype.kind == "f" else None


def _mul_operands(graph: Graph, mul: Node, consts: bn.Constants) -> tuple[Ref, np.ndarray] | None:
    """(the variable operand, the constant one) of a Mul by a float constant, else None."""
    split = _split_operands(graph, mul, consts)
    return None if split is None else split[1:]


def _plan_pair(graph: Graph, root: Node, consts: bn.Constants, keep: set[str],
               claimed: set[str]) -> bn.Fold | None:
    """A Fold for root = Mul(producer, scale) ± offset, None when root is no such pair."""
    inputs = graph.inputs_of(root.name)
    if len(inputs) != 2 or None in inputs:
        return None
    orders = [(0, 1), (1, 0)] if root.op in ("Add", "AddV2") else [(0, 1)]
    for mul_slot, offset_slot in orders:
        mul_ref, offset = inputs[mul_slot], consts.value(inputs[offset_slot])
        mul = graph.node(mul_ref.node)
        operands = _mul_operands(graph, mul, consts) if mul.op == "Mul" and mul_ref.port == 0 else None
        if offset is None or operands is None or np.asarray(offset).dtype.kind != "f":
            continue
        if (graph.consumers(mul.name) != [(root.name, mul_slot)] or graph.control_consumers(mul.name)
                or mul.name in keep):
            return None  # the Mul alone may still fold
        claimed.add(mul.name)
        prod_ref, scale = operands
        prod = bn.producer(graph, prod_ref, consts, mul.name, keep)
        offset = np.negative(offset) if root.op == "Sub" else np.asarray(offset)
        offset_vector = bn.bias_vector(root, offset, prod)
        scale_vector = bn.per_channel(scale, prod.rank, prod.axis, prod.channels)
        if scale_vector is None or offset_vector is None:
            raise Skip(bn.NOT_PER_CHANNEL, f"{mul.name} scale {np.shape(scale)}, "
                                              f"{root.name} offset {np.shape(offset)}")
        return bn.Fold(root, prod, scale_vector, offset_vector, also_remove=[mul])
    return None


def _plan_mul(graph: Graph, mul: Node, consts: bn.Constants, keep: set[str]) -> bn.Fold:
    prod_ref, scale = _mul_operands(graph, mul, consts)
    prod = bn.producer(graph, prod_ref, consts, mul.name, keep)
    scale_vector = bn.per_channel(scale, prod.rank, prod.axis, prod.channels)
    if scale_vector is None:
        raise Skip(bn.NOT_PER_CHANNEL, f"{mul.name} scale {np.shape(scale)}")
    return bn.Fold(mul, prod, scale_vector, None)


def _plan_sum(graph: Graph, root: Node, consts: bn.Constants, keep: set[str]) -> bn.Fold | None:
    """A Fold for root = producer ± constant when the producer already ends in a bias (a
    conv's BiasAdd then AddV2(3.0), as Keras 3's hard sigmoid): the biases and the constant
    become one. c - producer negates the weights. None when root is no such sum."""
    split = _split_operands(graph, root, consts)
    if split is None:
        return None
    variable, operand, constant = split
    if (operand.port != 0 or (root.op == "BiasAdd" and variable != 0)
            or not bn.adds_constant(graph, graph.node(operand.node), consts)):
        return None
    prod = bn.producer(graph, operand, consts, root.name, keep)
    negated = root.op == "Sub" and variable == 1  # c - x
    offset = bn.bias_vector(root, np.negative(constant) if root.op == "Sub" and not negated else constant, prod)
    if offset is None:
        raise Skip(bn.NOT_PER_CHANNEL, f"{root.name} adds a constant of shape {constant.shape}")
    return bn.Fold(root, prod, np.full(prod.channels, -1.0 if negated else 1.0), offset)


def _disjoint(folds: list[bn.Fold]) -> list[bn.Fold]:
    """The folds that share no node with an earlier one: a later one waits for the next round
    (a sum inside a chain another fold takes whole, or inside a Mul's producer)."""
    taken: set[str] = set()
    kept = []
    for fold in folds:
        nodes = {fold.root.name, *fold.producer.interior, *(node.name for node in fold.also_remove)}
        if not nodes & taken:
            kept.append(fold)
            taken |= nodes
    return kept
