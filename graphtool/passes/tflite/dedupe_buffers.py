"""dedupe_buffers: constants with identical data share one buffer (TFLite)."""
from __future__ import annotations

import hashlib
from collections import defaultdict

from ...formats.tflite import keys, tables
from ...ir import Graph, Tensor
from ..registry import Context, NoParams, PassResult, register


@register("dedupe_buffers", NoParams, formats=("tflite",), guarantee="exact")
def dedupe_buffers(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Store identical constant data once: tensors with equal bytes share one buffer.

    Tensors of one dtype whose buffers hold the same bytes point at one buffer (the
    first), in every subgraph; tensors with an empty buffer of their own (the converter
    gives every activation one) point at buffer 0, the shared empty one; buffers left
    unused are removed.

    Covers constants as read from the file. A constant whose data a pass changed in this
    run gets its own buffer when written (the writer encodes it anew): write and load the
    model, then dedupe, to share those too. Metadata buffers are left alone.
    stats: tensors_retargeted, empty_buffers_shared, buffers_dropped, bytes_saved (buffer
    data no longer stored)."""
    buffers = graph.meta.get(keys.BUFFERS) or []
    metadata = tables.metadata_buffers(graph)
    groups: dict[tuple, list[tuple[int, Tensor]]] = defaultdict(list)
    for tensor in tables.all_tensors(graph):
        index = tables.buffer_of(tensor)
        if not 0 < index < len(buffers) or index in metadata or not tensor.is_constant or tensor.data_replaced:
            continue
        raw = tables.buffer_bytes(buffers[index])
        if raw is None:
            continue
        groups[(tensor.dtype, raw.size)].append((index, tensor))
    retargeted = empty = 0
    for tensor in tables.all_tensors(graph):
        index = tables.buffer_of(tensor)
        if 0 < index < len(buffers) and index not in metadata and not tensor.is_constant \
                and _empty(buffers[index]):
            tables.retable(tensor, buffer=0)
            empty += 1
    for candidates in groups.values():
        if len({index for index, _ in candidates}) < 2:
            continue
        first: dict[bytes, int] = {}
        digests = {index: _digest(tables.buffer_bytes(buffers[index])) for index, _ in candidates}
        for index in sorted(digests):
            first.setdefault(digests[index], index)
        for index, tensor in candidates:
            target = first[digests[index]]
            if target != index:
                tables.retable(tensor, buffer=target)
                retargeted += 1
    dropped, saved = tables.compact_buffers(graph)
    stats = {"tensors_retargeted": retargeted, "empty_buffers_shared": empty, "buffers_dropped": dropped,
             "bytes_saved": saved}
    return PassResult(bool(retargeted or empty or dropped), stats)


def _empty(buffer: dict) -> bool:
    return tables.buffer_bytes(buffer) is None and not int(buffer.get("size", 0))


def _digest(raw) -> bytes:
    return hashlib.sha256(memoryview(raw).cast("B")).digest()
