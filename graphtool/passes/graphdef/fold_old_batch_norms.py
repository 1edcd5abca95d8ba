"""fold_old_batch_norms: fold batch-norm ops into the conv or matmul weights before them."""
from __future__ import annotations

import numpy as np

from ...ir import Graph, Node, Ref
from ..helpers import batch_norm as bn
from ..helpers.graphdef_nodes import protected
from ..helpers.skips import Skip, Skips
from ..registry import Context, NoParams, PassResult, register

FUSED_OPS = ("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
GLOBAL_OP = "BatchNormWithGlobalNormalization"

TRAINING = "is_training=true"
OTHER_OUTPUTS = "batch norm outputs other than y are used"
NOT_CONSTANT = "non-constant parameters"
LAYOUT = "data_format not NHWC or NCHW"


@register("fold_old_batch_norms", NoParams, formats=("graphdef",), guarantee="float rounding")
def fold_old_batch_norms(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Fold BatchNormWithGlobalNormalization and FusedBatchNorm/V2/V3 into the weights before them.

    Matches a batch norm (is_training=false for the fused ones; only output 0 used) whose
    mean, variance, beta and gamma are constants (through Identity) and whose input is
    Conv2D, DepthwiseConv2dNative or MatMul with constant weights (through Identity),
    optionally followed by a constant BiasAdd/Add, BatchToSpaceND (atrous conv) or a Reshape
    keeping channels last (MatMul into a 4-D batch norm); or a ConcatV2 of such producers
    (on the channel axis each conv takes its slice of the scale, on another axis all of it).
    NHWC and NCHW (the data_format of the conv and batch norm must agree).

        scale = gamma / sqrt(variance + epsilon)   (no gamma for BatchNormWithGlobalNormalization
                                                    with scale_after_normalization=false)
        offset = beta - mean * scale

    Each conv's weights are multiplied by the scale of its output channels (DepthwiseConv2dNative
    [h, w, in, multiplier]: channel in*multiplier); an old bias b becomes b*scale; the batch norm
    becomes BiasAdd(producer, Const `<producer>_bn_offset`) with the batch norm's name, so its
    consumers and declared outputs keep working. Weights still used elsewhere stay; constants
    left unused are removed. Batch norms that cannot be folded stay, counted by reason in
    stats["skipped"]. Repeats until nothing folds (batch norms in a row). Extends GTT, which
    handles neither V2/V3, MatMul, a bias in between nor NCHW. Exact up to float rounding."""
    keep = protected(graph, context.inputs + context.outputs)
    declared = [Ref.parse(name) for name in context.outputs] + list(graph.outputs)

    def find(graph: Graph, consts: bn.Constants, skipped: Skips) -> list[bn.Fold]:
        folds = []
        for node in graph:
            if node.op not in FUSED_OPS and node.op != GLOBAL_OP:
                continue
            try:
                folds.append(_plan(graph, node, consts, keep, declared))
            except Skip as skip:
                skipped.add(node.name, skip)
        return folds

    stats = bn.run_rounds(graph, keep, find, "fold_old_batch_norms", context.log)
    return PassResult(stats["folded"] > 0, stats)


def _plan(graph: Graph, node: Node, consts: bn.Constants, keep: set[str], declared: list[Ref]) -> bn.Fold:
    if node.op in FUSED_OPS:
        if node.attrs.get("is_training", True):
            raise Skip(TRAINING)
        layout = node.attrs.get("data_format", "NHWC")
        epsilon = float(node.attrs.get("epsilon", 1e-4))
    else:
        layout = "NHWC"
        epsilon = float(node.attrs.get("variance_epsilon", 0.0))
    if layout not in ("NHWC", "NCHW"):
        raise Skip(LAYOUT, f"{node.name} is {layout}")
    if (graph.used_ports(node.name) - {0}
            or any(ref.node == node.name and ref.port != 0 for ref in declared)):
        raise Skip(OTHER_OUTPUTS, node.name)
    inputs = graph.inputs_of(node.name)
    if len(inputs) != 5 or inputs[0] is None:
        raise Skip(NOT_CONSTANT, f"{node.name} has {len(inputs)} inputs")
    values = [consts.value(ref) for ref in inputs[1:]]
    if any(v is None for v in values):
        raise Skip(NOT_CONSTANT, node.name)
    prod = bn.producer(graph, inputs[0], consts, node.name, keep)
    if prod.rank != 4 or prod.axis != (1 if layout == "NCHW" else 3):
        raise Skip(bn.LAYOUT, f"{node.name} is {layout}, its input has channels on axis {prod.axis}")
    vectors = [bn.per_channel(v, 1, 0, prod.channels) for v in values]
    if any(v is None for v in vectors):
        raise Skip(bn.NOT_PER_CHANNEL, f"{node.name} parameters are not {prod.channels} per-channel values")
    if node.op in FUSED_OPS:
        gamma, beta, mean, variance = vectors
        scale = gamma / np.sqrt(variance + epsilon)
    else:
        mean, variance, beta, gamma = vectors
        scale = 1 / np.sqrt(variance + epsilon)
        if node.attrs.get("scale_after_normalization", False):
            scale = scale * gamma
    return bn.Fold(node, prod, scale, beta - mean * scale)
