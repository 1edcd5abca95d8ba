"""AttrValue <-> plain Python values (see graphtool.ir.attrs for the non-obvious ones).

str for `s` (bytes when not UTF-8), int, float, bool, DType, TensorShape, Tensor, FuncAttr,
AttrPlaceholder; lists become tuples. Anything else stays a RawAttr holding its bytes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import FormatError
from ...ir import DType, Tensor
from ...ir.attrs import AttrPlaceholder, FuncAttr, RawAttr, TensorShape
from ._proto import graphtool_graphdef_pb2 as pb
from .tensor_proto import shape_from_proto, shape_to_proto, tensor_from_proto, tensor_to_proto

_LIST_FIELDS = ("s", "i", "f", "b", "type", "shape", "tensor", "func")


def attr_from_proto(value: pb.AttrValue, where: str, source: str | None = None) -> Any:
    kind = value.WhichOneof("value")
    if kind == "list":
        filled = [f for f in _LIST_FIELDS if len(getattr(value.list, f))]
        if len(filled) > 1:
            return RawAttr(value.SerializeToString(deterministic=True))
        if not filled:
            return ()
        return tuple(_scalar(filled[0], item, where, source) for item in getattr(value.list, filled[0]))
    if kind is None:
        return RawAttr(value.SerializeToString(deterministic=True))
    return _scalar(kind, getattr(value, kind), where, source)


def attr_from_bytes(data: bytes, where: str) -> Any:
    """The attr value a serialized AttrValue (from any protobuf runtime's message) stands for."""
    return attr_from_proto(pb.AttrValue.FromString(data), where)


def _scalar(kind: str, item: Any, where: str, source: str | None = None) -> Any:
    if kind == "s":
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            return bytes(item)
    if kind == "type":
        try:
            return DType.from_tf(item)
        except ValueError:
            holder = pb.AttrValue(type=item)
            return RawAttr(holder.SerializeToString(deterministic=True))
    if kind == "shape":
        return TensorShape(shape_from_proto(item))
    if kind == "tensor":
        return tensor_from_proto(item, "", where, source)
    if kind == "func":
        return FuncAttr(item.name, {k: attr_from_proto(v, where) for k, v in sorted(item.attr.items())})
    if kind == "placeholder":
        return AttrPlaceholder(item)
    return item  # i, f, b


def attr_to_proto(value: Any, out: pb.AttrValue, where: str = "") -> pb.AttrValue:
    if isinstance(value, RawAttr):
        out.ParseFromString(value.data)
    elif isinstance(value, (tuple, list)):
        out.list.SetInParent()
        for item in value:
            _append(out.list, item, where)
    elif isinstance(value, AttrPlaceholder):
        out.placeholder = value.name
    else:
        _set_scalar(out, value, where)
    return out


def _set_scalar(out: pb.AttrValue, value: Any, where: str) -> None:
    if isinstance(value, DType):
        out.type = value.tf
    elif isinstance(value, (bool, np.bool_)):
        out.b = bool(value)
    elif isinstance(value, (int, np.integer)):
        out.i = int(value)
    elif isinstance(value, (float, np.floating)):
        out.f = float(value)
    elif isinstance(value, str):
        out.s = value.encode("utf-8")
    elif isinstance(value, bytes):
        out.s = value
    elif isinstance(value, TensorShape):
        shape_to_proto(value.dims, out.shape)
    elif isinstance(value, Tensor):
        tensor_to_proto(value, out.tensor)
    elif isinstance(value, FuncAttr):
        _func_to_proto(value, out.func, where)
    else:
        raise FormatError(f"cannot store a {type(value).__name__} as a GraphDef attr", where=where)


def _append(lst: pb.AttrValue.ListValue, item: Any, where: str) -> None:
    if isinstance(item, DType):
        lst.type.append(item.tf)
    elif isinstance(item, (bool, np.bool_)):
        lst.b.append(bool(item))
    elif isinstance(item, (int, np.integer)):
        lst.i.append(int(item))
    elif isinstance(item, (float, np.floating)):
        lst.f.append(float(item))
    elif isinstance(item, str):
        lst.s.append(item.encode("utf-8"))
    elif isinstance(item, bytes):
        lst.s.append(item)
    elif isinstance(item, TensorShape):
        shape_to_proto(item.dims, lst.shape.add())
    elif isinstance(item, Tensor):
        tensor_to_proto(item, lst.tensor.add())
    elif isinstance(item, FuncAttr):
        _func_to_proto(item, lst.func.add(), where)
    else:
        raise FormatError(f"cannot store a list of {type(item).__name__} as a GraphDef attr", where=where)


def _func_to_proto(value: FuncAttr, out: pb.NameAttrList, where: str) -> None:
    out.name = value.name
    for key, sub in value.attrs.items():
        attr_to_proto(sub, out.attr[key], where)
