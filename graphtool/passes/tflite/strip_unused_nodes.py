"""strip_unused_nodes for TFLite: drop what no output needs, then the buffers, operator
codes and subgraphs nothing uses any more."""
from __future__ import annotations

from ...formats.tflite import keys, ops, tables
from ...ir import Graph, Node, Ref
from ..helpers import tflite_rewrite
from ..registry import Context, NoParams, PassError, PassResult, register

# Operators kept even when nothing uses their outputs: they create or change state, or
# run subgraphs that may. (Reads such as READ_VARIABLE and HASHTABLE_FIND go when unused.)
SIDE_EFFECTS = frozenset({
    "ASSIGN_VARIABLE", "VAR_HANDLE", "CALL_ONCE", "CALL", "WHILE", "IF", "HASHTABLE", "HASHTABLE_IMPORT",
    "STABLEHLO_WHILE", "STABLEHLO_CASE", "STABLEHLO_COMPOSITE", "STABLEHLO_CUSTOM_CALL",
})


@register("strip_unused_nodes", NoParams, formats=("tflite",), guarantee="exact")
def strip_unused_nodes(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Remove what no output needs, then the unused buffers, operator codes and subgraphs.

    Operators and tensors no subgraph output needs go. Kept in each subgraph: its inputs
    (a subgraph's inputs are its calling convention), what its outputs need, and operators
    with side effects or unknown semantics (variables, CALL_ONCE, control flow, hash
    tables, custom ops, operators without outputs) with what they need. --outputs (main
    subgraph node names, `name:port` for other outputs) makes those the main subgraph's
    outputs, and signature entries of other outputs go. Buffer 0 (the empty one) and
    metadata buffers stay; the rest are renumbered in order. A subgraph goes when no kept
    operator and no signature refers to it. Exact: what stays is not changed."""
    if context.outputs:
        _set_outputs(graph, context.outputs)
    for name in context.inputs:
        if name not in graph.inputs and Ref.parse(name).node not in graph.inputs:
            raise PassError(f"strip_unused_nodes: {name!r} is not an input of the model; TFLite inputs "
                            "cannot be moved")
    removed = 0
    for sub in tables.subgraphs(graph):
        removed += len(_prune(graph, sub))
    subgraphs = _drop_unused_subgraphs(graph)
    buffers, buffer_bytes = tables.compact_buffers(graph)
    opcodes = tables.compact_operator_codes(graph)
    stats = {"removed": removed, "subgraphs_removed": subgraphs, "buffers_dropped": buffers,
             "bytes_dropped": buffer_bytes, "operator_codes_dropped": opcodes}
    return PassResult(bool(removed or subgraphs or buffers or opcodes), stats)


def _set_outputs(graph: Graph, names: list[str]) -> None:
    refs = [Ref(n, 0) if n in graph else Ref.parse(n) for n in names]  # TFLite names often hold ":"
    for ref in refs:
        if ref.node not in graph or ref.port >= len(graph.node(ref.node).outputs):
            raise PassError(f"strip_unused_nodes: no output {ref} in the main subgraph")
    graph.outputs = refs
    kept = {id(graph.node(r.node).outputs[r.port]) for r in refs}
    signatures = graph.meta.get(keys.SIGNATURE_DEFS)
    if signatures:
        graph.meta[keys.SIGNATURE_DEFS] = [
            {**sig, "outputs": [(n, t) for n, t in sig["outputs"] if id(t) in kept]} if sig["subgraph"] is graph
            else sig for sig in signatures]


def _prune(model: Graph, graph: Graph) -> list[str]:
    """Remove what the kept nodes do not need; returns the removed names."""
    roots = tflite_rewrite.pinned(model, graph, intermediates=False) | {n.name for n in graph if _has_effects(n)}
    needed: set[str] = set()
    while roots - needed:
        stack = list(roots - needed)
        needed |= set(stack)
        while stack:
            for producer in graph.producers(stack.pop()):
                if producer not in needed:
                    needed.add(producer)
                    stack.append(producer)
        intermediates = {id(t) for name in needed for t in graph.node(name).meta.get(keys.INTERMEDIATES) or ()}
        roots |= {n.name for n in graph if any(id(t) in intermediates for t in n.outputs)}
    if len(needed) == len(graph):
        return []
    return graph.prune(keep=needed)


def _has_effects(node: Node) -> bool:
    return ops.is_operator(node) and (node.op in SIDE_EFFECTS or bool(keys.is_custom(node))
                                          or not node.outputs)


def _drop_unused_subgraphs(graph: Graph) -> int:
    """Drop subgraphs that neither the main subgraph, a signature, nor (in turn) an
    operator of a kept subgraph refers to."""
    kept = [graph] + [sig["subgraph"] for sig in graph.meta.get(keys.SIGNATURE_DEFS) or []]
    seen: set[int] = set()
    while kept:
        sub = kept.pop()
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        for node in sub:
            kept += tables.subgraphs_in(node.attrs)
    before = len(graph.subgraphs)
    if all(id(sub) in seen for sub in graph.subgraphs):
        return 0
    graph.subgraphs = [sub for sub in graph.subgraphs if id(sub) in seen]
    return before - len(graph.subgraphs)
