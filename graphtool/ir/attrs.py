"""Attribute values that plain Python types cannot tell apart.

Node attrs are plain values where the meaning is clear (str, int, float, bool, DType,
tuples of those, Tensor). These small frozen types cover the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TensorShape:
    """A shape-valued attribute. `dims` None means unknown rank; a None dim is unknown."""

    dims: tuple | None

    def __str__(self) -> str:
        if self.dims is None:
            return "<unknown>"
        return "[" + ",".join("?" if d is None else str(d) for d in self.dims) + "]"


@dataclass(frozen=True)
class FuncAttr:
    """A function-valued attribute: a function name with its own attrs."""

    name: str
    attrs: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)


@dataclass(frozen=True)
class AttrPlaceholder:
    """An attr that refers to an attr of the enclosing function by name."""

    name: str


@dataclass(frozen=True)
class RawAttr:
    """An attribute value graphtool does not interpret, kept as the format's own bytes."""

    data: bytes
