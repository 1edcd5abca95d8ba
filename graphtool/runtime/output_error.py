"""How far a model's outputs are from a reference model's on the same samples, run in its
runtime (LiteRT for TFLite, TensorFlow for GraphDefs): the output SQNR that `sensitivity` ranks
layers by and the mixed-precision search holds to its target.

The reference runs once; each variant then runs on the same batches. SQNR is
10 log10(sum a^2 / sum (b - a)^2) over every element of every output (quantized outputs
dequantized) and every sample, and also over each half of the samples: `Sqnr.worst_db`, the
lowest of the three, is what a search holds to its target, so that a choice does not rest on
the samples of one lucky half.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import FormatError
from ..formats import load
from .calibrate import _graphdef_inputs, _signature_keys
from .samples import InputSpec, count_of, sample_batches

BATCH_SIZE = 32  # samples per LiteRT run unless the model fixes its batch size


def db(signal: float, noise: float) -> float:
    """10 log10(signal / noise); inf when there is no noise."""
    if noise <= 0.0:
        return math.inf
    if signal <= 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


@dataclass(frozen=True)
class Sqnr:
    """A variant's output SQNR against the reference: over all samples and over each half."""

    signal: float  # sum of squared reference outputs
    noise: float  # sum of squared differences
    halves: tuple[float, float]  # SQNR (dB) over the first and the second half of the samples

    @property
    def db(self) -> float:
        return db(self.signal, self.noise)

    @property
    def worst_db(self) -> float:
        """The lowest of the whole set's and each half's SQNR."""
        return min(self.db, *self.halves)


class _Runner:
    """A model opened in its runtime: its inputs, and a run of one batch giving every output in
    real values. TFLite models run in LiteRT (main subgraph), GraphDefs in TensorFlow."""

    def __init__(self, model: bytes, source: str, outputs: Sequence[str] | None):
        graph = load(model)
        self.source = source
        self.format = graph.format
        if graph.format == "tflite":
            from .litert import TfliteModel

            self._tflite = TfliteModel(model, source)
            keys = _signature_keys(graph)
            self.inputs = [InputSpec(name, detail.dtype, detail.shape, keys.get(name, ()))
                           for name, detail in zip(graph.inputs, self._tflite.inputs)]
            self.outputs = [detail.name for detail in self._tflite.outputs]
        elif graph.format == "graphdef":
            from .tensorflow import GraphDefSession

            self.inputs = _graphdef_inputs(graph, graph.inputs or None)
            self.outputs = list(outputs or [str(ref) for ref in graph.outputs])
            if not self.outputs:
                raise FormatError("the GraphDef declares no outputs: name them", source)
            self._session = GraphDefSession(model, source)
        else:
            raise FormatError(f"cannot run a {graph.format} model here (TFLite in LiteRT, GraphDefs in "
                              "TensorFlow)", source)

    def run(self, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        values = [batch[spec.name] for spec in self.inputs]
        if self.format == "tflite":
            return self._tflite.run_real(values)
        return self._session.run({spec.name: value for spec, value in zip(self.inputs, values)}, self.outputs)

    def close(self) -> None:
        if self.format == "graphdef":
            self._session.close()


class OutputError:
    """A reference model's outputs on samples, to measure variants of it against (a TFLite
    model in LiteRT, a GraphDef in TensorFlow; `outputs` names a GraphDef's outputs when it
    declares none).

    `data`: an .npz keyed by input name (or a TFLite signature input key) with samples on the
    first axis, a mapping of such arrays, or an iterable of batches (read once, kept)."""

    def __init__(self, reference: bytes, data: Any, source: str = "<model>", batch_size: int = BATCH_SIZE,
                 outputs: Sequence[str] | None = None):
        self.output_names = outputs
        runner = _Runner(reference, source, outputs)
        self.inputs = runner.inputs
        fixed = {spec.fixed_batch for spec in self.inputs} - {None}
        size = fixed.pop() if len(fixed) == 1 else batch_size
        batches, _ = sample_batches(data, self.inputs, size)
        self.batches = list(batches)
        where = os.fspath(data) if isinstance(data, (str, os.PathLike)) else "samples"
        if fixed or size != batch_size:
            odd = [count_of(b) for b in self.batches if count_of(b) != size]
            if odd:
                raise FormatError(f"a batch of {odd[0]} sample(s): the model takes batches of exactly {size}",
                                  where)
        self.samples = sum(count_of(b) for b in self.batches)
        if self.samples < 2:
            raise FormatError("needs at least 2 samples (the SQNR is checked on each half)", where)
        try:
            self.reference = self._outputs(runner)
        finally:
            runner.close()

    def measure(self, model: bytes, source: str = "<variant>") -> Sqnr:
        """The SQNR of `model`'s outputs against the reference's on the same samples."""
        runner = _Runner(model, source, self.output_names)
        try:
            outputs = self._outputs(runner)
        finally:
            runner.close()
        signal = np.zeros(self.samples)
        noise = np.zeros(self.samples)
        if len(outputs) != len(self.reference):
            raise FormatError(f"{len(outputs)} output(s), the reference has {len(self.reference)}", source)
        for a, b in zip(self.reference, outputs):
            if a.shape != b.shape:
                raise FormatError(f"outputs of {b.shape[1]} value(s) per sample, the reference's have "
                                  f"{a.shape[1]}", source)
            signal += np.square(a).sum(axis=1)
            noise += np.square(b - a).sum(axis=1)
        half = self.samples // 2
        halves = (db(float(signal[:half].sum()), float(noise[:half].sum())),
                  db(float(signal[half:].sum()), float(noise[half:].sum())))
        return Sqnr(float(signal.sum()), float(noise.sum()), halves)

    def _outputs(self, runner: _Runner) -> list[np.ndarray]:
        """Per output: its values as [samples, values per sample] (float64)."""
        runs = [runner.run(batch) for batch in self.batches]
        found = []
        for i in range(len(runs[0])):
            parts = []
            for run, batch in zip(runs, self.batches):
                value = np.asarray(run[i], np.float64)
                if value.ndim == 0 or len(value) != count_of(batch):
                    raise FormatError(f"output {runner.outputs[i]!r} of shape {list(value.shape)} has no "
                                      f"sample axis (a batch of {count_of(batch)})", runner.source)
                parts.append(value.reshape(len(value), -1))
            found.append(np.concatenate(parts))
        return found
