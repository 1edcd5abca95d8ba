"""fuse_pad_and_conv: MirrorPad feeding a Conv2D becomes one FusedPadConv2D."""
from __future__ import annotations

from ...ir import Graph
from ..helpers.fusion import fuse_conv
from ..registry import Context, NoParams, PassResult, register


@register("fuse_pad_and_conv", NoParams, formats=("graphdef",), guarantee="float rounding")
def fuse_pad_and_conv(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Merge `Conv2D(MirrorPad(x, paddings), filter)` into `FusedPadConv2D(x, paddings, filter)`.

    The fused node keeps the conv's name, device and control inputs and takes the pad's
    mode and the conv's T, strides and padding. TF runs FusedPadConv2D on the CPU only,
    for float32 NHWC input, padding height and width only; so, stricter than GTT, matches
    are skipped unless the conv is float32, NHWC, undilated, SAME/VALID and the paddings
    are a constant 4x2 matrix with zero batch and channel rows (int64 paddings become an
    int32 Const). Skipped matches are counted by reason.
    TF 2.21's kernel for the fused op is right for a batch of one only (every later batch
    element gets the first one's result): a match whose input has a known batch larger
    than 1 is skipped, an unknown batch is fused as in GTT, so use it on batch-1 graphs.
    Float rounding: the fused kernel sums in another order."""
    return fuse_conv(graph, context, "fuse_pad_and_conv", resize=False, pad=True)
