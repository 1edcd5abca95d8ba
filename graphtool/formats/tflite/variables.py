"""Resource variables read before anything assigns them, and handles kept in other tensors.

LiteRT creates a variable on its first VAR_HANDLE and hands READ_VARIABLE whatever memory its
tensor holds until an ASSIGN_VARIABLE writes it, so such a model loads and runs, with results
that depend on the process. A variable is named by its VAR_HANDLE's (container, shared_name);
one without options is named ("", ""). The check is conservative: a read is reported only when
no other subgraph assigns the variable (an init subgraph, CALL_ONCE's or another signature's,
may have run first) and no earlier operator of its own subgraph does.
"""
from __future__ import annotations

from ...ir import DType, Graph

VariableName = tuple[bytes, bytes]


def problems(graphs: list[Graph]) -> list[str]:
    """One problem line per READ_VARIABLE that reads a variable nothing has assigned yet, and
    per variable handle that is not a RESOURCE tensor (the kernels keep the variable's id in
    it, and read it back, whatever its type says)."""
    assigned_in = [_assigned(graph) for graph in graphs]
    found = [f"subgraph {index}: {node.name!r} (VAR_HANDLE) writes its handle into a {tensor.dtype.value} "
                "tensor, not a resource" for index, graph in enumerate(graphs) for node in graph
                if node.op == "VAR_HANDLE" for tensor in node.outputs[:1]
                if tensor.dtype is not None and tensor.dtype is not DType.RESOURCE]
    for index, graph in enumerate(graphs):
        elsewhere = set().union(*(names for i, names in enumerate(assigned_in) if i != index))
        before: set[VariableName] = set()
        for node in (n for n in graph if n.op in ("READ_VARIABLE", "ASSIGN_VARIABLE")):
            name = _variable(graph, node)
            if name is None:
                continue
            if node.op == "ASSIGN_VARIABLE":
                before.add(name)
            elif name not in before and name not in elsewhere:
                found.append(f"subgraph {index}: {node.name!r} (READ_VARIABLE) reads variable "
                                f"{_describe(name)} before anything assigns it; LiteRT returns whatever memory "
                                "the variable holds")
    return found


def _assigned(graph: Graph) -> set[VariableName]:
    return {name for node in graph if node.op == "ASSIGN_VARIABLE"
            for name in [_variable(graph, node)] if name is not None}


def _variable(graph: Graph, node) -> VariableName | None:
    """The variable `node` reads or assigns, when its resource input comes from a VAR_HANDLE."""
    inputs = graph.inputs_of(node.name)
    handle = graph.node(inputs[0].node) if inputs and inputs[0] is not None else None
    if handle is None or handle.op != "VAR_HANDLE":
        return None
    return bytes(handle.attrs.get("container") or b""), bytes(handle.attrs.get("shared_name") or b"")


def _describe(name: VariableName) -> str:
    container, shared = (part.decode("utf-8", "replace") for part in name)
    return f"{container!r}/{shared!r}" if container else repr(shared)
