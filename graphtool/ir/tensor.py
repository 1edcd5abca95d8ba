"""Tensor: a value flowing along edges, or a constant's data."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .dtypes import DType
from .meta import copy_meta
from .quantization import Quantization

Shape = tuple  # tuple[int | None, ...]; None as a whole means unknown rank


class Tensor:
    """A typed, shaped value. Constants carry `data` as a numpy array.

    Data may be loaded lazily (`loader`), so reading a model does not decode weights that
    nothing looks at; once decoded it is a read-only array (often a view into the file).
    Replace `data` to change a constant; never write into the array.
    """

    __slots__ = ("name", "dtype", "shape", "quantization", "meta", "_data", "_loader", "_origin")

    def __init__(self, name: str, dtype: DType | None, shape: Shape | None,
                 data: np.ndarray | None = None, quantization: Quantization | None = None,
                 meta: dict[str, Any] | None = None,
                 loader: Callable[[], np.ndarray] | None = None):
        self.name = name
        self.dtype = dtype
        self.shape = None if shape is None else tuple(shape)
        self.quantization = quantization
        self.meta = meta if meta is not None else {}
        self._data = data
        self._loader = loader
        self._origin: np.ndarray | None = None

    @property
    def data(self) -> np.ndarray | None:
        if self._data is None and self._loader is not None:
            self._data = self._origin = self._loader()
            self._loader = None
        return self._data

    @data.setter
    def data(self, value: np.ndarray | None) -> None:
        self._data = value
        self._loader = None

    @property
    def data_replaced(self) -> bool:
        """True when `data` is not what the loader read from the file (new or changed)."""
        return self._loader is None and (self._data is not self._origin or self._origin is None)

    @property
    def is_constant(self) -> bool:
        return self._data is not None or self._loader is not None

    @property
    def num_elements(self) -> int | None:
        """Element count from the shape; None when a dimension or the rank is unknown."""
        if self.shape is None or any(d is None or d < 0 for d in self.shape):
            return None
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int | None:
        """Bytes the values take as stored in graphtool's memory (strings: their lengths)."""
        if self.dtype is DType.STRING:
            data = self.data
            return None if data is None else sum(len(s) for s in data.flat)
        count = self.num_elements
        size = self.dtype.itemsize if self.dtype is not None else None
        return None if count is None or size is None else count * size

    def __deepcopy__(self, memo: dict) -> "Tensor":
        """A copy sharing the (read-only) data and quantization; meta is copied deeply except
        for format-namespaced source records ("graphdef.*", "tflite.*"), which are shared."""
        new = Tensor.__new__(Tensor)
        memo[id(self)] = new
        new.name, new.dtype, new.shape, new.quantization = self.name, self.dtype, self.shape, self.quantization
        new._data, new._loader, new._origin = self._data, self._loader, self._origin
        new.meta = copy_meta(self.meta, memo)
        return new

    def __repr__(self) -> str:
        kind = "const " if self.is_constant else ""
        return f"Tensor({kind}{self.name!r}, {self.dtype}, {self.shape})"
