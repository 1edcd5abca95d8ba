"""strip_pruning (GraphDef): on a GraphDef read from a SavedModel, apply TF-MOT's mask updates to the
variables the SavedModel reader kept, freeze them, and remove the pruning machinery.

A prune_low_magnitude layer's inference call runs

    AssignVariableOp(kernel, Mul(ReadVariableOp(kernel), mask))
    ReadVariableOp(kernel) ^AssignVariableOp   -> the layer's Conv2D / MatMul

(the mask is a variable nothing writes, so the reader froze it). Here the masked kernel,
kernel * mask in float32 as TensorFlow's Mul computes it, becomes the Const every read
after the update returns; the update (Mul, the read it multiplies, the mask, the assign)
and the control edges and NoOp groups that only ordered it go.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...formats import savedmodel
from ...ir import Graph
from ...pattern import constant_value
from ..registry import Context, NoParams, PassError, PassResult, register

ASSIGN_OP = "AssignVariableOp"


@dataclass
class MaskUpdate:
    """One variable's kernel * mask update, found before anything is rewritten."""

    handle: str
    variable: str
    assign: str
    multiply: str
    update_read: str  # the read the Mul multiplies
    mask_chain: list[str]  # the mask operand of the Mul: Identity nodes down to the Const
    reads: list[str]  # the reads after the update
    masked: np.ndarray


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
    stats = strip(graph)
    return PassResult(bool(stats["masked"] or stats["frozen"] or stats["control_dropped"]), stats)


def strip(graph: Graph) -> dict:
    """Apply and remove every mask update; freeze every variable. Returns stats."""
    table = graph.meta.get(savedmodel.VARIABLES) or {}
    unknown = [n.name for n in graph if n.op == savedmodel.HANDLE_OP and n.name not in table]
    if unknown:
        raise PassError(f"strip_pruning: variable {unknown[0]!r} has no value here (read from a GraphDef file?); "
                        "load the SavedModel directory instead")
    updates = []
    read_only = []
    for handle, variable in table.items():
        reads, others, _ = savedmodel.handle_uses(graph, handle)
        if not others:
            read_only.append(handle)
        else:
            updates.append(_mask_update(graph, handle, variable, reads, others))
    zeros = {}
    for update in updates:
        _apply(graph, update)
        zeros[update.variable] = float(1.0 - np.count_nonzero(update.masked) / max(update.masked.size, 1))
    for handle in read_only:
        savedmodel.freeze_if_read_only(graph, handle)
    control = savedmodel.drop_dead_control(graph)
    return {"masked": len(updates), "frozen": len(read_only), "control_dropped": control,
            "zeros": {k: round(v, 4) for k, v in sorted(zeros.items())}}


def _mask_update(graph: Graph, handle: str, variable: savedmodel.VariableValue, reads: list[str],
                 others: list[str]) -> MaskUpdate:
    """Check that the variable's only write is TF-MOT's kernel * mask update and find its parts."""
    name = variable.name
    assigns = [o for o in others if graph.node(o).op == ASSIGN_OP]
    foreign = [o for o in others if o not in assigns]
    if foreign:
        node = graph.node(foreign[0])
        raise PassError(f"strip_pruning: variable {name!r} is used by {node.op} {node.name!r}, not by a "
                        "pruning mask update; cannot freeze it")
    if len(assigns) != 1:
        raise PassError(f"strip_pruning: variable {name!r} is assigned {len(assigns)} times; a pruning "
                        "wrapper assigns its kernel once per call")
    assign = assigns[0]
    value_ref = graph.inputs_of(assign)[1]
    multiply = graph.node(value_ref.node)
    operands = graph.inputs_of(multiply.name)
    if multiply.op != "Mul" or len(operands) != 2:
        raise PassError(f"strip_pruning: {assign!r} assigns {name!r} the output of {multiply.op} "
                        f"{multiply.name!r}, not kernel * mask")
    update_read = next((r.node for r in operands if r.node in reads), None)
    mask_ref = next((r for r in operands if r.node != update_read), None)
    mask = constant_value(graph, mask_ref) if update_read is not None and mask_ref is not None else None
    if mask is None:
        raise PassError(f"strip_pruning: {multiply.name!r} does not multiply {name!r} by a constant mask")
    mask_node, mask_value = mask
    if not np.all((mask_value == 0) | (mask_value == 1)):
        raise PassError(f"strip_pruning: the mask of {name!r} ({mask_node.name!r}) holds values other than 0 and 1")
    if np.broadcast_shapes(mask_value.shape, variable.value.shape) != variable.value.shape:
        raise PassError(f"strip_pruning: mask {mask_value.shape} does not fit {name!r} {variable.value.shape}")
    for node, only_user in ((update_read, multiply.name), (multiply.name, assign)):
        users = {c for c, _ in graph.consumers(node)}
        if users != {only_user}:
            raise PassError(f"strip_pruning: {node!r} of the mask update of {name!r} is also used by "
                            f"{', '.join(sorted(users - {only_user}))}")
    later = [r for r in reads if r != update_read]
    for read in later:
        if assign not in graph.ancestors(read):
            raise PassError(f"strip_pruning: {read!r} reads {name!r} without waiting for its mask update "
                            f"{assign!r}")
    masked = np.multiply(variable.value, mask_value.astype(variable.value.dtype)).astype(variable.value.dtype)
    chain = [mask_ref.node]
    while chain[-1] != mask_node.name:
        chain.append(graph.inputs_of(chain[-1])[0].node)
    return MaskUpdate(handle, name, assign, multiply.name, update_read, chain, later, masked)


def _apply(graph: Graph, update: MaskUpdate) -> None:
    for read in update.reads:
        savedmodel.become_const(graph, read, update.masked)
    for name in (update.assign, update.multiply, update.update_read):
        _remove_with_control_edges(graph, name)
    for name in update.mask_chain:
        if graph.consumers(name):
            break
        _remove_with_control_edges(graph, name)
    savedmodel.remove_handle(graph, update.handle)


def _remove_with_control_edges(graph: Graph, name: str) -> None:
    """Remove a node of the update; what waited for it no longer needs to (the reads after
    it now hold the updated value)."""
    for consumer in graph.control_consumers(name):
        graph.remove_control_input(consumer, name)
    graph.remove_node(name)
