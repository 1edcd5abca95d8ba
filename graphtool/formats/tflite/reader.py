"""TFLite flatbuffer bytes -> Graph (subgraph 0 is the Graph, the rest its `subgraphs`).

Operators become Nodes named after their first output tensor; tensors nothing computes
become source nodes (Input, Const, Variable, Tensor). Builtin options become node attrs
(subgraph indices in them become the Graph objects they name). Everything the IR does
not model — tables as read, buffers, operator codes, metadata — is kept in meta for the
writer.
"""
from __future__ import annotations

import math

from typing import Any

import numpy as np

from ...errors import FormatError
from ...ir import DType, Graph, Node, Quantization, Ref, Tensor
from . import associated_files, keys, ops, tables, tensor_data, variables
from .flatbuf import Decoder
from .schema import Schema, load_schema

FORMAT = "tflite"
MAX_RANK = 32  # numpy's limit is 64; no TFLite kernel goes past 8
MAX_ELEMENTS = 1 << 40  # a constant's dimensions (zeros left out) multiplied past this are not decoded


def read(data: bytes, source: str | None = None) -> Graph:
    """The model in `data`; `source` (the file's path) is named by errors raised later, when
    a constant the file holds broken is asked for its data."""
    return _Reader(data, load_schema(), source).graph()


class _Reader:
    def __init__(self, data: bytes, schema: Schema, source: str | None = None):
        self.data = data
        self.source = source
        self.schema = schema
        decoder = Decoder(data, schema)
        self.model = decoder.root("Model")
        self.unknown = decoder.unknown
        self.buffers: list[dict] = self.model.get("buffers") or []
        self.opcodes: list[dict] = self.model.get("operator_codes") or []
        self.external = False
        self.data_end = 8  # where an archive of associated files may start: past the identifier and external data
        self.problems: list[str] = []
        for index, buffer in enumerate(self.buffers):
            offset, size = int(buffer.get("offset", 0)), int(buffer.get("size", 0))
            inline = buffer.get("data") is not None and len(buffer["data"]) > 0
            if offset > 1 and inline:  # LiteRT reads the data and never looks at the offset
                self.problems.append(f"buffer {index}: holds its data and points past the flatbuffer too (offset "
                                     f"{offset}, size {size}); LiteRT reads the data; kept as read")
            elif offset > 1 and not size:  # an empty buffer "after the flatbuffer": kept as read
                self.problems.append(f"buffer {index}: stored after the flatbuffer at offset {offset}, but empty; "
                                     "kept as read")
            elif offset > 1:  # stored after the flatbuffer (models over 2 GB)
                try:
                    buffer[keys.EXTERNAL_DATA] = self._outside(offset, size, f"buffer {index}")
                    self.external = True
                except FormatError as exc:  # kept as read (offset and size written back as they are)
                    self.problems.append(str(exc))
                    buffer[keys.UNREADABLE_DATA] = str(exc)

    def graph(self) -> Graph:
        subgraphs = self.model.get("subgraphs") or []
        if not subgraphs:
            raise FormatError("model has no subgraphs")
        graphs = [Graph(name=(sg.get("name") or b"").decode("utf-8", "surrogateescape"), format=FORMAT)
                  for sg in subgraphs]
        tensors = [self._tensors(sg, i) for i, sg in enumerate(subgraphs)]
        for index, (sg, graph) in enumerate(zip(subgraphs, graphs)):
            self._fill(graph, sg, index, tensors[index], graphs)
        self.problems += variables.problems(graphs)
        main = graphs[0]
        main.subgraphs = graphs[1:]
        dangling = [(position, sig) for position, sig in enumerate(self.model.get("signature_defs") or [])
                    if not 0 <= int(sig.get("subgraph_index", 0)) < len(graphs)]
        for _, sig in dangling:  # LiteRT runs the model (only a signature runner would look)
            self.problems.append(f"signature {sig.get('signature_key')!r}: subgraph {sig.get('subgraph_index', 0)} "
                                 f"out of range ({len(graphs)} subgraphs); kept as read")
        if dangling:
            main.meta[keys.DANGLING_SIGNATURES] = dangling
        archive = self._associated_files()
        if archive is not None:
            main.meta[keys.ASSOCIATED_FILES] = archive
        header = {k: v for k, v in self.model.items()
                  if k not in ("subgraphs", "buffers", "operator_codes", "signature_defs")}
        main.meta.update({
            keys.HEADER: header,
            keys.BUFFERS: self.buffers,
            keys.OPERATOR_CODES: self.opcodes,
            keys.OPCODES_IN_USE: sorted({int(od.get("opcode_index", 0)) for sg in subgraphs
                                         for od in sg.get("operators") or []}),
            keys.UNKNOWN: list(self.unknown),
            keys.PROBLEMS: self.problems,
            keys.EXTERNAL: self.external,
            keys.SIGNATURE_DEFS: None if self.model.get("signature_defs") is None else
            [self._signature(s, graphs, tensors) for s in self.model["signature_defs"]
             if 0 <= int(s.get("subgraph_index", 0)) < len(graphs)],
            keys.METADATA: {(m.get("name") or b"").decode("utf-8", "surrogateescape"): self._metadata(m)
                            for m in self.model.get("metadata") or [] if not self._dangling_metadata(m)},
            keys.DESCRIPTION: (self.model.get("description") or b"").decode("utf-8", "surrogateescape"),
        })
        return main

    # -- tensors ---------------------------------------------------------------------------
    def _tensors(self, sg: dict, sg_index: int) -> list[Tensor]:
        return [self._tensor(td, i, sg_index) for i, td in enumerate(sg.get("tensors") or [])]

    def _tensor(self, td: dict, index: int, sg_index: int) -> Tensor:
        name = (td.get("name") or b"").decode("utf-8", "surrogateescape")
        where = f"subgraph {sg_index} tensor {index} ({name!r})"
        try:
            dtype = DType.from_tflite(td["type"])
        except ValueError as exc:  # LiteRT loads it (a kernel that reads the tensor refuses it): kept as read
            self.problems.append(f"{where}: {exc}; kept as read")
            dtype = None
        shape = _shape(td)
        try:
            quantization = _quantization(td.get("quantization"), shape, where)
        except FormatError as exc:  # LiteRT loads it (a kernel that needs the scales looks): the table is kept
            self.problems.append(str(exc))
            quantization = None
        buffer_index = td.get("buffer", 0)
        raw = self._buffer(buffer_index, where)
        unreadable = self.buffers[buffer_index].get(keys.UNREADABLE_DATA) if raw is None else None
        loader = None
        if unreadable is not None:
            loader = _failing(FormatError(unreadable, self.source, where))
        elif raw is not None:
            try:
                loader = self._loader(raw, dtype, shape, td, where)
            except _Unchecked as exc:
                # LiteRT looks into these bytes only when a kernel reads them: a model whose broken
                # constant nothing reads still runs. Read, kept as it is; asking for its data raises.
                self.problems.append(str(exc))
                loader = _failing(FormatError(exc.message, self.source, where))
        tensor = Tensor(name, dtype, shape, quantization=quantization, meta={keys.TABLE: td, keys.INDEX: index},
                        loader=loader)
        if td.get("sparsity") is not None:
            tensor.meta[keys.SPARSITY] = td["sparsity"]
            values = None if raw is None or dtype is None or not dtype.itemsize else raw.size // dtype.itemsize
            self.problems += [f"{where}: {problem}" for problem in _sparsity_problems(td["sparsity"], values)]
            if raw is None and unreadable is None:
                self.problems.append(f"{where}: sparse, but its buffer holds no values (a kernel reads outside it)")
        keys.mark_described(tensor)
        return tensor

    def _loader(self, raw: np.ndarray, dtype: DType, shape: tuple | None, td: dict, where: str):
        if td.get("sparsity") is not None:  # the stored non-zero values, 1-D
            if dtype is None or dtype.itemsize is None or raw.size % dtype.itemsize:
                raise _Unchecked(f"sparse {dtype} buffer of {raw.size} bytes", where=where)
            return lambda: tensor_data.decode(raw, dtype, (raw.size // dtype.itemsize,), where)
        if dtype is None or shape is None or any(d is None for d in shape) or dtype.numpy is None:
            return lambda: raw  # no type or shape to give the bytes: keep them as they are
        declared = td.get("shape")
        if declared is not None and tuple(int(d) for d in declared) != shape:  # LiteRT sizes it by `shape`
            raise _Unchecked(f"constant's shape_signature {list(shape)} disagrees with its shape {list(declared)}",
                             where=where)
        expected = tensor_data.expected_nbytes(dtype, shape)
        if expected is not None and expected > raw.size:  # LiteRT refuses it too (required_bytes <= bytes)
            raise FormatError(f"buffer holds {raw.size} bytes, a {dtype} tensor of shape {list(shape)} "
                              f"needs {expected}", where=where)
        if math.prod(d for d in shape if d) > MAX_ELEMENTS:  # numpy cannot hold even an empty one
            raise _Unchecked(f"constant claims shape {list(shape)}, larger than graphtool represents", where=where)
        if len(shape) > MAX_RANK:
            raise _Unchecked(f"constant has rank {len(shape)}; graphtool decodes ranks up to {MAX_RANK}",
                              where=where)
        if dtype is DType.STRING:
            try:
                tensor_data.check_strings(raw, shape, where)
            except FormatError as exc:
                raise _Unchecked(exc.message, where=where) from None
        if expected is not None and expected < raw.size:  # LiteRT reads the bytes it needs, and runs
            self.problems.append(f"{where}: buffer holds {raw.size} bytes, a {dtype} tensor of shape "
                                 f"{list(shape)} needs {expected} (the rest is kept, unread)")
            raw = raw[:expected]
        return lambda: tensor_data.decode(raw, dtype, shape, where)

    def _buffer(self, index: int, where: str) -> np.ndarray | None:
        if index >= len(self.buffers):
            raise FormatError(f"buffer index {index} out of range ({len(self.buffers)} buffers)", where=where)
        return tables.buffer_bytes(self.buffers[index])

    def _outside(self, offset: int, size: int, where: str) -> np.ndarray:
        """Bytes stored after the flatbuffer, checked against the file."""
        if offset + size > len(self.data):
            raise FormatError(f"points at bytes {offset}..{offset + size}, past the end of the file "
                              f"({len(self.data)} bytes)", where=where)
        self.data_end = max(self.data_end, offset + size)
        view = np.frombuffer(self.data, dtype=np.uint8, count=size, offset=offset)
        view.flags.writeable = False
        return view

    # -- nodes -----------------------------------------------------------------------------
    def _fill(self, graph: Graph, sg: dict, index: int, tensors: list[Tensor], graphs: list[Graph]) -> None:
        where = f"subgraph {index}"
        operators = sg.get("operators") or []
        produced: dict[int, Ref] = {}
        op_nodes = []
        names = _Names()
        for i, od in enumerate(operators):
            outputs = [int(t) for t in od.get("outputs", [])]
            bad = [t for t in outputs if not 0 <= t < len(tensors)]
            if bad:  # LiteRT loads it (it looks when it prepares the operator): kept as read
                self.problems.append(f"{where}: operator {i} output tensor {bad[0]} out of range "
                                     f"({len(tensors)} tensors); kept as read")
                outputs = [t for t in outputs if 0 <= t < len(tensors)]
            first = tensors[outputs[0]].name if outputs else ""
            op_nodes.append((od, outputs, names.take(first or f"op_{i}")))
        writers: dict[int, list[tuple[int, Ref]]] = {}  # tensor -> (operator, output) writing it, in order
        for i, (_, outputs, name) in enumerate(op_nodes):
            for port, t in enumerate(outputs):
                if t in writers:
                    # LiteRT loads it (each reader gets the last value written before it): kept
                    self.problems.append(f"{where}: tensor {t} is an output of operators {writers[t][0][0]} and {i}")
                writers.setdefault(t, []).append((i, Ref(name, port)))
                produced[t] = Ref(name, port)

        declared = {key: [int(t) for t in sg.get(key, [])] for key in ("inputs", "outputs")}
        dangling = {key: [t for t in values if not 0 <= t < len(tensors)] for key, values in declared.items()}
        for key, values in dangling.items():
            if values:  # LiteRT loads it (only running this subgraph would look): kept as read
                self.problems.append(f"{where}: subgraph {key[:-1]} tensor {values[0]} out of range "
                                     f"({len(tensors)} tensors); kept as read")
        computed = [t for t in declared["inputs"] if t in writers]
        if computed:  # LiteRT loads it (the operator overwrites what is fed): kept as read
            self.problems.append(f"{where}: subgraph input tensor {computed[0]} is computed by an operator; kept "
                                 "as read")
            dangling["inputs"] += computed
        inputs = [t for t in declared["inputs"] if 0 <= t < len(tensors) and t not in writers]
        source_names: dict[int, str] = {}
        for t, tensor in enumerate(tensors):
            if t in produced:
                continue
            op = (ops.INPUT_OP if t in inputs else ops.CONST_OP if tensor.is_constant
                  else ops.VARIABLE_OP if tensor.meta[keys.TABLE].get("is_variable") else ops.TENSOR_OP)
            name = names.take(tensor.name or f"tensor_{t}")
            graph.add_node(Node(name, op, outputs=[tensor]))
            produced[t] = Ref(name, 0)
            source_names[t] = name

        for i, (od, outputs, name) in enumerate(op_nodes):
            graph.add_node(self._operator(od, i, name, [tensors[t] for t in outputs], tensors, graphs, where))
        for i, (od, outputs, name) in enumerate(op_nodes):
            refs = []
            for t in od.get("inputs", []):
                t = int(t)
                if t == -1:
                    refs.append(None)
                elif 0 <= t < len(tensors):
                    earlier = [ref for writer, ref in writers.get(t, ()) if writer < i]
                    refs.append(earlier[-1] if earlier else produced[t])
                else:  # LiteRT loads it (it looks when it prepares the operator): kept as read
                    self.problems.append(f"{where}: operator {i} input tensor {t} out of range "
                                         f"({len(tensors)} tensors); kept as read")
                    refs.append(None)
            graph.set_inputs(name, refs)
            op = graph.node(name).op
            if len(refs) < ops.MIN_INPUTS.get(op, 0) and not keys.is_custom(graph.node(name)):
                self.problems.append(f"{where}: operator {i} ({op}) has {len(refs)} inputs, its kernel reads "
                                     f"{ops.MIN_INPUTS[op]} (past the list)")
            if len(outputs) != len(od.get("outputs", [])) or len(refs) != len(od.get("inputs", [])) or \
                    any(r is None and int(t) != -1 for r, t in zip(refs, od.get("inputs", []))):
                graph.node(name).meta[keys.RAW_INDICES] = tables.operator_io(graph, name)

        graph.inputs = [source_names[t] for t in inputs]
        graph.outputs = [produced[t] for t in declared["outputs"] if 0 <= t < len(tensors)]
        graph.meta[keys.SUBGRAPH] = {k: v for k, v in sg.items()
                                         if k not in ("tensors", "operators", "inputs", "outputs")}
        if dangling["inputs"] or dangling["outputs"]:
            graph.meta[keys.SUBGRAPH][keys.RAW_IO] = {"inputs": (sg.get("inputs"), list(graph.inputs)),
                                                      "outputs": (sg.get("outputs"), list(graph.outputs))}
        absent = [k for k in ("tensors", "operators", "inputs", "outputs") if sg.get(k) is None]
        if absent:  # LiteRT refuses a subgraph without tensors but takes an empty list: keep which it was
            graph.meta[keys.SUBGRAPH][keys.ABSENT_LISTS] = absent

    def _operator(self, od: dict, index: int, name: str, outputs: list[Tensor], tensors: list[Tensor],
                  graphs: list[Graph], where: str) -> Node:
        where = f"{where} operator {index}"
        opcode_index = int(od.get("opcode_index", 0))
        if opcode_index >= len(self.opcodes):
            raise FormatError(f"opcode index {opcode_index} out of range ({len(self.opcodes)} codes)", where=where)
        opcode = self.opcodes[opcode_index]
        node = Node(name, ops.op_name(opcode), outputs=outputs)
        node.meta.update({keys.VERSION: int(opcode.get("version", 1)), keys.CUSTOM: ops.is_custom(opcode),
                          keys.OPCODE_INDEX: opcode_index, keys.OPERATOR: od})
        if od.get("builtin_options") is not None:
            node.meta[keys.OPTIONS_TYPE] = self.schema.union_member("BuiltinOptions", od["builtin_options_type"])
            node.attrs = self._options(od["builtin_options"], node.op, node.meta[keys.OPTIONS_TYPE], graphs, where)
        if od.get("builtin_options_2") is not None:
            node.meta[keys.OPTIONS_2_TYPE] = self.schema.union_member("BuiltinOptions2",
                                                                          od["builtin_options_2_type"])
            node.attrs["options_2"] = self._options(od["builtin_options_2"], node.op, node.meta[keys.OPTIONS_2_TYPE],
                                                    graphs, where)
        if od.get("intermediates") is not None:
            bad = [int(t) for t in od["intermediates"] if not 0 <= int(t) < len(tensors)]
            if bad:  # LiteRT loads and runs it (only LSTM kernels read them): the table keeps them as read
                self.problems.append(f"{where}: intermediate tensor {bad[0]} out of range ({len(tensors)} tensors); "
                                     "kept as read")
            else:
                node.meta[keys.INTERMEDIATES] = [tensors[int(t)] for t in od["intermediates"]]
        size = int(od.get("large_custom_options_size", 0))
        if size:
            node.meta[keys.LARGE_CUSTOM_OPTIONS] = self._outside(
                int(od.get("large_custom_options_offset", 0)), size, f"{where} large custom options")
            self.external = True
        return node

    def _options(self, options: dict, op: str, member: str | None, graphs: list[Graph], where: str) -> dict[str, Any]:
        """The options as attrs, subgraph indices as the Graphs they name. Options of another
        operator's type (LiteRT reads none of them) keep their numbers: they name nothing."""
        attrs = dict(options)
        if not ops.owns_options(op, member):
            return attrs
        for key, value in options.items():
            if ops.is_subgraph_field(key):
                if isinstance(value, np.ndarray):
                    attrs[key] = tuple(_at(graphs, int(v), where) for v in value)
                else:
                    attrs[key] = _at(graphs, int(value), where)
        return attrs

    def _signature(self, sig: dict, graphs: list[Graph], tensors: list[list[Tensor]]) -> dict:
        index = int(sig.get("subgraph_index", 0))
        where = f"signature {sig.get('signature_key')!r}"
        graph = _at(graphs, index, where)

        dangling: dict[str, list[tuple[int, dict]]] = {}

        def entries(key: str) -> list[tuple[str, Tensor]]:
            out = []
            for position, entry in enumerate(sig.get(key) or []):
                name = (entry.get("name") or b"").decode("utf-8", "surrogateescape")
                tensor_index = int(entry.get("tensor_index", 0))
                if 0 <= tensor_index < len(tensors[index]):
                    out.append((name, tensors[index][tensor_index]))
                    continue
                # LiteRT loads and runs such a model (only its signature runner would look): keep
                # the entry as read, outside the IR, and say so
                dangling.setdefault(key, []).append((position, entry))
                self.problems.append(f"{where}: {key[:-1]} {name!r} names tensor {tensor_index}, out of range "
                                     f"({len(tensors[index])} tensors); kept as read")
            return out

        signature = {"key": (sig.get("signature_key") or b"").decode("utf-8", "surrogateescape"),
                     "subgraph": graph, "inputs": entries("inputs"), "outputs": entries("outputs"),
                     keys.TABLE: sig}
        if dangling:
            signature[keys.DANGLING_ENTRIES] = dangling
        return signature

    def _associated_files(self) -> bytes | None:
        """The zip archive the file ends with (TFLite Support's associated files), standalone;
        one it cannot keep is noted as unknown, so writing does not drop it unasked."""
        try:
            return associated_files.locate(self.data, self.data_end)
        except FormatError as exc:
            self.unknown.append(f"{exc}; writing drops it")
            return None

    def _dangling_metadata(self, entry: dict) -> bool:
        """A metadata entry whose buffer index is out of range: LiteRT ignores it and runs the
        model, so graphtool keeps the entry as read (writing puts it back) and says so."""
        index = int(entry.get("buffer", 0))
        if index < len(self.buffers):
            return False
        self.problems.append(f"metadata {entry.get('name')!r}: buffer index {index} out of range "
                             f"({len(self.buffers)} buffers); kept as read")
        return True

    def _metadata(self, entry: dict) -> bytes:
        index = int(entry.get("buffer", 0))
        raw = self._buffer(index, f"metadata {entry.get('name')!r}")
        return b"" if raw is None else raw.tobytes()


def _sparsity_problems(sparsity: dict, values: int | None) -> list[str]:
    """What in a sparse tensor's compressed levels would make a kernel read outside them or
    its values: a CSR level's segments must run in order from 0 over one entry per position of
    the level above, ending at its number of indices, and the levels must describe as many
    values as the buffer holds; the traversal order must order its levels, and the block map
    name dimensions. LiteRT does not check, and reads what lies beyond."""
    levels = len(sparsity.get("dim_metadata") or [])
    order, blocks = sparsity.get("traversal_order"), sparsity.get("block_map")
    if order is not None and sorted(int(v) for v in order) != list(range(levels)):
        shown = ", ".join(str(int(v)) for v in list(order)[:6]) + (", ..." if len(order) > 6 else "")
        return [f"its traversal order [{shown}] is not an order of its {levels} levels (a kernel reads outside them)"]
    if blocks is not None and any(not 0 <= int(v) < levels - len(blocks) for v in blocks):
        return [f"its block map names dimensions outside its {levels - len(blocks)} (a kernel reads outside them)"]
    problems, count = [], 1
    for level, metadata in enumerate(sparsity.get("dim_metadata") or []):
        if int(metadata.get("format", 0)) == 0:  # DENSE
            count *= max(0, int(metadata.get("dense_size", 0)))
            continue
        segments = (metadata.get("array_segments") or {}).get("values")
        indices = (metadata.get("array_indices") or {}).get("values")
        if segments is None or indices is None:
            problems.append(f"sparse level {level} has no segments or indices")
            return problems
        segments = np.asarray(segments, np.int64)
        if (len(segments) != count + 1 or np.any(np.diff(segments) < 0) or segments[0] != 0
                or segments[-1] != len(indices)):
            problems.append(f"sparse level {level}: its {len(segments)} segments do not run in order from 0 to its "
                            f"{len(indices)} indices over the {count} positions above (a kernel reads outside them)")
            return problems
        count = len(indices)
    if values is not None and count != values:
        problems.append(f"its sparse levels describe {count} values, its buffer holds {values} (a kernel reads "
                        "outside them)")
    return problems


class _Unchecked(FormatError):
    """A constant broken in a way LiteRT does not check when it loads a model."""


def _failing(error: FormatError):
    """A loader for a constant whose bytes cannot be read: asking for its data raises `error`."""
    def load():
        raise error
    return load


def _at(items: list, index: int, where: str):
    if not 0 <= index < len(items):
        raise FormatError(f"index {index} out of range ({len(items)} entries)", where=where)
    return items[index]


def _shape(td: dict) -> tuple | None:
    signature, shape = td.get("shape_signature"), td.get("shape")
    if signature is not None and len(signature) == (0 if shape is None else len(shape)):
        return tuple(None if d < 0 else int(d) for d in signature)
    if shape is None:
        return () if td.get("has_rank") else None
    return tuple(None if d < 0 else int(d) for d in shape)


def _quantization(q: dict | None, shape: tuple | None, where: str) -> Quantization | None:
    if not q or q.get("scale") is None or not len(q["scale"]):
        return None
    scale = np.asarray(q["scale"], dtype=np.float32)
    zero_point = q.get("zero_point")
    zero_point = np.zeros(scale.shape, np.int64) if zero_point is None else np.asarray(zero_point, np.int64)
    axis = int(q.get("quantized_dimension", 0))
    if zero_point.size not in (1, scale.size):
        raise FormatError(f"quantization has {scale.size} scales but {zero_point.size} zero points", where=where)
    if scale.size > 1 and shape is not None:
        if not 0 <= axis < len(shape):
            raise FormatError(f"quantized_dimension {axis} is outside the tensor's rank {len(shape)}", where=where)
        if shape[axis] is not None and shape[axis] != scale.size:
            raise FormatError(f"{scale.size} scales for dimension {axis} of size {shape[axis]}", where=where)
    return Quantization(scale, zero_point, axis,
                        None if q.get("min") is None else np.asarray(q["min"]),
                        None if q.get("max") is None else np.asarray(q["max"]))


class _Names:
    """Unique node names within one subgraph."""

    def __init__(self):
        self.used: set[str] = set()
        self.next: dict[str, int] = {}

    def take(self, wanted: str) -> str:
        name, k = wanted, self.next.get(wanted, 1)
        while name in self.used:
            name, k = f"{wanted}_{k}", k + 1
        self.next[wanted] = k
        self.used.add(name)
        return name
