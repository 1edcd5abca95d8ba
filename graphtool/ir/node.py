"""Node: one operation (or a constant, or a graph input) in the IR."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .dtypes import DType
from .tensor import Tensor

CONTROL = -1  # port of a control dependency: ordering only, no value


class Ref(NamedTuple):
    """One output of a node: `node:port`, or a control dependency when port is CONTROL."""

    node: str
    port: int = 0

    @property
    def is_control(self) -> bool:
        return self.port == CONTROL

    def __str__(self) -> str:
        if self.port == CONTROL:
            return f"^{self.node}"
        return self.node if self.port == 0 else f"{self.node}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> "Ref":
        """`name`, `name:3` or `^name`, as in GraphDef inputs and on the command line."""
        if text.startswith("^"):
            return cls(text[1:], CONTROL)
        name, sep, port = text.rpartition(":")
        if sep and port.isdigit():
            return cls(name, int(port))
        return cls(text, 0)


@dataclass(eq=False)
class Node:
    """An operation. `op` is the format's own name (`Conv2D`, `CONV_2D`).

    `attrs` hold plain Python/numpy values; `outputs` the tensors it produces as far as they
    are known; `meta` whatever the format has that the IR does not model.
    """

    name: str
    op: str
    attrs: dict[str, Any] = field(default_factory=dict)
    outputs: list[Tensor] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def output(self, port: int = 0) -> Tensor | None:
        return self.outputs[port] if 0 <= port < len(self.outputs) else None

    def __repr__(self) -> str:
        return f"Node({self.name!r}, op={self.op!r})"


MISSING_OP = "graphtool.Missing"
"""Op of a stand-in node for an input that names no node in the file (kept, never written)."""

# Nodes that stand for tensors no operator computes (TFLite's view: every value is a tensor).
INPUT_OP = "Input"        # a graph input
CONST_OP = "Const"        # a tensor with data
VARIABLE_OP = "Variable"  # mutable state (is_variable), no data
TENSOR_OP = "Tensor"      # any other tensor nothing computes, kept so nothing is lost
TENSOR_SOURCE_OPS = frozenset({INPUT_OP, CONST_OP, VARIABLE_OP, TENSOR_OP})


def make_const(name: str, data: np.ndarray, dtype: DType | None = None) -> Node:
    """A constant node holding `data` (stored as `dtype`, default: from numpy), in the form
    both formats write: the value is `outputs[0]` (GraphDef attrs `dtype`/`value` mirror it)."""
    dtype = dtype or DType.from_numpy(data.dtype)
    array = np.asarray(data, dtype=dtype.numpy) if dtype.numpy is not None else np.asarray(data)
    tensor = Tensor(name, dtype, tuple(array.shape), array)
    return Node(name, CONST_OP, {"dtype": dtype, "value": tensor}, outputs=[tensor])
