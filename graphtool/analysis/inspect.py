"""inspect: what a model holds — inputs, outputs, ops, parameters — as a plain dataclass.

For GraphDefs this covers what TensorFlow's summarize_graph prints: possible inputs
(Placeholders), possible outputs (nodes nothing consumes, except Const/Assign/NoOp/
Placeholder), variables, parameter counts, control edges, devices, invalid inputs and
op types by count.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from ..ir import MISSING_OP, Graph, Ref, Tensor
from ..ir.attrs import TensorShape

INPUT_OPS = frozenset({"Placeholder", "PlaceholderV2"})
NOT_OUTPUT_OPS = frozenset({"Const", "Assign", "NoOp", "Placeholder"})
VARIABLE_OPS = frozenset({"Variable", "VariableV2", "VarHandleOp"})


@dataclass
class TensorInfo:
    name: str
    dtype: str | None
    shape: list[int | None] | None  # None: unknown rank; a None dim: unknown size


@dataclass
class OutputInfo:
    name: str
    op: str


@dataclass
class DtypeTotals:
    count: int = 0
    bytes: int = 0


@dataclass
class Parameters:
    count: int = 0
    bytes: int = 0
    by_dtype: dict[str, DtypeTotals] = field(default_factory=dict)


@dataclass
class InvalidInput:
    node: str
    input: str


@dataclass
class NodeInfo:
    name: str
    op: str
    inputs: list[str]
    device: str = ""


@dataclass
class Summary:
    format: str
    path: str | None
    file_size: int | None
    num_nodes: int
    inputs: list[TensorInfo]
    outputs: list[OutputInfo]
    ops: dict[str, int]
    parameters: Parameters
    variables: list[TensorInfo]
    variable_parameters: int
    control_edges: int
    devices: dict[str, int]
    invalid_inputs: list[InvalidInput]
    functions: list[str]
    versions: dict[str, int]
    structure: list[NodeInfo] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.structure is None:
            del data["structure"]
        return data


def _shape_list(dims: tuple | None) -> list[int | None] | None:
    return None if dims is None else [None if d is None or d < 0 else int(d) for d in dims]


def inspect(graph: Graph, structure: bool = False) -> Summary:
    """Summarise `graph` (and the file it came from, when it came from one)."""
    path = graph.meta.get("source")
    file_size = os.path.getsize(path) if path and os.path.isfile(path) else None
    real_nodes = [n for n in graph if n.op != MISSING_OP]

    inputs = []
    for node in real_nodes:
        if node.op in INPUT_OPS:
            tensor = node.output(0)
            inputs.append(TensorInfo(node.name, _dtype_name(tensor),
                                     _shape_list(tensor.shape) if tensor else None))

    outputs = [OutputInfo(n.name, n.op) for n in real_nodes
               if n.op not in NOT_OUTPUT_OPS and not graph.is_used(n.name)]

    ops = Counter(n.op for n in real_nodes)
    ops_sorted = dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))

    parameters = Parameters()
    for node in real_nodes:
        if node.op != "Const":
            continue
        tensor = node.output(0)
        if tensor is None or tensor.num_elements is None:
            continue
        _add(parameters, tensor)

    variables, variable_parameters = [], 0
    for node in real_nodes:
        if node.op in VARIABLE_OPS:
            shape = node.attrs.get("shape")
            dims = shape.dims if isinstance(shape, TensorShape) else None
            dtype = node.attrs.get("dtype")
            variables.append(TensorInfo(node.name, str(dtype) if dtype is not None else None, _shape_list(dims)))
            if dims is not None and all(d is not None and d >= 0 for d in dims):
                count = 1
                for d in dims:
                    count *= d
                variable_parameters += count

    control_edges = sum(len(graph.control_inputs_of(n.name)) for n in real_nodes)
    devices = Counter(n.meta.get("device", "") for n in real_nodes if n.meta.get("device"))
    invalid = [InvalidInput(consumer, str_ref) for missing in graph if missing.op == MISSING_OP
               for consumer, str_ref in _uses_of_missing(graph, missing.name)]

    functions = list(graph.meta.get("function_names", []))
    versions = dict(graph.meta.get("versions", {}))

    nodes = None
    if structure:
        nodes = [NodeInfo(n.name, n.op,
                          [str(r) for r in graph.inputs_of(n.name)] + ["^" + c for c in graph.control_inputs_of(n.name)],
                          n.meta.get("device", "")) for n in real_nodes]

    return Summary(format=graph.format or "unknown", path=path, file_size=file_size,
                   num_nodes=len(real_nodes), inputs=inputs, outputs=outputs, ops=ops_sorted,
                   parameters=parameters, variables=variables, variable_parameters=variable_parameters,
                   control_edges=control_edges, devices=dict(devices), invalid_inputs=invalid,
                   functions=functions, versions=versions, structure=nodes)


def _dtype_name(tensor: Tensor | None) -> str | None:
    return str(tensor.dtype) if tensor is not None and tensor.dtype is not None else None


def _add(parameters: Parameters, tensor: Tensor) -> None:
    count = tensor.num_elements
    size = tensor.nbytes or 0
    parameters.count += count
    parameters.bytes += size
    totals = parameters.by_dtype.setdefault(str(tensor.dtype), DtypeTotals())
    totals.count += count
    totals.bytes += size


def _uses_of_missing(graph: Graph, name: str) -> list[tuple[str, str]]:
    return sorted((consumer, str(Ref(name, port)))
                  for _, consumer, port in graph.nx.out_edges(name, data="port"))
