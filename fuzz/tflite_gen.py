"""TFLite inputs: the fixtures mutated byte-wise, structurally (offsets, vector and string
lengths, vtables, index fields located by walking the seed) and semantically (decoded
with graphtool's codec, edited — self-loops, cycles, dangling and duplicate indices,
duplicate names, inconsistent shapes and types, huge claims — and encoded again). One seed
carries TFLite Support metadata and a zip of associated files (docs/metadata.md's digits
example), so its TFLITE_METADATA buffer is mutated structurally too and its archive byte-wise."""
from __future__ import annotations

import copy
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import graphtool
from graphtool.errors import GraphtoolError
from graphtool.formats import dumps
from graphtool.formats.tflite import associated_files, keys
from graphtool.formats.tflite.flatbuf import Decoder, Encoder
from graphtool.formats.tflite.schema import METADATA_SCHEMA, SCALAR_FORMATS, Schema, load_schema

from . import mutate_bytes
from .hostile import HOSTILE_STRINGS

SUFFIX = ".tflite"

_RANGES = {name: ((-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if fmt.islower() else (0, (1 << (8 * size)) - 1))
           for name, (fmt, size) in SCALAR_FORMATS.items() if name not in ("bool", "float32", "float64")}


def fit(value: int, scalar_type: str) -> int:
    """`value` wrapped into the range of a flatbuffer scalar type (so the encoder takes it)."""
    if scalar_type == "bool":
        return int(bool(value))
    low, high = _RANGES[scalar_type]
    span = high - low + 1
    return (value - low) % span + low


# -- a map of where things are in a valid seed ---------------------------------------------
@dataclass
class SeedMap:
    """Positions in a seed: offsets (field pos, target), vector/string length words,
    vtables, table soffsets, scalar fields and buffer payload ranges."""

    offsets: list[tuple[int, int]] = field(default_factory=list)
    vector_lengths: list[tuple[int, int, str]] = field(default_factory=list)  # pos, count, element kind
    string_lengths: list[tuple[int, int]] = field(default_factory=list)
    tables: list[tuple[int, str]] = field(default_factory=list)
    vtables: list[int] = field(default_factory=list)
    scalars: list[tuple[int, str, str]] = field(default_factory=list)  # pos, type, table.field
    payloads: list[tuple[int, int]] = field(default_factory=list)


def map_seed(data: bytes, schema: Schema, root: str = "Model") -> SeedMap:
    out = SeedMap()
    seen: set[int] = set()

    def u32(pos: int) -> int:
        return struct.unpack_from("<I", data, pos)[0]

    def table(pos: int, name: str) -> None:
        if pos in seen:
            return
        seen.add(pos)
        out.tables.append((pos, name))
        vtable = pos - struct.unpack_from("<i", data, pos)[0]
        out.vtables.append(vtable)
        vt_size = struct.unpack_from("<H", data, vtable)[0]
        slots = (vt_size - 4) // 2
        values: dict[str, int] = {}
        for f in schema.tables[name].fields:
            if f.slot >= slots:
                continue
            offset = struct.unpack_from("<H", data, vtable + 4 + 2 * f.slot)[0]
            if not offset:
                continue
            fpos = pos + offset
            if f.kind == "scalar":
                out.scalars.append((fpos, f.type, f"{name}.{f.name}"))
                values[f.name] = struct.unpack_from("<" + SCALAR_FORMATS[f.type][0], data, fpos)[0]
                continue
            target = fpos + u32(fpos)
            out.offsets.append((fpos, target))
            if f.kind == "string":
                out.string_lengths.append((target, u32(target)))
            elif f.kind == "table":
                table(target, f.table)
            elif f.kind == "union":
                member = schema.union_member(f.union, values.get(f"{f.name}_type", 0))
                if member:
                    table(target, member)
            else:
                vector(target, f.element, f"{name}.{f.name}")

    def vector(pos: int, element: dict, where: str) -> None:
        count = u32(pos)
        out.vector_lengths.append((pos, count, element["kind"]))
        if element["kind"] == "scalar":
            if where == "Buffer.data":
                out.payloads.append((pos + 4, pos + 4 + count))
            return
        for i in range(count):
            epos = pos + 4 + 4 * i
            target = epos + u32(epos)
            out.offsets.append((epos, target))
            if element["kind"] == "string":
                out.string_lengths.append((target, u32(target)))
            else:
                table(target, element["table"])

    table(u32(0), root)
    return out


@dataclass
class Seed:
    name: str
    data: bytes
    map: SeedMap
    model: dict
    archive: bytes | None = None  # the zip of associated files after the flatbuffer, standalone


def make_seed(name: str, data: bytes) -> Seed:
    schema = load_schema()
    return Seed(name, data, map_seed(data, schema), Decoder(data, schema).root("Model"),
                associated_files.locate(data, 8))


def load_seeds(directory: Path) -> list[Seed]:
    return [make_seed(path.name, path.read_bytes()) for path in sorted(directory.glob("*.tflite"))]


def metadata_seed(directory: Path) -> Seed:
    """float_cnn with docs/metadata.md's digits metadata and its labels zipped on."""
    graph = graphtool.load(directory / "float_cnn.tflite")
    graphtool.transform(graph, f"set_metadata(file={directory.parent / 'metadata' / 'digits_classifier.json'})")
    return make_seed("float_cnn+metadata.tflite", dumps(graph, "float_cnn+metadata.tflite"))


# -- structural (byte) mutations at located positions --------------------------------------
def _patch(data: bytearray, pos: int, fmt: str, value: int) -> None:
    if 0 <= pos and pos + struct.calcsize(fmt) <= len(data):
        struct.pack_into(fmt, data, pos, value)


def structural(rng: random.Random, seed: Seed, data: bytearray) -> str:
    m, n = seed.map, len(data)
    kind = rng.choice(["offset", "offset", "vector", "vector", "string", "vtable", "soffset", "scalar", "scalar"])
    if kind == "offset" and m.offsets:
        pos, target = rng.choice(m.offsets)
        tables = [t for t, _ in m.tables]
        new = rng.choice([pos, pos + 4, n, n + 4, n - 4, 2**32 - 4, rng.randrange(n),
                          rng.choice(tables), target + rng.choice([-8, -4, -2, -1, 1, 2, 4, 8])])
        _patch(data, pos, "<I", (new - pos) % 2**32)
        return f"offset @{pos}: target {target} -> {new}"
    if kind == "vector" and m.vector_lengths:
        pos, count, element = rng.choice(m.vector_lengths)
        new = rng.choice([0, 1, count - 1, count + 1, count * 2 + 7, n, n // 4, 0x3FFFFFFF, 0x40000001,
                          0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(2**32)])
        _patch(data, pos, "<I", new % 2**32)
        return f"{element} vector @{pos}: length {count} -> {new % 2**32}"
    if kind == "string" and m.string_lengths:
        pos, length = rng.choice(m.string_lengths)
        new = rng.choice([0, length + 1, length - 1, n, 0xFFFFFFFF, 0x7FFFFFFF])
        _patch(data, pos, "<I", new % 2**32)
        return f"string @{pos}: length {length} -> {new % 2**32}"
    if kind == "vtable" and m.vtables:
        vtable = rng.choice(m.vtables)
        which = rng.randrange(3)
        if which == 0:
            new = rng.choice([0, 2, 3, 5, 0xFFFE, 0xFFFF, rng.randrange(2**16)])
            _patch(data, vtable, "<H", new)
            return f"vtable @{vtable}: size -> {new}"
        if which == 1:
            new = rng.choice([0, 1, 3, 0xFFFF, rng.randrange(2**16)])
            _patch(data, vtable + 2, "<H", new)
            return f"vtable @{vtable}: object size -> {new}"
        slot = rng.randrange(8)
        new = rng.choice([1, 2, 3, 0xFFFF, rng.randrange(2**16)])
        _patch(data, vtable + 4 + 2 * slot, "<H", new)
        return f"vtable @{vtable}: slot {slot} offset -> {new}"
    if kind == "soffset" and m.tables:
        pos, name = rng.choice(m.tables)
        new = rng.choice([0, 4, -4, pos, pos + 1, -n, 2**31 - 1, -2**31, pos - rng.choice(m.vtables)])
        _patch(data, pos, "<i", fit(new, "int32"))
        return f"{name} table @{pos}: soffset -> {new}"
    if m.scalars:
        pos, scalar_type, where = rng.choice(m.scalars)
        if scalar_type.startswith("float"):
            value = rng.choice([float("nan"), float("inf"), -0.0, 1e38, -1e38])
            _patch(data, pos, "<" + SCALAR_FORMATS[scalar_type][0], value)  # type: ignore[arg-type]
            return f"{where} @{pos} -> {value}"
        value = fit(rng.choice([-1, -2, 0, 1, 2, 3, 7, 99, 127, 128, 255, 2**15, 2**31 - 1, 2**31, 2**32 - 1,
                                2**63 - 1, rng.randrange(-2**31, 2**31)]), scalar_type)
        _patch(data, pos, "<" + SCALAR_FORMATS[scalar_type][0], value)
        return f"{where} @{pos} -> {value}"
    return "structural skipped"


# -- semantic mutations (decode, edit, encode) ---------------------------------------------
def _ints(values) -> list[int]:
    return [int(v) for v in (values if values is not None else [])]


def _interesting_index(rng: random.Random, length: int) -> int:
    return rng.choice([-1, -2, length, length + 1, 2**31 - 1, -2**31, 10**6, 0, max(0, length - 1)])


def _pick_subgraph(rng: random.Random, model: dict) -> dict | None:
    subgraphs = model.get("subgraphs") or []
    return rng.choice(subgraphs) if subgraphs else None


def _ops(sg: dict) -> list[dict]:
    return sg.get("operators") or []


def _op_with(rng: random.Random, sg: dict, key: str) -> dict | None:
    ops = [op for op in _ops(sg) if len(_ints(op.get(key)))]
    return rng.choice(ops) if ops else None


def sem_self_loop(rng, model):
    sg = _pick_subgraph(rng, model)
    op = sg and _op_with(rng, sg, "outputs")
    if not op:
        return None
    inputs = _ints(op.get("inputs")) or [0]
    inputs[rng.randrange(len(inputs))] = _ints(op["outputs"])[0]
    op["inputs"] = np.array(inputs, np.int32)
    return "operator reads its own output"


def sem_cycle(rng, model):
    sg = _pick_subgraph(rng, model)
    ops = [op for op in _ops(sg or {}) if len(_ints(op.get("outputs"))) and len(_ints(op.get("inputs")))]
    if len(ops) < 2:
        return None
    chosen = rng.sample(ops, min(len(ops), rng.choice([2, 3, len(ops)])))
    for a, b in zip(chosen, chosen[1:] + chosen[:1]):
        inputs = _ints(b["inputs"])
        inputs[0] = _ints(a["outputs"])[0]
        b["inputs"] = np.array(inputs, np.int32)
    return f"cycle through {len(chosen)} operators"


def sem_shared_output(rng, model):
    sg = _pick_subgraph(rng, model)
    ops = [op for op in _ops(sg or {}) if len(_ints(op.get("outputs")))]
    if len(ops) < 2:
        return None
    a, b = rng.sample(ops, 2)
    outputs = _ints(b["outputs"])
    outputs[0] = _ints(a["outputs"])[0]
    b["outputs"] = np.array(outputs, np.int32)
    return "two operators write one tensor"


def sem_index(rng, model):
    """Point one index field somewhere it should not (dangling, negative, huge)."""
    sg = _pick_subgraph(rng, model)
    choices = []
    if sg:
        n = len(sg.get("tensors") or [])
        for op in _ops(sg):
            for key in ("inputs", "outputs", "intermediates"):
                if len(_ints(op.get(key))):
                    choices.append((op, key, n, "vector"))
            choices.append((op, "opcode_index", len(model.get("operator_codes") or []), "uint32"))
        for key in ("inputs", "outputs"):
            if len(_ints(sg.get(key))):
                choices.append((sg, key, n, "vector"))
        for tensor in sg.get("tensors") or []:
            choices.append((tensor, "buffer", len(model.get("buffers") or []), "uint32"))
    for sig in model.get("signature_defs") or []:
        choices.append((sig, "subgraph_index", len(model.get("subgraphs") or []), "uint32"))
        for entry in (sig.get("inputs") or []) + (sig.get("outputs") or []):
            choices.append((entry, "tensor_index", 10, "uint32"))
    for meta in model.get("metadata") or []:
        choices.append((meta, "buffer", len(model.get("buffers") or []), "uint32"))
    if not choices:
        return None
    owner, key, length, kind = rng.choice(choices)
    value = _interesting_index(rng, length)
    if kind == "vector":
        values = _ints(owner[key])
        values[rng.randrange(len(values))] = fit(value, "int32")
        owner[key] = np.array(values, np.int32)
    else:
        owner[key] = fit(value, kind)
    return f"{key} -> {value}"


def sem_names(rng, model):
    sg = _pick_subgraph(rng, model)
    tensors = (sg or {}).get("tensors") or []
    if not tensors:
        return None
    how = rng.choice(["same", "empty", "hostile", "suffix_clash", "not_utf8"])
    for tensor in rng.sample(tensors, rng.randint(1, len(tensors))):
        tensor["name"] = {"same": b"x", "empty": b"", "hostile": rng.choice(HOSTILE_STRINGS).encode("utf-8", "surrogatepass"),
                          "suffix_clash": rng.choice([b"x", b"x_1", b"x_2", b"op_0", b"tensor_0"]),
                          "not_utf8": b"\xff\xfe" + bytes([rng.randrange(128, 256)])}[how]
    return f"tensor names: {how}"


def sem_strings(rng, model):
    """Hostile strings where the model keeps strings: description, custom codes, metadata
    names and values, signature keys (paths, code, format strings)."""
    text = rng.choice(HOSTILE_STRINGS).encode("utf-8", "surrogatepass")
    where = rng.choice(["description", "custom_code", "metadata", "signature", "subgraph"])
    if where == "description":
        model["description"] = text
    elif where == "custom_code" and model.get("operator_codes"):
        code = rng.choice(model["operator_codes"])
        code["custom_code"] = text
        code["builtin_code"] = code["deprecated_builtin_code"] = 32  # CUSTOM
    elif where == "metadata" and model.get("metadata"):
        entry = rng.choice(model["metadata"])
        entry["name"] = text
        buffers = model.get("buffers") or []
        if buffers and rng.random() < 0.5:
            buffers[int(entry.get("buffer", 0)) % len(buffers)]["data"] = np.frombuffer(text, np.uint8)
    elif where == "signature" and model.get("signature_defs"):
        rng.choice(model["signature_defs"])["signature_key"] = text
    elif model.get("subgraphs"):
        rng.choice(model["subgraphs"])["name"] = text
    return f"hostile string in {where}"


def sem_shape(rng, model):
    sg = _pick_subgraph(rng, model)
    tensors = (sg or {}).get("tensors") or []
    if not tensors:
        return None
    tensor = rng.choice(tensors)
    how = rng.choice(["huge", "negative", "zero", "rank0", "rank_high", "off_by_one", "signature", "absent"])
    shape = _ints(tensor.get("shape"))
    if how == "huge":
        shape = [2**31 - 1] * rng.randint(1, 4)
    elif how == "negative":
        shape = [rng.choice([-1, -2, -2**31]) for _ in range(max(1, len(shape)))]
    elif how == "zero":
        shape = [0] + [2**31 - 1] * rng.randint(0, 3)
    elif how == "rank0":
        shape = []
    elif how == "rank_high":
        shape = [1] * rng.choice([9, 64, 300])
    elif how == "off_by_one" and shape:
        i = rng.randrange(len(shape))
        shape[i] += rng.choice([-1, 1])
    elif how == "signature":
        tensor["shape_signature"] = np.array([rng.choice([-1, -5, 3, 2**31 - 1]) for _ in range(rng.randint(0, 5))],
                                             np.int32)
        return "shape_signature disagrees"
    elif how == "absent":
        tensor.pop("shape", None)
        tensor["has_rank"] = rng.random() < 0.5
        return "shape removed"
    tensor["shape"] = np.array([fit(d, "int32") for d in shape], np.int32)
    return f"tensor shape {how}"


def sem_type(rng, model):
    sg = _pick_subgraph(rng, model)
    tensors = (sg or {}).get("tensors") or []
    if not tensors:
        return None
    tensor = rng.choice(tensors)
    tensor["type"] = fit(rng.choice(list(range(0, 21)) + [99, -1, 127]), "int8")
    return f"tensor type -> {tensor['type']}"


def sem_buffer(rng, model):
    buffers = model.get("buffers") or []
    sg = _pick_subgraph(rng, model)
    tensors = (sg or {}).get("tensors") or []
    how = rng.choice(["share", "truncate", "extend", "external", "drop_data"])
    if how == "share" and len(tensors) >= 2:
        a, b = rng.sample(tensors, 2)
        a["buffer"] = b.get("buffer", 0)
        return "two tensors share a buffer"
    with_data = [b for b in buffers if b.get("data") is not None and len(b["data"])]
    if not with_data:
        return None
    buffer = rng.choice(with_data)
    data = np.asarray(buffer["data"])
    if how == "truncate":
        buffer["data"] = data[: rng.randrange(len(data))].copy()
    elif how == "extend":
        buffer["data"] = np.concatenate([data, np.zeros(rng.choice([1, 3, 4, 64]), np.uint8)])
    elif how == "external":
        buffer["offset"] = fit(rng.choice([2, 8, 16, 2**32, 2**63 - 1, 2**64 - 1]), "uint64")
        buffer["size"] = fit(rng.choice([0, 1, 16, 2**31, 2**64 - 1]), "uint64")
    else:
        buffer.pop("data", None)
    return f"buffer {how}"


def sem_quantization(rng, model):
    sg = _pick_subgraph(rng, model)
    tensors = [t for t in (sg or {}).get("tensors") or [] if t.get("quantization")]
    if not tensors:
        tensors = (sg or {}).get("tensors") or []
        if not tensors:
            return None
        rng.choice(tensors)["quantization"] = {"scale": np.array([1.0, 2.0, 3.0], np.float32),
                                               "zero_point": np.array([0], np.int64),
                                               "quantized_dimension": rng.choice([0, 5, -1])}
        return "quantization added"
    q = rng.choice(tensors)["quantization"]
    how = rng.choice(["axis", "scale_count", "zero_point_count", "nan", "minmax", "details"])
    if how == "axis":
        q["quantized_dimension"] = fit(rng.choice([-1, 1, 3, 4, 99, 2**31 - 1]), "int32")
    elif how == "scale_count":
        q["scale"] = np.ones(rng.choice([0, 2, 7, 1000]), np.float32)
    elif how == "zero_point_count":
        q["zero_point"] = np.zeros(rng.choice([0, 2, 7, 1000]), np.int64)
    elif how == "nan":
        q["scale"] = np.full(max(1, len(q.get("scale") if q.get("scale") is not None else [])),
                             rng.choice([np.nan, np.inf, 0.0, -1.0]), np.float32)
    elif how == "minmax":
        q["min"] = np.array([np.nan], np.float32)
        q["max"] = np.array([-np.inf, 1.0], np.float32)
    else:
        q["details_type"] = fit(rng.choice([1, 2, 3, 200]), "uint8")
        q["details"] = {}
    return f"quantization {how}"


def sem_opcode(rng, model):
    codes = model.get("operator_codes") or []
    if not codes:
        return None
    code = rng.choice(codes)
    how = rng.choice(["builtin", "deprecated", "version", "custom_unset", "placeholder"])
    if how == "builtin":
        code["builtin_code"] = fit(rng.choice([-1, 0, 127, 128, 206, 300, 2**31 - 1, rng.randrange(210)]), "int32")
    elif how == "deprecated":
        code["deprecated_builtin_code"] = fit(rng.choice([-1, 0, 32, 126, 127, rng.randrange(128)]), "int8")
    elif how == "version":
        code["version"] = fit(rng.choice([0, -1, 99, 2**31 - 1]), "int32")
    elif how == "custom_unset":
        code["builtin_code"] = code["deprecated_builtin_code"] = 32
        code.pop("custom_code", None)
    else:
        code["deprecated_builtin_code"] = 127
        code["builtin_code"] = fit(rng.choice([0, 3, 126, 127, 150]), "int32")
    return f"operator code {how}"


def sem_options(rng, model, schema: Schema):
    """Subgraph indices in control-flow options pointing at themselves or nowhere; an
    options table re-tagged as another member of the union (type confusion)."""
    sg = _pick_subgraph(rng, model)
    ops = [op for op in _ops(sg or {}) if op.get("builtin_options") is not None]
    if not ops:
        return None
    op = rng.choice(ops)
    options = op["builtin_options"]
    index_keys = [k for k in options if k.endswith("subgraph_index") or k.endswith("subgraph_indices")]
    if index_keys and rng.random() < 0.6:
        key = rng.choice(index_keys)
        value = rng.choice([0, 1, -1, len(model.get("subgraphs") or []), 2**31 - 1])
        if isinstance(options[key], np.ndarray):
            options[key] = np.array([fit(value, "int32")] * max(1, len(options[key])), np.int32)
        else:
            options[key] = fit(value, "int32")
        return f"options {key} -> {value}"
    members = sorted(schema.unions["BuiltinOptions"].values())
    op["builtin_options_type"] = fit(rng.choice(members + [0, 250]), "uint8")
    return f"builtin_options re-tagged as {op['builtin_options_type']}"


def sem_list(rng, model):
    """Delete, duplicate or reorder entries of a table vector (shifts every index after)."""
    sg = _pick_subgraph(rng, model)
    lists = [(model, k) for k in ("subgraphs", "buffers", "operator_codes", "metadata", "signature_defs")
             if model.get(k)]
    if sg:
        lists += [(sg, k) for k in ("tensors", "operators") if sg.get(k)]
    if not lists:
        return None
    owner, key = rng.choice(lists)
    items = list(owner[key])
    how = rng.choice(["delete", "duplicate", "shuffle", "empty", "absent"])
    if how == "delete":
        del items[rng.randrange(len(items))]
    elif how == "duplicate":
        items.insert(rng.randrange(len(items) + 1), copy.deepcopy(rng.choice(items)))
    elif how == "shuffle":
        rng.shuffle(items)
    elif how == "empty":
        items = []
    else:
        owner.pop(key)
        return f"{key} removed"
    owner[key] = items
    return f"{key} {how}"


def sem_sparsity(rng, model):
    sg = _pick_subgraph(rng, model)
    tensors = [t for t in (sg or {}).get("tensors") or [] if t.get("sparsity")]
    if not tensors:
        return None
    sparsity = rng.choice(tensors)["sparsity"]
    how = rng.choice(["order", "block_map", "dims"])
    if how == "order":
        sparsity["traversal_order"] = np.array([rng.choice([0, 1, 5, -1]) for _ in range(rng.randint(0, 6))], np.int32)
    elif how == "block_map":
        sparsity["block_map"] = np.array([9, -1], np.int32)
    else:
        dims = sparsity.get("dim_metadata") or []
        if dims:
            dims[rng.randrange(len(dims))]["dense_size"] = fit(rng.choice([-1, 0, 2**31 - 1]), "int32")
    return f"sparsity {how}"


def sem_support_metadata(rng, model):
    """The TFLITE_METADATA buffer mutated as `structural` mutates a model (offsets, lengths,
    vtables, scalars of the metadata flatbuffer): inspect must give a warning, not a crash."""
    buffers = model.get("buffers") or []
    entry = next((m for m in model.get("metadata") or [] if m.get("name") == keys.SUPPORT_METADATA.encode()), None)
    if entry is None or not 0 <= int(entry.get("buffer", 0)) < len(buffers):
        return None
    buffer = buffers[int(entry["buffer"])]
    data = np.asarray(buffer.get("data", []), np.uint8).tobytes()
    try:
        metadata = Seed(keys.SUPPORT_METADATA, data, map_seed(data, load_schema(METADATA_SCHEMA), "ModelMetadata"), {})
    except (struct.error, KeyError, IndexError):  # already broken by an earlier step
        return None
    mutated = bytearray(data)
    steps = [structural(rng, metadata, mutated) for _ in range(rng.choice([1, 1, 2]))]
    buffer["data"] = np.frombuffer(bytes(mutated), np.uint8)
    return f"{keys.SUPPORT_METADATA}: " + "; ".join(steps)


SEMANTIC = (sem_self_loop, sem_cycle, sem_shared_output, sem_index, sem_index, sem_names, sem_strings,
            sem_shape, sem_shape, sem_type, sem_buffer, sem_quantization, sem_opcode, sem_options, sem_list,
            sem_sparsity, sem_support_metadata, sem_support_metadata)


def semantic(rng: random.Random, seed: Seed, schema: Schema) -> tuple[bytes, list[str]] | None:
    model = copy.deepcopy(seed.model)
    steps = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        mutation = rng.choice(SEMANTIC)
        step = mutation(rng, model, schema) if mutation is sem_options else mutation(rng, model)
        if step:
            steps.append(step)
    if not steps:
        return None
    try:
        data = b"".join(bytes(p) for p in Encoder(schema, len(seed.data) * 2).finish(model, "Model"))
    except (struct.error, OverflowError, ValueError, TypeError, KeyError, GraphtoolError):
        return None  # the edit does not fit the encoder: not an input, try another
    if seed.archive is not None:
        data += associated_files.placed(seed.archive, len(data))
    return data, steps


# -- the generator --------------------------------------------------------------------------
class TfliteInputs:
    """generate(rng) -> (bytes, suffix, recipe)."""

    def __init__(self, fixtures: Path):
        self.schema = load_schema()
        self.seeds = load_seeds(fixtures) + [metadata_seed(fixtures)]
        self.others = [s.data for s in self.seeds]

    def generate(self, rng: random.Random) -> tuple[bytes, str, str]:
        seed = rng.choice(self.seeds)
        roll = rng.random()
        steps: list[str] = []
        data = seed.data
        if roll < 0.35:
            made = semantic(rng, seed, self.schema)
            if made is not None:
                data, steps = made
                if rng.random() < 0.2:
                    data, more = mutate_bytes.mutate(rng, data, self.others, rounds=1)
                    steps += more
                return data, SUFFIX, f"{seed.name}: " + "; ".join(steps)
        if roll < 0.70:
            buf = bytearray(seed.data)
            for _ in range(rng.choice([1, 1, 2, 3])):
                steps.append(structural(rng, seed, buf))
            data = bytes(buf)
        else:
            data, steps = mutate_bytes.mutate(rng, seed.data, self.others)
        return data, SUFFIX, f"{seed.name}: " + "; ".join(steps)
