"""TFLite buffer bytes <-> numpy arrays: plain little-endian data, STRING tensors
(int32 count, count+1 int32 offsets, then the bytes) and sub-byte types packed low bits
first (INT4/UINT4 two per byte, INT2 four per byte)."""
from __future__ import annotations

import math
import struct

import numpy as np

from ...errors import FormatError
from ...ir import DType

PACKED_BITS = {DType.INT4: 4, DType.UINT4: 4, DType.INT2: 2}


def expected_nbytes(dtype: DType, shape: tuple) -> int | None:
    """Bytes a dense tensor of this type and shape needs (None for strings/handles)."""
    count = math.prod(shape)
    if dtype in PACKED_BITS:
        return math.ceil(count * PACKED_BITS[dtype] / 8)
    size = dtype.itemsize
    return None if size is None else count * size


def decode(raw: np.ndarray, dtype: DType, shape: tuple, where: str) -> np.ndarray:
    """Typed, shaped, read-only array from a tensor's buffer bytes (a uint8 array)."""
    if dtype is DType.STRING:
        return _decode_strings(raw, shape, where)
    if dtype in PACKED_BITS:
        return _unpack(raw, PACKED_BITS[dtype], dtype is not DType.UINT4, math.prod(shape)).reshape(shape)
    storage = dtype.numpy.newbyteorder("<") if dtype.numpy.itemsize > 1 else dtype.numpy
    array = raw.view(storage).reshape(shape)
    array.flags.writeable = False
    return array


def encode(data: np.ndarray, dtype: DType) -> np.ndarray:
    """Buffer bytes (a uint8 array) for `data` stored as `dtype`; a view when the data
    already have the stored layout."""
    if dtype is DType.STRING:
        return np.frombuffer(_encode_strings(data), np.uint8)
    if dtype in PACKED_BITS:
        return np.frombuffer(_pack(np.asarray(data), PACKED_BITS[dtype]), np.uint8)
    storage = dtype.numpy.newbyteorder("<") if dtype.numpy.itemsize > 1 else dtype.numpy
    return np.ascontiguousarray(data, dtype=storage).reshape(-1).view(np.uint8)


def _unpack(raw: np.ndarray, bits: int, signed: bool, count: int) -> np.ndarray:
    per_byte = 8 // bits
    mask = (1 << bits) - 1
    shifts = np.arange(per_byte, dtype=np.uint8) * bits
    values = ((raw[:, None] >> shifts) & mask).reshape(-1)[:count].astype(np.int8 if signed else np.uint8)
    if signed:
        values = np.where(values >= 1 << (bits - 1), values - (1 << bits), values).astype(np.int8)
    values.flags.writeable = False
    return values


def _pack(data: np.ndarray, bits: int) -> bytes:
    per_byte = 8 // bits
    flat = (data.reshape(-1).astype(np.int16) & ((1 << bits) - 1)).astype(np.uint8)
    flat = np.concatenate([flat, np.zeros((-flat.size) % per_byte, np.uint8)]).reshape(-1, per_byte)
    shifts = np.arange(per_byte, dtype=np.uint8) * bits
    return np.bitwise_or.reduce(flat << shifts, axis=1).astype(np.uint8).tobytes()


def check_strings(raw: np.ndarray, shape: tuple, where: str) -> tuple[bytes, tuple[int, ...]]:
    """The STRING buffer's bytes and offsets, after checking its header against the data
    (done when the model is read, so decoding later cannot fail)."""
    blob = raw.tobytes()
    if len(blob) < 4:
        raise FormatError("STRING buffer shorter than its count", where=where)
    (count,) = struct.unpack_from("<i", blob, 0)
    if count < 0 or 4 * (count + 2) > len(blob):
        raise FormatError(f"STRING buffer claims {count} strings in {len(blob)} bytes", where=where)
    offsets = struct.unpack_from(f"<{count + 1}i", blob, 4)
    if any(b < a for a, b in zip(offsets, offsets[1:])) or offsets[0] < 4 * (count + 2) or offsets[-1] > len(blob):
        raise FormatError("STRING buffer has offsets out of order or out of range", where=where)
    if count != math.prod(shape):
        raise FormatError(f"STRING buffer holds {count} strings for shape {list(shape)}", where=where)
    return blob, offsets


def _decode_strings(raw: np.ndarray, shape: tuple, where: str) -> np.ndarray:
    blob, offsets = check_strings(raw, shape, where)
    count = len(offsets) - 1
    array = np.empty(count, dtype=object)
    array[:] = [blob[a:b] for a, b in zip(offsets, offsets[1:])]
    array = array.reshape(shape)
    array.flags.writeable = False
    return array


def _encode_strings(data: np.ndarray) -> bytes:
    items = [s if isinstance(s, bytes) else str(s).encode("utf-8") for s in np.asarray(data, dtype=object).flat]
    header = 4 * (len(items) + 2)
    offsets = [header]
    for item in items:
        offsets.append(offsets[-1] + len(item))
    return struct.pack(f"<i{len(offsets)}i", len(items), *offsets) + b"".join(items)
