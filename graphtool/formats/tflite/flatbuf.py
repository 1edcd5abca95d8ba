"""A generic flatbuffer codec for the TFLite schema, driven by schema.json.

Decoding checks every offset and length against the buffer before following it (Python's
flatbuffers trusts them all), bounds the work a file can cause, and records fields and
union members the schema does not know. Tables become dicts holding every scalar (the
default when absent) and the non-scalar fields that are present; scalar vectors become
read-only numpy views into the buffer; strings stay bytes.

Encoding lays tables out in the order flatc's Python object API packs them (children in
field order, then the table), so an unchanged model keeps its layout, and honours the
schema's `force_align`.
"""
from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import FormatError
from .schema import SCALAR_FORMATS, Field, Schema, Table

MAX_DEPTH = 64
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_SCALARS = {name: struct.Struct("<" + fmt) for name, (fmt, _) in SCALAR_FORMATS.items()}
_NUMPY = {name: np.dtype("<" + fmt) if size > 1 else np.dtype(fmt) for name, (fmt, size) in SCALAR_FORMATS.items()}


class Decoder:
    """Decodes one verified flatbuffer. `unknown` lists what the schema could not name."""

    def __init__(self, data: bytes | memoryview, schema: Schema, identifier: bytes = b"TFL3"):
        self.data = data
        self.buf = memoryview(data)
        self.size = len(self.buf)
        self.schema = schema
        self.identifier = identifier
        self.unknown: list[str] = []
        # A file without aliasing decodes each table and vector element once, and each takes
        # at least 4 bytes; shared offsets past that are refused before they cost much.
        self._budget = self.size // 2 + 10_000

    def root(self, table: str) -> dict[str, Any]:
        if self.size < 8:
            raise FormatError(f"file is {self.size} bytes, too short for a flatbuffer")
        if bytes(self.buf[4:8]) != self.identifier:
            raise FormatError(f"file identifier is {bytes(self.buf[4:8])!r}, not {self.identifier!r}")
        return self.table(self._uoffset(0, table), table, table, 0)

    # -- primitives ------------------------------------------------------------------------
    def _need(self, pos: int, length: int, what: str) -> None:
        if pos < 0 or length < 0 or pos + length > self.size:
            raise FormatError(f"{what} at offset {pos} (+{length} bytes) runs past the end of the "
                              f"file ({self.size} bytes)")

    def _spend(self, units: int, what: str) -> None:
        self._budget -= units
        if self._budget < 0:
            raise FormatError(f"{what}: the file references far more data than it holds "
                              "(overlapping offsets?)")

    def _aligned(self, pos: int, alignment: int, what: str) -> None:
        if pos % alignment:
            raise FormatError(f"{what} at offset {pos} is not aligned to {alignment} bytes")

    def _uoffset(self, pos: int, what: str, element: bool = False) -> int:
        """The position an offset points at. As the flatbuffers verifier (which LiteRT runs
        before it reads a model) requires: the offset is aligned, and a table field's points
        forward, past itself, by less than 2 GiB (a vector element's is only followed: one
        of 0 makes an empty table or string of the bytes it is in)."""
        self._need(pos, 4, what)
        self._aligned(pos, 4, what)
        offset = _U32.unpack_from(self.buf, pos)[0]
        if not element and (offset == 0 or offset >= 1 << 31):
            raise FormatError(f"{what}: offset at {pos} points {'at itself' if offset == 0 else 'backwards'}")
        return pos + offset

    # -- tables ----------------------------------------------------------------------------
    def table(self, pos: int, name: str, path: str, depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise FormatError(f"{path}: tables nested more than {MAX_DEPTH} deep")
        self._spend(1, path)
        self._need(pos, 4, f"{path} table")
        self._aligned(pos, 4, f"{path} table")
        vtable = pos - _I32.unpack_from(self.buf, pos)[0]
        self._need(vtable, 2, f"{path} vtable")
        self._aligned(vtable, 2, f"{path} vtable")
        # As the verifier: an even vtable size within the file; the object size is not checked,
        # and a vtable too short to hold a slot has no fields (readers treat them as absent).
        vt_size = _U16.unpack_from(self.buf, vtable)[0]
        if vt_size % 2:
            raise FormatError(f"{path}: malformed vtable at offset {vtable} (odd size {vt_size})")
        self._need(vtable, vt_size, f"{path} vtable")
        table: Table = self.schema.tables[name]
        slots = max(0, (vt_size - 4) // 2)
        offsets = [_U16.unpack_from(self.buf, vtable + 4 + 2 * i)[0] for i in range(slots)]
        if slots > table.num_slots and any(offsets[table.num_slots:]):
            extra = [i for i in range(table.num_slots, slots) if offsets[i]]
            self.unknown.append(f"{path}: field slot(s) {extra} unknown to the schema")
        out: dict[str, Any] = {}
        for field in table.fields:
            offset = offsets[field.slot] if field.slot < slots else 0
            if offset == 0:
                if field.kind == "scalar":
                    out[field.name] = field.default
                continue
            where = f"{path}.{field.name}"
            out[field.name] = self._field(pos + offset, field, out, where, depth)
        known = {f.slot for f in table.fields}
        deprecated = [i for i in range(min(slots, table.num_slots)) if offsets[i] and i not in known]
        if deprecated:
            self.unknown.append(f"{path}: deprecated field slot(s) {deprecated} are set")
        return out

    def _field(self, pos: int, field: Field, siblings: dict, where: str, depth: int) -> Any:
        if field.kind == "scalar":
            codec = _SCALARS[field.type]
            self._need(pos, codec.size, where)
            self._aligned(pos, codec.size, where)
            return codec.unpack_from(self.buf, pos)[0]
        target = self._uoffset(pos, where)
        if field.kind == "string":
            return self.string(target, where)
        if field.kind == "table":
            return self.table(target, field.table, where, depth + 1)
        if field.kind == "union":
            type_number = siblings.get(f"{field.name}_type", 0)
            member = self.schema.union_member(field.union, type_number)
            if member is None:
                self.unknown.append(f"{where}: {field.union} member {type_number} unknown to the schema")
                return None
            return self.table(target, member, f"{where}<{member}>", depth + 1)
        return self.vector(target, field.element, where, depth)

    def string(self, pos: int, where: str) -> bytes:
        self._need(pos, 4, where)
        self._aligned(pos, 4, where)
        length = _U32.unpack_from(self.buf, pos)[0]
        self._need(pos + 4, length + 1, where)
        if self.buf[pos + 4 + length] != 0:
            raise FormatError(f"{where}: string at offset {pos} is not NUL-terminated")
        return bytes(self.buf[pos + 4: pos + 4 + length])

    def vector(self, pos: int, element: dict, where: str, depth: int) -> Any:
        self._need(pos, 4, where)
        self._aligned(pos, 4, where)
        count = _U32.unpack_from(self.buf, pos)[0]
        start = pos + 4
        kind = element["kind"]
        if kind == "scalar":
            dtype = _NUMPY[element["type"]]
            self._need(start, count * dtype.itemsize, where)
            self._spend(1, where)
            array = np.frombuffer(self.data, dtype=dtype, count=count, offset=start)
            array.flags.writeable = False
            return array
        self._need(start, 4 * count, where)
        self._spend(count, where)
        if kind == "string":
            return [self.string(self._uoffset(start + 4 * i, where, element=True), f"{where}[{i}]")
                    for i in range(count)]
        return [self.table(self._uoffset(start + 4 * i, where, element=True), element["table"], f"{where}[{i}]",
                           depth + 1) for i in range(count)]


@dataclass(frozen=True)
class _Plan:
    num_slots: int
    children: tuple[Field, ...]
    slots: tuple[tuple[Field, Any, Any], ...]


class Encoder:
    """Packs dicts (as Decoder makes them) into a flatbuffer with flatbuffers.Builder.

    Large scalar vectors (weights) are not copied into the builder: their place is left
    untouched in a lazily zeroed anonymous mapping and `finish` returns the flatbuffer as
    parts with the arrays themselves in those places, so writing a model costs little
    more memory than the model's own arrays."""

    HOLE_BYTES = 1 << 16

    def __init__(self, schema: Schema, initial_size: int = 1024):
        import flatbuffers  # here: reading a model does not need the library

        self.schema = schema
        size = max(1024, min(initial_size, flatbuffers.Builder.MAX_BUFFER_SIZE))
        self.builder = flatbuffers.Builder(0)
        self.builder.Bytes = mmap.mmap(-1, size) if size >= self.HOLE_BYTES else bytearray(size)
        self.builder.head = size
        self.holes: list[tuple[int, np.ndarray]] = []  # (offset from the end, data)
        self._plans: dict[str, _Plan] = {}

    def finish(self, root: dict[str, Any], table: str, identifier: bytes = b"TFL3") -> list:
        """The finished flatbuffer as consecutive byte chunks (views, no copies)."""
        offset = self.table(root, table)
        b = self.builder
        b.Finish(offset, file_identifier=identifier)
        view, end = memoryview(b.Bytes), len(b.Bytes)
        parts, position = [], b.Head()
        for from_end, array in sorted(self.holes, key=lambda hole: -hole[0]):
            start = end - from_end
            parts.append(view[position:start])
            parts.append(memoryview(array).cast("B"))
            position = start + array.nbytes
        parts.append(view[position:])
        return parts

    def table(self, value: dict[str, Any], name: str) -> int:
        plan = self._plans.get(name) or self._plan(name)
        b = self.builder
        children: dict[int, int] = {}
        for field in plan.children:
            if value.get(field.name) is not None:
                children[field.slot] = self._child(value, field)
        b.StartObject(plan.num_slots)
        for field, prepend, convert in plan.slots:
            if prepend is None:
                offset = children.get(field.slot)
                if offset is not None:
                    b.PrependUOffsetTRelativeSlot(field.slot, offset, 0)
            else:
                prepend(b, field.slot, convert(value.get(field.name, field.default)), field.default)
        return b.EndObject()

    def _plan(self, name: str) -> "_Plan":
        """How to pack one table: its non-scalar fields, then every slot in field order with
        the builder method (None for offsets) and the Python conversion for scalars."""
        table = self.schema.tables[name]
        slots = []
        for field in table.fields:
            if field.kind != "scalar":
                slots.append((field, None, None))
            else:
                method = "PrependBoolSlot" if field.type == "bool" else f"Prepend{field.type.capitalize()}Slot"
                convert = bool if field.type == "bool" else float if field.type.startswith("float") else int
                slots.append((field, getattr(type(self.builder), method), convert))
        plan = _Plan(table.num_slots, tuple(f for f in table.fields if f.kind != "scalar"), tuple(slots))
        self._plans[name] = plan
        return plan

    def _child(self, value: dict[str, Any], field: Field) -> int:
        item = value[field.name]
        if field.kind == "string":
            return self.builder.CreateString(item)
        if field.kind == "table":
            return self.table(item, field.table)
        if field.kind == "union":
            member = self.schema.union_member(field.union, value.get(f"{field.name}_type", 0))
            if member is None:
                raise FormatError(f"{field.name}: no {field.union} member for type "
                                  f"{value.get(f'{field.name}_type', 0)}")
            return self.table(item, member)
        return self.vector(item, field.element, field.align)

    def vector(self, items: Any, element: dict, align: int | None) -> int:
        b = self.builder
        kind = element["kind"]
        if kind == "scalar":
            return self.scalar_vector(np.asarray(items, dtype=_NUMPY[element["type"]]), align)
        if kind == "string":
            offsets = [b.CreateString(s) for s in items]
        else:
            offsets = [self.table(t, element["table"]) for t in items]
        b.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        return b.EndVector()

    def scalar_vector(self, array: np.ndarray, align: int | None) -> int:
        """A vector of little-endian scalars, copied in one block."""
        b = self.builder
        array = np.ascontiguousarray(array)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        itemsize = array.dtype.itemsize
        b.StartVector(itemsize, array.size, max(align or itemsize, itemsize))
        nbytes = array.size * itemsize
        b.head = b.Head() - nbytes
        if nbytes >= self.HOLE_BYTES:
            self.holes.append((len(b.Bytes) - b.Head(), array))
        else:
            memoryview(b.Bytes)[b.Head(): b.Head() + nbytes] = memoryview(array).cast("B")
        b.vectorNumElems = array.size
        return b.EndVector()
