"""What the TFLite transforms share: every subgraph of a model, constants, fused
activations, what must not be removed, and the model-level tables (buffers, operator
codes) the writer starts from.

The reader keeps each tensor's table as read in tensor.meta["tflite.table"], and the
buffer and operator-code lists in graph.meta; Graph copies share these records, so they
are never changed in place here: a change is a new dict or list.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ...formats.tflite import ops
from ...ir import CONST_OP, Graph, Node, Ref, Tensor
from .folding import Unsupported

# ActivationFunctionType (schema): the fused activations that are a clamp to a range.
NONE, RELU, RELU_N1_TO_1, RELU6 = 0, 1, 2, 3
CLAMPS = {RELU: (0.0, None), RELU_N1_TO_1: (-1.0, 1.0), RELU6: (0.0, 6.0)}

# The keys of an operator's node.meta that a source node (Const) does not have.
OPERATOR_META = ("version", "custom", "tflite.opcode_index", "tflite.operator", "tflite.options_type",
                 "tflite.options_2_type", "intermediates", "tflite.large_custom_options")


def subgraphs(graph: Graph) -> list[Graph]:
    """The main subgraph and the others (control-flow bodies, signatures' subgraphs)."""
    return [graph, *graph.subgraphs]


def is_operator(node: Node) -> bool:
    return ops.is_operator(node)


def constant(graph: Graph, ref: Ref | None) -> Tensor | None:
    """The tensor `ref` names when a Const node holds it with data (and it is not a
    variable's initial value), else None."""
    if ref is None:
        return None
    node = graph.node(ref.node)
    if node.op != CONST_OP or node.meta.get("custom"):
        return None
    tensor = node.output(ref.port)
    if tensor is None or not tensor.is_constant or tensor.meta.get("tflite.table", {}).get("is_variable"):
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


def pinned(model: Graph, graph: Graph, intermediates: bool = True) -> set[str]:
    """Nodes of subgraph `graph` (of `model`, the main graph) that must stay whatever
    uses them: its declared inputs and outputs, and the producers of tensors that
    signature defs or (unless not `intermediates`) operators' intermediates name (no edge
    records those uses)."""
    keep = set(graph.inputs) | {r.node for r in graph.outputs}
    named = {id(t) for t in signature_tensors(model, graph)}
    for node in graph if intermediates else ():
        named |= {id(t) for t in node.meta.get("intermediates") or ()}
    for node in graph:
        if any(id(t) in named for t in node.outputs):
            keep.add(node.name)
    return keep


def signature_tensors(model: Graph, graph: Graph) -> list[Tensor]:
    """Tensors the model's signature defs name in subgraph `graph`."""
    found: list[Tensor] = []
    for sig in model.meta.get("signature_defs") or []:
        if sig["subgraph"] is graph:
            found += [t for _, t in sig["inputs"]] + [t for _, t in sig["outputs"]]
    return found


def remove_unused(graph: Graph, candidates: Iterable[str], keep: set[str]) -> int:
    """Remove the unused Consts among `candidates` (not `keep`). Returns how many."""
    removed = 0
    for name in dict.fromkeys(candidates):
        if name in graph and name not in keep and graph.node(name).op == CONST_OP and not graph.is_used(name):
            graph.remove_node(name)
            removed += 1
    return removed


def retable(tensor: Tensor, **changes: Any) -> None:
    """Change fields of the tensor's table as read (a new dict: the old one is shared)."""
    tensor.meta["tflite.table"] = {**tensor.meta.get("tflite.table", {}), **changes}


def buffer_of(tensor: Tensor) -> int:
    """The buffer index the tensor was read with (0, the empty buffer, for new tensors)."""
    return int(tensor.meta.get("tflite.table", {}).get("buffer", 0))


def buffer_bytes(buffer: dict) -> np.ndarray | None:
    """A buffer's data as uint8 (inline or stored after the flatbuffer), or None."""
    data = buffer.get("data")
    if data is None or not len(data):
        data = buffer.get("graphtool.external")
    return data if data is not None and len(data) else None


def metadata_buffers(graph: Graph) -> set[int]:
    """Buffers that hold model metadata (named entries and the deprecated index list)."""
    header = graph.meta.get("tflite.header") or {}
    used = {int(entry.get("buffer", 0)) for entry in header.get("metadata") or []}
    listed = header.get("metadata_buffer")
    if listed is not None:
        used |= {int(b) for b in listed}
    return used


def all_tensors(graph: Graph) -> list[Tensor]:
    return [t for g in subgraphs(graph) for node in g for t in node.outputs]


def used_buffers(graph: Graph) -> set[int]:
    """Buffer indices a tensor or a metadata entry uses, and 0 (the empty sentinel)."""
    return {0} | metadata_buffers(graph) | {buffer_of(t) for t in all_tensors(graph)}


def compact_buffers(graph: Graph, candidates: set[int] | None = None) -> tuple[int, int]:
    """Drop the buffers no tensor and no metadata entry uses (only those among
    `candidates`, when given: a pass drops what it left unused, not what it found so) and
    renumber the rest in order; buffer 0, the empty sentinel, stays. Returns (buffers
    dropped, data bytes dropped)."""
    buffers = graph.meta.get("tflite.buffers")
    if not buffers:
        return 0, 0
    used = used_buffers(graph)
    unused = {i for i in range(len(buffers)) if i not in used and (candidates is None or i in candidates)}
    if not unused:
        return 0, 0
    order = [i for i in range(len(buffers)) if i not in unused]
    mapping = {old: new for new, old in enumerate(order)}
    graph.meta["tflite.buffers"] = [buffers[i] for i in order]
    for tensor in all_tensors(graph):
        old = buffer_of(tensor)
        if old in mapping and mapping[old] != old:
            retable(tensor, buffer=mapping[old])
    header = graph.meta.get("tflite.header")
    if header:
        header = dict(header)
        if header.get("metadata") is not None:
            header["metadata"] = [{**e, "buffer": mapping[int(e.get("buffer", 0))]} for e in header["metadata"]]
        if header.get("metadata_buffer") is not None:
            header["metadata_buffer"] = np.array([mapping[int(b)] for b in header["metadata_buffer"]], np.int32)
        graph.meta["tflite.header"] = header
    sizes = [buffer_bytes(buffers[i]) for i in unused]
    return len(unused), sum(0 if raw is None else int(raw.size) for raw in sizes)


def used_operator_codes(graph: Graph) -> set[int]:
    """Indices of the operator codes the writer would give the operators."""
    codes = graph.meta.get("tflite.operator_codes") or []
    chosen = {_code_for(codes, node) for g in subgraphs(graph) for node in g if is_operator(node)}
    return {i for i in chosen if i is not None}


def compact_operator_codes(graph: Graph, candidates: set[int] | None = None) -> int:
    """Drop the operator codes no operator uses (only those among `candidates`, when
    given) and renumber the rest in order; the writer picks a node's code by
    node.meta["tflite.opcode_index"] when it still matches op and version. Returns how many
    were dropped."""
    codes = graph.meta.get("tflite.operator_codes")
    if not codes:
        return 0
    operators = [node for g in subgraphs(graph) for node in g if is_operator(node)]
    chosen = {id(node): _code_for(codes, node) for node in operators}
    used = set(chosen.values())
    unused = {i for i in range(len(codes)) if i not in used and (candidates is None or i in candidates)}
    if not unused:
        return 0
    order = [i for i in range(len(codes)) if i not in unused]
    mapping = {old: new for new, old in enumerate(order)}
    graph.meta["tflite.operator_codes"] = [codes[i] for i in order]
    for node in operators:
        index = chosen[id(node)]
        if index is None:
            node.meta.pop("tflite.opcode_index", None)
        else:
            node.meta["tflite.opcode_index"] = mapping[index]
    return len(unused)


def _code_for(codes: list[dict], node: Node) -> int | None:
    """The operator code the writer would give `node`: its own when it matches, else the
    first that does, else None (the writer appends one)."""
    version = int(node.meta.get("version", 1))

    def matches(code: dict) -> bool:
        return ops.op_name(code) == node.op and int(code.get("version", 1)) == version

    index = node.meta.get("tflite.opcode_index")
    if index is not None and 0 <= index < len(codes) and matches(codes[index]):
        return index
    return next((i for i, code in enumerate(codes) if matches(code)), None)


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
