"""TensorProto <-> numpy, for every DataType, without TensorFlow.

Reading follows TensorFlow's rules: `tensor_content` holds the raw little-endian bytes;
otherwise the typed `*_val` field holds the values, and fewer values than elements means
the last one repeats (the broadcast form `float_val: 0.0` of a large zero tensor).
Writing copies the proto a tensor was read from while it is unchanged, and writes anything
new in one standard form that GraphDef consumers other than TensorFlow read too
(`source_form`).
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
    """A Tensor whose data is decoded from `proto` on first use. One whose shape or values
    do not fit is read too, as TensorFlow imports it (it looks only when it runs the
    constant): kept as read, its data raises FormatError."""
    shape = shape_from_proto(proto.tensor_shape)
    meta = {keys.TENSOR_PROTO: proto}
    dtype = None
    try:
        dtype = dtype_from_tf(proto.dtype, where)
        _check(proto, dtype, shape, where)
    except FormatError as exc:
        broken = FormatError(exc.message, source, where)
        return Tensor(name, dtype, shape, meta={**meta, keys.BROKEN: str(broken)}, loader=_raise(broken))
    # resource / variant handles have no numpy form: they stay a proto
    loader = None if dtype.numpy is None else (lambda: _decode_from(source, proto, dtype, shape, where))
    return Tensor(name, dtype, shape, meta=meta, loader=loader)


def _check(proto: pb.TensorProto, dtype: DType, shape: tuple | None, where: str) -> None:
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


def _raise(error: FormatError):
    def load() -> np.ndarray:
        raise error
    return load


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
    if keys.BROKEN in tensor.meta:  # nothing it could be changed to was read: unchanged until replaced
        return not tensor.data_replaced
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
    """Encode `tensor` into `out`: the source proto when unchanged, else in the standard form
    (see `source_form`): for every dtype but strings, the bytes TensorFlow's
    make_tensor_proto writes for a scalar or a tensor of its tensor_content types."""
    if is_unchanged(tensor):
        out.CopyFrom(tensor.meta[keys.TENSOR_PROTO])
        return out
    if tensor.dtype.tf is None or tensor.dtype.numpy is None:
        raise FormatError(f"{tensor.name}: cannot write a {tensor.dtype} tensor to a GraphDef")
    out.dtype = tensor.dtype.tf
    data = tensor.data
    shape_to_proto(tuple(data.shape), out.tensor_shape)
    out.tensor_shape.SetInParent()  # a scalar's empty shape is written too, as TensorFlow does
    if tensor.dtype is DType.STRING:
        out.string_val.extend(s if isinstance(s, bytes) else str(s).encode() for s in data.flat)
    elif data.ndim == 0:
        _set_value(out, tensor.dtype, data)
    else:
        out.tensor_content = np.ascontiguousarray(data, dtype=tensor.dtype.numpy.newbyteorder("<")).tobytes()
    return out


def _set_value(out: pb.TensorProto, dtype: DType, data: np.ndarray) -> None:
    """A scalar's one value in its typed field, as TensorFlow's make_tensor_proto writes it."""
    field = _VALUE_FIELD[dtype]
    flat = np.asarray(data, dtype=dtype.numpy).reshape(1)
    if field == "float8_val":
        out.float8_val = flat.tobytes()
    elif field == "half_val":
        out.half_val.extend(flat.view(np.uint16).tolist())  # the bits of a float16 or bfloat16
    elif field in ("scomplex_val", "dcomplex_val"):
        getattr(out, field).extend([flat.real[0], flat.imag[0]])
    else:
        getattr(out, field).extend(flat.tolist())


def source_form(tensor: Tensor) -> str | None:
    """The form in which the writer would copy `tensor`'s source TensorProto, when that is not
    the standard form of a new tensor; None when it is, or when `tensor` is written afresh.

    The standard form is what GraphDef consumers read: a scalar's one value in its typed
    field (TensorFlow's make_tensor_proto; OpenCV reads a concat axis as int_val[0]), the
    values of any other tensor in tensor_content (OpenCV's importer reads non-scalar
    constants from there only), strings one string_val per element. The other forms, which
    TensorFlow reads alike: "no values" (zeros), "broadcast" (fewer values than elements:
    the last one repeats), "typed field" (every value in the typed field) and "scalar in
    tensor_content"."""
    if not is_unchanged(tensor) or tensor.dtype.numpy is None or not tensor.num_elements:
        return None
    proto = tensor.meta[keys.TENSOR_PROTO]
    if proto.tensor_content:
        return "scalar in tensor_content" if tensor.shape == () else None
    values = len(getattr(proto, _VALUE_FIELD[tensor.dtype]))
    if tensor.dtype in (DType.COMPLEX64, DType.COMPLEX128):
        values //= 2  # (real, imaginary) pairs
    if values == 0:
        return "no values"
    if values < tensor.num_elements:
        return "broadcast"
    return "typed field" if tensor.shape != () and tensor.dtype is not DType.STRING else None


def write_afresh(tensor: Tensor) -> None:
    """Have the writer encode `tensor` from its values, in the standard form (see
    `source_form`), instead of copying the TensorProto it was read from."""
    tensor.meta.pop(keys.TENSOR_PROTO, None)
