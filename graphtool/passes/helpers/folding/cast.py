"""Cast, as TensorFlow's CPU kernel does it: round to nearest even between floats (bfloat16
included), truncate toward zero from float to integer, wrap between integers, x != 0 to bool;
float32/float64 subnormals read and written as zero (TensorFlow's FTZ/DAZ) except in the
conversions it does on the bits (float32 <-> bfloat16, bfloat16 -> bool).

Truncate=true zeroes the mantissa bits the output cannot hold before converting, where
TensorFlow does (float32 -> float16/bfloat16, float64 -> float16/float32). Declines
(Unsupported) what C++ leaves undefined: a float that is NaN, infinite or out of range going
to an integer; and types other than bool, bfloat16 and the real numeric ones."""
from __future__ import annotations

import numpy as np

from ....ir import DType, Node
from .base import REAL_NUMERIC, EvalError, Unsupported, Value, arity, flush_denormals, kernel, output

CASTABLE = REAL_NUMERIC | {DType.BOOL, DType.BFLOAT16}
FLOATS = frozenset({DType.FLOAT16, DType.BFLOAT16, DType.FLOAT32, DType.FLOAT64})
# Truncate=true: TensorFlow zeroes the input mantissa bits the output cannot hold (NaNs
# aside), then converts as usual; other pairs ignore the attr.
TRUNCATED_BITS = {(DType.FLOAT32, DType.FLOAT16): 13, (DType.FLOAT32, DType.BFLOAT16): 16,
                  (DType.FLOAT64, DType.FLOAT16): 42, (DType.FLOAT64, DType.FLOAT32): 29}
# Conversions TensorFlow does on the bits, so subnormals survive them (no FTZ/DAZ).
BIT_LEVEL = frozenset({(DType.FLOAT32, DType.BFLOAT16), (DType.BFLOAT16, DType.FLOAT32), (DType.BFLOAT16, DType.BOOL)})


@kernel("Cast")
def cast(node: Node, inputs: list[Value]) -> Value:
    arity(node, inputs, 1)
    (value,) = inputs
    src, dst = node.attrs.get("SrcT", value.dtype), node.attrs.get("DstT")
    if not isinstance(dst, DType):
        raise EvalError(f"{node.name!r}: Cast has no DstT")
    if src != value.dtype:
        raise EvalError(f"{node.name!r}: SrcT is {src} but the input is {value.dtype}")
    if src not in CASTABLE or dst not in CASTABLE:
        raise Unsupported(f"Cast from {src} to {dst}")
    if src == dst:
        return output(value.array, dst)
    array = value.array
    truncate = bool(node.attrs.get("Truncate", False)) and (src, dst) in TRUNCATED_BITS
    if truncate:
        array = _zero_low_bits(array, TRUNCATED_BITS[src, dst])
    if (src, dst) in BIT_LEVEL:
        return output(_bit_level(array, src, dst, nan_sign=truncate), dst)
    x = flush_denormals(bfloat16_to_float32(array) if src == DType.BFLOAT16 else array)
    if dst == DType.BOOL:
        return output(x != 0, dst)
    if src in FLOATS and dst not in FLOATS:
        return output(_float_to_int(x, dst), dst)
    with np.errstate(all="ignore"):
        if dst == DType.BFLOAT16:
            return output(float32_to_bfloat16(flush_denormals(x.astype(np.float32)), nan_sign=True), dst)
        return output(flush_denormals(x.astype(dst.numpy)), dst)


def _zero_low_bits(array: np.ndarray, bits: int) -> np.ndarray:
    unsigned = np.uint32 if array.dtype == np.float32 else np.uint64
    mask = unsigned(~((1 << bits) - 1) & (0xFFFFFFFF if unsigned is np.uint32 else 0xFFFFFFFFFFFFFFFF))
    zeroed = (np.array(array, order="C").view(unsigned) & mask).view(array.dtype)
    return np.where(np.isnan(array), array, zeroed)


def _bit_level(array: np.ndarray, src: DType, dst: DType, nan_sign: bool) -> np.ndarray:
    if src == DType.FLOAT32:
        return float32_to_bfloat16(array, nan_sign=nan_sign)
    x = bfloat16_to_float32(array)
    return x if dst == DType.FLOAT32 else x != 0


def _float_to_int(x: np.ndarray, dst: DType) -> np.ndarray:
    truncated = np.trunc(x.astype(np.float64))
    info = np.iinfo(dst.numpy)
    if not np.all(np.isfinite(truncated)) or np.any(truncated < info.min) or np.any(truncated > info.max):
        raise Unsupported(f"Cast of NaN, infinite or out-of-range floats to {dst} (undefined in C++)")
    return truncated.astype(dst.numpy)


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) -> float32 values (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def float32_to_bfloat16(x: np.ndarray, nan_sign: bool = False) -> np.ndarray:
    """float32 -> bfloat16 bits, rounding to nearest even. NaN becomes 0x7FC0, or 0xFFC0 when
    negative and `nan_sign` (TensorFlow keeps the sign on every path but its plain
    float32 -> bfloat16 one)."""
    bits = np.array(x, dtype=np.float32, order="C").view(np.uint32)  # (ascontiguousarray makes 0-d 1-d)
    rounding = np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))
    with np.errstate(over="ignore"):
        rounded = ((bits + rounding) >> 16).astype(np.uint16)
    nan = np.where(np.signbit(x) & nan_sign, np.uint16(0xFFC0), np.uint16(0x7FC0))
    return np.where(np.isnan(x), nan, rounded).astype(np.uint16)
