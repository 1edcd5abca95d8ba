"""The model-level tables of a TFLite Graph — buffers, operator codes, tensor tables,
signature defs — and the index bookkeeping passes need to keep them right.

The reader keeps each tensor's table as read in tensor.meta[keys.TABLE], and the buffer
and operator-code lists in graph.meta; Graph copies share these records, so nothing here
changes them in place: a change is a new dict or list.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...ir import Graph, Node, Tensor
from . import keys, ops


def subgraphs(graph: Graph) -> list[Graph]:
    """The main subgraph and the others (control-flow bodies, signatures' subgraphs)."""
    return [graph, *graph.subgraphs]


def all_tensors(graph: Graph) -> list[Tensor]:
    return [t for g in subgraphs(graph) for node in g for t in node.outputs]


def signature_tensors(model: Graph, graph: Graph) -> list[Tensor]:
    """Tensors the model's signature defs name in subgraph `graph`."""
    found: list[Tensor] = []
    for sig in model.meta.get(keys.SIGNATURE_DEFS) or []:
        if sig["subgraph"] is graph:
            found += [t for _, t in sig["inputs"]] + [t for _, t in sig["outputs"]]
    return found


def subgraphs_in(attrs: dict) -> list[Graph]:
    """The subgraphs an operator's options name (IF/WHILE/CALL_ONCE/... indices become Graphs)."""
    found = []
    for value in attrs.values():
        if isinstance(value, Graph):
            found.append(value)
        elif isinstance(value, tuple):
            found += [v for v in value if isinstance(v, Graph)]
        elif isinstance(value, dict):
            found += subgraphs_in(value)
    return found


# -- tensors and buffers ---------------------------------------------------------------------
def retable(tensor: Tensor, **changes: Any) -> None:
    """Change fields of the tensor's table as read (a new dict: the old one is shared)."""
    tensor.meta[keys.TABLE] = {**keys.table_of(tensor), **changes}


def rename(tensor: Tensor, name: str) -> None:
    """Rename a tensor, in its table too: a table that said what the tensor is still does,
    so the writer keeps the rest of it (only the name changes in the file)."""
    described = keys.described_as_read(tensor)
    tensor.name = name
    retable(tensor, name=name.encode("utf-8", "surrogateescape"))
    if described:
        keys.mark_described(tensor)


def buffer_of(tensor: Tensor) -> int:
    """The buffer index the tensor was read with (0, the empty buffer, for new tensors)."""
    return int(keys.table_of(tensor).get("buffer", 0))


def is_variable(tensor: Tensor) -> bool:
    """True for a variable tensor (its data, if any, is the variable's initial value)."""
    return bool(keys.table_of(tensor).get("is_variable"))


def stored_data(buffer: dict) -> np.ndarray | None:
    """A buffer's data field as uint8, else the data stored after the flatbuffer, else None."""
    data = buffer.get("data")
    return data if data is not None else buffer.get(keys.EXTERNAL_DATA)


def buffer_bytes(buffer: dict) -> np.ndarray | None:
    """A buffer's data as uint8 (inline or stored after the flatbuffer); None when empty."""
    data = buffer.get("data")
    if data is None or not len(data):
        data = buffer.get(keys.EXTERNAL_DATA)
    return data if data is not None and len(data) else None


def metadata_buffers(graph: Graph) -> set[int]:
    """Buffers that hold model metadata (named entries and the deprecated index list)."""
    header = graph.meta.get(keys.HEADER) or {}
    used = {int(entry.get("buffer", 0)) for entry in header.get("metadata") or []}
    listed = header.get("metadata_buffer")
    if listed is not None:
        used |= {int(b) for b in listed}
    return used


def used_buffers(graph: Graph) -> set[int]:
    """Buffer indices a tensor or a metadata entry uses, and 0 (the empty sentinel)."""
    return {0} | metadata_buffers(graph) | {buffer_of(t) for t in all_tensors(graph)}


def compact_buffers(graph: Graph, candidates: set[int] | None = None) -> tuple[int, int]:
    """Drop the buffers no tensor and no metadata entry uses (only those among
    `candidates`, when given: a pass drops what it left unused, not what it found so) and
    renumber the rest in order; buffer 0, the empty sentinel, stays. Returns (buffers
    dropped, data bytes dropped)."""
    buffers = graph.meta.get(keys.BUFFERS)
    if not buffers:
        return 0, 0
    used = used_buffers(graph)
    unused = {i for i in range(len(buffers)) if i not in used and (candidates is None or i in candidates)}
    if not unused:
        return 0, 0
    order = [i for i in range(len(buffers)) if i not in unused]
    mapping = {old: new for new, old in enumerate(order)}
    graph.meta[keys.BUFFERS] = [buffers[i] for i in order]
    for tensor in all_tensors(graph):
        old = buffer_of(tensor)
        if old in mapping and mapping[old] != old:
            retable(tensor, buffer=mapping[old])
    header = graph.meta.get(keys.HEADER)
    if header:
        header = dict(header)
        if header.get("metadata") is not None:
            # an index that named no buffer when read (keys.PROBLEMS) names none still
            header["metadata"] = [{**e, "buffer": mapping.get(int(e.get("buffer", 0)), int(e.get("buffer", 0)))}
                                  for e in header["metadata"]]
        if header.get("metadata_buffer") is not None:
            header["metadata_buffer"] = np.array([mapping.get(int(b), int(b)) for b in header["metadata_buffer"]],
                                                 np.int32)
        graph.meta[keys.HEADER] = header
    sizes = [buffer_bytes(buffers[i]) for i in unused]
    return len(unused), sum(0 if raw is None else int(raw.size) for raw in sizes)


# -- operator codes ----------------------------------------------------------------------------
def code_for(codes: list[dict], node: Node) -> int | None:
    """The operator code the writer gives `node`: the one it was read with while that still
    matches its op and version, else the first that does, else None (the writer appends one)."""
    version = keys.op_version(node)

    def matches(code: dict) -> bool:
        return ops.op_name(code) == node.op and int(code.get("version", 1)) == version

    index = node.meta.get(keys.OPCODE_INDEX)
    if index is not None and 0 <= index < len(codes) and matches(codes[index]):
        return index
    return next((i for i, code in enumerate(codes) if matches(code)), None)


def used_operator_codes(graph: Graph) -> set[int]:
    """Indices of the operator codes the writer would give the operators."""
    codes = graph.meta.get(keys.OPERATOR_CODES) or []
    chosen = {code_for(codes, node) for g in subgraphs(graph) for node in g if ops.is_operator(node)}
    return {i for i in chosen if i is not None}


def compact_operator_codes(graph: Graph, candidates: set[int] | None = None) -> int:
    """Drop the operator codes no operator uses (only those among `candidates`, when
    given) and renumber the rest in order, so each operator keeps its code. Returns how
    many were dropped."""
    codes = graph.meta.get(keys.OPERATOR_CODES)
    if not codes:
        return 0
    operators = [node for g in subgraphs(graph) for node in g if ops.is_operator(node)]
    chosen = {id(node): code_for(codes, node) for node in operators}
    used = set(chosen.values())
    unused = {i for i in range(len(codes)) if i not in used and (candidates is None or i in candidates)}
    if not unused:
        return 0
    order = [i for i in range(len(codes)) if i not in unused]
    mapping = {old: new for new, old in enumerate(order)}
    graph.meta[keys.OPERATOR_CODES] = [codes[i] for i in order]
    for node in operators:
        index = chosen[id(node)]
        if index is None:
            node.meta.pop(keys.OPCODE_INDEX, None)
        else:
            node.meta[keys.OPCODE_INDEX] = mapping[index]
    return len(unused)


def operator_io(graph: Graph, name: str) -> tuple:
    """What an operator reads and writes in the IR, by name. The reader keeps it for an
    operator whose tensor indices name tensors the subgraph lacks (keys.RAW_INDICES); while it
    is still the same, the writer writes those indices as read."""
    return (tuple(None if r is None else str(r) for r in graph.inputs_of(name)),
            tuple(t.name for t in graph.node(name).outputs))
