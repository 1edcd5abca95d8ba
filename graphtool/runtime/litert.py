"""Run a TFLite model in LiteRT by input order or name; quantized inputs and outputs are
converted with the IR's affine arithmetic (graphtool.ir.quantization).

LiteRT (`ai-edge-litert`) is imported on first use only.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import first_line, install_hint
from ..ir.quantization import dequantize, quantize
from ..logs import quietly
from . import ModelRunError, RuntimeUnavailableError

INSTALL_HINT = install_hint("litert")


@quietly
def import_interpreter() -> type:
    """LiteRT's Interpreter class, or RuntimeUnavailableError saying how to install it."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise RuntimeUnavailableError(f"running a TFLite model needs LiteRT ({exc}); {INSTALL_HINT}") from None
    return Interpreter


@dataclass(frozen=True)
class TensorDetail:
    """An input or output of the model as LiteRT reports it."""

    name: str
    index: int
    dtype: np.dtype
    shape: tuple[int | None, ...]  # from shape_signature: None where the size is dynamic
    scale: np.ndarray  # empty when the tensor is not quantized
    zero_point: np.ndarray
    axis: int

    @property
    def quantized(self) -> bool:
        return self.scale.size > 0 and np.dtype(self.dtype).kind in "iu"

    def to_real(self, values: np.ndarray) -> np.ndarray:
        """Values as real numbers: dequantized when the tensor is quantized."""
        if not self.quantized:
            return np.asarray(values)
        return dequantize(values, self.scale, self.zero_point, self.axis if self.scale.size > 1 else None)

    def from_real(self, values: np.ndarray) -> np.ndarray:
        """Real values as this tensor takes them: quantized when it is quantized, else cast."""
        if not self.quantized:
            return np.asarray(values).astype(self.dtype, copy=False)
        return quantize(values, self.scale, self.zero_point, self.dtype,
                        self.axis if self.scale.size > 1 else None)


def _detail(raw: Mapping[str, Any]) -> TensorDetail:
    signature = raw.get("shape_signature")
    dims = signature if signature is not None and len(signature) == len(raw["shape"]) else raw["shape"]
    params = raw.get("quantization_parameters", {})
    return TensorDetail(raw["name"], int(raw["index"]), np.dtype(raw["dtype"]),
                        tuple(None if d < 0 else int(d) for d in dims),
                        np.asarray(params.get("scales", []), np.float64),
                        np.asarray(params.get("zero_points", []), np.int64), int(params.get("quantized_dimension", 0)))


class TfliteModel:
    """A TFLite model loaded in a LiteRT interpreter; runs its main subgraph."""

    @quietly
    def __init__(self, model: bytes, source: str = "<tflite>", num_threads: int | None = None):
        interpreter_class = import_interpreter()
        self.source = source
        try:
            self._interpreter = interpreter_class(model_content=bytes(model), num_threads=num_threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelRunError(f"{source}: LiteRT cannot load the model: {first_line(exc)}") from None
        self.inputs = [_detail(d) for d in self._interpreter.get_input_details()]
        self.outputs = [_detail(d) for d in self._interpreter.get_output_details()]
        self._shapes: list[tuple[int, ...]] | None = None

    def run(self, values: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs (as stored, in output order) for input values given in input order or by
        tensor name. Inputs are resized when their shape differs from the last run's."""
        if isinstance(values, Mapping):
            missing = [d.name for d in self.inputs if d.name not in values]
            if missing:
                raise ModelRunError(f"{self.source}: no value for input(s) {', '.join(missing)}")
            values = [values[d.name] for d in self.inputs]
        values = list(values)
        if len(values) != len(self.inputs):
            raise ModelRunError(f"{self.source}: {len(values)} input value(s) for {len(self.inputs)} input(s)")
        _invoke(self, values)
        return [np.array(self._interpreter.get_tensor(d.index)) for d in self.outputs]

    def run_real(self, values: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Like run, with real-valued inputs quantized and quantized outputs dequantized."""
        if isinstance(values, Mapping):
            values = {d.name: d.from_real(values[d.name]) for d in self.inputs if d.name in values}
        else:
            values = [d.from_real(v) for d, v in zip(self.inputs, values)]
        return [d.to_real(v) for d, v in zip(self.outputs, self.run(values))]


def run_tflite(model: bytes, values: Sequence[np.ndarray] | Mapping[str, np.ndarray],
               source: str = "<tflite>") -> list[np.ndarray]:
    """One run of a TFLite model (see TfliteModel.run)."""
    return TfliteModel(model, source).run(values)



class TfliteTensors:
    """A TFLite model in LiteRT that keeps every tensor after a run
    (experimental_preserve_all_tensors), so intermediate values can be read by tensor index
    — what calibration needs. Runs the main subgraph."""

    @quietly
    def __init__(self, model: bytes, source: str = "<tflite>"):
        interpreter_class = import_interpreter()
        self.source = source
        try:
            with warnings.catch_warnings():  # LiteRT warns that keeping every tensor costs memory: it is the point
                warnings.simplefilter("ignore", UserWarning)
                self._interpreter = interpreter_class(model_content=bytes(model),
                                                      experimental_preserve_all_tensors=True)
        except (ValueError, RuntimeError) as exc:
            raise ModelRunError(f"{source}: LiteRT cannot load the model: {first_line(exc)}") from None
        self.inputs = [_detail(d) for d in self._interpreter.get_input_details()]
        self._shapes: list[tuple[int, ...]] | None = None

    def run(self, values: Sequence[np.ndarray]) -> None:
        """Run on input values in input order (inputs resized when their shape changes)."""
        _invoke(self, values)

    def tensor(self, index: int) -> np.ndarray:
        """A copy of tensor `index` of the main subgraph after the last run."""
        try:
            return np.array(self._interpreter.get_tensor(index))
        except ValueError as exc:
            raise ModelRunError(f"{self.source}: LiteRT cannot read tensor {index}: {first_line(exc)}") from None

    def view(self, index: int) -> np.ndarray | None:
        """Tensor `index` where LiteRT keeps it, without a copy: valid until the next run, and
        no reference may be left then (LiteRT refuses to run while one is). None for a tensor
        LiteRT gave no memory (an output nothing reads)."""
        try:
            return self._interpreter.tensor(index)()
        except ValueError as exc:
            if "null" in str(exc):
                return None
            raise ModelRunError(f"{self.source}: LiteRT cannot read tensor {index}: {first_line(exc)}") from None


@quietly
def _invoke(model, values: Sequence[np.ndarray]) -> None:
    """Feed `values` to `model`'s interpreter in input order and run it, resizing inputs
    when their shapes changed since the last run (model: TfliteModel or TfliteTensors)."""
    interpreter = model._interpreter
    try:
        shapes = [tuple(np.shape(v)) for v in values]
        if shapes != model._shapes:
            for detail, shape in zip(model.inputs, shapes):
                interpreter.resize_tensor_input(detail.index, list(shape))
            interpreter.allocate_tensors()
            model._shapes = shapes
        for detail, value in zip(model.inputs, values):
            interpreter.set_tensor(detail.index, np.asarray(value).astype(detail.dtype, copy=False))
        interpreter.invoke()
    except (ValueError, RuntimeError) as exc:
        model._shapes = None
        raise ModelRunError(f"{model.source}: LiteRT failed to run the model: {first_line(exc)}") from None
