"""inspect: what a model holds — inputs, outputs, ops, parameters — as a plain dataclass.

For GraphDefs this covers what TensorFlow's summarize_graph prints: possible inputs
(Placeholders), possible outputs (nodes nothing consumes, except Const/Assign/NoOp/
Placeholder), variables, parameter counts, control edges, devices, invalid inputs and
op types by count. For TFLite models: the declared inputs and outputs with quantization,
every subgraph, signature defs, op versions, custom and Select TF (Flex) ops, which
weights are quantized per tensor or per channel, metadata and the minimum runtime.
Both report weight sparsity: per weight tensor (rank >= 2 constant) the share of zeros
and of all-zero blocks of 1x4 and 4x1 elements, and totals.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import FormatError
from ..formats.tflite import keys as tflite_keys
from ..formats.tflite.ops import is_operator
from ..ir import CONST_OP, MISSING_OP, DType, Graph, Node, Ref, Tensor
from ..ir.attrs import TensorShape

if TYPE_CHECKING:
    from ..formats.tflite.support_metadata import ModelMetadata

INPUT_OPS = frozenset({"Placeholder", "PlaceholderV2"})
NOT_OUTPUT_OPS = frozenset({"Const", "Assign", "NoOp", "Placeholder"})
VARIABLE_OPS = frozenset({"Variable", "VariableV2", "VarHandleOp"})
FLEX_PREFIX = "Flex"
LABEL_FILES = frozenset({"TENSOR_AXIS_LABELS", "TENSOR_VALUE_LABELS"})  # associated files whose lines are labels
BLOCKS = {"1x4": (1, 4), "4x1": (4, 1)}
"""Zero blocks counted, as (rows, columns) over a weight's last two dimensions: 1x4 is four
neighbours along the last dimension (TFLite's FULLY_CONNECTED [out, in] 1x4 sparse kernel;
TF-MOT's block_size=(1, 4) on a Dense kernel [in, out]), 4x1 four along the one before.
Blocks cut off at an edge count as blocks of what is left."""


@dataclass
class QuantInfo:
    scheme: str  # "per-tensor" | "per-channel"
    scale: list[float]
    zero_point: list[int]
    axis: int | None = None


@dataclass
class TensorInfo:
    name: str
    dtype: str | None
    shape: list[int | None] | None  # None: unknown rank; a None dim: unknown size
    quantization: QuantInfo | None = None


@dataclass
class OutputInfo:
    name: str
    op: str
    dtype: str | None = None
    shape: list[int | None] | None = None
    quantization: QuantInfo | None = None


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
class WeightInfo:
    name: str
    dtype: str
    shape: list[int]
    zeros: float  # share of elements that are zero
    quantization: str | None = None  # per-tensor / per-channel
    sparse_storage: bool = False  # stored in TFLite's sparse format
    # share of all-zero blocks by block shape ("1x4", "4x1"); None when stored sparse
    zero_blocks: dict[str, float] | None = None


@dataclass
class BlockTotals:
    blocks: int = 0
    zero: int = 0

    @property
    def share(self) -> float:
        return self.zero / self.blocks if self.blocks else 0.0


@dataclass
class Sparsity:
    weights: int = 0
    elements: int = 0
    zeros: int = 0
    # all-zero blocks over the weights stored dense, by block shape
    blocks: dict[str, BlockTotals] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return self.zeros / self.elements if self.elements else 0.0


@dataclass
class SubgraphInfo:
    index: int
    name: str
    operators: int
    tensors: int
    inputs: list[str]
    outputs: list[str]


@dataclass
class SignatureInfo:
    key: str
    subgraph: int
    inputs: list[str]
    outputs: list[str]


@dataclass
class PackedFile:
    """A file of the zip archive after a TFLite model (TFLite Support's associated files)."""

    name: str
    bytes: int
    labels: int | None = None  # its lines, when the metadata name it a label file


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
    weights: list[WeightInfo]
    sparsity: Sparsity
    variables: list[TensorInfo] = field(default_factory=list)
    variable_parameters: int = 0
    control_edges: int = 0
    devices: dict[str, int] = field(default_factory=dict)
    invalid_inputs: list[InvalidInput] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    # TFLite
    subgraphs: list[SubgraphInfo] = field(default_factory=list)
    signature_defs: list[SignatureInfo] = field(default_factory=list)
    op_versions: dict[str, list[int]] = field(default_factory=dict)
    custom_ops: dict[str, int] = field(default_factory=dict)
    select_tf_ops: dict[str, int] = field(default_factory=dict)
    quantized_weights: dict[str, int] = field(default_factory=dict)
    metadata: list[str] = field(default_factory=list)
    # TFLite Support metadata, in set_metadata's JSON format (docs/metadata.md), and the files packed with it
    support_metadata: dict[str, Any] | None = None
    associated_files: list[PackedFile] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # what of the model could not be read, and why
    # schema rules the file breaks that its runtime does not check (the model loads and runs; kept as read)
    warnings: list[str] = field(default_factory=list)
    min_runtime_version: str | None = None
    description: str | None = None
    structure: list[NodeInfo] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sparsity"]["share"] = self.sparsity.share
        for key, totals in self.sparsity.blocks.items():
            data["sparsity"]["blocks"][key]["share"] = totals.share
        if self.structure is None:
            del data["structure"]
        return data


def inspect(graph: Graph, structure: bool = False) -> Summary:
    """Summarise `graph` (and the file it came from, when it came from one)."""
    path = graph.meta.get("source")
    file_size = os.path.getsize(path) if path and os.path.isfile(path) else None
    graphs = [graph] + list(graph.subgraphs)
    constants, broken = _readable([n.outputs[0] for g in graphs for n in g if _is_constant(n)])
    weighed = [_weight(t) for t in constants if _is_weight(t)]
    weights = [w for w, _ in weighed]
    sparsity = Sparsity(len(weights), sum(_count(w.shape) for w in weights),
                        sum(round(w.zeros * _count(w.shape)) for w in weights),
                        _block_totals([blocks for _, blocks in weighed if blocks is not None]))
    common = dict(format=graph.format or "unknown", path=path, file_size=file_size,
                  parameters=_parameters(constants), weights=weights, sparsity=sparsity)
    if graph.format == "tflite":
        summary = _tflite(graph, graphs, common)
    else:
        summary = _graphdef(graph, common)
    known = set(summary.warnings)
    summary.unreadable += [message for message in broken if message not in known]
    if structure:
        from ..formats.graphdef import keys as graphdef_keys  # here: the GraphDef package loads protobuf

        summary.structure = [NodeInfo(n.name, n.op, [str(r) for r in g.inputs_of(n.name) if r is not None]
                                      + ["^" + c for c in g.control_inputs_of(n.name)], graphdef_keys.device_of(n))
                             for g in graphs for n in g if n.op != MISSING_OP]
    return summary


def _graphdef(graph: Graph, common: dict) -> Summary:
    from ..formats.graphdef import keys as graphdef_keys  # here: the GraphDef package loads protobuf

    real = [n for n in graph if n.op != MISSING_OP]
    inputs = [_tensor_info(n.name, n.output(0)) for n in real if n.op in INPUT_OPS]
    outputs = [OutputInfo(n.name, n.op) for n in real if n.op not in NOT_OUTPUT_OPS and not graph.is_used(n.name)]
    variables, variable_parameters = [], 0
    for node in real:
        if node.op in VARIABLE_OPS:
            shape = node.attrs.get("shape")
            dims = shape.dims if isinstance(shape, TensorShape) else None
            dtype = node.attrs.get("dtype")
            variables.append(TensorInfo(node.name, str(dtype) if dtype is not None else None, _shape_list(dims)))
            if dims is not None and all(d is not None and d >= 0 for d in dims):
                variable_parameters += _count(dims)
    invalid = [InvalidInput(consumer, str(Ref(missing.name, port)))
               for missing in graph if missing.op == MISSING_OP
               for consumer, port in graph.uses_of(missing.name)]
    return Summary(num_nodes=len(real), inputs=inputs, outputs=outputs, ops=_histogram(n.op for n in real),
                   variables=variables, variable_parameters=variable_parameters,
                   control_edges=sum(len(graph.control_inputs_of(n.name)) for n in real),
                   devices=dict(Counter(graphdef_keys.device_of(n) for n in real if graphdef_keys.device_of(n))),
                   invalid_inputs=sorted(invalid, key=lambda i: (i.node, i.input)),
                   functions=list(graph.meta.get(graphdef_keys.FUNCTION_NAMES, [])),
                   warnings=list(graph.meta.get(graphdef_keys.PROBLEMS) or []),
                   versions=dict(graph.meta.get(graphdef_keys.VERSIONS, {})), **common)


def _tflite(graph: Graph, graphs: list[Graph], common: dict) -> Summary:
    operators = [n for g in graphs for n in g if is_operator(n)]
    inputs = [_tensor_info(name, graph.node(name).output(0)) for name in graph.inputs]
    outputs = []
    for ref in graph.outputs:
        info = _tensor_info(_output_tensor(graph, ref).name, _output_tensor(graph, ref))
        outputs.append(OutputInfo(info.name, graph.node(ref.node).op, info.dtype, info.shape, info.quantization))
    versions: dict[str, set[int]] = {}
    for node in operators:
        versions.setdefault(node.op, set()).add(tflite_keys.op_version(node))
    custom = Counter(n.op for n in operators if tflite_keys.is_custom(n))
    flex = {op[len(FLEX_PREFIX):]: count for op, count in custom.items() if op.startswith(FLEX_PREFIX)}
    quantized = Counter(w.quantization for w in common["weights"] if w.quantization)
    subgraphs = [SubgraphInfo(i, g.name, sum(1 for n in g if is_operator(n)),
                              sum(len(n.outputs) for n in g), list(g.inputs),
                              [_output_tensor(g, r).name for r in g.outputs]) for i, g in enumerate(graphs)]
    signatures = [SignatureInfo(s["key"], next(i for i, g in enumerate(graphs) if g is s["subgraph"]),
                                [name for name, _ in s["inputs"]], [name for name, _ in s["outputs"]])
                  for s in graph.meta.get(tflite_keys.SIGNATURE_DEFS) or []]
    metadata = graph.meta.get(tflite_keys.METADATA) or {}
    runtime = metadata.get("min_runtime_version")
    return Summary(num_nodes=len(operators), inputs=inputs, outputs=outputs,
                   ops=_histogram(n.op for n in operators), subgraphs=subgraphs, signature_defs=signatures,
                   op_versions={op: sorted(v) for op, v in sorted(versions.items())},
                   custom_ops=dict(custom), select_tf_ops=flex, quantized_weights=dict(quantized),
                   metadata=list(metadata), description=graph.meta.get(tflite_keys.DESCRIPTION) or None,
                   warnings=list(graph.meta.get(tflite_keys.PROBLEMS) or []),
                   min_runtime_version=runtime.split(b"\0")[0].decode("ascii", "replace") if runtime else None,
                   **_support_metadata(graph), **common)


def _support_metadata(graph: Graph) -> dict[str, Any]:
    """The TFLite Support metadata and packed files as Summary fields; what cannot be read is
    listed in `unreadable`, not an error: the rest of the model is still worth showing."""
    raw = (graph.meta.get(tflite_keys.METADATA) or {}).get(tflite_keys.SUPPORT_METADATA)
    archive = graph.meta.get(tflite_keys.ASSOCIATED_FILES)
    if raw is None and not archive:
        return {}
    from ..formats.tflite import associated_files, support_metadata  # here: most models have neither

    unreadable: list[str] = []
    decoded = None
    if raw is not None:
        try:
            decoded = support_metadata.decode(raw)
        except FormatError as exc:
            unreadable.append(f"{tflite_keys.SUPPORT_METADATA} cannot be read: {exc}")
    packed = []
    if archive:
        labels = {f.name for f in decoded.files() if f.type in LABEL_FILES} if decoded else set()
        try:
            packed = [PackedFile(e.name, e.size, _lines(associated_files.read(archive, e.name), e.name, unreadable)
                                 if e.name in labels else None) for e in associated_files.entries(archive)]
        except FormatError as exc:
            unreadable.append(str(exc))
    if decoded is not None:
        missing = sorted({f.name for f in decoded.files()} - {p.name for p in packed})
        unreadable += [f"{tflite_keys.SUPPORT_METADATA} names {name}, which the model does not carry"
                     for name in missing]
    return dict(support_metadata=None if decoded is None else support_metadata.to_json(_named(graph, decoded)),
                associated_files=packed, unreadable=unreadable)


def _named(graph: Graph, metadata: ModelMetadata) -> ModelMetadata:
    """`metadata` with each tensor entry naming the model tensor it describes (by position)."""
    inputs = [graph.node(name).outputs[0].name for name in graph.inputs]
    outputs = [_output_tensor(graph, ref).name for ref in graph.outputs]
    return replace(metadata, inputs=tuple(replace(t, tensor=n) for t, n in zip(metadata.inputs, inputs)),
                   outputs=tuple(replace(t, tensor=n) for t, n in zip(metadata.outputs, outputs)))


def _lines(content: bytes, name: str, unreadable: list[str]) -> int | None:
    """The labels a label file holds: its lines."""
    try:
        return len(content.decode("utf-8").splitlines())
    except UnicodeDecodeError:
        unreadable.append(f"label file {name} is not UTF-8 text")
        return None


def _output_tensor(graph: Graph, ref: Ref) -> Tensor:
    return graph.node(ref.node).outputs[ref.port]


def _is_constant(node: Node) -> bool:
    return (node.op == CONST_OP and not tflite_keys.is_custom(node) and bool(node.outputs)
            and node.outputs[0].is_constant and node.outputs[0].num_elements is not None)


def _is_weight(tensor: Tensor) -> bool:
    """A constant of rank 2 or more: the summary reads its values (sparsity, quantization)."""
    return tensor.shape is not None and len(tensor.shape) >= 2


def _readable(constants: list[Tensor]) -> tuple[list[Tensor], list[str]]:
    """The constants whose data can be read, and why the others cannot: a model whose broken
    constant nothing reads still runs, so it is summarised without it. Only what the summary
    reads the values of is decoded: weights, and strings (sized by their lengths); the others
    are sized by their shapes."""
    readable, broken = [], []
    for tensor in constants:
        if not _is_weight(tensor) and tensor.dtype is not DType.STRING:
            readable.append(tensor)
            continue
        try:
            tensor.data  # noqa: B018 (loaders are lazy)
        except FormatError as exc:
            broken.append(str(exc))
            continue
        readable.append(tensor)
    return readable, broken


def _parameters(constants: list[Tensor]) -> Parameters:
    parameters = Parameters()
    for tensor in constants:
        count, size = tensor.num_elements, tensor.nbytes or 0
        parameters.count += count
        parameters.bytes += size
        totals = parameters.by_dtype.setdefault(str(tensor.dtype), DtypeTotals())
        totals.count += count
        totals.bytes += size
    return parameters


def _weight(tensor: Tensor) -> tuple[WeightInfo, dict[str, BlockTotals] | None]:
    """The weight's summary, and its zero-block counts (None when stored sparse)."""
    data, q = tensor.data, tensor.quantization
    sparse = tflite_keys.SPARSITY in tensor.meta
    count = _count(tensor.shape)
    blocks = None
    if not count or data.dtype == object:
        zeros = 0.0
    elif sparse:  # only the stored values exist; every other element is zero
        zeros = 1.0 - np.count_nonzero(data) / count
    else:
        zero = data == _zero_value(q, data.ndim)
        zero_count = np.count_nonzero(zero)
        zeros = 1.0 - (zero.size - zero_count) / max(count, zero.size)
        if zero.ndim >= 2:  # data kept as raw bytes (no usable shape) have no blocks to count
            blocks = {key: zero_blocks(zero, shape) if zero_count else no_zero_blocks(zero.shape, shape)
                      for key, shape in BLOCKS.items()}
    scheme = None if q is None else ("per-channel" if q.per_channel else "per-tensor")
    shares = None if blocks is None else {key: counted.share for key, counted in blocks.items()}
    return WeightInfo(tensor.name, str(tensor.dtype), list(tensor.shape), float(zeros), scheme, sparse,
                      shares), blocks


def zero_blocks(zero: np.ndarray, block: tuple[int, int]) -> BlockTotals:
    """All-zero blocks of `block` (rows, columns) over the last two dimensions of the
    boolean array `zero` (True where an element is zero); edge blocks are partial."""
    rows, columns = zero.shape[-2:]
    matrices = zero.reshape(-1, rows, columns)
    height, width = block
    padded_rows, padded_columns = -(-rows // height) * height, -(-columns // width) * width
    if (padded_rows, padded_columns) == (rows, columns):
        padded = matrices  # blocks tile the matrix exactly: no copy
    else:
        padded = np.ones((matrices.shape[0], padded_rows, padded_columns), bool)  # padding is "zero"
        padded[:, :rows, :columns] = matrices
    all_zero = padded[:, 0::height, 0::width].copy()
    for i in range(height):  # AND the block's elements together: strided views, no big temporaries
        for j in range(width):
            if i or j:
                all_zero &= padded[:, i::height, j::width]
    return BlockTotals(int(all_zero.size), int(np.count_nonzero(all_zero)))


def no_zero_blocks(shape: tuple[int, ...], block: tuple[int, int]) -> BlockTotals:
    """What zero_blocks counts for a weight without a zero: its blocks, none all-zero (a
    dense weight is common, and counting its blocks needs no pass over it)."""
    rows, columns = shape[-2:]
    matrices = int(np.prod(shape[:-2], dtype=np.int64))
    return BlockTotals(matrices * -(-rows // block[0]) * -(-columns // block[1]), 0)


def _block_totals(per_weight: list[dict[str, BlockTotals]]) -> dict[str, BlockTotals]:
    totals = {key: BlockTotals() for key in BLOCKS}
    for blocks in per_weight:
        for key, counted in blocks.items():
            totals[key].blocks += counted.blocks
            totals[key].zero += counted.zero
    return totals


def _zero_value(q, ndim: int):
    """The stored value that means 0.0: the zero point, broadcast along its axis."""
    if q is None or not np.any(q.zero_point):
        return 0
    if q.zero_point.size == 1:
        return q.zero_point.item()
    shape = [1] * ndim
    shape[q.axis or 0] = -1
    return q.zero_point.reshape(shape)


def _tensor_info(name: str, tensor: Tensor | None) -> TensorInfo:
    if tensor is None:
        return TensorInfo(name, None, None)
    q = tensor.quantization
    quant = None if q is None else QuantInfo("per-channel" if q.per_channel else "per-tensor",
                                             [float(s) for s in q.scale], [int(z) for z in q.zero_point],
                                             q.axis if q.per_channel else None)
    return TensorInfo(name, str(tensor.dtype) if tensor.dtype is not None else None,
                      _shape_list(tensor.shape), quant)


def _shape_list(dims: tuple | None) -> list[int | None] | None:
    return None if dims is None else [None if d is None or d < 0 else int(d) for d in dims]


def _histogram(ops) -> dict[str, int]:
    return dict(sorted(Counter(ops).items(), key=lambda kv: (-kv[1], kv[0])))


def _count(shape) -> int:
    total = 1
    for d in shape:
        total *= int(d)
    return total
