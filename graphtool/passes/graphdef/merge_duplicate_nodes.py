"""merge_duplicate_nodes: nodes that compute the same thing from the same inputs become one."""
from __future__ import annotations

import hashlib
from typing import Any, Hashable

import numpy as np

from ...formats.graphdef import keys
from ...ir import MISSING_OP, Graph, Node, Ref, Tensor
from ...ir.attrs import FuncAttr
from ..helpers.graphdef_nodes import protected
from ..registry import Context, NoParams, PassResult, register

# TensorFlow marks ops stateful in its op registry, which graphtool does not import. These
# name rules cover every op TF 2.21 registers as stateful (tests check this against the
# installed TF), and err towards "stateful" so that custom ops with such names stay apart.
# Placeholders are included: two inputs of the same type are still two inputs.
STATEFUL_PREFIXES = (
    "_", "Variable", "VarHandle", "VarIsInitialized", "Assign", "Random", "Stateful", "Resource", "Anonymous",
    "Collective", "Iterator", "MultiDeviceIterator", "Print", "Stack", "TensorArray", "Barrier", "Accumulator",
    "Save", "Restore", "Load", "Retrieve", "Enqueue", "Dequeue", "Outfeed", "Infeed", "Rpc", "Mutex",
    "Configure", "Shutdown", "Delete", "Write", "Create", "Close", "Flush", "Import", "XlaRecv", "XlaSend",
    "XlaLaunch", "XlaHostCompute", "XlaSparseCore", "XlaDequantize", "XlaCallModule", "XlaIf", "XlaWhile",
    "TPU", "Nccl", "Recv", "Send", "BoostedTrees", "Experimental", "Cudnn", "Debug", "Get", "Sleep", "Dummy",
    "Rng", "Stage", "Unstage", "Ordered", "Map", "Py", "EagerPy", "Sample", "Skipgram", "NegTrain", "Case",
    "If", "While", "PartitionedCall", "Assert", "CheckNumerics", "Placeholder", "Empty", "DeepCopy", "Device",
    "GuaranteeConst", "Timestamp", "NonDeterministic", "ComputeDedup", "IsBoostedTrees", "IsTPUEmbedding",
    "IsTensorFloat32Enabled", "DynamicEnqueue", "InitializeTable", "Finalize", "Connect", "Collate", "Execute",
    "Distributed", "Dump", "Remote", "RiscWhile", "Multinomial", "TruncatedNormal",
    "ParameterizedTruncatedNormal", "StatsAggregator", "ThreadPool", "AllToAll", "CrossReplicaSum",
    "SyncDevice", "GlobalIterId", "DisableCopyOnRead", "Consume", "DTensor", "Destroy", "AddManySparse",
    "AddSparse", "TakeManySparse", "ConvertToCoo", "StoreMinibatch", "CalibrationStatistics", "FileSystem",
    "MergeV2Checkpoints", "RecordInput", "GraphDefVersion", "RequiresOlderGraphVersion", "DtypeWithDefaultOp",
    "TestAttr", "StatelessRandomGetAlg", "UpdateTaskId", "WorkerHeartbeat")
STATEFUL_SUBSTRINGS = (
    "Queue", "Iterator", "Variable", "Random", "HashTable", "LookupTable", "Reader", "Dataset", "Summary",
    "Sampler", "Seed", "Checkpoint", "Session", "Cache", "Generator", "Minibatch", "Writer", "Embedding",
    "Accumulator", "ResourceHandle")


def is_stateful(op: str) -> bool:
    """True for ops that may not be merged: stateful in TF's registry, or named like one."""
    if op.startswith(STATEFUL_PREFIXES):
        return True
    if op.startswith("Stateless"):  # TF's naming convention for the pure variants
        return False
    return any(part in op for part in STATEFUL_SUBSTRINGS)


@register("merge_duplicate_nodes", NoParams, formats=("graphdef",), guarantee="exact")
def merge_duplicate_nodes(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Merge nodes with the same op, attrs, device, data inputs and control inputs.

    Identical Consts (same dtype, shape and bytes) merge, and so do ops repeated on the
    same inputs; consumers of a duplicate (data and control) move to the node kept, which
    is the first in graph order, or the declared input/output among them. Declared inputs
    and outputs are never removed. Repeats until nothing merges, since merging makes
    their consumers duplicates in turn. Stateful ops never merge: without TF's op registry
    that is decided by name (see STATEFUL_PREFIXES), which covers every TF 2.21 stateful
    op and Placeholders; an unknown custom op merges unless its name looks stateful.
    Control inputs compare as a set (GTT compares them in order). Exact."""
    keep = protected(graph, context.inputs + context.outputs)
    merged = rounds = 0
    while True:
        pairs = _duplicates(graph, keep)
        if not pairs:
            break
        rounds += 1
        for duplicate, survivor in pairs:
            _merge(graph, duplicate, survivor)
        merged += len(pairs)
    return PassResult(merged > 0, {"merged": merged, "rounds": rounds})


def _duplicates(graph: Graph, keep: set[str]) -> list[tuple[str, str]]:
    groups: dict[Hashable, list[str]] = {}
    for node in graph:
        if node.op == MISSING_OP or is_stateful(node.op):
            continue
        groups.setdefault(_key(graph, node), []).append(node.name)
    pairs = []
    for names in groups.values():
        if len(names) < 2:
            continue
        survivor = next((n for n in names if n in keep), names[0])
        pairs += [(n, survivor) for n in names if n != survivor and n not in keep]
    return pairs


def _key(graph: Graph, node: Node) -> Hashable:
    attrs = dict(node.attrs)
    if node.op == "Const" and node.outputs and node.outputs[0].is_constant:  # what the writer writes
        attrs["value"], attrs["dtype"] = node.outputs[0], node.outputs[0].dtype
    return (node.op, node.meta.get(keys.DEVICE, "") or "", tuple(graph.inputs_of(node.name)),
            frozenset(graph.control_inputs_of(node.name)),
            tuple(sorted((key, _canonical(value)) for key, value in attrs.items())))


def _canonical(value: Any) -> Hashable:
    """A hashable stand-in for an attr value: equal exactly when the values are."""
    if isinstance(value, Tensor):
        data = value.data
        if data is None:
            return ("tensor", id(value))
        if data.dtype == object:  # strings
            payload: Hashable = tuple(data.ravel().tolist())
        else:  # a digest keeps large weights out of the key (GTT keys on a 64-bit hash)
            payload = hashlib.sha256(np.ascontiguousarray(data).view(np.uint8).ravel()).digest()
        return ("tensor", value.dtype, value.shape, str(data.dtype), data.shape, payload)
    if isinstance(value, (tuple, list)):
        return ("list", tuple(_canonical(v) for v in value))
    if isinstance(value, FuncAttr):
        return ("func", value.name, tuple(sorted((k, _canonical(v)) for k, v in value.attrs.items())))
    if isinstance(value, np.ndarray) and value.dtype != object:
        return ("array", str(value.dtype), value.shape, hashlib.sha256(np.ascontiguousarray(value).tobytes()).digest())
    try:
        hash(value)
    except TypeError:
        return ("unhashable", id(value))  # never equal to another node's: no merge
    return (type(value).__name__, value)


def _merge(graph: Graph, duplicate: str, survivor: str) -> None:
    ports = sorted(graph.used_ports(duplicate))
    for port in ports:
        graph.replace_uses(Ref(duplicate, port), Ref(survivor, port))
    for consumer in graph.control_consumers(duplicate):
        controls = [survivor if c == duplicate else c for c in graph.control_inputs_of(consumer)]
        graph.set_control_inputs(consumer, controls)
    graph.remove_node(duplicate)
