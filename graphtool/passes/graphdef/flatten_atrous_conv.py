"""flatten_atrous_conv: SpaceToBatchND -> conv -> BatchToSpaceND becomes one conv with an
upsampled (zero-dilated) filter, as the Graph Transform Tool does."""
from __future__ import annotations

import numpy as np

from ...formats.graphdef import keys
from ...ir import DType, Graph, Node, Ref, make_const
from ...pattern import P, constant_value, find
from ..helpers.fusion import attr, controls_of, is_nhwc, rebuild, remove_dead, unit_dilations
from ..helpers.graphdef_nodes import protected
from ..helpers.skips import Skips
from ..registry import Context, NoParams, PassResult, register

PATTERN = P("BatchToSpaceND",
            P("Conv2D|DepthwiseConv2dNative",
              P("SpaceToBatchND", P("*", name="input"), P("*", name="s2b_block"), P("*", name="paddings"),
                name="s2b"),
              P("*", name="filter"), name="conv"),
            P("*", name="b2s_block"), P("*", name="crops"), name="b2s")


@register("flatten_atrous_conv", NoParams, formats=("graphdef",), guarantee="float rounding")
def flatten_atrous_conv(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Turn atrous convolutions built from SpaceToBatchND/BatchToSpaceND into one conv.

    Pattern: `BatchToSpaceND(Conv2D|DepthwiseConv2dNative(SpaceToBatchND(x, block, paddings),
    filter), block, crops)` with constant block shapes, paddings, crops and filter. The
    result is the conv, named as the BatchToSpaceND, on `x` with the filter upsampled by the
    block shape (zeros between taps) instead of a `dilations` attr, as GTT does, so runtimes
    without dilated kernels can run it. Padding is VALID when paddings minus crops are zero
    and SAME when they equal SAME's padding for the dilated filter; any other combination
    is skipped (GTT sets SAME regardless). The inner conv must be NHWC, VALID, stride 1 and
    undilated. Float rounding: the same products are summed in another order."""
    keep = protected(graph, context.inputs + context.outputs)
    skip = Skips("flatten_atrous_conv", context.log)
    plans = []
    for match in find(graph, PATTERN):
        plan, reason = _plan(graph, match.nodes, match.refs, keep)
        if plan is None:
            skip(match.root.name, reason)
        else:
            plans.append(plan)
    for plan in plans:
        _rewrite(graph, keep, **plan)
    if plans:
        graph.toposort()
    return PassResult(bool(plans), {"flattened": len(plans), "skipped": skip.stats()})


def _plan(graph: Graph, nodes: dict[str, Node], refs: dict[str, Ref], keep: set[str]) -> tuple[dict | None, str]:
    conv, s2b = nodes["conv"], nodes["s2b"]
    if conv.name in keep or s2b.name in keep:
        return None, "an intermediate node is a declared input or output"
    if not is_nhwc(conv):
        return None, "conv is not NHWC"
    if attr(conv, "padding") != "VALID":
        return None, "inner conv padding is not VALID"
    if any(s != 1 for s in attr(conv, "strides", (1, 1, 1, 1))) or not unit_dilations(conv):
        return None, "inner conv is strided or dilated"
    values, consts = {}, {}
    for key in ("s2b_block", "b2s_block", "paddings", "crops", "filter"):
        found = constant_value(graph, refs[key])
        if found is None:
            return None, f"{key} is not a constant"
        consts[key], values[key] = found
    block, crops, paddings, filt = values["s2b_block"], values["crops"], values["paddings"], values["filter"]
    if block.shape != (2,) or values["b2s_block"].shape != (2,) or not np.array_equal(block, values["b2s_block"]):
        return None, "block shapes are not the same two spatial factors"
    if np.any(block < 1) or paddings.shape != (2, 2) or crops.shape != (2, 2) or np.any(paddings < 0) \
            or np.any(crops < 0):
        return None, "block shape, paddings or crops out of range"
    filter_dtype = consts["filter"].outputs[0].dtype
    if filt.ndim != 4 or filter_dtype is None or not filter_dtype.is_float:
        return None, "filter is not a 4-D float constant"
    padding = _equivalent_padding(block, paddings, crops, filt.shape[:2])
    if padding is None:
        return None, "paddings and crops match neither SAME nor VALID"
    return {"conv": conv, "s2b": s2b, "b2s": nodes["b2s"], "input_ref": refs["input"], "filter_ref": refs["filter"],
            "filter_value": filt, "filter_dtype": filter_dtype, "block": block, "padding": padding,
            "leaves": [refs[k].node for k in ("s2b_block", "b2s_block", "paddings", "crops")]}, ""


def _equivalent_padding(block: np.ndarray, paddings: np.ndarray, crops: np.ndarray,
                        kernel: tuple[int, int]) -> str | None:
    """VALID or SAME when padding the input by `paddings` and cropping the output by `crops`
    around a VALID dilated conv is that padding of the dilated conv (stride 1)."""
    net = paddings - crops
    if not net.any():
        return "VALID"
    for dim in range(2):
        dilated = (kernel[dim] - 1) * int(block[dim]) + 1
        before = (dilated - 1) // 2
        if net[dim, 0] != before or net[dim, 1] != dilated - 1 - before:
            return None
    return "SAME"


def _upsample(filt: np.ndarray, block: np.ndarray) -> np.ndarray:
    rate_h, rate_w = int(block[0]), int(block[1])
    height, width = filt.shape[:2]
    out = np.zeros(((height - 1) * rate_h + 1, (width - 1) * rate_w + 1) + filt.shape[2:], dtype=filt.dtype)
    out[::rate_h, ::rate_w] = filt
    return out


def _rewrite(graph: Graph, keep: set[str], conv: Node, s2b: Node, b2s: Node, input_ref: Ref, filter_ref: Ref,
             filter_value: np.ndarray, filter_dtype: DType, block: np.ndarray, padding: str,
             leaves: list[str]) -> None:
    upsampled = make_const(graph.unique_name(f"{b2s.name}/upsampled_filter"), _upsample(filter_value, block),
                           filter_dtype)
    upsampled.meta[keys.DEVICE] = conv.meta.get(keys.DEVICE, "")
    graph.add_node(upsampled)
    attrs = {"T": conv.attrs["T"], "strides": attr(conv, "strides", (1, 1, 1, 1)), "padding": padding}
    for key in ("data_format", "use_cudnn_on_gpu"):
        if key in conv.attrs:
            attrs[key] = conv.attrs[key]
    controls = controls_of(graph, [conv.name, s2b.name])
    node = rebuild(graph, b2s.name, conv.op, attrs, [input_ref, upsampled.name], controls)
    node.meta[keys.DEVICE] = conv.meta.get(keys.DEVICE, "")
    remove_dead(graph, leaves + [filter_ref.node], keep, always=[conv.name, s2b.name])
    if filter_ref.node not in graph:  # GTT gives the new filter the old one's name
        graph.rename_node(upsampled.name, filter_ref.node)
        upsampled.outputs[0].name = filter_ref.node
