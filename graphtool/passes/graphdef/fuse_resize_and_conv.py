"""fuse_resize_and_conv: ResizeBilinear feeding a Conv2D becomes one FusedResizeAndPadConv2D."""
from __future__ import annotations

from ...ir import Graph
from ..helpers.fusion import fuse_conv
from ..registry import Context, NoParams, PassResult, register


@register("fuse_resize_and_conv", NoParams, formats=("graphdef",), guarantee="float rounding")
def fuse_resize_and_conv(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Merge `Conv2D(ResizeBilinear(x, size), filter)` into
    `FusedResizeAndPadConv2D(x, size, <conv>_dummy_paddings, filter)` with all-zero paddings.

    As in GTT the padding is a new int32 Const of zeros and the mode REFLECT; the resize's
    align_corners becomes resize_align_corners. The fused node keeps the conv's name,
    device and control inputs. Matches are skipped unless the conv is float32, NHWC,
    undilated, SAME/VALID, and the resize has float32 input and half_pixel_centers false
    (the fused op has no such attr).
    TF 2.21's kernel for the fused op is right for a batch of one only (every later batch
    element gets the first one's result): a match whose input has a known batch larger
    than 1 is skipped, an unknown batch is fused as in GTT, so use it on batch-1 graphs.
    Float rounding: another summation order."""
    return fuse_conv(graph, context, "fuse_resize_and_conv", resize=True, pad=False)
