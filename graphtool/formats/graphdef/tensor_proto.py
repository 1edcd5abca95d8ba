"""TensorProto <-> numpy, for every DataType, without TensorFlow.

Reading follows TensorFlow's rules: `tensor_content` holds the raw little-endian bytes;
otherwise the typed `*_val` field holds the values, and fewer values than elements means
the last one repeats (the broadcast form `float_val: 0.0` of a large zero tensor).
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import FormatError
from ...ir import DType, Tensor
from . import keys
from ._proto import graphtool_graphdef_pb2 as pb

# Which repeated field holds the values of each dtype when tensor_content is empty.
_VALUE_FIELD: dict[DType, str] = {
    DType.FLOAT32: "float_val",
    DType.FLOAT64: "double_val",
    DType.INT32: "int_val", DType.INT16: "int_val", DType.INT8: "int_val", DType.UINT8: "int_val",
    DType.UINT16: "int_val", DType.QINT8: "int_val", DType.QUINT8: "int_val",
    DType.QINT16: "int_val", DType.QUINT16: "int_val", DType.QINT32: "int_val",
    DType.INT4: "int_val", DType.UINT4: "int_val", DType.INT2: "int_val", DType.UINT2: "int_val",
    DType.INT64: "int64_val",
    DType.UINT32: "uint32_val",
    DType.UINT64: "uint64_val",
    DType.BOOL: "bool_val",
    DType.STRING: "string_val",
    DType.FLOAT16: "half_val", DType.BFLOAT16: "half_val",
    DType.COMPLEX64: "scomplex_val",
    DType.COMPLEX128: "dcomplex_val",
    DType.FLOAT8_E5M2: "float8_val", DType.FLOAT8_E4M3FN: "float8_val",
    DType.FLOAT8_E4M3FNUZ: "float8_val", DType.FLOAT8_E4M3B11FNUZ: "float8_val",
    DType.FLOAT8_E5M2FNUZ: "float8_val", DType.FLOAT4_E2M1FN: "float8_val",
}

MAX_ELEMENTS = 1 << 40  # a claimed shape past this is refused before any allocation
MAX_RANK = 32  # numpy arrays go to 64 dimensions, but its iterators (nditer, vectorize) to 32
# A tensor stored as fewer values than it has elements (TensorFlow repeats the last, or
# fills zeros) is expanded when decoded; past this many bytes it is refused when read.
MAX_EXPANDED_BYTES = 1 << 27


def shape_from_proto(shape: pb.TensorShapeProto) -> tuple | None:
    if shape.unknown_rank:
        return None
    return tuple(None if d.size < 0 else d.size for d in shape.dim)


def shape_to_proto(dims: tuple | None, out: pb.TensorShapeProto) -> pb.TensorShapeProto:
    if dims is None:
        out.unknown_rank = True
        return out
    for d in dims:
        out.dim.add().size = -1 if d is None else int(d)
    return out


def dtype_from_tf(number: int, where: str) -> DType:
    try:
        return DType.from_tf(number)
    except ValueError as exc:
        raise FormatError(str(exc), where=where) from None


def tensor_from_proto(proto: pb.TensorProto, name: str, where: str, source: str | None = None) -> Tensor:
    """A Tensor whose data is decoded from `proto` on first use."""
    dtype = dtype_from_tf(proto.dtype, where)
    shape = shape_from_proto(proto.tensor_shape)
    if shape is None or any(d is None for d in shape):
        raise FormatError(f"tensor has an incomplete shape {shape}", where=where)
    count = math.prod(shape)
    if count > MAX_ELEMENTS or math.prod(d for d in shape if d) > MAX_ELEMENTS:
        raise FormatError(f"tensor claims shape {list(shape)} ({count} elements), larger than graphtool "
                          f"represents", where=where)
    if len(shape) > MAX_RANK:
        raise FormatError(f"tensor has rank {len(shape)}; at most {MAX_RANK} is supported", where=where)
    if dtype.numpy is not None:
        _check_sizes(proto, dtype, count, shape, where)
    # resource / variant handles have no numpy form: they stay a proto
    loader = None if dtype.numpy is None else (lambda: _decode_from(source, proto, dtype, shape, where))
    return Tensor(name, dtype, shape, meta={keys.TENSOR_PROTO: proto}, loader=loader)


def _decode_from(source: str | None, *args) -> np.ndarray:
    """Decode on first use; an error then still names the file the tensor came from."""
    try:
        return decode_values(*args)
    except FormatError as exc:
        raise (exc.with_source(source) if source and not exc.source else exc) from None


def _check_sizes(proto: pb.TensorProto, dtype: DType, count: int, shape: tuple, where: str) -> None:
    """Refuse, when the model is read, value counts that decoding would refuse later, and
    short value lists that would expand past MAX_EXPANDED_BYTES (the length of
    tensor_content is checked when it is decoded: reading it costs a copy)."""
    field = _VALUE_FIELD.get(dtype)
    if field is None:
        raise FormatError(f"cannot decode {dtype} values", where=where)
    if proto.tensor_content:
        return
    values = len(getattr(proto, field))
    if field in ("scomplex_val", "dcomplex_val"):
        if values % 2:
            raise FormatError(f"{field} has an odd number of parts", where=where)
        values //= 2
    if values > count:
        raise FormatError(f"{field} has {values} values for shape {list(shape)}", where=where)
    expanded = count * (8 if dtype is DType.STRING else dtype.numpy.itemsize)  # strings: one pointer each
    if values < count and expanded > MAX_EXPANDED_BYTES:
        raise FormatError(f"tensor of shape {list(shape)} is stored as {values} value(s) that would expand "
                          f"to {expanded:,} bytes; graphtool expands at most {MAX_EXPANDED_BYTES:,}", where=where)


def is_unchanged(tensor: Tensor) -> bool:
    """True when `tensor` still holds exactly what its source TensorProto says."""
    proto = tensor.meta.get(keys.TENSOR_PROTO)
    if proto is None:
        return False
    if tensor.dtype is None or tensor.dtype.tf != proto.dtype or tensor.shape != shape_from_proto(proto.tensor_shape):
        return False
    return tensor.dtype.numpy is None or not tensor.data_replaced


def decode_values(proto: pb.TensorProto, dtype: DType, shape: tuple, where: str) -> np.ndarray:
    count = math.prod(shape)
    storage = dtype.numpy.newbyteorder("<") if dtype.numpy.itemsize > 1 else dtype.numpy
    if proto.tensor_content:
        content = proto.tensor_content
        if dtype is DType.STRING:
            raise FormatError("string tensor stored in tensor_content", where=where)
        if len(content) != count * storage.itemsize:
            raise FormatError(f"tensor_content has {len(content)} bytes, shape {list(shape)} of "
                              f"{dtype} needs {count * storage.itemsize}", where=where)
        array = np.frombuffer(content, dtype=storage)
        return array.astype(dtype.numpy, copy=False).reshape(shape)
    field = _VALUE_FIELD.get(dtype)
    if field is None:
        raise FormatError(f"cannot decode {dtype} values", where=where)
    values = getattr(proto, field)
    if field == "float8_val":
        flat = np.frombuffer(values, dtype=np.uint8)
    elif dtype is DType.STRING:
        flat = np.empty(len(values), dtype=object)
        flat[:] = list(values)
    elif field == "half_val":
        flat = np.asarray(values, dtype=np.int64).astype(np.uint16).view(dtype.numpy)
    elif field in ("scomplex_val", "dcomplex_val"):
        parts = np.asarray(values, dtype=np.float32 if field == "scomplex_val" else np.float64)
        if parts.size % 2:
            raise FormatError(f"{field} has an odd number of parts", where=where)
        flat = parts.view(dtype.numpy)  # (real, imaginary) pairs
    else:
        flat = np.asarray(values)
    if flat.size > count:
        raise FormatError(f"{field} has {flat.size} values for shape {list(shape)}", where=where)
    if flat.size == count:
        array = flat.astype(dtype.numpy, copy=False)
    elif flat.size == 0:
        array = np.zeros(count, dtype=dtype.numpy) if dtype is not DType.STRING else np.full(count, b"", dtype=object)
    else:  # TensorFlow repeats the last value to fill the tensor
        array = np.empty(count, dtype=dtype.numpy)
        array[:flat.size] = flat
        array[flat.size:] = flat[-1]
    array = array.reshape(shape)
    array.flags.writeable = False
    return array


def tensor_to_proto(tensor: Tensor, out: pb.TensorProto) -> pb.TensorProto:
    """Encode `tensor` into `out`: the source proto when unchanged, else tensor_content
    (string_val for strings), as TensorFlow's own make_tensor_proto does."""
    if is_unchanged(tensor):
        out.CopyFrom(tensor.meta[keys.TENSOR_PROTO])
        return out
    if tensor.dtype.tf is None or tensor.dtype.numpy is None:
        raise FormatError(f"{tensor.name}: cannot write a {tensor.dtype} tensor to a GraphDef")
    out.dtype = tensor.dtype.tf
    data = tensor.data
    shape_to_proto(tuple(data.shape), out.tensor_shape)
    if tensor.dtype is DType.STRING:
        out.string_val.extend(s if isinstance(s, bytes) else str(s).encode() for s in data.flat)
    else:
        out.tensor_content = np.ascontiguousarray(data, dtype=tensor.dtype.numpy.newbyteorder("<")).tobytes()
    return out
