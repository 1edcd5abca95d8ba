"""Affine quantization: the parameters a quantized tensor carries and the arithmetic that
turns real values into its integers and back (as TFLite's kernels round)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Quantization:
    """Affine quantization: real = scale * (q - zero_point), per tensor or along `axis`."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None
    min: np.ndarray | None = None
    max: np.ndarray | None = None

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


def _broadcast(params: np.ndarray, rank: int, axis: int | None) -> np.ndarray:
    params = np.asarray(params)
    if params.size <= 1 or axis is None:
        return params.reshape(()) if params.size == 1 else params
    shape = [1] * rank
    shape[axis] = params.size
    return params.reshape(shape)


def dequantize(values: np.ndarray, scale: np.ndarray | float, zero_point: np.ndarray | int,
               axis: int | None = None) -> np.ndarray:
    """real = scale * (q - zero_point), per tensor or along `axis`, as float64."""
    q = np.asarray(values).astype(np.float64)
    scale = _broadcast(np.asarray(scale, np.float64), q.ndim, axis)
    zero_point = _broadcast(np.asarray(zero_point, np.float64), q.ndim, axis)
    return scale * (q - zero_point)


def quantize(real: np.ndarray, scale: np.ndarray | float, zero_point: np.ndarray | int, dtype: np.dtype,
             axis: int | None = None) -> np.ndarray:
    """q = round(real / scale) + zero_point (half away from zero, as TFLite rounds), clipped
    to `dtype`'s range."""
    real = np.asarray(real, np.float64)
    scale = _broadcast(np.asarray(scale, np.float64), real.ndim, axis)
    zero_point = _broadcast(np.asarray(zero_point, np.float64), real.ndim, axis)
    rounded = _half_away(real / scale) + zero_point
    info = np.iinfo(dtype)
    return np.clip(rounded, info.min, info.max).astype(dtype)


def real_range(dtype: np.dtype, scale: float, zero_point: float) -> tuple[float, float]:
    """The real values the smallest and largest integers of `dtype` stand for."""
    info = np.iinfo(dtype)
    return scale * (info.min - zero_point), scale * (info.max - zero_point)


# -- choosing parameters -------------------------------------------------------------------------
# How the TFLite converter picks them (tensorflow/compiler/mlir/quantization/common/quantization_lib:
# fakeQuantAttrsToType / getNudgedScaleAndZeroPoint; the quantization spec,
# tensorflow.org/lite/performance/quantization_spec): ranges are widened to hold 0, scales are
# computed in float64 and stored as float32, zero points are nudged onto the integer grid.

NEAR_ZERO = 1e-6  # narrower ranges are widened to +-NEAR_ZERO


def activation_params(low: float, high: float, dtype: np.dtype, symmetric: bool = False,
                      min_scale: float = 0.0) -> tuple[np.float32, int]:
    """(scale, zero point) of an activation whose values span [low, high], widened to hold 0
    (and, when the scale would be below min_scale, widened upwards until it is not).

    Asymmetric (int8): scale = (high - low) / (qmax - qmin), zero point = round(qmin - low / scale)
    clamped into [qmin, qmax] (half away from zero). Symmetric (int16): scale = max(|low|, |high|)
    / qmax, zero point 0. A range narrower than NEAR_ZERO (all zeros, say) becomes
    [-NEAR_ZERO, NEAR_ZERO], as the converter widens it: a tiny scale, so that a kernel scaling
    its inputs to the larger of their scales (ADD, SUB) keeps the other input's precision."""
    info = np.iinfo(dtype)
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if high - low < NEAR_ZERO:
        low, high = -NEAR_ZERO, NEAR_ZERO
    if symmetric:
        bound = max(-low, high, min_scale * info.max)
        return np.float32(bound / info.max), 0
    high = max(high, low + min_scale * (float(info.max) - float(info.min)))
    scale = (high - low) / (float(info.max) - float(info.min))
    zero_from_min = info.min - low / scale
    if zero_from_min <= info.min:
        return np.float32(scale), int(info.min)
    if zero_from_min >= info.max:
        return np.float32(scale), int(info.max)
    return np.float32(scale), int(_half_away(np.float64(zero_from_min)))


def bias_scales(input_scale: float, weight_scales: np.ndarray) -> np.ndarray:
    """A bias's scales: input scale x each weight scale, multiplied in float64, stored float32
    (what TFLite's integer kernels assume: the bias is added to the int32 accumulator)."""
    return (np.float64(input_scale) * np.asarray(weight_scales, np.float64)).astype(np.float32)


def quantize_bias(bias: np.ndarray, scales: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, int]:
    """(q, clipped): bias / scale per channel (float64, half away from zero) as `dtype` (int32,
    or int64 for 16x8), and how many values fell outside its range and were clipped."""
    scales = np.asarray(scales, np.float64)
    rounded = _half_away(np.asarray(bias, np.float64) / (scales if scales.size > 1 else scales.reshape(())))
    info = np.iinfo(dtype)
    clipped = int(np.count_nonzero((rounded < info.min) | (rounded > info.max)))
    return np.clip(rounded, info.min, info.max).astype(dtype), clipped


# -- symmetric weights ---------------------------------------------------------------------------
ROUNDINGS = ("away", "even")
QUANTIZE_CHUNK = 1 << 18  # elements rounded at a time, so big weights need little extra memory
# A float32 quotient w / scale is within 127 * 3 * 2**-24 (< 2.3e-5) of the float64 one, so
# only quotients this close to k + 1/2 can round differently in the two: those are divided again.
NEAR_HALF = 1e-4


def symmetric(values: np.ndarray, axis: int | None, qmax: int, repeated: bool = False,
              rounding: str = "away") -> tuple[np.ndarray, np.ndarray]:
    """(int8 values in [-qmax, qmax], float32 scales): scale = max|w| / qmax per slice along
    `axis` (one scale when axis is None, or one repeated along `axis` when `repeated`); an
    all-zero slice gets scale 1. Each w is divided and rounded as one of two tools does it:
    rounding="away", as the TFLite converter, w / (max|w| / qmax) in float64, exact halves
    away from zero; rounding="even", as ai-edge-quantizer, w / scale in float32, exact halves
    to even. Works through the weights a block of rows at a time, in float32; for "away" the
    few quotients near a half are decided again in float64 (NEAR_HALF)."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    values = np.asarray(values, np.float32)
    if values.ndim == 0:
        values = values.reshape(1)
    others = tuple(a for a in range(values.ndim) if a != axis)
    if axis is None or repeated:
        overall = np.float32(max(values.max(initial=0), -values.min(initial=0)))
        absmax = np.full(1 if axis is None else values.shape[axis], overall, np.float32)
    else:
        absmax = np.maximum(values.max(axis=others, initial=0), -values.min(axis=others, initial=0))
    scales = (absmax.astype(np.float32) / np.float32(qmax)).astype(np.float32)
    scales = np.where(scales > 0, scales, np.float32(1)).astype(np.float32)
    exact_divisors = np.where(absmax > 0, absmax.astype(np.float64) / qmax, 1.0)
    shape = [1] * values.ndim
    if axis is not None:
        shape[axis] = -1
    divisor = scales.reshape(shape) if axis is not None else scales[0]
    out = np.empty(values.shape, np.int8)
    rows = max(1, QUANTIZE_CHUNK // max(1, values[0].size))
    scratch = np.empty((2, min(rows, values.shape[0]) * values[0].size), np.float32)  # reused: no page faults
    for start in range(0, values.shape[0], rows):
        block = slice(start, start + rows)
        part = values[block]
        ratio, rounded = (buffer[:part.size].reshape(part.shape) for buffer in scratch)
        np.divide(part, divisor[block] if axis == 0 else divisor, out=ratio)
        np.rint(ratio, out=rounded)
        if rounding == "away":
            distance = np.abs(np.subtract(ratio, rounded, out=ratio), out=ratio)
            near = distance >= np.float32(0.5 - NEAR_HALF)
            if near.any():
                where = np.flatnonzero(near)  # flat: nonzero on an N-d mask is ten times slower
                channels = 0 if axis is None else \
                    np.unravel_index(where, part.shape)[axis] + (start if axis == 0 else 0)
                exact = np.ravel(part)[where].astype(np.float64) / exact_divisors[channels]
                rounded.reshape(-1)[where] = _half_away(exact)
        np.clip(rounded, -qmax, qmax, out=rounded)
        out[block] = rounded
    return out, scales


def _half_away(ratio: np.ndarray) -> np.ndarray:
    """`ratio` rounded to the nearest integer, exact halves away from zero, without error:
    x - rint(x) is exact, whereas trunc(x + 0.5) rounds the largest float below 0.5 up."""
    rounded = np.rint(ratio)
    ties = np.abs(ratio - rounded) == 0.5
    return np.where(ties, ratio + np.copysign(0.5, ratio), rounded)  # k + 1/2 -> k + 1 (or -k - 1), exactly
