"""strip_pruning (TFLite): what TF-MOT's strip_pruning does to a Keras model, done to the
.tflite a pruned Keras model was converted to."""
from __future__ import annotations

from ...ir import Graph
from ..registry import Context, NoParams, PassResult, get, register

STEPS = ("freeze_variables", "fold_constants", "strip_unused_nodes")


@register("strip_pruning", NoParams, formats=("tflite",), guarantee="exact")
def strip_pruning(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Remove TF-MOT's pruning from a converted model: freeze_variables, fold_constants, strip_unused_nodes.

    A pruned Keras model converted with resource variables keeps its kernels as variables
    (CALL_ONCE init subgraph, VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE) and multiplies
    them by their masks at every invoke. freeze_variables makes them constants, fold_constants
    folds the mask products (and the weight TRANSPOSEs), strip_unused_nodes drops what is
    left unused: one subgraph with plain constant weights. Batch norms the converter could
    not fold into variable kernels stay as MUL/ADD: run fold_batch_norms after it. Exact up
    to fold_constants' float rounding (a product by 0 or 1 is exact)."""
    stats = {}
    changed = False
    for name in STEPS:
        step = get(name, "tflite")
        result = step.function(graph, step.params(), context)
        stats[name] = result.stats
        changed = changed or result.changed
    return PassResult(changed, stats)
