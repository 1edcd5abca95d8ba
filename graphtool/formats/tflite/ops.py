"""Operator names <-> TFLite operator codes, and the IR's names for tensors no op computes."""
from __future__ import annotations

from functools import cache

from ...ir import CONST_OP, INPUT_OP, TENSOR_OP, TENSOR_SOURCE_OPS, VARIABLE_OP  # noqa: F401 (re-exported)
from . import keys
from .schema import load_schema

CUSTOM = 32
PLACEHOLDER_FOR_GREATER_OP_CODES = 127

SOURCE_OPS = TENSOR_SOURCE_OPS


@cache
def builtin_codes() -> dict[str, int]:
    return dict(load_schema().enums["BuiltinOperator"])


@cache
def builtin_names() -> dict[int, str]:
    return {code: name for name, code in builtin_codes().items()}


def builtin_code(opcode: dict) -> int:
    """The operator's code: the larger of the deprecated byte and the int32 field."""
    return max(int(opcode.get("deprecated_builtin_code", 0)), int(opcode.get("builtin_code", 0)))


def is_custom(opcode: dict) -> bool:
    return builtin_code(opcode) == CUSTOM


def op_name(opcode: dict) -> str:
    """The IR op of an OperatorCode: builtin name, or the custom code for custom ops."""
    code = builtin_code(opcode)
    if code == CUSTOM and opcode.get("custom_code"):
        return opcode["custom_code"].decode("utf-8", "surrogateescape")
    return builtin_names().get(code, f"BUILTIN_{code}")


def opcode_for(op: str, version: int) -> dict:
    """A new OperatorCode for `op` at `version`."""
    codes = builtin_codes()
    if op in codes or op.startswith("BUILTIN_") and op[8:].isdigit():
        code = codes.get(op, int(op[8:]) if op.startswith("BUILTIN_") else 0)
        return {"deprecated_builtin_code": min(code, PLACEHOLDER_FOR_GREATER_OP_CODES),
                "builtin_code": code, "version": version}
    return {"deprecated_builtin_code": CUSTOM, "builtin_code": CUSTOM,
            "custom_code": op.encode("utf-8", "surrogateescape"), "version": version}


def is_operator(node) -> bool:
    """True for nodes that are TFLite operators (a custom op may be named like a source op)."""
    return node.op not in SOURCE_OPS or bool(keys.is_custom(node))


def is_subgraph_field(name: str) -> bool:
    """Options fields that hold subgraph indices (IF, WHILE, CALL_ONCE, CALL, StableHLO)."""
    return name.endswith(("subgraph_index", "subgraph_indices")) or name == "subgraph"
