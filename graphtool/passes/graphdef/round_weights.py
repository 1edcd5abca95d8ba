"""round_weights: snap large float constants to a few levels so the file compresses well."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...ir import Graph
from ..helpers.graphdef_nodes import float32_consts
from ..helpers.skips import Skips
from ..registry import Context, PassError, PassResult, register


@dataclass(frozen=True)
class Params:
    num_steps: int = field(default=256, metadata={"doc": "number of levels each tensor's values are rounded to"})
    minimum_size: int = field(default=16, metadata={
        "doc": "round float32 Consts with at least this many elements (graphtool extension; GTT fixes 16)"})


@register("round_weights", Params, formats=("graphdef",), guarantee="quantization error")
def round_weights(graph: Graph, params: Params, context: Context) -> PassResult:
    """Round the values of float32 Consts to num_steps levels between their min and max.

    As the Graph Transform Tool does: [min, max] is cut into num_steps buckets of width
    (max - min) / num_steps and each value becomes its bucket's centre, so it moves by at
    most half a bucket. The Const stays float32 with its name: the file is as large, but
    compresses well. Consts under minimum_size elements are left alone (small constants
    tend to be accuracy-sensitive and gain little).

    Differences from GTT, where it misbehaves: the maximum goes into the top bucket (GTT
    puts it in an extra bucket above max, giving num_steps + 1 levels); the range is the
    tensor's true one (GTT starts its max at the smallest positive float, so an
    all-negative tensor's range reaches 0); a tensor holding a single value (GTT moves it
    off by half a bucket) or NaN/infinity is left as is. Levels are computed in double.
    """
    if params.num_steps < 1:
        raise PassError(f"round_weights: num_steps must be >= 1, got {params.num_steps}")
    if params.minimum_size < 0:
        raise PassError(f"round_weights: minimum_size must be >= 0, got {params.minimum_size}")
    rounded = 0
    skipped = Skips("round_weights", context.log)
    for node, data in float32_consts(graph):
        if data.size < params.minimum_size or data.size == 0:
            skipped(node.name, "below minimum_size")
        elif not np.isfinite(data).all():
            skipped(node.name, "non-finite")
            context.log.info("round_weights: %s holds NaN or infinity, left as is", node.name)
        elif data.min() == data.max():
            skipped(node.name, "single value")
        else:
            node.outputs[0].data = round_to_levels(data, params.num_steps)
            rounded += 1
    return PassResult(rounded > 0, {"rounded": rounded, "skipped": skipped.stats()})


def round_to_levels(data: np.ndarray, num_steps: int) -> np.ndarray:
    """Each value replaced by the centre of its bucket among num_steps equal buckets over
    [min, max] (a new read-only float32 array)."""
    low, high = float(data.min()), float(data.max())
    width = (high - low) / num_steps
    bucket = np.clip(np.floor((data.astype(np.float64) - low) / width), 0, num_steps - 1)
    result = (low + width * (bucket + 0.5)).astype(np.float32)
    result.flags.writeable = False
    return result
