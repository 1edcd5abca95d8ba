"""Cutting a TFLite model at tensors: finding a tensor by name, making chosen tensors the
main subgraph's inputs (what only they needed goes) and outputs, and keeping the signature
defs, buffers, operator codes and subgraphs right. strip_unused_nodes and
graphtool.analysis.split share it; rename_node finds its tensor with it."""
from __future__ import annotations

from typing import Iterable

from ...formats.tflite import keys, ops, tables
from ...ir import Graph, Node, Ref, Tensor
from ..registry import PassError
from . import tflite_rewrite

# Operators kept even when nothing uses their outputs: they create or change state, or
# run subgraphs that may. (Reads such as READ_VARIABLE and HASHTABLE_FIND go when unused.)
SIDE_EFFECTS = frozenset({
    "ASSIGN_VARIABLE", "VAR_HANDLE", "CALL_ONCE", "CALL", "WHILE", "IF", "HASHTABLE", "HASHTABLE_IMPORT",
    "STABLEHLO_WHILE", "STABLEHLO_CASE", "STABLEHLO_COMPOSITE", "STABLEHLO_CUSTOM_CALL",
})

Signature = dict  # one entry of graph.meta[keys.SIGNATURE_DEFS]


# -- names ----------------------------------------------------------------------------------
def find_tensor(graph: Graph, name: str) -> Ref | None:
    """The tensor `name` names in `graph`: a node's (its first output), else the one tensor of
    that name, else `node:port`; None when nothing is. PassError when several tensors share it."""
    if name in graph and graph.node(name).outputs:
        return Ref(name, 0)
    found = [Ref(node.name, port) for node in graph for port, t in enumerate(node.outputs) if t.name == name]
    if len(found) > 1:
        raise PassError(f"{len(found)} tensors are named {name!r} ({', '.join(map(str, found[:3]))}): "
                        "name one by its operator as node:port")
    if found:
        return found[0]
    ref = Ref.parse(name)
    if ref.node in graph and 0 <= ref.port < len(graph.node(ref.node).outputs):
        return ref
    return None


def tensor_ref(graph: Graph, name: str) -> Ref:
    """find_tensor, or PassError naming what is missing."""
    ref = find_tensor(graph, name)
    if ref is None:
        raise PassError(f"no tensor named {name!r} in the main subgraph")
    return ref


def source_kind(node: Node) -> str:
    """What a tensor no operator computes is: 'an input', 'a constant', 'a variable', 'a tensor'."""
    return {ops.INPUT_OP: "an input", ops.CONST_OP: "a constant", ops.VARIABLE_OP: "a variable"}.get(
        node.op, "a tensor no operator computes")


# -- cutting --------------------------------------------------------------------------------
def cut(model: Graph, inputs: list[Ref] | None = None, outputs: list[Ref] | None = None,
        keep: Iterable[str] | None = None) -> dict[str, int]:
    """Make `outputs` the main subgraph's outputs and `inputs` its inputs, then remove what
    nothing kept needs, and the buffers, operator codes and subgraphs nothing uses any more.

    A tensor of `inputs` that an operator computes becomes an input (the same tensor: name,
    type, shape and quantization stay); the model's inputs still needed stay, after them.
    Kept in the main subgraph: what its outputs, its inputs and `keep` (operator names) need,
    and, unless `keep` is given, operators with side effects; in the others, what their
    outputs and side effects need. The main subgraph's signature def names its inputs and
    outputs as they now are (new entries are keyed by tensor name). Returns the stats."""
    signatures = model.meta.get(keys.SIGNATURE_DEFS)
    retarget = inputs is not None or outputs is not None
    if outputs is not None:
        model.outputs = list(dict.fromkeys(outputs))
    fresh = _make_inputs(model, inputs) if inputs is not None else []
    if retarget and signatures:  # old entries must not keep what they named alive
        model.meta[keys.SIGNATURE_DEFS] = [_emptied(sig) if sig["subgraph"] is model else sig for sig in signatures]
    roots = _roots(model, model, keep)
    needed = _needed(model, roots)
    for name, producer, tensor in fresh:
        if producer in needed:
            node = model.node(producer)
            raise PassError(f"{tensor.name!r} cannot become an input: its operator {producer!r} ({node.op}) "
                            "is still needed for another of its outputs")
    removed = _prune(model, needed)
    for sub in model.subgraphs:
        removed += _prune(sub, _needed(sub, _roots(model, sub, None)))
    if inputs is not None:
        _finish_inputs(model, fresh)
    if retarget and signatures:
        model.meta[keys.SIGNATURE_DEFS] = [_retargeted(model, sig) if sig["subgraph"] is model else sig
                                           for sig in signatures]
    subgraphs = _drop_unused_subgraphs(model)
    buffers, buffer_bytes = tables.compact_buffers(model)
    opcodes = tables.compact_operator_codes(model)
    return {"removed": removed, "inputs_replaced": len(fresh), "subgraphs_removed": subgraphs,
            "buffers_dropped": buffers, "bytes_dropped": buffer_bytes, "operator_codes_dropped": opcodes}


def _make_inputs(model: Graph, refs: list[Ref]) -> list[tuple[str, str, Tensor]]:
    """Give each tensor an operator computes a new input node holding it, read by its
    consumers (and by the outputs naming it); declare `refs` the inputs. Returns (input node,
    producer, tensor) for each new input."""
    refs = list(dict.fromkeys(refs))
    for ref in refs:
        node, tensor = model.node(ref.node), model.tensor(ref)
        if node.op != ops.INPUT_OP and not ops.is_operator(node) or tables.is_variable(tensor):
            kind = "a variable" if tables.is_variable(tensor) else source_kind(node)
            raise PassError(f"{tensor.name!r} is {kind}: an input must be a tensor an operator computes")
    declared, fresh = [], []
    for ref in refs:
        if not ops.is_operator(model.node(ref.node)):  # a model input already
            declared.append(ref.node)
            continue
        tensor = model.tensor(ref)
        name = model.unique_name(tensor.name or ref.node)
        model.add_node(Node(name, ops.INPUT_OP, outputs=[tensor]))
        model.replace_uses(ref, Ref(name))
        model.outputs = [Ref(name) if r == ref else r for r in model.outputs]
        declared.append(name)
        fresh.append((name, ref.node, tensor))
    model.inputs = declared
    return fresh


def _finish_inputs(model: Graph, fresh: list[tuple[str, str, Tensor]]) -> None:
    """Name each new input after its tensor (its producer, once of that name, is gone) and
    declare, after the chosen inputs, the model's inputs that are still needed."""
    renames = {name: tensor.name for name, _, tensor in fresh
               if tensor.name and tensor.name != name and tensor.name not in model}
    if renames:
        model.rename_nodes(renames)
    declared = set(model.inputs)
    model.inputs += [node.name for node in model if node.op == ops.INPUT_OP and node.name not in declared
                     and not keys.is_custom(node)]


def _roots(model: Graph, graph: Graph, keep: Iterable[str] | None) -> set[str]:
    """What must stay in `graph`: its declared inputs and outputs, the tensors signature defs
    name, and `keep` (else operators with side effects)."""
    pinned = tflite_rewrite.pinned(model, graph, intermediates=False)
    if keep is not None:
        return pinned | set(keep)
    return pinned | {n.name for n in graph if _has_effects(n)}


def _needed(graph: Graph, roots: set[str]) -> set[str]:
    """`roots` and what they read, and the producers of the intermediates those name."""
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
        roots = roots | {n.name for n in graph if any(id(t) in intermediates for t in n.outputs)}
    return needed


def _prune(graph: Graph, needed: set[str]) -> int:
    """Remove the nodes of `graph` not in `needed` (which holds what they read): each once
    nothing uses it any more (Graph.prune would walk every kept node's ancestors again)."""
    doomed = {node.name for node in graph} - needed
    ready = [name for name in doomed if not graph.is_used(name)]
    removed = 0
    while ready:
        name = ready.pop()
        producers = graph.producers(name)
        graph.remove_node(name)
        removed += 1
        ready += [p for p in producers if p in doomed and p in graph and not graph.is_used(p) and p not in ready]
    return removed


def _has_effects(node: Node) -> bool:
    return ops.is_operator(node) and (node.op in SIDE_EFFECTS or bool(keys.is_custom(node)) or not node.outputs)


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


# -- signature defs -------------------------------------------------------------------------
def _emptied(sig: Signature) -> Signature:
    return {**sig, "inputs": [], "outputs": []}


def _retargeted(model: Graph, sig: Signature) -> Signature:
    """`sig` naming the main subgraph's inputs and outputs as they are now."""
    inputs = [model.node(name).outputs[0] for name in model.inputs]
    outputs = [model.tensor(ref) for ref in model.outputs]
    return {**sig, "inputs": _entries(sig["inputs"], inputs), "outputs": _entries(sig["outputs"], outputs)}


def _entries(old: list[tuple[str, Tensor]], tensors: list[Tensor]) -> list[tuple[str, Tensor]]:
    """Signature entries for `tensors`: the old entries of those still there, in their order,
    then one per new tensor, keyed by its name (made unique among the keys)."""
    wanted = {id(t) for t in tensors}
    kept = [(key, t) for key, t in old if id(t) in wanted]
    named = {id(t) for _, t in kept}
    taken = {key for key, _ in kept}
    for tensor in dict.fromkeys(t for t in tensors if id(t) not in named):
        key, index = tensor.name or "tensor", 0
        while key in taken:
            index += 1
            key = f"{tensor.name or 'tensor'}_{index}"
        taken.add(key)
        kept.append((key, tensor))
    return kept
