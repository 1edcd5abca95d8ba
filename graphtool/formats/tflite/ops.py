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


# The fewest inputs each builtin's kernel reads (its Prepare checks NumInputs; an optional
# input is still an entry, -1). LiteRT prepares only the subgraphs it runs, so a shorter list
# in another subgraph loads, and the kernel then reads past it: the reader warns.
# Source: tensorflow/lite/kernels/*.cc (the NumInputs checks); only ops whose minimum does not
# change across versions.
MIN_INPUTS = {
    "ADD": 2, "SUB": 2, "MUL": 2, "DIV": 2, "SQUARED_DIFFERENCE": 2, "MAXIMUM": 2, "MINIMUM": 2, "POW": 2,
    "LESS": 2, "LESS_EQUAL": 2, "GREATER": 2, "GREATER_EQUAL": 2, "EQUAL": 2, "NOT_EQUAL": 2,
    "LOGICAL_AND": 2, "LOGICAL_OR": 2, "CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2,
    "TRANSPOSE_CONV": 3, "BATCH_MATMUL": 2, "MEAN": 2, "SUM": 2, "REDUCE_MAX": 2, "REDUCE_MIN": 2,
    "REDUCE_PROD": 2, "PAD": 2, "PADV2": 2, "TRANSPOSE": 2, "GATHER": 2, "EXPAND_DIMS": 2, "SPLIT": 2,
    "SLICE": 3, "STRIDED_SLICE": 4, "TILE": 2, "RESIZE_BILINEAR": 2, "RESIZE_NEAREST_NEIGHBOR": 2,
    "ARG_MAX": 2, "ARG_MIN": 2, "ASSIGN_VARIABLE": 2, "READ_VARIABLE": 1, "PRELU": 2,
    "MAX_POOL_2D": 1, "AVERAGE_POOL_2D": 1, "L2_POOL_2D": 1, "SOFTMAX": 1, "LOG_SOFTMAX": 1, "LOGISTIC": 1,
    "TANH": 1, "RELU": 1, "RELU6": 1, "RELU_N1_TO_1": 1, "HARD_SWISH": 1, "LEAKY_RELU": 1, "ELU": 1,
    "QUANTIZE": 1, "DEQUANTIZE": 1, "DENSIFY": 1, "CAST": 1, "SHAPE": 1, "SQUEEZE": 1, "RESHAPE": 1,
    "SQRT": 1, "RSQRT": 1, "EXP": 1, "LOG": 1, "ABS": 1, "NEG": 1, "SIN": 1, "COS": 1, "SQUARE": 1,
    "FLOOR": 1, "CEIL": 1, "ROUND": 1, "L2_NORMALIZATION": 1, "CONCATENATION": 1, "PACK": 1, "UNPACK": 1,
}


def is_operator(node) -> bool:
    """True for nodes that are TFLite operators (a custom op may be named like a source op)."""
    return node.op not in SOURCE_OPS or bool(keys.is_custom(node))


def is_subgraph_field(name: str) -> bool:
    """Options fields that hold subgraph indices (IF, WHILE, CALL_ONCE, CALL, StableHLO)."""
    return name.endswith(("subgraph_index", "subgraph_indices")) or name == "subgraph"


def owns_options(op: str, member: str | None) -> bool:
    """True when an options table of type `member` is `op`'s own (CallOnceOptions for CALL_ONCE,
    StablehloWhileOptions for STABLEHLO_WHILE): LiteRT reads an operator's options only as its
    own type, so only then do the subgraph indices in them name subgraphs."""
    return member is not None and member.removesuffix("Options").lower() == op.replace("_", "").lower()
