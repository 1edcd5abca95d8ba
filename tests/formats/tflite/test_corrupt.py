"""Corrupt, truncated and hostile `.tflite` files: graphtool must refuse them with
FormatError, or read them into a Graph that then validates, inspects and writes back
raising nothing but FormatError/GraphError. Never IndexError, struct.error, ValueError,
KeyError, TypeError, OverflowError, MemoryError, RecursionError or a numpy error; never
a hang; never work out of proportion to the file's size; never a change to the file.

Inputs are made three ways: truncating and randomly mutating the converter's fixtures;
patching single fields of a fixture's bytes (located by a small independent flatbuffer
walker below); and editing a fixture with TensorFlow's schema object API
(schema_py_generated, loaded straight from its file so TensorFlow itself is not imported)
or building a hostile model with flatbuffers.Builder.
"""
from __future__ import annotations

import contextlib
import cProfile
import hashlib
import importlib.util
import os
import pstats
import signal
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import flatbuffers
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphtool
from fuzz.oracle import summary
from graphtool import FormatError, GraphError
from graphtool.formats import dumps, tflite

ROOT = Path(__file__).resolve().parents[3]
FIXTURE_DIR = ROOT / "fixtures" / "tflite"
FIXTURE_PATHS = sorted(FIXTURE_DIR.glob("*.tflite"))
FIXTURES: dict[str, bytes] = {p.name: p.read_bytes() for p in FIXTURE_PATHS}
FIXTURE_HASHES = {name: hashlib.sha256(data).hexdigest() for name, data in FIXTURES.items()}

ALLOWED = (FormatError, GraphError)
# An input still running after this long is a hang: the slowest here takes under 1 s alone and
# ~6 s at worst in the full suite (a bigger heap to collect). How fast an input is, is not
# asserted; how much work it causes is (test_work_grows_linearly_with_the_entries).
HANG_SECONDS = 60.0


def _load_schema_module():
    """TensorFlow's generated TFLite schema (object API), without importing tensorflow."""
    try:
        spec = importlib.util.find_spec("tensorflow")
    except ImportError:  # blocked, as in tests/test_core_lane.py
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "lite" / "python" / "schema_py_generated.py"
    if not path.is_file():
        return None
    module_spec = importlib.util.spec_from_file_location("_tflite_schema_fb", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


fb = _load_schema_module()
NO_SCHEMA = "needs TensorFlow's schema_py_generated.py (pip install -e '.[test]')"
needs_schema = pytest.mark.skipif(fb is None, reason=NO_SCHEMA)


def test_fixtures_present():
    assert len(FIXTURES) == 11, sorted(FIXTURES)


# -- running one input ----------------------------------------------------------------------
class _Hang(BaseException):
    """Raised by SIGALRM when an input runs past HANG_SECONDS (BaseException: graphtool's
    `except Exception` cannot swallow it)."""


@contextlib.contextmanager
def _hang_guard(seconds: float):
    """Interrupt the block with _Hang after `seconds`, and again every second after that: one
    raised inside a garbage-collector callback is swallowed, the next one lands."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum, frame):
        raise _Hang(f"still running after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    loaded: bool = False
    errors: dict[str, BaseException] = field(default_factory=dict)  # step -> FormatError/GraphError

    def rejected(self, step: str) -> bool:
        return isinstance(self.errors.get(step), FormatError)


def _touch_data(graph) -> None:
    """Decode every constant (loaders are lazy): FormatError is fine, nothing else is."""
    for g in [graph, *graph.subgraphs]:
        for node in g:
            for tensor in node.outputs:
                if tensor is not None:
                    tensor.data  # noqa: B018


def _step(outcome: Outcome, name: str, fn: Callable):
    try:
        return fn()
    except ALLOWED as exc:
        outcome.errors.setdefault(name, exc)
        return None


def exercise(data: bytes | None = None, path: Path | None = None) -> Outcome:
    """Read (from bytes with the TFLite reader, or from a .tflite path with graphtool.load),
    then touch all data, validate, inspect, write (strict and allow_unknown) and re-read
    what was written. Only FormatError/GraphError may escape graphtool; they are recorded.
    Anything else propagates, a hang as _Hang."""
    outcome = Outcome()
    with _hang_guard(HANG_SECONDS):
        graph = _step(outcome, "load", (lambda: graphtool.load(path)) if path is not None
                      else (lambda: tflite.read(data)))
        if graph is not None:
            outcome.loaded = True
            _step(outcome, "data", lambda: _touch_data(graph))
            _step(outcome, "validate", graph.validate)
            _step(outcome, "inspect", lambda: graphtool.inspect(graph, structure=True).to_dict())
            _step(outcome, "write", lambda: tflite.write(graph))
            written = _step(outcome, "write_allow_unknown", lambda: tflite.write(graph, allow_unknown=True))
            if written is not None:
                again = _step(outcome, "reread", lambda: tflite.read(written))
                if again is not None:
                    _step(outcome, "reread_data", lambda: _touch_data(again))
    return outcome


def calls_to_exercise(data: bytes) -> int:
    """Function calls (Python and C) made exercising `data`: a measure of the work it causes
    that, unlike time, does not depend on the machine or how loaded it is."""
    profile = cProfile.Profile()
    profile.runcall(exercise, data)
    return pstats.Stats(profile).total_calls


def describe(exc: BaseException) -> str:
    """Exception type, message and the last traceback frame inside graphtool/."""
    return summary(exc, limit=300)


# -- an independent flatbuffer walker (just enough to find fields to patch) -------------------
# Slots from tensorflow/lite/schema/schema.fbs (vtable entry = 4 + 2 * slot).
MODEL_OPERATOR_CODES, MODEL_SUBGRAPHS, MODEL_DESCRIPTION, MODEL_BUFFERS = 1, 2, 3, 4
MODEL_METADATA, MODEL_SIGNATURE_DEFS = 6, 7
SUBGRAPH_TENSORS, SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_OPERATORS = 0, 1, 2, 3
TENSOR_SHAPE, TENSOR_NAME = 0, 3
BUFFER_DATA = 0


def u32(data, pos: int) -> int:
    return struct.unpack_from("<I", data, pos)[0]


def root_table(data) -> int:
    return u32(data, 0)


def field_pos(data, table: int, slot: int) -> int | None:
    """Where a table's field is stored, or None when absent."""
    vtable = table - struct.unpack_from("<i", data, table)[0]
    vt_size = struct.unpack_from("<H", data, vtable)[0]
    if 4 + 2 * slot >= vt_size:
        return None
    offset = struct.unpack_from("<H", data, vtable + 4 + 2 * slot)[0]
    return table + offset if offset else None


def deref(data, pos: int) -> int:
    return pos + u32(data, pos)


def child(data, table: int, slot: int) -> int:
    """Position of what an offset field points at (a table, a vector's length, a string's length)."""
    pos = field_pos(data, table, slot)
    assert pos is not None, f"slot {slot} absent"
    return deref(data, pos)


def element(data, vector: int, index: int) -> int:
    """Table an element of a vector of tables points at."""
    assert index < u32(data, vector)
    return deref(data, vector + 4 + 4 * index)


def patch(data: bytes, pos: int, fmt: str, value) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, pos, value)
    return bytes(out)


def buffer_payload_ranges(data: bytes) -> list[tuple[int, int]]:
    """[start, end) of every Buffer.data payload (the bytes that are weights, not structure)."""
    model = root_table(data)
    buffers = child(data, model, MODEL_BUFFERS)
    ranges = []
    for i in range(u32(data, buffers)):
        buffer = element(data, buffers, i)
        pos = field_pos(data, buffer, BUFFER_DATA)
        if pos is not None:
            vec = deref(data, pos)
            ranges.append((vec + 4, vec + 4 + u32(data, vec)))
    return ranges


def structural_positions(data: bytes) -> np.ndarray:
    mask = np.ones(len(data), bool)
    for start, end in buffer_payload_ranges(data):
        mask[start:end] = False
    return np.flatnonzero(mask)


STRUCTURAL = {name: structural_positions(data) for name, data in FIXTURES.items()}


@needs_schema
def test_walker_agrees_with_the_object_api():
    """The byte walker used to build targeted cases reads the fixtures as TensorFlow does."""
    for name, data in FIXTURES.items():
        model = fb.ModelT.InitFromPackedBuf(bytearray(data), 0)
        root = root_table(data)
        subgraphs = child(data, root, MODEL_SUBGRAPHS)
        assert u32(data, subgraphs) == len(model.subgraphs), name
        sg0 = element(data, subgraphs, 0)
        tensors = child(data, sg0, SUBGRAPH_TENSORS)
        assert u32(data, tensors) == len(model.subgraphs[0].tensors), name
        t0 = element(data, tensors, 0)
        name_pos = child(data, t0, TENSOR_NAME)
        assert data[name_pos + 4: name_pos + 4 + u32(data, name_pos)] == model.subgraphs[0].tensors[0].name
        ranges = buffer_payload_ranges(data)
        assert sum(e - s for s, e in ranges) == sum(len(b.data) for b in model.buffers if b.data is not None)


# -- 0. the fixtures themselves are fine (so every failure below is the corruption's doing) --
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_reads_validates_and_writes(name):
    outcome = exercise(FIXTURES[name])
    assert outcome.loaded and not outcome.errors, {k: describe(v) for k, v in outcome.errors.items()}


# -- 1. truncation ---------------------------------------------------------------------------
def _cut_points(n: int) -> list[int]:
    return sorted({k * n // 64 for k in range(64)} | set(range(min(17, n))) | {n - 1})


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_truncated(name):
    data = FIXTURES[name]
    failures = []
    for cut in _cut_points(len(data)):
        try:
            outcome = exercise(data[:cut])
        except Exception as exc:  # collect them all, report each
            failures.append(f"{name}[:{cut}] -> {describe(exc)}")
            continue
        if cut < 8:
            assert outcome.rejected("load"), f"{name}[:{cut}] ({cut} bytes) was not rejected"
    assert not failures, f"{len(failures)} truncation(s) of {name} failed:\n" + "\n".join(failures)


# -- 2. random mutation (hypothesis) ---------------------------------------------------------
FIXTURE_NAMES = sorted(FIXTURES)
INTERESTING_U32 = [0, 1, 2, 3, 4, 8, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000, 0x3FFFFFFF, 0x40000000,
                   0x40000001, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFC, 0xFFFFFFFE, 0xFFFFFFFF]
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def positions(draw, name: str, width: int = 1) -> int:
    """Mostly bytes of the flatbuffer structure (not weight payloads), sometimes anywhere."""
    size = len(FIXTURES[name])
    structural = STRUCTURAL[name]
    if draw(st.integers(0, 3)) and len(structural):
        pos = int(structural[draw(st.integers(0, len(structural) - 1))])
    else:
        pos = draw(st.integers(0, size - 1))
    if width > 1 and draw(st.booleans()):
        pos -= pos % 4  # flatbuffer offsets and lengths are 4-aligned
    return min(pos, size - width)


def apply_edits(name: str, edits: list[tuple]) -> bytes:
    """A fixture with edits applied: ("flip", pos, bit), ("u8", pos, value), ("u32", pos, value)."""
    data = bytearray(FIXTURES[name])
    for kind, pos, value in edits:
        if kind == "flip":
            data[pos] ^= 1 << value
        elif kind == "u8":
            data[pos] = value
        else:
            struct.pack_into("<I", data, pos, value)
    return bytes(data)


@st.composite
def bit_flips(draw):
    """(fixture, edits): 1-4 single-bit flips. Falsifying examples print as these (small)."""
    name = draw(st.sampled_from(FIXTURE_NAMES))
    return name, [("flip", draw(positions(name)), draw(st.integers(0, 7))) for _ in range(draw(st.integers(1, 4)))]


@st.composite
def overwrites(draw):
    """(fixture, edits): 1-6 byte or little-endian u32 overwrites (lengths, offsets, indices)."""
    name = draw(st.sampled_from(FIXTURE_NAMES))
    size = len(FIXTURES[name])
    edits = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            edits.append(("u8", draw(positions(name)), draw(st.integers(0, 255))))
        else:
            value = draw(st.one_of(st.sampled_from(INTERESTING_U32 + [size, size - 4, size + 4]),
                                   st.integers(0, 2**32 - 1), st.integers(0, 64)))
            edits.append(("u32", draw(positions(name, width=4)), value))
    return name, edits


@SETTINGS
@given(bit_flips())
def test_random_bit_flips(case):
    exercise(apply_edits(*case))


@SETTINGS
@given(overwrites())
def test_random_overwrites(case):
    exercise(apply_edits(*case))


# -- 3. targeted corruption ------------------------------------------------------------------
def model_t(name: str):
    return fb.ModelT.InitFromPackedBuf(bytearray(FIXTURES[name]), 0)


def pack(model) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def edited(name: str, edit: Callable) -> Callable[[], bytes]:
    """A case: fixture `name` unpacked with the object API, `edit(model)`, packed again."""
    def make() -> bytes:
        model = model_t(name)
        edit(model)
        return pack(model)
    return make


def _const_tensor(model, dtype: int | None = None, min_bytes: int = 1):
    """(subgraph 0 tensor, its buffer) for the first constant with data (of `dtype`)."""
    for tensor in model.subgraphs[0].tensors:
        buffer = model.buffers[tensor.buffer]
        if buffer.data is not None and len(buffer.data) >= min_bytes and (dtype is None or tensor.type == dtype):
            return tensor, buffer
    raise AssertionError("no such constant")


def _first_op_with_inputs(model):
    return next(op for op in model.subgraphs[0].operators if op.inputs is not None and len(op.inputs))


def _set(obj, attr, index, value):
    items = [int(v) for v in getattr(obj, attr)]
    items[index] = value
    setattr(obj, attr, items)


# byte-level edits of a fixture
def _root_offset(value: int) -> Callable[[], bytes]:
    return lambda: patch(FIXTURES["float_cnn.tflite"], 0, "<I", value)


def _root_soffset(value_of: Callable[[int, int], int]) -> Callable[[], bytes]:
    def make():
        data = FIXTURES["float_cnn.tflite"]
        root = root_table(data)
        return patch(data, root, "<i", value_of(root, len(data)))
    return make


def _root_vtable_size(value: int) -> Callable[[], bytes]:
    def make():
        data = FIXTURES["float_cnn.tflite"]
        root = root_table(data)
        vtable = root - struct.unpack_from("<i", data, root)[0]
        return patch(data, vtable, "<H", value)
    return make


def _vector_length(name: str, locate: Callable[[bytes], int], value: int) -> Callable[[], bytes]:
    def make():
        data = FIXTURES[name]
        return patch(data, locate(data), "<I", value)
    return make


def _model_vector(slot):
    return lambda d: child(d, root_table(d), slot)


def _sg0(d):
    return element(d, child(d, root_table(d), MODEL_SUBGRAPHS), 0)


def _sg0_vector(slot):
    return lambda d: child(d, _sg0(d), slot)


def _tensor0_shape(d):
    tensors = child(d, _sg0(d), SUBGRAPH_TENSORS)
    for i in range(u32(d, tensors)):
        if field_pos(d, element(d, tensors, i), TENSOR_SHAPE) is not None:
            return child(d, element(d, tensors, i), TENSOR_SHAPE)
    raise AssertionError("no shaped tensor")


def _largest_buffer_data(d):
    model = root_table(d)
    buffers = child(d, model, MODEL_BUFFERS)
    best = max((element(d, buffers, i) for i in range(u32(d, buffers))),
               key=lambda b: -1 if field_pos(d, b, BUFFER_DATA) is None else u32(d, child(d, b, BUFFER_DATA)))
    return child(d, best, BUFFER_DATA)


def _tensor0_name(d):
    return child(d, element(d, child(d, _sg0(d), SUBGRAPH_TENSORS), 0), TENSOR_NAME)


def _string_without_nul() -> bytes:
    data = FIXTURES["float_cnn.tflite"]
    pos = _tensor0_name(data)
    return patch(data, pos + 4 + u32(data, pos), "<B", ord("X"))


def _string_running_to_end() -> bytes:
    data = FIXTURES["float_cnn.tflite"]
    pos = _tensor0_name(data)
    return patch(data, pos, "<I", len(data) - pos - 4)  # no room left for the NUL


def _redirect(name: str, slot_from: int, slot_to: int) -> Callable[[], bytes]:
    """Point Model field `slot_from` at whatever `slot_to` points at (overlapping offsets,
    the same bytes decoded as two different tables)."""
    def make():
        data = FIXTURES[name]
        root = root_table(data)
        source, target = field_pos(data, root, slot_from), child(data, root, slot_to)
        assert target > source
        return patch(data, source, "<I", target - source)
    return make


# hostile models built from scratch
def _offsets_vector(builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def build_aliased(subgraphs: int = 1, tensors: int = 1, pad: int = 0, operators: int = 0,
                  distinct: bool = False) -> bytes:
    """A model whose subgraphs vector holds `subgraphs` offsets to one SubGraph table, whose
    tensors vector holds `tensors` offsets to one Tensor table (and operators likewise):
    4 bytes of file per decoded table. `pad` bytes of description make the file bigger.
    `distinct` makes the tensors separate tables instead (all named "t": no aliasing)."""
    b = flatbuffers.Builder(1024)
    description = b.CreateString(b"p" * pad)
    name = b.CreateString(b"t")
    shape = b.CreateNumpyVector(np.array([1, 2], np.int32))
    tensor_tables = []
    for _ in range(tensors if distinct else 1):
        fb.TensorStart(b)
        fb.TensorAddShape(b, shape)
        fb.TensorAddType(b, fb.TensorType.FLOAT32)
        fb.TensorAddName(b, name)
        tensor_tables.append(fb.TensorEnd(b))
    tensor_vector = _offsets_vector(b, tensor_tables if distinct else tensor_tables * tensors)
    op_inputs = b.CreateNumpyVector(np.array([0], np.int32))
    op_outputs = b.CreateNumpyVector(np.array([], np.int32))
    fb.OperatorStart(b)
    fb.OperatorAddOpcodeIndex(b, 0)
    fb.OperatorAddInputs(b, op_inputs)
    fb.OperatorAddOutputs(b, op_outputs)
    operator = fb.OperatorEnd(b)
    operator_vector = _offsets_vector(b, [operator] * operators)
    fb.SubGraphStart(b)
    fb.SubGraphAddTensors(b, tensor_vector)
    fb.SubGraphAddOperators(b, operator_vector)
    subgraph = fb.SubGraphEnd(b)
    subgraph_vector = _offsets_vector(b, [subgraph] * subgraphs)
    fb.OperatorCodeStart(b)
    fb.OperatorCodeAddBuiltinCode(b, fb.BuiltinOperator.ABS)
    fb.OperatorCodeAddDeprecatedBuiltinCode(b, fb.BuiltinOperator.ABS)
    fb.OperatorCodeAddVersion(b, 1)
    opcode = fb.OperatorCodeEnd(b)
    opcode_vector = _offsets_vector(b, [opcode])
    fb.BufferStart(b)
    buffer = fb.BufferEnd(b)
    buffer_vector = _offsets_vector(b, [buffer])
    fb.ModelStart(b)
    fb.ModelAddVersion(b, 3)
    fb.ModelAddOperatorCodes(b, opcode_vector)
    fb.ModelAddSubgraphs(b, subgraph_vector)
    fb.ModelAddDescription(b, description)
    fb.ModelAddBuffers(b, buffer_vector)
    b.Finish(fb.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _nested_amplification() -> bytes:
    """1000 subgraph entries x 1000 tensor entries (10**6 tables from 8 KB of offsets),
    padded to 100 KB (the decoder's work budget grows with the file size)."""
    data = build_aliased(subgraphs=1000, tensors=1000)
    return build_aliased(subgraphs=1000, tensors=1000, pad=100 * 1024 - len(data))


# STRING buffers (strings.tflite: subgraph 0 tensor 2 "Const", STRING [5], 56 bytes)
def _string_buffer(rewrite: Callable[[bytearray], None]) -> Callable[[], bytes]:
    def edit(model):
        tensor, buffer = _const_tensor(model, fb.TensorType.STRING)
        blob = bytearray(bytes(buffer.data))
        rewrite(blob)
        buffer.data = np.frombuffer(bytes(blob), np.uint8)
    return edited("strings.tflite", edit)


def _count(value):
    return lambda blob: struct.pack_into("<i", blob, 0, value)


def _offset(index, value):
    return lambda blob: struct.pack_into("<i", blob, 4 + 4 * index, value)


def _swap_offsets(blob):
    a, b = struct.unpack_from("<ii", blob, 8)
    struct.pack_into("<ii", blob, 8, b, a)


# per-channel quantization (full_int8.tflite: conv weights, int8 per-channel)
def _per_channel(model):
    """A per-channel quantized constant of rank >= 2 (a conv kernel: inspect looks at its zeros)."""
    for tensor in model.subgraphs[0].tensors:
        q = tensor.quantization
        if q is not None and q.scale is not None and len(q.scale) > 1 and len(tensor.shape) >= 2 \
                and model.buffers[tensor.buffer].data is not None:
            return tensor
    raise AssertionError("no per-channel constant")


def _quant_axis(axis, zero_point=None):
    def edit(model):
        q = _per_channel(model).quantization
        q.quantizedDimension = axis
        if zero_point is not None:
            q.zeroPoint = np.full(len(q.scale), zero_point, np.int64)
    return edit


def _quant_zero_points(count, value=1):  # nonzero: inspect compares the data with them
    def edit(model):
        _per_channel(model).quantization.zeroPoint = np.full(count, value, np.int64)
    return edit


def _while_op(model):
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if op.builtinOptionsType == fb.BuiltinOptions.WhileOptions:
                return op
    raise AssertionError("no WHILE")


def _edit_while(attr, value):
    return lambda m: setattr(_while_op(m).builtinOptions, attr, value)


def _edit_buffer(**fields):
    def edit(model):
        _, buffer = _const_tensor(model, min_bytes=64)
        for key, value in fields.items():
            setattr(buffer, key, value)
    return edit


def _resize_const(delta):
    def edit(model):
        _, buffer = _const_tensor(model, fb.TensorType.FLOAT32, min_bytes=64)
        data = bytes(buffer.data)
        buffer.data = np.frombuffer(data[:delta] if delta < 0 else data + b"\0" * delta, np.uint8)
    return edit


def _retype_const(dtype: str, elements_per_byte=None):
    """Give a float32 constant another type, named as in the schema (and, if given, the shape
    its bytes then hold)."""
    def edit(model):
        tensor, buffer = _const_tensor(model, fb.TensorType.FLOAT32, min_bytes=64)
        tensor.type = getattr(fb.TensorType, dtype)
        if elements_per_byte is not None:
            tensor.shape = np.array([int(len(buffer.data) * elements_per_byte)], np.int32)
    return edit


def _retype_sparse(dtype: str):
    def edit(model):
        next(t for t in model.subgraphs[0].tensors if t.sparsity is not None).type = getattr(fb.TensorType, dtype)
    return edit


def _sparse_odd_size(model):
    for tensor in model.subgraphs[0].tensors:
        if tensor.sparsity is not None:
            buffer = model.buffers[tensor.buffer]
            buffer.data = np.frombuffer(bytes(buffer.data)[:-1], np.uint8)
            return
    raise AssertionError("no sparse tensor")


def _sparsity_field(name: str, value: list[int]):
    """The first sparse weight's traversal order or block map set to `value`."""
    def edit(model):
        tensor = next(t for t in model.subgraphs[0].tensors if t.sparsity is not None)
        setattr(tensor.sparsity, name, value)
    return edit


def _sparse_level_made_dense(model):
    """The compressed level of the sparse weight read as a dense one of 16: its levels then
    describe more values than its buffer holds (LiteRT's densify reads past them)."""
    for tensor in model.subgraphs[0].tensors:
        if tensor.sparsity is not None:
            level = tensor.sparsity.dimMetadata[1]
            level.format, level.denseSize = 0, 16
            level.arraySegmentsType = level.arrayIndicesType = 0
            level.arraySegments = level.arrayIndices = None
            return
    raise AssertionError("no sparse tensor")


def _op_input(value):
    return lambda m: _set(_first_op_with_inputs(m), "inputs", 0, value)


def _op_output(value):
    return lambda m: _set(m.subgraphs[0].operators[0], "outputs", 0, value)


def _self_loop(model):
    op = _first_op_with_inputs(model)
    _set(op, "inputs", 0, int(op.outputs[0]))


def _shared_output(model):
    ops = model.subgraphs[0].operators
    _set(ops[1], "outputs", 0, int(ops[0].outputs[0]))


def _no_tensors(clear_io: bool):
    def edit(model):
        sg = model.subgraphs[0]
        sg.tensors = []
        if clear_io:
            sg.inputs, sg.outputs = [], []
    return edit


def _tensor_field(attr, value, index=0):
    return lambda m: setattr(m.subgraphs[0].tensors[index], attr, value)


def _const_shape(shape):
    def edit(model):
        tensor, _ = _const_tensor(model, fb.TensorType.FLOAT32, min_bytes=64)
        tensor.shape = np.array(shape, np.int32)
    return edit


def _non_utf8_input_name(model):
    sg = model.subgraphs[0]
    sg.tensors[int(sg.inputs[0])].name = b"image\xff\xfe"


def _buffer_outside_flatbuffer(offset, size=None):
    """Buffer data moved "after the flatbuffer" (offset > 1), to `offset` (size: the data's)."""
    def edit(model):
        _, buffer = _const_tensor(model, fb.TensorType.FLOAT32, min_bytes=64)
        buffer.size = len(buffer.data) if size is None else size
        buffer.data, buffer.offset = None, offset
    return edit


def _custom_code(code):
    def edit(model):
        opcode = model.operatorCodes[0]
        opcode.builtinCode = opcode.deprecatedBuiltinCode = fb.BuiltinOperator.CUSTOM
        opcode.customCode = code
    return edit


def _unknown_options_type(model):
    op = next(op for op in model.subgraphs[0].operators if op.builtinOptions is not None)
    op.builtinOptionsType = 250  # Pack() writes the options table regardless of its type


def _var_handle_options(index: int, member: str | None, **fields):
    """resource_variables.tflite's operator `index` (a VAR_HANDLE) with options of type `member`
    (None: no options; LiteRT then names the variable "")."""
    def edit(model):
        op = model.subgraphs[0].operators[index]
        op.builtinOptionsType = 0 if member is None else getattr(fb.BuiltinOptions, member)
        op.builtinOptions = None if member is None else getattr(fb, member + "T")()
        for name, value in fields.items():
            setattr(op.builtinOptions, name, value)
    return edit


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[], bytes]
    reject: bool  # must be refused with FormatError by the reader itself
    object_api: bool = False
    data_error: bool = False  # may load, but decoding the constant must raise FormatError
    # breaks a rule LiteRT's loader does not check (fuzz/differential.py: LiteRT loads most of these and
    # runs them): loads, inspect warns, and it is written back byte for byte
    kept: bool = False


CASES = [
    # header / root
    Case("empty_file", lambda: b"", True),
    Case("seven_bytes_of_fixture", lambda: FIXTURES["float_cnn.tflite"][:7], True),
    Case("seven_zero_bytes", lambda: b"\0" * 7, True),
    Case("wrong_identifier_TFL2", lambda: patch(FIXTURES["float_cnn.tflite"], 4, "4s", b"TFL2"), True),
    Case("wrong_identifier_zeros", lambda: patch(FIXTURES["float_cnn.tflite"], 4, "4s", b"\0\0\0\0"), True),
    Case("root_offset_past_end", _root_offset(len(FIXTURES["float_cnn.tflite"]) + 100), True),
    Case("root_offset_0xFFFFFFFF", _root_offset(0xFFFFFFFF), True),
    Case("root_offset_last_byte", _root_offset(len(FIXTURES["float_cnn.tflite"]) - 1), True),
    Case("root_offset_4_identifier", _root_offset(4), False),
    Case("vtable_soffset_past_end", _root_soffset(lambda root, n: -(n + 16)), True),
    Case("vtable_soffset_before_start", _root_soffset(lambda root, n: root + 16), True),
    Case("vtable_soffset_int32_min", _root_soffset(lambda root, n: -2**31), True),
    Case("vtable_soffset_int32_max", _root_soffset(lambda root, n: 2**31 - 1), True),
    Case("vtable_size_0xFFFE", _root_vtable_size(0xFFFE), False),
    Case("vtable_size_odd", _root_vtable_size(7), True),
    Case("vtable_size_0", _root_vtable_size(0), True),
    # vector lengths
    *[Case(f"{what}_length_{value:#x}", _vector_length("float_cnn.tflite", locate, value), True)
      for what, locate in [("subgraphs", _model_vector(MODEL_SUBGRAPHS)), ("buffers", _model_vector(MODEL_BUFFERS)),
                           ("operator_codes", _model_vector(MODEL_OPERATOR_CODES)),
                           ("metadata", _model_vector(MODEL_METADATA)),
                           ("signature_defs", _model_vector(MODEL_SIGNATURE_DEFS)),
                           ("tensors", _sg0_vector(SUBGRAPH_TENSORS)), ("operators", _sg0_vector(SUBGRAPH_OPERATORS)),
                           ("subgraph_inputs", _sg0_vector(SUBGRAPH_INPUTS)), ("tensor_shape", _tensor0_shape),
                           ("buffer_data", _largest_buffer_data)]
      for value in (0xFFFFFFFF, 0x40000001)],
    Case("description_length_0xFFFFFFFF", _vector_length("float_cnn.tflite", _model_vector(MODEL_DESCRIPTION),
                                                         0xFFFFFFFF), True),
    Case("tensor_name_length_0xFFFFFFFF", _vector_length("float_cnn.tflite", _tensor0_name, 0xFFFFFFFF), True),
    # strings
    Case("string_without_nul", _string_without_nul, True),
    Case("string_runs_to_end_of_file", _string_running_to_end, True),
    # overlapping offsets / aliasing
    Case("buffers_field_aliases_subgraphs_vector", _redirect("float_cnn.tflite", MODEL_BUFFERS, MODEL_SUBGRAPHS), False),
    Case("subgraphs_field_aliases_buffers_vector", _redirect("float_cnn.tflite", MODEL_SUBGRAPHS, MODEL_BUFFERS), False),
    Case("operator_codes_field_aliases_subgraphs_vector",
         _redirect("control_flow.tflite", MODEL_OPERATOR_CODES, MODEL_SUBGRAPHS), False),
    Case("two_subgraph_entries_alias_one_table", lambda: build_aliased(subgraphs=2, tensors=3), False, True),
    Case("aliased_subgraphs_x_aliased_tensors_100KB", _nested_amplification, False, True),
    Case("8000_tensor_entries_alias_one_tensor_32KB", lambda: build_aliased(tensors=8000), False, True),
    Case("6000_distinct_tensors_all_named_t", lambda: build_aliased(tensors=6000, distinct=True), False, True),
    Case("2000_operator_entries_alias_one_operator",
         lambda: build_aliased(tensors=1, operators=2000), False, True),
    # buffers
    Case("buffer_offset_2**40", edited("float_cnn.tflite", _edit_buffer(offset=2**40, size=16)), False, True, kept=True),
    Case("buffer_data_and_offset_2_into_the_header", edited("float_cnn.tflite", _edit_buffer(offset=2, size=16)),
         False, True, kept=True),
    Case("buffer_offset_2**63_size_max", edited("float_cnn.tflite", _edit_buffer(offset=2**63, size=2**64 - 1)),
         False, True, kept=True),
    Case("buffer_offset_2_size_2**64-1", edited("float_cnn.tflite", _edit_buffer(offset=2, size=2**64 - 1)), False, True, kept=True),
    Case("buffer_offset_16_size_past_end", edited("float_cnn.tflite", _edit_buffer(data=None, offset=16, size=10**7)),
         False, True, kept=True),
    Case("tensor_buffer_index_eq_len", edited("float_cnn.tflite",
                                              lambda m: setattr(m.subgraphs[0].tensors[0], "buffer", len(m.buffers))),
         True, True),
    Case("tensor_buffer_index_u32_max", edited("float_cnn.tflite", _tensor_field("buffer", 2**32 - 1)), True, True),
    Case("metadata_buffer_index_out_of_range",
         edited("float_cnn.tflite", lambda m: setattr(m.metadata[0], "buffer", 10**6)), False, True, kept=True),
    Case("const_buffer_one_byte_short", edited("float_cnn.tflite", _resize_const(-1)), True, True),
    Case("const_buffer_four_bytes_long", edited("float_cnn.tflite", _resize_const(4)), False, True, kept=True),
    Case("const_shape_huge", edited("float_cnn.tflite", _const_shape([2**31 - 1, 2**31 - 1, 2**31 - 1])), True, True),
    Case("const_shape_negative", edited("float_cnn.tflite", _const_shape([-5, 16])), False, True),
    Case("sparse_levels_describe_other_values", edited("sparse.tflite", _sparse_level_made_dense), False, True,
         kept=True),
    Case("assign_variable_with_one_input", edited("resource_variables.tflite", lambda m: setattr(
        m.subgraphs[1].operators[1], "inputs", [int(m.subgraphs[1].operators[1].inputs[0])])), False, True, kept=True),
    Case("var_handle_without_options_reads_unassigned", edited("resource_variables.tflite", _var_handle_options(
        2, None)), False, True, kept=True),
    Case("var_handle_with_call_once_options_subgraph_16", edited("resource_variables.tflite", _var_handle_options(
        1, "CallOnceOptions", initSubgraphIndex=16)), False, True),
    Case("var_handle_writes_into_a_float_tensor", edited("resource_variables.tflite", lambda m: setattr(
        m.subgraphs[1].tensors[3], "type", fb.TensorType.FLOAT32)), False, True, kept=True),
    Case("metadata_names_buffer_0", edited("float_cnn.tflite", lambda m: setattr(m.metadata[0], "buffer", 0)),
         False, True),
    Case("sparse_traversal_order_past_its_levels", edited("sparse.tflite", _sparsity_field(
        "traversalOrder", [0, 1, -260, 64])), False, True, kept=True),
    Case("sparse_traversal_order_repeats_a_level", edited("sparse.tflite", _sparsity_field(
        "traversalOrder", [1, 1])), False, True, kept=True),
    Case("sparse_block_map_names_no_dimension", edited("sparse.tflite", _sparsity_field("blockMap", [5])),
         False, True, kept=True),
    Case("sparse_values_not_whole_floats", edited("sparse.tflite", _sparse_odd_size), False, True, kept=True),
    Case("buffer_offset_8_inside_the_flatbuffer", edited("float_cnn.tflite", _buffer_outside_flatbuffer(8)),
         False, True),
    Case("buffer_offset_1_size_max_is_inline", edited("float_cnn.tflite", _edit_buffer(offset=1, size=2**64 - 1)),
         False, True),
    Case("large_custom_options_inside_the_file",
         edited("custom_op.tflite", lambda m: (setattr(m.subgraphs[0].operators[0], "largeCustomOptionsOffset", 8),
                                               setattr(m.subgraphs[0].operators[0], "largeCustomOptionsSize", 100))),
         False, True),
    Case("large_custom_options_past_end",
         edited("custom_op.tflite", lambda m: (setattr(m.subgraphs[0].operators[0], "largeCustomOptionsOffset", 2**40),
                                               setattr(m.subgraphs[0].operators[0], "largeCustomOptionsSize", 64))),
         True, True),
    # operators
    Case("opcode_index_eq_len", edited("float_cnn.tflite", lambda m: setattr(
        m.subgraphs[0].operators[0], "opcodeIndex", len(m.operatorCodes))), True, True),
    Case("opcode_index_u32_max", edited("float_cnn.tflite", lambda m: setattr(
        m.subgraphs[0].operators[0], "opcodeIndex", 2**32 - 1)), True, True),
    Case("op_input_10**6", edited("float_cnn.tflite", _op_input(10**6)), False, True, kept=True),
    Case("op_input_-2", edited("float_cnn.tflite", _op_input(-2)), False, True, kept=True),
    Case("op_input_int32_min", edited("float_cnn.tflite", _op_input(-2**31)), False, True, kept=True),
    Case("op_output_10**6", edited("float_cnn.tflite", _op_output(10**6)), False, True, kept=True),
    Case("op_output_-1", edited("float_cnn.tflite", _op_output(-1)), False, True, kept=True),
    Case("op_output_-2", edited("float_cnn.tflite", _op_output(-2)), False, True, kept=True),
    Case("op_output_shared_by_two_ops", edited("float_cnn.tflite", _shared_output), False, True, kept=True),
    Case("op_consumes_its_own_output", edited("float_cnn.tflite", _self_loop), False, True),
    Case("op_intermediate_out_of_range", edited("float_cnn.tflite", lambda m: setattr(
        m.subgraphs[0].operators[0], "intermediates", [10**6])), False, True, kept=True),
    Case("builtin_options_type_unknown_250", edited("float_cnn.tflite", _unknown_options_type), False, True),
    Case("while_cond_is_the_main_subgraph", edited("control_flow.tflite", _edit_while("condSubgraphIndex", 0)),
         False, True),
    Case("builtin_code_int32_max", edited("float_cnn.tflite", lambda m: setattr(m.operatorCodes[0], "builtinCode",
                                                                                2**31 - 1)), False, True),
    Case("builtin_code_negative", edited("float_cnn.tflite", lambda m: (
        setattr(m.operatorCodes[0], "builtinCode", -5), setattr(m.operatorCodes[0], "deprecatedBuiltinCode", -7))),
        False, True),
    Case("custom_code_not_utf8", edited("float_cnn.tflite", _custom_code(b"\xff\xfeop")), False, True),
    Case("custom_code_names_an_ir_source_op", edited("float_cnn.tflite", _custom_code(b"Const")), False, True),
    Case("while_cond_subgraph_99", edited("control_flow.tflite", _edit_while("condSubgraphIndex", 99)), True, True),
    Case("while_body_subgraph_-1", edited("control_flow.tflite", _edit_while("bodySubgraphIndex", -1)), True, True),
    # subgraphs
    Case("subgraph_zero_tensors_ops_and_io_reference_them", edited("float_cnn.tflite", _no_tensors(False)), False, True, kept=True),
    Case("subgraph_zero_tensors_ops_reference_them", edited("float_cnn.tflite", _no_tensors(True)), False, True, kept=True),
    Case("subgraph_inputs_repeat_one_tensor", edited("float_cnn.tflite", lambda m: setattr(
        m.subgraphs[0], "inputs", [int(m.subgraphs[0].inputs[0])] * 3)), False, True),
    Case("subgraph_input_is_an_operator_output", edited("float_cnn.tflite", lambda m: setattr(
        m.subgraphs[0], "inputs", [int(m.subgraphs[0].operators[0].outputs[0])])), False, True, kept=True),
    Case("subgraph_input_out_of_range", edited("float_cnn.tflite", lambda m: setattr(
        m.subgraphs[0], "inputs", [10**6])), False, True, kept=True),
    Case("subgraph_output_negative", edited("float_cnn.tflite", lambda m: setattr(
        m.subgraphs[0], "outputs", [-7])), False, True, kept=True),
    Case("no_subgraphs_empty_vector", edited("float_cnn.tflite", lambda m: setattr(m, "subgraphs", [])), True, True),
    Case("no_subgraphs_field_absent", edited("float_cnn.tflite", lambda m: setattr(m, "subgraphs", None)), True, True),
    Case("signature_subgraph_index_99", edited("multi_signature.tflite", lambda m: setattr(
        m.signatureDefs[0], "subgraphIndex", 99)), False, True, kept=True),
    Case("signature_tensor_index_10**6", edited("multi_signature.tflite", lambda m: setattr(
        m.signatureDefs[0].inputs[0], "tensorIndex", 10**6)), False, True, kept=True),
    # tensors
    Case("tensor_name_not_utf8", edited("float_cnn.tflite", _non_utf8_input_name), False, True),
    Case("tensor_type_99", edited("float_cnn.tflite", _tensor_field("type", 99)), False, True, kept=True),
    Case("tensor_type_-1", edited("float_cnn.tflite", _tensor_field("type", -1)), False, True, kept=True),
    Case("float_const_retyped_int4", edited("float_cnn.tflite", _retype_const("INT4", 2)), False, True),
    Case("float_const_retyped_bool", edited("float_cnn.tflite", _retype_const("BOOL", 1)), False, True),
    Case("float_const_retyped_complex128", edited("float_cnn.tflite", _retype_const("COMPLEX128", 1 / 16)),
         False, True),
    Case("float_const_retyped_resource", edited("float_cnn.tflite", _retype_const("RESOURCE")), False, True),
    Case("float_const_retyped_string", edited("float_cnn.tflite", _retype_const("STRING")),
         False, True, data_error=True),
    Case("sparse_const_retyped_string", edited("sparse.tflite", _retype_sparse("STRING")), False, True, kept=True),
    Case("sparse_const_retyped_int4", edited("sparse.tflite", _retype_sparse("INT4")), False, True),
    Case("const_shape_signature_rank_differs", edited("float_cnn.tflite", lambda m: setattr(
        _const_tensor(m, fb.TensorType.FLOAT32, 64)[0], "shapeSignature", [-1, -1])), False, True),
    Case("quantized_dimension_9", edited("full_int8.tflite", _quant_axis(9, zero_point=1)), False, True),
    Case("quantized_dimension_-9", edited("full_int8.tflite", _quant_axis(-9, zero_point=1)), False, True),
    Case("zero_points_fewer_than_scales", edited("full_int8.tflite", _quant_zero_points(3)), False, True),
    # STRING tensor buffers: may load (data is decoded lazily) but decoding must be refused
    Case("string_count_huge", _string_buffer(_count(0x7FFFFFFF)), False, True, data_error=True),
    Case("string_count_negative", _string_buffer(_count(-1)), False, True, data_error=True),
    Case("string_count_2**30", _string_buffer(_count(2**30)), False, True, data_error=True),
    Case("string_offsets_decreasing", _string_buffer(_swap_offsets), False, True, data_error=True),
    Case("string_offset_past_end", _string_buffer(_offset(5, 10**6)), False, True, data_error=True),
    Case("string_first_offset_inside_header", _string_buffer(_offset(0, 0)), False, True, data_error=True),
    Case("string_offset_negative", _string_buffer(_offset(1, -100)), False, True, data_error=True),
    Case("string_count_disagrees_with_shape", _string_buffer(_count(4)), False, True, data_error=True),
    Case("string_buffer_three_bytes", _string_buffer(lambda blob: blob.__delitem__(slice(3, None))),
         False, True, data_error=True),
]
CASE_IDS = [c.id for c in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS)


def _make(case: Case) -> bytes:
    if case.object_api and fb is None:
        pytest.skip(NO_SCHEMA)
    return case.make()


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_targeted(case, tmp_path):
    data = _make(case)
    outcome = exercise(data)
    if case.reject:
        assert outcome.rejected("load"), f"{case.id}: read without FormatError ({sorted(outcome.errors)})"
    if case.data_error:
        assert "load" in outcome.errors or outcome.rejected("data"), \
            f"{case.id}: the broken STRING buffer decoded without FormatError"
    # the same bytes from a .tflite path through graphtool.load: same verdict, file untouched
    path = tmp_path / "model.tflite"
    path.write_bytes(data)
    before = (path.stat().st_mtime_ns, path.stat().st_size, hashlib.sha256(data).hexdigest())
    by_path = exercise(path=path)
    assert by_path.rejected("load") == outcome.rejected("load")
    if by_path.rejected("load"):
        assert by_path.errors["load"].source == str(path)
        assert str(by_path.errors["load"]).startswith(f"{path}: ")
    after = (path.stat().st_mtime_ns, path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
    assert after == before, "the input file was modified"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"], "stray files next to the input"


KEPT = [case for case in CASES if case.kept]


@pytest.mark.parametrize("case", KEPT, ids=[case.id for case in KEPT])
def test_kept_as_read(case):
    """What LiteRT's loader does not check, graphtool does not refuse: the model loads, inspect
    says what is odd, and writing it back changes no byte."""
    data = _make(case)
    graph = graphtool.load(data)
    warnings = graphtool.inspect(graph).warnings
    assert warnings, f"{case.id}: no warning"
    assert dumps(graph, allow_unknown=True) == data, f"{case.id}: written back with other bytes"


@pytest.mark.parametrize("case_id", ["var_handle_with_call_once_options_subgraph_16", "metadata_names_buffer_0"])
def test_odd_but_legal_fields_written_back(case_id):
    """Fields LiteRT reads harmlessly come back byte for byte: options of another operator's
    type (their subgraph index names nothing) and a metadata entry naming the empty buffer 0."""
    data = _make(CASES[CASE_IDS.index(case_id)])
    assert dumps(graphtool.load(data), allow_unknown=True) == data


def test_foreign_options_keep_their_numbers():
    data = _make(CASES[CASE_IDS.index("var_handle_with_call_once_options_subgraph_16")])
    node = next(n for n in graphtool.load(data) if n.op == "VAR_HANDLE" and "init_subgraph_index" in n.attrs)
    assert node.attrs["init_subgraph_index"] == 16


def test_unassigned_variable_read_named():
    data = _make(CASES[CASE_IDS.index("var_handle_without_options_reads_unassigned")])
    warnings = graphtool.inspect(graphtool.load(data)).warnings
    assert any("READ_VARIABLE" in w and "before anything assigns it" in w for w in warnings), warnings
    data = _make(CASES[CASE_IDS.index("var_handle_writes_into_a_float_tensor")])
    assert graphtool.inspect(graphtool.load(data)).warnings == [
        "subgraph 1: 'total2' (VAR_HANDLE) writes its handle into a float32 tensor, not a resource"]
    assert not graphtool.inspect(graphtool.load(FIXTURES["resource_variables.tflite"])).warnings


@needs_schema
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_object_api_repack_is_a_valid_model(name):
    """Control for the object-API cases: an unedited unpack/pack reads back cleanly."""
    outcome = exercise(pack(model_t(name)))
    assert outcome.loaded and not outcome.errors, {k: describe(v) for k, v in outcome.errors.items()}


@needs_schema
def test_aliased_model_builder_control():
    """Control for the aliasing cases: the same builder with no aliasing reads cleanly."""
    outcome = exercise(build_aliased())
    assert outcome.loaded and not outcome.errors, {k: describe(v) for k, v in outcome.errors.items()}


# entries -> a model with that many; 100 bytes of padding per entry for the nested one, whose
# n subgraph entries x n tensor entries reference n**2 tables
AMPLIFIERS = {
    "aliased_tensors": lambda n: build_aliased(tensors=n),
    "distinct_tensors_all_named_t": lambda n: build_aliased(tensors=n, distinct=True),
    "aliased_operators": lambda n: build_aliased(operators=n),
    "aliased_subgraphs_x_aliased_tensors": lambda n: build_aliased(subgraphs=n, tensors=n, pad=100 * n),
}


@needs_schema
@pytest.mark.parametrize("name", sorted(AMPLIFIERS))
def test_work_grows_linearly_with_the_entries(name):
    """Four times the entries cost about four times the calls (quadratic work would cost 16
    times): no entry, however aliased or named, costs work that grows with the others."""
    small, large = (calls_to_exercise(AMPLIFIERS[name](entries)) for entries in (250, 1000))
    assert large < 6 * small, f"{name}: {small} calls for 250 entries, {large} for 1000"


# -- 4. the command line ---------------------------------------------------------------------
CLI_CASES = ["empty_file", "seven_zero_bytes", "wrong_identifier_TFL2", "root_offset_past_end",
             "vtable_soffset_past_end", "buffers_length_0xffffffff", "string_without_nul",
             "opcode_index_eq_len",
             "no_subgraphs_empty_vector"]
CLI_ANY = ["buffer_offset_2**40", "op_input_10**6", "tensor_type_99", "quantized_dimension_9", "zero_points_fewer_than_scales", "string_count_huge", "tensor_name_not_utf8"]


def _cli_inspect(path: Path) -> subprocess.CompletedProcess:
    # stdout as in a UTF-8 desktop locale (strict), not the C locale's surrogateescape
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "graphtool", "inspect", str(path)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=60)


@pytest.mark.parametrize("case_id", CLI_CASES + CLI_ANY)
def test_cli_inspect(case_id, tmp_path):
    case = CASES[CASE_IDS.index(case_id)]
    data = _make(case)
    path = tmp_path / "bad.tflite"
    path.write_bytes(data)
    mtime = path.stat().st_mtime_ns
    result = _cli_inspect(path)
    lines = result.stderr.splitlines()
    assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime, "the input file was modified"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    if case_id in CLI_CASES:
        assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    else:
        assert result.returncode in (0, 2), (result.returncode, result.stderr[-3000:])
    if result.returncode == 2:
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"graphtool: error: {path}:"), lines[0]
    else:
        assert result.stderr == "", result.stderr


def test_fixture_files_never_modified():
    for path in FIXTURE_PATHS:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == FIXTURE_HASHES[path.name], path.name
