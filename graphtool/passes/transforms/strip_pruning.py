"""strip_pruning: what TF-MOT's strip_pruning does to a Keras model, done to the model a
pruned Keras model was exported as (a SavedModel, or a .tflite converted from one)."""
from __future__ import annotations

from ...ir import Graph
from ..registry import Context, NoParams, PassResult, get, register
from . import _pruning

TFLITE_STEPS = ("freeze_variables", "fold_constants", "strip_unused_nodes")


@register("strip_pruning", NoParams, formats=("graphdef",), guarantee="exact")
def strip_pruning(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Remove TF-MOT's pruning wrappers from a SavedModel's graph: masked kernels become constants.

    For a SavedModel directory exported from a model pruned with prune_low_magnitude (no
    strip_pruning before export): each pruned layer assigns kernel * mask to its kernel
    variable before using it, which TensorFlow's freezing cannot handle. The reader keeps
    such variables with their values; this applies each update (kernel * mask, in
    float32 as TensorFlow's Mul) and makes every later read of the kernel a Const holding
    the masked kernel; the Mul, the mask, the assign, the control edges and NoOp groups
    that ordered it, and the variable go. Variables only read become Consts too. Refused
    (PassError) when a variable is written by anything but that update, or a read does
    not wait for it. Exact: the frozen graph computes what the pruned Keras model does at
    inference."""
    stats = _pruning.strip(graph)
    return PassResult(bool(stats["masked"] or stats["frozen"] or stats["control_dropped"]), stats)


@register("strip_pruning", NoParams, formats=("tflite",), guarantee="exact")
def strip_pruning_tflite(graph: Graph, params: NoParams, context: Context) -> PassResult:
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
    for name in TFLITE_STEPS:
        step = get(name, "tflite")
        result = step.function(graph, step.params(), context)
        stats[name] = result.stats
        changed = changed or result.changed
    return PassResult(changed, stats)
