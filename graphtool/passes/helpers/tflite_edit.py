"""What TFLite model surgery shares (set_io_types, remove_nodes, decompose_ops): adding and
retyping operators, bypassing one, and keeping the model's interface right while doing so —
subgraph inputs and outputs, the signature defs that name their tensors, and the name a
model input or output is known by."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...formats.tflite import keys, tables
from ...ir import CONST_OP, INPUT_OP, Graph, Node, Quantization, Ref, Tensor, make_const


def entry_graphs(model: Graph) -> list[Graph]:
    """The subgraphs callers run directly: the main one and each signature's (their inputs and
    outputs are the model's interface; other subgraphs are bodies operators call)."""
    found = [model]
    for sig in model.meta.get(keys.SIGNATURE_DEFS) or []:
        if all(sig["subgraph"] is not g for g in found):
            found.append(sig["subgraph"])
    return found


def signature_keys(model: Graph, graph: Graph, tensor: Tensor) -> list[str]:
    """The signature input and output keys that name `tensor` of subgraph `graph`."""
    return [key for sig in model.meta.get(keys.SIGNATURE_DEFS) or [] if sig["subgraph"] is graph
            for key, named in sig["inputs"] + sig["outputs"] if named is tensor]


def retarget_signatures(model: Graph, old: Tensor, new: Tensor) -> None:
    """Signature entries that name `old` name `new` instead (new records: the old ones are
    shared with copies of the graph)."""
    signatures = model.meta.get(keys.SIGNATURE_DEFS)
    if not signatures:
        return

    def swap(entries: list) -> list:
        return [(key, new if tensor is old else tensor) for key, tensor in entries]

    model.meta[keys.SIGNATURE_DEFS] = [{**sig, "inputs": swap(sig["inputs"]), "outputs": swap(sig["outputs"])}
                                       for sig in signatures]


def per_tensor(tensor: Tensor) -> tuple[float, int] | None:
    """(scale, zero point) of a tensor quantized with one scale; None otherwise."""
    q = tensor.quantization
    if q is None or q.scale.size != 1 or q.zero_point.size != 1:
        return None
    return float(q.scale.reshape(-1)[0]), int(q.zero_point.reshape(-1)[0])


def same_quantization(a: Quantization | None, b: Quantization | None) -> bool:
    if a is None or b is None:
        return a is b
    return (np.array_equal(a.scale, b.scale) and np.array_equal(a.zero_point, b.zero_point)
            and (a.axis or 0) == (b.axis or 0))


# -- operators ------------------------------------------------------------------------------------

def add_operator(graph: Graph, op: str, inputs: list[Ref], output: Tensor, options: str | None = None,
                 attrs: dict[str, Any] | None = None) -> Node:
    """Append a builtin operator (version 1, raised later as op_version.cc says) computing
    `output`, named after it."""
    meta: dict[str, Any] = {keys.VERSION: 1}
    if options is not None:
        meta[keys.OPTIONS_TYPE] = options
    node = Node(graph.unique_name(output.name), op, dict(attrs or {}), outputs=[output], meta=meta)
    return graph.add_node(node, inputs=inputs)


def retype_operator(node: Node, op: str, options: str | None = None, attrs: dict[str, Any] | None = None) -> None:
    """Make `node` another builtin operator: what the file said of the old one (its code,
    version, options) goes."""
    node.op, node.attrs = op, dict(attrs or {})
    node.meta = {k: v for k, v in node.meta.items() if k not in keys.OPERATOR_KEYS}
    node.meta[keys.VERSION] = 1
    if options is not None:
        node.meta[keys.OPTIONS_TYPE] = options


def add_constant(graph: Graph, name: str, value: np.ndarray) -> Ref:
    """A new constant node (its buffer is appended when the model is written)."""
    node = graph.add_node(make_const(graph.unique_name(name), value))
    return Ref(node.name, 0)


def make_input(node: Node) -> None:
    """Make an operator node a subgraph input (its inputs must be gone already)."""
    node.op, node.attrs = INPUT_OP, {}
    node.meta = {k: v for k, v in node.meta.items() if k not in keys.OPERATOR_KEYS}


def take_place(old: Tensor, new: Tensor) -> None:
    """`new`, replacing `old`, takes the earlier of their two places in the tensor list (where
    a converter writing the model afresh puts it), not the place after every tensor read."""
    places = [t.meta[keys.INDEX] for t in (old, new) if keys.INDEX in t.meta]
    if places:
        new.meta[keys.INDEX] = min(places)


# -- names ---------------------------------------------------------------------------------------

def rename_tensor(graph: Graph, ref: Ref, name: str) -> None:
    """Give the tensor at `ref` another name, and its node too when the node was named after
    it (as the reader names nodes)."""
    tensor = graph.tensor(ref)
    old = tensor.name
    tables.rename(tensor, name)
    if ref.port == 0 and ref.node == old and name != old:
        graph.rename_node(ref.node, graph.unique_name(name))


def split_name(graph: Graph, ref: Ref) -> str:
    """Free the name of the tensor at `ref` for a new boundary tensor: the tensor adds its
    type (`_int8`, `_float32`), as quantize_nodes names the integer form of a float tensor.
    Returns the freed name."""
    tensor = graph.tensor(ref)
    name = tensor.name
    rename_tensor(graph, ref, graph.unique_name(f"{name}_{tensor.dtype.value}"))
    return name


def bypass(model: Graph, graph: Graph, name: str) -> None:
    """Remove operator `name`: whatever read its output (operators, the subgraph's outputs,
    signature defs) reads its first input instead, which takes the output's name when the
    output was one of the subgraph's and the input is not a boundary already."""
    node = graph.node(name)
    source, removed = graph.inputs_of(name)[0], node.outputs[0]
    kept = graph.tensor(source)
    own = Ref(name, 0)
    was_output = own in graph.outputs
    renames = was_output and graph.node(source.node).op not in (INPUT_OP, CONST_OP) \
        and source not in graph.outputs and not signature_keys(model, graph, kept)
    graph.replace_uses(own, source)
    graph.outputs = [source if ref == own else ref for ref in graph.outputs]
    retarget_signatures(model, removed, kept)
    graph.remove_node(name)
    if renames:
        rename_tensor(graph, source, removed.name)
