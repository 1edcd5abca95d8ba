"""fuse_resize_pad_and_conv: ResizeBilinear -> MirrorPad -> Conv2D becomes one
FusedResizeAndPadConv2D."""
from __future__ import annotations

from ...ir import Graph
from ..helpers.fusion import fuse_conv
from ..registry import Context, NoParams, PassResult, register


@register("fuse_resize_pad_and_conv", NoParams, formats=("graphdef",), guarantee="float rounding")
def fuse_resize_pad_and_conv(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Merge `Conv2D(MirrorPad(ResizeBilinear(x, size), paddings), filter)` into
    `FusedResizeAndPadConv2D(x, size, paddings, filter)`.

    The fused node keeps the conv's name, device and control inputs; it takes the resize's
    align_corners (as resize_align_corners), the pad's mode and the conv's T, strides and
    padding. Matches are skipped unless the conv is float32, NHWC, undilated, SAME/VALID,
    the resize has float32 input and half_pixel_centers false, and the paddings are a
    constant 4x2 matrix with zero batch and channel rows (int64 paddings become an int32
    Const).
    TF 2.21's kernel for the fused op is right for a batch of one only (every later batch
    element gets the first one's result): a match whose input has a known batch larger
    than 1 is skipped, an unknown batch is fused as in GTT, so use it on batch-1 graphs.
    Float rounding: another summation order."""
    return fuse_conv(graph, context, "fuse_resize_pad_and_conv", resize=True, pad=True)
