"""One element-type enum for both TensorFlow's DataType and TFLite's TensorType.

Each member knows its numpy storage type, its TF DataType number and its TFLite
TensorType number (None where the format has no such type). Types numpy lacks
(bfloat16, float8, quantized TF types) are stored as the unsigned/signed integer of the
same width, so their bits are kept exactly.
"""
from __future__ import annotations

import enum

import numpy as np


class DType(str, enum.Enum):
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    UINT64 = "uint64"
    INT4 = "int4"
    UINT4 = "uint4"
    INT2 = "int2"
    UINT2 = "uint2"
    BOOL = "bool"
    STRING = "string"
    COMPLEX64 = "complex64"
    COMPLEX128 = "complex128"
    QINT8 = "qint8"
    QUINT8 = "quint8"
    QINT16 = "qint16"
    QUINT16 = "quint16"
    QINT32 = "qint32"
    RESOURCE = "resource"
    VARIANT = "variant"
    FLOAT8_E5M2 = "float8_e5m2"
    FLOAT8_E4M3FN = "float8_e4m3fn"
    FLOAT8_E4M3FNUZ = "float8_e4m3fnuz"
    FLOAT8_E4M3B11FNUZ = "float8_e4m3b11fnuz"
    FLOAT8_E5M2FNUZ = "float8_e5m2fnuz"
    FLOAT4_E2M1FN = "float4_e2m1fn"
    INVALID = "invalid"

    def __str__(self) -> str:
        return self.value

    @property
    def numpy(self) -> np.dtype | None:
        """numpy type holding this type's values (or its bits); None for handles."""
        return _NUMPY.get(self)

    @property
    def itemsize(self) -> int | None:
        """Bytes per element as stored in memory by graphtool; None for strings/handles."""
        np_type = self.numpy
        return None if np_type is None or np_type == np.dtype(object) else np_type.itemsize

    @property
    def is_float(self) -> bool:
        return self in _FLOATS

    @property
    def is_quantized(self) -> bool:
        return self in (DType.QINT8, DType.QUINT8, DType.QINT16, DType.QUINT16, DType.QINT32)

    @property
    def tf(self) -> int | None:
        """TensorFlow DataType enum number."""
        return _TF.get(self)

    @property
    def tflite(self) -> int | None:
        """TFLite TensorType enum number."""
        return _TFLITE.get(self)

    @classmethod
    def from_tf(cls, number: int) -> "DType":
        try:
            return _FROM_TF[number]
        except KeyError:
            raise ValueError(f"unknown TensorFlow DataType {number}") from None

    @classmethod
    def from_tflite(cls, number: int) -> "DType":
        try:
            return _FROM_TFLITE[number]
        except KeyError:
            raise ValueError(f"unknown TFLite TensorType {number}") from None

    @classmethod
    def from_numpy(cls, np_type: np.dtype | type) -> "DType":
        np_type = np.dtype(np_type)
        for member in _NATIVE:
            if _NUMPY[member] == np_type:
                return member
        if np_type.kind in "OSU":
            return DType.STRING
        raise ValueError(f"no graphtool dtype for numpy {np_type}")


_D = DType
# (numpy storage, TF DataType, TFLite TensorType)
_TABLE: dict[DType, tuple[str | None, int | None, int | None]] = {
    _D.FLOAT32: ("float32", 1, 0),
    _D.FLOAT64: ("float64", 2, 10),
    _D.INT32: ("int32", 3, 2),
    _D.UINT8: ("uint8", 4, 3),
    _D.INT16: ("int16", 5, 7),
    _D.INT8: ("int8", 6, 9),
    _D.STRING: ("object", 7, 5),
    _D.COMPLEX64: ("complex64", 8, 8),
    _D.INT64: ("int64", 9, 4),
    _D.BOOL: ("bool", 10, 6),
    _D.QINT8: ("int8", 11, None),
    _D.QUINT8: ("uint8", 12, None),
    _D.QINT32: ("int32", 13, None),
    _D.BFLOAT16: ("uint16", 14, 18),
    _D.QINT16: ("int16", 15, None),
    _D.QUINT16: ("uint16", 16, None),
    _D.UINT16: ("uint16", 17, 16),
    _D.COMPLEX128: ("complex128", 18, 11),
    _D.FLOAT16: ("float16", 19, 1),
    _D.RESOURCE: (None, 20, 13),
    _D.VARIANT: (None, 21, 14),
    _D.UINT32: ("uint32", 22, 15),
    _D.UINT64: ("uint64", 23, 12),
    _D.FLOAT8_E5M2: ("uint8", 24, None),
    _D.FLOAT8_E4M3FN: ("uint8", 25, None),
    _D.FLOAT8_E4M3FNUZ: ("uint8", 26, None),
    _D.FLOAT8_E4M3B11FNUZ: ("uint8", 27, None),
    _D.FLOAT8_E5M2FNUZ: ("uint8", 28, None),
    _D.INT4: ("int8", 29, 17),
    _D.UINT4: ("uint8", 30, 20),
    _D.INT2: ("int8", 31, 19),
    _D.UINT2: ("uint8", 32, None),
    _D.FLOAT4_E2M1FN: ("uint8", 33, None),
    _D.INVALID: (None, 0, None),
}
_NUMPY = {d: np.dtype(t) for d, (t, _, _) in _TABLE.items() if t is not None}
_TF = {d: n for d, (_, n, _) in _TABLE.items() if n is not None}
_TFLITE = {d: n for d, (_, _, n) in _TABLE.items() if n is not None}
_FROM_TF = {n: d for d, n in _TF.items()}
_FROM_TFLITE = {n: d for d, n in _TFLITE.items()}
_FLOATS = {_D.FLOAT16, _D.BFLOAT16, _D.FLOAT32, _D.FLOAT64} | {
    d for d in DType if d.value.startswith(("float8", "float4"))
}
# Types whose numpy storage is their natural numpy type (the inverse of `numpy`).
_NATIVE = [_D.FLOAT32, _D.FLOAT64, _D.FLOAT16, _D.INT8, _D.INT16, _D.INT32, _D.INT64,
           _D.UINT8, _D.UINT16, _D.UINT32, _D.UINT64, _D.BOOL, _D.COMPLEX64, _D.COMPLEX128]
