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
    scaled = real / scale
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + zero_point
    info = np.iinfo(dtype)
    return np.clip(rounded, info.min, info.max).astype(dtype)


def real_range(dtype: np.dtype, scale: float, zero_point: float) -> tuple[float, float]:
    """The real values the smallest and largest integers of `dtype` stand for."""
    info = np.iinfo(dtype)
    return scale * (info.min - zero_point), scale * (info.max - zero_point)
