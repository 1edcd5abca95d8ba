"""Graph -> TFLite flatbuffer bytes.

Unchanged parts are written from the tables the reader kept, in their original order
(tensors by original index, buffers and operator codes as they were, new ones appended),
so a read -> write with no change gives back the same model. When the model would pass
the 2 GB a flatbuffer can address, buffer data moves after the flatbuffer (16-byte
aligned, `offset`/`size` filled in). The zip archive of TFLite Support's associated files,
when the model has one, goes last (associated_files.py).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import FormatError
from ...ir import Graph, Node, Ref, Tensor
from . import associated_files, keys, ops, tables, tensor_data
from .flatbuf import Encoder
from .schema import load_schema

FLATBUFFER_LIMIT = 2**31 - 2**24  # leave room for tables under the 2 GB addressable limit
EXTERNAL_ALIGN = 16
LARGE_CUSTOM_OPTIONS_DATA = "graphtool.large_custom_options"  # an Operator's options stored after the flatbuffer


def write(graph: Graph, allow_unknown: bool = False, external: bool | None = None) -> bytes:
    """Serialize `graph`. Refuses (FormatError) to drop fields the schema does not know
    unless `allow_unknown`. `external` forces (or forbids) the external-buffer layout."""
    return b"".join(write_parts(graph, allow_unknown, external))


def write_parts(graph: Graph, allow_unknown: bool = False, external: bool | None = None) -> list:
    """The serialized model as consecutive byte chunks (views where possible), so large
    models reach the disk without being joined in memory first."""
    unknown = graph.meta.get(keys.UNKNOWN) or []
    if unknown and not allow_unknown:
        raise FormatError("the model has fields this schema does not know, which writing would drop: "
                          + "; ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
                          + " (allow_unknown=True / --allow-unknown-fields writes it without them)")
    parts = _Writer(graph).parts(external)
    archive = graph.meta.get(keys.ASSOCIATED_FILES)
    if archive:  # TFLite Support's associated files go last, as its metadata writer puts them
        parts.append(associated_files.placed(archive, sum(len(part) for part in parts)))
    return parts


class _Writer:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.graphs = [graph] + list(graph.subgraphs)
        self.schema = load_schema()
        self.buffers: list[dict] = [dict(b) for b in graph.meta.get(keys.BUFFERS) or [{}]]
        self.opcodes: list[dict] = list(graph.meta.get(keys.OPERATOR_CODES) or [])
        self.replaces: dict[int, int] = {}  # added code -> the code its first operator was read with
        self.tensor_index: list[dict[int, int]] = []  # per subgraph: id(Tensor) -> index
        self.subgraphs = [self._subgraph(g, i) for i, g in enumerate(self.graphs)]

    # -- layout ----------------------------------------------------------------------------
    def parts(self, external: bool | None) -> list:
        model = dict(self.graph.meta.get(keys.HEADER) or {"version": 3})
        model["operator_codes"] = self._compact_opcodes()
        model["subgraphs"] = self.subgraphs
        model["buffers"] = self.buffers
        signatures = self._signatures()
        if signatures is not None:
            model["signature_defs"] = signatures
        self._metadata(model)
        model["subgraphs"] = [_leave_out_absent(sg) for sg in self.subgraphs]
        payload = sum(_data_size(b) for b in self.buffers)
        if external is None:
            external = bool(self.graph.meta.get(keys.EXTERNAL)) or payload > FLATBUFFER_LIMIT
        if not external:
            model["buffers"] = [_inline(b) for b in self.buffers]
            table_count = sum(len(sg["tensors"]) + len(sg["operators"]) for sg in self.subgraphs)
            # Room to spare costs nothing (the builder's memory is a lazily zeroed mapping);
            # running out costs a copy of everything built so far.
            room = payload + payload // 8 + 1024 * table_count + (1 << 24)
            return Encoder(self.schema, room).finish(model, "Model")
        return self._external(model)

    def _external(self, model: dict) -> list:
        """Flatbuffer first, then every buffer's data (and large custom options), each
        16-byte aligned, with offsets filled in. The flatbuffer is built twice: offsets
        are fixed-size fields, so the first build measures where the data can start."""
        slots = []  # (table, offset field, size field, blob)
        model["buffers"] = []
        for buffer in self.buffers:
            blob = tables.stored_data(buffer)
            entry = {k: v for k, v in buffer.items() if k not in ("data", keys.EXTERNAL_DATA, keys.UNREADABLE_DATA)}
            if keys.UNREADABLE_DATA not in buffer:  # one pointing outside the file keeps its offset and size
                entry.update(offset=0, size=0)
            if blob is not None and blob.size:
                slots.append((entry, "offset", "size", blob))
            model["buffers"].append(entry)
        for sg in self.subgraphs:
            for od in sg["operators"]:
                blob = od.pop(LARGE_CUSTOM_OPTIONS_DATA, None)
                if blob is not None:
                    slots.append((od, "large_custom_options_offset", "large_custom_options_size", blob))
        for table, offset_key, size_key, blob in slots:
            table[offset_key], table[size_key] = 2, blob.size  # placeholders, same width as the real ones
        measured = sum(len(part) for part in Encoder(self.schema).finish(model, "Model"))
        position = _align(measured, EXTERNAL_ALIGN)
        for table, offset_key, _, blob in slots:
            table[offset_key] = position
            position = _align(position + blob.size, EXTERNAL_ALIGN)
        parts = Encoder(self.schema).finish(model, "Model")
        written = sum(len(part) for part in parts)
        for table, offset_key, _, blob in slots:
            parts.append(b"\0" * (table[offset_key] - written))
            parts.append(memoryview(np.ascontiguousarray(blob)).cast("B"))
            written = table[offset_key] + blob.size
        return parts

    # -- subgraphs -------------------------------------------------------------------------
    def _subgraph(self, graph: Graph, index: int) -> dict:
        tensors = self._ordered_tensors(graph)
        lookup = {id(t): i for i, t in enumerate(tensors)}
        self.tensor_index.append(lookup)
        users = self._buffer_users(tensors)
        sg = dict(graph.meta.get(keys.SUBGRAPH) or {})
        sg["tensors"] = [self._tensor(t, users) for t in tensors]
        sg["inputs"] = np.array([lookup[id(graph.node(n).outputs[0])] for n in graph.inputs], np.int32)
        sg["outputs"] = np.array([lookup[id(self._tensor_of(graph, r))] for r in graph.outputs], np.int32)
        sg["operators"] = [self._operator(graph, node, lookup) for node in graph if ops.is_operator(node)]
        if graph.name:
            sg["name"] = graph.name.encode("utf-8", "surrogateescape")
        for key, (as_read, ir_as_read) in sg.pop(keys.RAW_IO, {}).items():
            if list(graph.inputs if key == "inputs" else graph.outputs) == ir_as_read:
                sg[key] = np.zeros(0, np.int32) if as_read is None else as_read  # as read, while unchanged
        return sg

    def _ordered_tensors(self, graph: Graph) -> list[Tensor]:
        seen: dict[int, Tensor] = {}
        for node in graph:
            for tensor in node.outputs:
                seen.setdefault(id(tensor), tensor)
        original = sorted((t for t in seen.values() if keys.INDEX in t.meta), key=lambda t: t.meta[keys.INDEX])
        return original + [t for t in seen.values() if keys.INDEX not in t.meta]

    def _tensor_of(self, graph: Graph, ref: Ref) -> Tensor:
        tensor = graph.tensor(ref)
        if tensor is None:
            node = graph.node(ref.node)
            raise FormatError(f"{ref} names output {ref.port} of {node.name!r}, which has {len(node.outputs)}")
        return tensor

    def _buffer_users(self, tensors: list[Tensor]) -> dict[int, int]:
        users: dict[int, int] = {}
        for graph in self.graphs:
            for node in graph:
                for t in node.outputs:
                    b = tables.buffer_of(t)
                    users[b] = users.get(b, 0) + 1
        return users

    def _tensor(self, tensor: Tensor, users: dict[int, int]) -> dict:
        original = tensor.meta.get(keys.TABLE)
        table = dict(original or {})
        if original is None or not keys.described_as_read(tensor):
            self._describe(tensor, table)
        table["buffer"] = self._buffer_for(tensor, table.get("buffer", 0), users)
        return table

    def _describe(self, tensor: Tensor, table: dict) -> None:
        if tensor.dtype is None or tensor.dtype.tflite is None:
            raise FormatError(f"tensor {tensor.name!r}: {tensor.dtype} has no TFLite type")
        table["type"] = tensor.dtype.tflite
        table["name"] = tensor.name.encode("utf-8", "surrogateescape")
        if tensor.shape is None:
            table.pop("shape", None)
            table.pop("shape_signature", None)
            table["has_rank"] = False
        else:
            table["shape"] = np.array([1 if d is None else d for d in tensor.shape], np.int32)
            if any(d is None for d in tensor.shape) or "shape_signature" in table:
                table["shape_signature"] = np.array([-1 if d is None else d for d in tensor.shape], np.int32)
            table["has_rank"] = True
        q = tensor.quantization
        if q is None:
            if _has_scale(table.get("quantization")):  # what the reader reads as no quantization stays
                table.pop("quantization")
        else:
            entry = dict(table.get("quantization") or {})
            entry.update(scale=np.asarray(q.scale, np.float32), zero_point=np.asarray(q.zero_point, np.int64),
                         quantized_dimension=int(q.axis or 0))
            for key in ("min", "max"):
                value = getattr(q, key)
                if value is None:
                    entry.pop(key, None)
                else:
                    entry[key] = np.asarray(value, np.float32)
            table["quantization"] = entry

    def _buffer_for(self, tensor: Tensor, original: int, users: dict[int, int]) -> int:
        if not tensor.is_constant or not tensor.data_replaced:
            return original if original < len(self.buffers) else 0
        payload = tensor_data.encode(tensor.data, tensor.dtype)
        if 0 < original < len(self.buffers) and users.get(original, 0) == 1:
            self.buffers[original] = {"data": payload}
            return original
        return self._append_buffer(payload)

    # -- operators -------------------------------------------------------------------------
    def _operator(self, graph: Graph, node: Node, lookup: dict[int, int]) -> dict:
        od = dict(node.meta.get(keys.OPERATOR) or {})
        od["opcode_index"] = self._opcode(node)
        od["inputs"] = np.array([-1 if ref is None else lookup[id(self._tensor_of(graph, ref))]
                                 for ref in graph.inputs_of(node.name)], np.int32)
        od["outputs"] = np.array([lookup[id(t)] for t in node.outputs], np.int32)
        if keys.RAW_INDICES in node.meta and node.meta[keys.RAW_INDICES] == tables.operator_io(graph, node.name):
            for key in ("inputs", "outputs"):  # indices naming tensors the subgraph lacks: as read
                od.pop(key)
                if node.meta[keys.OPERATOR].get(key) is not None:
                    od[key] = node.meta[keys.OPERATOR][key]
        attrs = dict(node.attrs)
        options_2 = attrs.pop("options_2", None)
        self._options(od, "builtin_options", "BuiltinOptions", node.meta.get(keys.OPTIONS_TYPE), attrs, node)
        self._options(od, "builtin_options_2", "BuiltinOptions2", node.meta.get(keys.OPTIONS_2_TYPE),
                      options_2, node)
        if keys.LARGE_CUSTOM_OPTIONS in node.meta:
            od[LARGE_CUSTOM_OPTIONS_DATA] = node.meta[keys.LARGE_CUSTOM_OPTIONS]
        if keys.INTERMEDIATES in node.meta:
            od["intermediates"] = np.array([lookup[id(t)] for t in node.meta[keys.INTERMEDIATES]], np.int32)
        return od

    def _options(self, od: dict, field: str, union: str, member: str | None, attrs: dict | None, node: Node) -> None:
        if member is None or attrs is None:
            if attrs:
                raise FormatError(f"operator {node.name!r} ({node.op}) has attrs but no options table type")
            od.pop(field, None)
            od[f"{field}_type"] = 0
            return
        od[f"{field}_type"] = self.schema.unions[union][member]
        od[field] = {k: self._subgraph_index(v) if ops.is_subgraph_field(k) else v for k, v in attrs.items()}

    def _subgraph_index(self, value: Any) -> Any:
        if isinstance(value, tuple):
            return np.array([self._subgraph_index(v) for v in value], np.int32)
        if isinstance(value, Graph):
            for i, g in enumerate(self.graphs):
                if g is value:
                    return i
            raise FormatError(f"an operator names subgraph {value.name!r}, which is not in the model")
        return value

    def _compact_opcodes(self) -> list[dict]:
        """Drop operator codes that operators used when the model was read but none uses now
        (a pass changed their op or version); codes the file never used stay. A code added
        for a new version of an op takes the place of the code its first operator was read
        with (else of another dropped code of that op), so operators keep their indices — and
        index 0, the default, the file need not store."""
        used = {od["opcode_index"] for sg in self.subgraphs for od in sg["operators"]}
        was_used = set(self.graph.meta.get(keys.OPCODES_IN_USE, ()))
        read = len(self.graph.meta.get(keys.OPERATOR_CODES) or [])
        drop = {i for i in was_used if i not in used and i < read}
        if not drop:
            return self.opcodes
        filled: dict[int, int] = {}  # dropped index -> added index that takes its place
        added = range(read, len(self.opcodes))
        for new in added:  # first the code the operators were read with
            old = self.replaces.get(new)
            if old in drop and old not in filled and ops.op_name(self.opcodes[old]) == ops.op_name(self.opcodes[new]):
                filled[old] = new
        for new in (n for n in added if n not in filled.values()):  # then any dropped code of the op
            name = ops.op_name(self.opcodes[new])
            place = next((i for i in sorted(drop) if i not in filled
                          and ops.op_name(self.opcodes[i]) == name), None)
            if place is not None:
                filled[place] = new
        moved = set(filled.values())
        order = [filled.get(i, i) for i in range(len(self.opcodes))
                 if (i not in drop or i in filled) and i not in moved]
        new_index = {old: new for new, old in enumerate(order)}
        for sg in self.subgraphs:
            for od in sg["operators"]:
                od["opcode_index"] = new_index[od["opcode_index"]]
        return [self.opcodes[i] for i in order]

    def _opcode(self, node: Node) -> int:
        found = tables.code_for(self.opcodes, node)
        if found is not None:
            return found
        self.opcodes.append(ops.opcode_for(node.op, keys.op_version(node)))
        index = node.meta.get(keys.OPCODE_INDEX)
        if index is not None:
            self.replaces[len(self.opcodes) - 1] = index
        return len(self.opcodes) - 1

    # -- metadata --------------------------------------------------------------------------
    def _metadata(self, model: dict) -> None:
        """Write graph.meta[keys.METADATA] (name -> bytes) back: changed entries get their
        buffer rewritten, new ones are appended, removed ones dropped."""
        wanted = self.graph.meta.get(keys.METADATA)
        if wanted is None:
            return
        entries = []
        for entry in model.get("metadata") or []:
            name = (entry.get("name") or b"").decode("utf-8", "surrogateescape")
            if name not in wanted:
                if int(entry.get("buffer", 0)) >= len(self.graph.meta.get(keys.BUFFERS) or ()):
                    entries.append(entry)  # it named no buffer when read (keys.PROBLEMS): kept as read
                continue
            entry = dict(entry)
            index = int(entry.get("buffer", 0))
            raw = tables.stored_data(self.buffers[index]) if index < len(self.buffers) else None
            if (b"" if raw is None else raw.tobytes()) != bytes(wanted[name]):  # no data reads as empty
                if 0 < index < len(self.buffers) and self._only_metadata_uses(index, model):
                    self.buffers[index] = {"data": np.frombuffer(bytes(wanted[name]), np.uint8)}
                else:
                    entry["buffer"] = self._append_buffer(wanted[name])
            entries.append(entry)
        known = {(e.get("name") or b"").decode("utf-8", "surrogateescape") for e in model.get("metadata") or []}
        for name, data in wanted.items():
            if name not in known:
                entries.append({"name": name.encode("utf-8", "surrogateescape"), "buffer": self._append_buffer(data)})
        if entries or model.get("metadata") is not None:
            model["metadata"] = entries

    def _only_metadata_uses(self, index: int, model: dict) -> bool:
        """True when buffer `index` holds one metadata entry's value and nothing else's."""
        tensors = sum(1 for sg in self.subgraphs for t in sg["tensors"] if t.get("buffer") == index)
        entries = sum(1 for e in model.get("metadata") or [] if int(e.get("buffer", 0)) == index)
        return tensors == 0 and entries == 1 and index not in set(model.get("metadata_buffer", ()))

    def _append_buffer(self, data: bytes | np.ndarray) -> int:
        self.buffers.append({"data": data if isinstance(data, np.ndarray) else np.frombuffer(bytes(data), np.uint8)})
        return len(self.buffers) - 1

    # -- signatures ------------------------------------------------------------------------
    def _signatures(self) -> list[dict] | None:
        signatures = self.graph.meta.get(keys.SIGNATURE_DEFS)
        if signatures is None:
            return None
        out = []
        for sig in signatures:
            table = dict(sig.get(keys.TABLE) or {})
            index = next((i for i, g in enumerate(self.graphs) if g is sig["subgraph"]), None)
            if index is None:
                raise FormatError(f"signature {sig['key']!r} names a subgraph that is not in the model")
            lookup = self.tensor_index[index]
            for key in ("inputs", "outputs"):
                entries = []
                for name, tensor in sig[key]:
                    if id(tensor) not in lookup:
                        raise FormatError(f"signature {sig['key']!r} {key[:-1]} {name!r} names a tensor "
                                          "that is no longer in the model")
                    entries.append({"name": name.encode("utf-8", "surrogateescape"), "tensor_index": lookup[id(tensor)]})
                for position, entry in (sig.get(keys.DANGLING_ENTRIES) or {}).get(key, []):
                    entries.insert(min(position, len(entries)), entry)  # as read: they name no tensor
                table[key] = entries
            if sig["key"] or "signature_key" in table:  # one left out when read stays left out
                table["signature_key"] = sig["key"].encode("utf-8", "surrogateescape")
            table["subgraph_index"] = index
            out.append(table)
        for position, table in self.graph.meta.get(keys.DANGLING_SIGNATURES) or []:
            out.insert(min(position, len(out)), table)  # as read: they name no subgraph
        return out


def _leave_out_absent(sg: dict) -> dict:
    """The lists a subgraph left out when read and that are still empty are left out again
    (LiteRT refuses a subgraph without tensors, yet takes an empty list)."""
    absent = sg.get(keys.ABSENT_LISTS)
    if not absent:
        return sg
    return {k: v for k, v in sg.items() if k != keys.ABSENT_LISTS and not (k in absent and (v is None or not len(v)))}


def _has_scale(quantization: dict | None) -> bool:
    """Whether a QuantizationParameters table quantizes (the converter writes empty ones)."""
    return bool(quantization) and quantization.get("scale") is not None and len(quantization["scale"]) > 0


def _data_size(buffer: dict) -> int:
    raw = tables.stored_data(buffer)
    return 0 if raw is None else int(raw.size)


def _inline(buffer: dict) -> dict:
    raw = buffer.get(keys.EXTERNAL_DATA)
    if raw is None:
        return {k: v for k, v in buffer.items() if k != keys.UNREADABLE_DATA}
    return {"data": raw}


def _align(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment
