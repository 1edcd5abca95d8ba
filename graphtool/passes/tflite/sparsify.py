"""sparsify for TFLite: store sparse weights in TFLite's sparse format, densified at load."""
from __future__ import annotations

import gzip
import itertools
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ...formats.tflite import keys, tables, versions
from ...ir import DType, Graph, Node, Ref, Tensor
from ..helpers import tflite_rewrite
from ..helpers.skips import Skips
from ..registry import Context, PassError, PassResult, register

DENSE, SPARSE_CSR = 0, 1  # DimensionType
INDEX_TYPES = ((np.uint8, 3), (np.uint16, 2), (np.int32, 1))  # SparseIndexVector: Uint8Vector, Uint16Vector, Int32Vector
# Readers of weights: op -> (operand, stored types DENSIFY may feed it). LiteRT's float
# kernels take a densified weight; its int8 kernels (hybrid and full integer) need the
# weight to be a constant (XNNPACK refuses to prepare them), so int8 and float16 weights
# are densified only before the DEQUANTIZE that widens them (weight-only and float16 models).
READERS = {
    "CONV_2D": (1, (DType.FLOAT32,)), "DEPTHWISE_CONV_2D": (1, (DType.FLOAT32,)),
    "FULLY_CONNECTED": (1, (DType.FLOAT32,)), "TRANSPOSE_CONV": (1, (DType.FLOAT32,)),
    "DEQUANTIZE": (0, (DType.FLOAT16, DType.INT8)),
}
DENSIFY_VERSION = 1
GZIP_LEVEL = 9


@dataclass(frozen=True)
class Params:
    threshold: float = field(default=0.5, metadata={
        "doc": "least share of zeros a weight needs to be stored sparse (0 < threshold <= 1)"})
    min_elements: int = field(default=16, metadata={"doc": "weights with fewer elements stay dense"})


@dataclass(frozen=True)
class Encoding:
    """A dense array in TFLite's sparse format: the stored values in traversal order and
    the SparsityParameters table (as the reader returns it)."""

    values: np.ndarray
    sparsity: dict
    nbytes: int  # values plus index arrays


@register("sparsify", Params, formats=("tflite",), guarantee="exact")
def sparsify(graph: Graph, params: Params, context: Context) -> PassResult:
    """Store weights with many zeros in TFLite's sparse format, followed by DENSIFY.

    A constant float32 weight of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED or
    TRANSPOSE_CONV, or a float16/int8 constant a DEQUANTIZE widens (float16 and weight-only
    int8 models), with at least min_elements and at least `threshold` of its stored values
    zero, gets SparsityParameters, as the converter's EXPERIMENTAL_SPARSITY writes them:
    identity traversal order, each dimension DENSE or SPARSE_CSR with the smallest index
    arrays that fit (uint8, uint16 or int32). Of every DENSE/SPARSE_CSR assignment of its
    dimensions the smallest encoding is kept, and only when smaller than the dense data.
    A DENSIFY operator (as the converter inserts for kernels that need dense weights)
    expands it once, when LiteRT prepares the model, into the tensor the ops read, so
    outputs are bit-identical while the file shrinks. Stay dense: int8 weights read by
    integer or hybrid kernels (LiteRT's XNNPACK needs them constant), weights also read
    by other operators or operands, already sparse, or pinned as outputs. The
    min_runtime_version metadata rises to what DENSIFY needs (2.2.0) if it said less.
    stats: sparsified weights, skipped by reason, and the bytes of those weights dense and
    sparse, raw and gzip-compressed."""
    if not 0 < params.threshold <= 1:
        raise PassError("sparsify: threshold must be in (0, 1]")
    skipped = Skips("sparsify", context.log)
    sizes = Counter()
    done = 0
    for sub in tables.subgraphs(graph):
        keep = tflite_rewrite.pinned(graph, sub)
        for name in _candidates(sub):
            tensor = sub.node(name).outputs[0]
            reason = _refusal(sub, name, tensor, keep, params)
            encoding = None
            if reason is None:
                encoding = best_encoding(np.asarray(tensor.data))
                if encoding.nbytes >= tensor.data.nbytes:
                    reason = "no_gain"
            if reason is not None:
                skipped(name, reason)
                continue
            sizes.update(_sizes(tensor.data, encoding))
            _store_sparse(sub, name, tensor, encoding)
            done += 1
        if done:
            sub.toposort()
    stats = {"sparsified": done, "skipped": skipped.stats(), **dict(sizes)}
    if done:
        stats["min_runtime_version"] = versions.raise_min_runtime(graph)
    return PassResult(done > 0, stats)


def _candidates(graph: Graph) -> list[str]:
    """Const nodes some operator reads as its weights, in graph order."""
    found = []
    for node in graph:
        if node.op not in READERS or keys.is_custom(node):
            continue
        slot = READERS[node.op][0]
        refs = graph.inputs_of(node.name)
        if slot < len(refs) and refs[slot] is not None and tflite_rewrite.constant(graph, refs[slot]) is not None:
            found.append(refs[slot].node)
    return list(dict.fromkeys(found))


def _refusal(graph: Graph, name: str, tensor: Tensor, keep: set[str], params: Params) -> str | None:
    if keys.SPARSITY in tensor.meta:
        return "already_sparse"
    if name in keep:
        return "pinned"
    readers = [READERS.get(graph.node(c).op) for c, _ in graph.consumers(name)]
    if any(r is None or r[0] != slot for r, (_, slot) in zip(readers, graph.consumers(name))):
        return "used_elsewhere"
    if any(tensor.dtype not in types for _, types in readers):
        return "quantized_kernel" if tensor.dtype == DType.INT8 else "dtype"
    data = tensor.data
    if data.size < params.min_elements or data.ndim < 1:
        return "small"
    if 1.0 - np.count_nonzero(data) / data.size < params.threshold:
        return "below_threshold"
    return None


def _store_sparse(graph: Graph, name: str, tensor: Tensor, encoding: Encoding) -> None:
    """The constant keeps its name and tensor, now holding the stored values; a DENSIFY
    produces the dense tensor its consumers read."""
    users = graph.consumers(name)
    dense = Tensor(graph.unique_name(f"{tensor.name}_densified"), tensor.dtype, tensor.shape,
                   quantization=tensor.quantization)
    densify = Node(dense.name, "DENSIFY", {}, outputs=[dense], meta={keys.VERSION: DENSIFY_VERSION})
    graph.add_node(densify, inputs=[Ref(name, 0)])
    for consumer, slot in users:
        graph.set_input(consumer, slot, Ref(densify.name, 0))
    tensor.data = encoding.values
    tensor.meta[keys.SPARSITY] = encoding.sparsity
    tables.retable(tensor, sparsity=encoding.sparsity)


def _sizes(dense: np.ndarray, encoding: Encoding) -> dict[str, int]:
    sparse_bytes = encoding.values.tobytes() + b"".join(
        level[key]["values"].tobytes() for level in encoding.sparsity["dim_metadata"]
        for key in ("array_segments", "array_indices") if key in level)
    raw = np.ascontiguousarray(dense).tobytes()
    return {"dense_bytes": len(raw), "sparse_bytes": len(sparse_bytes),
            "dense_gzip_bytes": len(gzip.compress(raw, GZIP_LEVEL, mtime=0)),
            "sparse_gzip_bytes": len(gzip.compress(sparse_bytes, GZIP_LEVEL, mtime=0))}


# -- the sparse format -------------------------------------------------------------------------

def best_encoding(dense: np.ndarray) -> Encoding:
    """The smallest encoding of `dense` over every DENSE/SPARSE_CSR choice per dimension
    with at least one SPARSE_CSR (zero: stored value 0)."""
    occupied = _occupancy(dense)
    options = [f for f in itertools.product((DENSE, SPARSE_CSR), repeat=dense.ndim) if SPARSE_CSR in f]
    return min((encode(dense, f, occupied) for f in options), key=lambda e: e.nbytes)


def encode(dense: np.ndarray, formats: tuple[int, ...], occupied: list[np.ndarray] | None = None) -> Encoding:
    """`dense` in TFLite's sparse format with identity traversal order, no blocks, and
    dimension d stored as formats[d] (DENSE or SPARSE_CSR). A SPARSE_CSR dimension keeps,
    under each position of the dimensions before it, the indices whose sub-tensor holds
    a non-zero; values are stored in traversal order."""
    if len(formats) != dense.ndim:
        raise PassError(f"sparsify: {len(formats)} formats for a rank {dense.ndim} tensor")
    occupied = occupied if occupied is not None else _occupancy(dense)
    positions = np.zeros(1, np.int64)  # kept positions, as flat indices over the dimensions walked so far
    levels = []
    nbytes = 0
    for depth, (size, kind) in enumerate(zip(dense.shape, formats)):
        if kind == DENSE:
            positions = (positions[:, None] * size + np.arange(size)).reshape(-1)
            levels.append({"format": DENSE, "dense_size": int(size)})
            continue
        rows = occupied[depth].reshape(-1, size)[positions]
        parents, indices = np.nonzero(rows)
        positions = positions[parents] * size + indices
        segment_vector, segment_type = _index_vector(np.concatenate([[0], np.cumsum(rows.sum(axis=1))]))
        index_vector, index_type = _index_vector(indices)
        nbytes += segment_vector.nbytes + index_vector.nbytes
        levels.append({"format": SPARSE_CSR, "dense_size": 0,
                       "array_segments_type": segment_type, "array_segments": {"values": segment_vector},
                       "array_indices_type": index_type, "array_indices": {"values": index_vector}})
    values = np.ascontiguousarray(dense.reshape(-1)[positions])
    values.flags.writeable = False
    sparsity = {"traversal_order": np.arange(dense.ndim, dtype=np.int32), "block_map": np.zeros(0, np.int32),
                "dim_metadata": levels}
    return Encoding(values, sparsity, nbytes + values.nbytes)


def decode(values: np.ndarray, sparsity: dict, shape: tuple[int, ...]) -> np.ndarray:
    """The dense array a sparse tensor stands for (identity traversal order, no blocks)."""
    order = np.asarray(sparsity.get("traversal_order", np.arange(len(shape))))
    if len(order) != len(shape) or not np.array_equal(order, np.arange(len(shape))) \
            or len(sparsity.get("block_map", ())):
        raise PassError("sparsify: only identity traversal order without blocks is decoded")
    positions = np.zeros(1, np.int64)
    for size, level in zip(shape, sparsity["dim_metadata"]):
        if level["format"] == DENSE:
            positions = (positions[:, None] * size + np.arange(size)).reshape(-1)
            continue
        segments = np.asarray(level["array_segments"]["values"], np.int64)
        indices = np.asarray(level["array_indices"]["values"], np.int64)
        positions = positions[np.repeat(np.arange(len(positions)), np.diff(segments))] * size + indices
    dense = np.zeros(int(np.prod(shape)), values.dtype)
    dense[positions] = values
    return dense.reshape(shape)


def _occupancy(dense: np.ndarray) -> list[np.ndarray]:
    """occupied[d], of shape dense.shape[:d + 1]: where the sub-tensor holds a non-zero."""
    occupied = [dense != 0]
    for _ in range(dense.ndim - 1):
        occupied.insert(0, occupied[0].any(axis=-1))
    return occupied


def _index_vector(values: np.ndarray) -> tuple[np.ndarray, int]:
    top = int(values.max()) if values.size else 0
    for dtype, union_type in INDEX_TYPES:
        if top <= np.iinfo(dtype).max:
            return values.astype(dtype), union_type
    raise PassError(f"sparsify: index {top} does not fit int32")
