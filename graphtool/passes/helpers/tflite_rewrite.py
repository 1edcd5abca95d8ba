"""What the TFLite rewrites share: constants, fused activations, and what must not be
removed. The model's tables (buffers, operator codes) are kept right by
graphtool.formats.tflite.model."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ...formats.tflite import keys, tables
from ...ir import CONST_OP, Graph, Ref, Tensor
from .folding import Unsupported

# ActivationFunctionType (schema): the fused activations that are a clamp to a range.
NONE, RELU, RELU_N1_TO_1, RELU6 = 0, 1, 2, 3
CLAMPS = {RELU: (0.0, None), RELU_N1_TO_1: (-1.0, 1.0), RELU6: (0.0, 6.0)}


def constant(graph: Graph, ref: Ref | None) -> Tensor | None:
    """The tensor `ref` names when a Const node holds it with data (and it is not a
    variable's initial value), else None."""
    if ref is None:
        return None
    node = graph.node(ref.node)
    if node.op != CONST_OP or keys.is_custom(node):
        return None
    tensor = node.output(ref.port)
    if tensor is None or not tensor.is_constant or tables.is_variable(tensor):
        return None
    return tensor


def activate(array: np.ndarray, code: int) -> np.ndarray:
    """Apply a fused activation that clamps (NONE, RELU, RELU_N1_TO_1, RELU6) as TFLite's
    kernels do; Unsupported for the others (TANH, SIGN_BIT: approximations in TFLite)."""
    if code == NONE:
        return array
    if code not in CLAMPS:
        raise Unsupported(f"fused activation {code}", reason="activation")
    low, high = CLAMPS[code]
    result = np.maximum(array, np.asarray(low, array.dtype))
    return result if high is None else np.minimum(result, np.asarray(high, array.dtype))


def pinned(main: Graph, graph: Graph, intermediates: bool = True) -> set[str]:
    """Nodes of subgraph `graph` (of `main`, the model's main graph) that must stay whatever
    uses them: its declared inputs and outputs, and the producers of tensors that
    signature defs or (unless not `intermediates`) operators' intermediates name (no edge
    records those uses)."""
    keep = set(graph.inputs) | {r.node for r in graph.outputs}
    named = {id(t) for t in tables.signature_tensors(main, graph)}
    for node in graph if intermediates else ():
        named |= {id(t) for t in node.meta.get(keys.INTERMEDIATES) or ()}
    for node in graph:
        if any(id(t) in named for t in node.outputs):
            keep.add(node.name)
    return keep


def remove_unused(graph: Graph, candidates: Iterable[str], keep: set[str]) -> int:
    """Remove the unused Consts among `candidates` (not `keep`). Returns how many."""
    removed = 0
    for name in dict.fromkeys(candidates):
        if name in graph and name not in keep and graph.node(name).op == CONST_OP and not graph.is_used(name):
            graph.remove_node(name)
            removed += 1
    return removed
