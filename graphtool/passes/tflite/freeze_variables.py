"""freeze_variables for TFLite: resource variables initialised by a CALL_ONCE subgraph
become constant tensors."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...formats.tflite import keys, ops, tables
from ...ir import Graph, Node, Ref, make_const
from ..helpers import tflite_rewrite
from ..registry import Context, NoParams, PassError, PassResult, get, register

VAR_HANDLE, READ, ASSIGN, CALL_ONCE = "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"
VARIABLE_OPS = frozenset({VAR_HANDLE, READ, ASSIGN, CALL_ONCE})
Key = tuple[bytes, bytes]  # (container, shared_name): what makes two handles one variable


@dataclass
class _Access:
    """A READ_VARIABLE or ASSIGN_VARIABLE of the main subgraph, in execution order."""

    node: str
    key: Key
    value: Ref | None = None  # what an ASSIGN_VARIABLE stores


@register("freeze_variables", NoParams, formats=("tflite",), guarantee="exact")
def freeze_variables(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Turn resource variables initialised by a CALL_ONCE subgraph into constant tensors.

    VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE, CALL_ONCE and the init subgraph go. The
    converter keeps variables when experimental_enable_resource_variables is on: a CALL_ONCE
    operator runs an init subgraph that assigns each variable a constant, and the main
    subgraph reads and assigns them (a TF-MOT pruning wrapper assigns kernel * mask before
    every use). Each READ_VARIABLE is replaced by the value the variable holds at
    that point of a call: the last value assigned before it in the main subgraph, else
    the variable's settled value, a new constant. What was assigned (kernel * mask) stays
    computed from constants: fold_constants folds it (strip_pruning runs both).

    The settled value is what the variable holds after one call, computed by folding
    (fold_constants' kernels). Refused, naming the variable (PassError): a value assigned
    from the model's inputs or that does not settle (a second call would assign another
    value: the variable is state, such as a running mean, not a weight); reads before the
    first assignment that reach an output while the first call changes the variable (the
    first call would differ); variables without an initial constant, used outside the
    main subgraph and its initialisers, or read by other operators. Exact: every call of
    the frozen model computes what the original computes."""
    init_graphs = [n.attrs.get("init_subgraph_index") for n in graph if n.op == CALL_ONCE]
    _refuse_elsewhere(graph, init_graphs)
    handles = _handles(graph)
    if not handles and not init_graphs:
        return PassResult(False, {"variables": 0})
    buffers_before, codes_before = tables.used_buffers(graph), tables.used_operator_codes(graph)
    initial = _initial_values(init_graphs)
    accesses = _accesses(graph, handles)
    for access in accesses:
        if access.key not in initial:
            raise PassError(f"freeze_variables: variable {_name(access.key)!r} has no initial constant value "
                            "(no CALL_ONCE init subgraph assigns it)")
    _check_outputs_are_not_reads(graph, accesses)
    assigned = {a.key for a in accesses if a.value is not None}
    settled = {k: v for k, v in initial.items() if k in {a.key for a in accesses}}  # initial, until a call changes it
    if assigned:
        _check_independent_of_inputs(graph, accesses)
        once = _after_one_call(graph, settled)
        twice = _after_one_call(graph, once)
        for key in sorted(assigned):
            if not _identical(once[key], twice[key]):
                raise PassError(f"freeze_variables: variable {_name(key)!r} does not settle: a second call assigns "
                                "it another value (it is state, not a weight)")
        _check_first_call(graph, accesses, {k for k in assigned if not _identical(initial[k], once[k])})
        settled = once
    constants = _add_constants(graph, settled)
    _substitute(graph, constants)
    removed = _drop_subgraphs(graph, init_graphs)
    buffers, buffer_bytes = tables.compact_buffers(graph, buffers_before)
    opcodes = tables.compact_operator_codes(graph, codes_before)
    stats = {"variables": len(settled), "assigned": len(assigned),
             "reads_replaced": sum(1 for a in accesses if a.value is None),
             "subgraphs_removed": removed, "buffers_dropped": buffers, "bytes_dropped": buffer_bytes,
             "operator_codes_dropped": opcodes}
    return PassResult(True, stats)


def _key(node: Node) -> Key:
    return bytes(node.attrs.get("container") or b""), bytes(node.attrs.get("shared_name") or b"")


def _name(key: Key) -> str:
    container, shared = key
    name = shared.decode("utf-8", "replace")
    return f"{container.decode('utf-8', 'replace')}/{name}" if container else name


def _handles(graph: Graph) -> dict[str, Key]:
    return {n.name: _key(n) for n in graph if n.op == VAR_HANDLE}


def _refuse_elsewhere(graph: Graph, init_graphs: list) -> None:
    for index, sub in enumerate(graph.subgraphs, 1):
        if any(sub is g for g in init_graphs):
            continue
        used = sorted({n.op for n in sub if n.op in VARIABLE_OPS})
        if used:
            raise PassError(f"freeze_variables: subgraph {index} ({sub.name or 'unnamed'}) uses {', '.join(used)}; "
                            "only variables of the main subgraph and its CALL_ONCE initialisers can be frozen")


def _initial_values(init_graphs: list) -> dict[Key, np.ndarray]:
    """Each variable's value after the init subgraphs ran (they assign constants)."""
    values: dict[Key, np.ndarray] = {}
    for sub in init_graphs:
        if not isinstance(sub, Graph):
            raise PassError("freeze_variables: a CALL_ONCE names no subgraph")
        handles = _handles(sub)
        for node in sub:
            if not ops.is_operator(node) or node.op == VAR_HANDLE:
                continue
            if node.op != ASSIGN:
                raise PassError(f"freeze_variables: the init subgraph {sub.name!r} runs {node.op} {node.name!r}; "
                                "only assignments of constants can be frozen (try fold_constants first)")
            handle, value = _two_inputs(sub, node)
            tensor = tflite_rewrite.constant(sub, value)
            if handle.node not in handles or tensor is None:
                raise PassError(f"freeze_variables: {node.name!r} in {sub.name!r} does not assign a constant to a "
                                "variable handle")
            values[handles[handle.node]] = tensor.data
    return values


def _two_inputs(graph: Graph, node: Node) -> tuple[Ref, Ref]:
    refs = graph.inputs_of(node.name)
    if len(refs) != 2 or None in refs:
        raise PassError(f"freeze_variables: {node.op} {node.name!r} has {len(refs)} inputs, not 2")
    return refs[0], refs[1]


def _accesses(graph: Graph, handles: dict[str, Key]) -> list[_Access]:
    """The main subgraph's reads and assignments, in execution order; refuses handles used
    by anything else."""
    accesses = []
    for node in graph:
        if node.op == READ or node.op == ASSIGN:
            handle = graph.inputs_of(node.name)[0] if graph.inputs_of(node.name) else None
            if handle is None or handle.node not in handles:
                raise PassError(f"freeze_variables: {node.op} {node.name!r} does not take a VAR_HANDLE")
            value = _two_inputs(graph, node)[1] if node.op == ASSIGN else None
            accesses.append(_Access(node.name, handles[handle.node], value))
    for handle in handles:
        for consumer, _ in graph.consumers(handle):
            if graph.node(consumer).op not in (READ, ASSIGN):
                raise PassError(f"freeze_variables: variable {_name(handles[handle])!r} is used by "
                                f"{graph.node(consumer).op} {consumer!r}")
    return accesses


def _check_outputs_are_not_reads(graph: Graph, accesses: list[_Access]) -> None:
    pinned = tflite_rewrite.pinned(graph, graph)
    for access in accesses:
        if access.value is None and access.node in pinned:
            raise PassError(f"freeze_variables: {access.node!r}, a read of {_name(access.key)!r}, is a model output")


def _check_independent_of_inputs(graph: Graph, accesses: list[_Access]) -> None:
    for access in accesses:
        if access.value is None:
            continue
        sources = graph.ancestors(access.value.node) | {access.value.node}
        fed = sorted(set(graph.inputs) & sources)
        if fed:
            raise PassError(f"freeze_variables: the value {access.node!r} assigns to {_name(access.key)!r} depends on "
                            f"the model input {fed[0]!r} (the variable is state, not a weight)")


def _check_first_call(graph: Graph, accesses: list[_Access], changed: set[Key]) -> None:
    """A read before the variable's first assignment sees the initial value on the first
    call and the settled one after: refused when that reaches an output."""
    pinned = tflite_rewrite.pinned(graph, graph)
    assigned_yet: set[Key] = set()
    for access in accesses:
        if access.value is not None:
            assigned_yet.add(access.key)
        elif access.key in changed and access.key not in assigned_yet:
            reached = sorted(graph.descendants(access.node) & pinned)
            if reached:
                raise PassError(f"freeze_variables: {access.node!r} reads {_name(access.key)!r} before the first call "
                                f"changes it, and {reached[0]!r} depends on it (the first call would differ)")


def _after_one_call(graph: Graph, state: dict[Key, np.ndarray]) -> dict[Key, np.ndarray]:
    """What the variables hold after one call starting from `state`, by folding a copy."""
    scratch = graph.copy()
    assigned = _substitute(scratch, _add_constants(scratch, state))
    scratch.outputs = scratch.outputs + list(assigned.values())
    fold = get("fold_constants", "tflite")
    fold.function(scratch, fold.params(), Context())
    after = dict(state)
    for key, ref in assigned.items():
        tensor = tflite_rewrite.constant(scratch, ref)
        if tensor is None:
            node = scratch.node(ref.node)
            raise PassError(f"freeze_variables: cannot compute the value assigned to {_name(key)!r}: {node.op} "
                            f"{node.name!r} does not fold to a constant")
        after[key] = np.asarray(tensor.data)
    return after


def _add_constants(graph: Graph, values: dict[Key, np.ndarray]) -> dict[Key, Ref]:
    refs = {}
    for key, value in values.items():
        node = make_const(graph.unique_name(_name(key) or "variable"), np.asarray(value))
        graph.add_node(node)
        refs[key] = Ref(node.name, 0)
    return refs


def _substitute(graph: Graph, values: dict[Key, Ref]) -> dict[Key, Ref]:
    """Make each read use the variable's value at that point (the last assignment before
    it, else `values`), then remove the variable operators and CALL_ONCE. Returns the
    last value assigned to each variable."""
    current = dict(values)
    assigned: dict[Key, Ref] = {}
    handles = _handles(graph)
    for access in _accesses(graph, handles):
        if access.value is None:
            graph.replace_uses(Ref(access.node, 0), current[access.key])
        else:
            value = _two_inputs(graph, graph.node(access.node))[1]  # after earlier reads were replaced
            current[access.key] = assigned[access.key] = value
    for op in (ASSIGN, READ, VAR_HANDLE, CALL_ONCE):
        for name in [n.name for n in graph if n.op == op]:
            graph.remove_node(name)
    return assigned


def _drop_subgraphs(graph: Graph, init_graphs: list) -> int:
    """Remove the init subgraphs nothing refers to any more."""
    referenced = {id(v) for g in tables.subgraphs(graph) for n in g for v in tables.subgraphs_in(n.attrs)}
    referenced |= {id(sig["subgraph"]) for sig in graph.meta.get(keys.SIGNATURE_DEFS) or []}
    gone = {id(g) for g in init_graphs if id(g) not in referenced}
    before = len(graph.subgraphs)
    graph.subgraphs = [g for g in graph.subgraphs if id(g) not in gone]
    return before - len(graph.subgraphs)


def _identical(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
