"""calibrate: run a model on representative data and record the range of its tensors.

    ranges = calibrate("model.pb", "samples.npz")                       # TensorFlow
    ranges = calibrate("model.tflite", batches, method="percentile")    # LiteRT
    ranges.save("ranges.json"); ranges.range_of("conv/Relu6")           # (min, max)

GraphDefs run in TensorFlow, TFLite models in LiteRT (the main subgraph, every tensor kept
after each run). Data: an .npz keyed by input name with samples on the first axis, a
mapping of such arrays, or an iterable of batches (mappings, lists in input order, or bare
arrays for one input; a callable returning one, like TFLite's representative_dataset).
Statistics per float32 tensor:

- minmax: the smallest and largest value seen;
- moving_average: per batch min and max, averaged as m = decay * m + (1 - decay) * batch
  (tf.contrib.quantize's eval-time ranges; the first batch starts the average);
- percentile: the `percentile`-th and (100 - `percentile`)-th percentiles of all values,
  from a histogram of HISTOGRAM_BINS bins that widens as values arrive (within a bin's width);
- mse: the range whose `bits`-bit quantization (asymmetric, or `symmetric` about 0) gives the
  smallest mean squared error over that histogram: values outside clip to its ends, values
  inside cost step**2 / 12. Candidate ends are MSE_CANDIDATES histogram edges on either side
  of 0, all pairs tried at once.

Memory stays bounded: LiteRT keeps every tensor of one run (its arena), so a run holds at most
`memory_mb` of them (the batch shrinks to fit, down to one sample); statistics read each tensor
where LiteRT keeps it, one at a time, and keep only a few numbers (a histogram for percentile
and mse). The samples themselves are read a batch at a time from an iterable.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

import numpy as np

from ..errors import FormatError, GraphtoolError
from ..formats import atomic_write, graphdef, load, tflite
from ..formats.tflite import keys as tflite_keys
from ..ir import DType, Graph, Ref
from ..ir.attrs import TensorShape
from .progress import Progress
from .samples import InputSpec, count_of, sample_batches

METHODS = ("minmax", "moving_average", "percentile", "mse")
HISTOGRAM_BINS = 2048
MSE_CANDIDATES = 256  # range ends tried on each side of 0 by method=mse
MEMORY_MB = 64  # default bound on the tensors LiteRT keeps for one run (all of them, for the batch)
FORMAT_VERSION = 1
GRAPHDEF_INPUT_OPS = ("Placeholder",)
ZIP_MAGIC = b"PK\x03\x04"  # an .npz is a zip archive
CONTROL_FLOW_OPS = frozenset({"Switch", "RefSwitch", "Enter", "RefEnter"})


class CalibrationError(GraphtoolError):
    """Calibration cannot run with these options, or the model misbehaved on the data."""


@dataclass
class Calibration:
    """Per-tensor ranges: `ranges` maps `node:port` to (min, max)."""

    method: str
    samples: int
    batches: int
    ranges: dict[str, tuple[float, float]]
    options: dict[str, float] = field(default_factory=dict)

    def range_of(self, tensor: str | Ref) -> tuple[float, float] | None:
        """The range of `tensor` (`node`, `node:port` or a Ref), None if not calibrated."""
        if isinstance(tensor, str) and tensor in self.ranges:  # TFLite names may hold ':'
            return self.ranges[tensor]
        return self.ranges.get(tensor_key(tensor))

    def to_dict(self) -> dict[str, Any]:
        return {"format": "graphtool.calibration", "version": FORMAT_VERSION, "method": self.method,
                "options": dict(self.options), "samples": self.samples, "batches": self.batches,
                "ranges": {name: [low, high] for name, (low, high) in self.ranges.items()}}

    def save(self, path: str | os.PathLike) -> None:
        """Write as JSON, atomically."""
        text = json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n"
        atomic_write(os.fspath(path), [text.encode()])

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Calibration":
        """Read a file written by `save`; FormatError naming the file when it is not one."""
        source = os.fspath(path)
        try:
            with open(source, "rb") as handle:
                data = json.loads(handle.read().decode("utf-8"))
        except FileNotFoundError:
            raise FormatError("no such file", source=source) from None
        except (IsADirectoryError, PermissionError) as exc:
            raise FormatError(f"cannot read: {exc.strerror}", source=source) from None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise FormatError(f"not a calibration file (JSON): {exc}", source=source) from None
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<calibration>") -> "Calibration":
        """The inverse of to_dict, checking every field."""
        if not isinstance(data, dict) or data.get("format") != "graphtool.calibration":
            raise FormatError('not a calibration file (no "format": "graphtool.calibration")', source=source)
        if data.get("version") != FORMAT_VERSION:
            raise FormatError(f"calibration file version {data.get('version')!r}; this graphtool reads "
                              f"{FORMAT_VERSION}", source=source)
        method, ranges = data.get("method"), data.get("ranges")
        if method not in METHODS:
            raise FormatError(f"unknown method {method!r}", source=source, where="method")
        if not isinstance(ranges, dict):
            raise FormatError("ranges must be an object", source=source, where="ranges")
        checked = {}
        for name, value in ranges.items():
            if (not isinstance(value, list) or len(value) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                               for v in value) or value[0] > value[1]):
                raise FormatError("a range is [min, max], finite numbers with min <= max", source=source,
                                  where=f"ranges[{name!r}]")
            checked[tensor_key(name)] = (float(value[0]), float(value[1]))
        counts = [data.get(k, 0) for k in ("samples", "batches")]
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise FormatError("samples and batches must be counts", source=source)
        options = data.get("options", {})
        if not isinstance(options, dict):
            raise FormatError("options must be an object", source=source, where="options")
        return cls(method, counts[0], counts[1], checked, dict(options))


def is_ranges_file(path: str | os.PathLike) -> bool:
    """True for a file of ranges (Calibration.save's JSON), False for an .npz of samples;
    FormatError naming the file when it cannot be read or is neither."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            head = handle.read(4)
    except FileNotFoundError:
        raise FormatError("no such file", source=source) from None
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", source=source) from None
    suffix = os.path.splitext(source)[1].lower()
    if head == ZIP_MAGIC or suffix == ".npz":
        return False
    if head.lstrip()[:1] == b"{" or suffix == ".json":
        return True
    raise FormatError("neither an .npz of samples nor a .json of ranges", source=source)


def tensor_key(tensor: str | Ref) -> str:
    """`node:port` for a tensor named `node`, `node:port` or given as a Ref."""
    ref = tensor if isinstance(tensor, Ref) else Ref.parse(str(tensor))
    return f"{ref.node}:{ref.port}"


# -- statistics ---------------------------------------------------------------------------------

class _Statistic(Protocol):
    def update(self, values: np.ndarray, low: float, high: float) -> None:
        """Take a batch's values of one tensor, whose smallest and largest are low and high."""
    def result(self) -> tuple[float, float] | None: ...


class MinMax:
    """The smallest and largest value seen."""

    def __init__(self) -> None:
        self.low = self.high = None

    def update(self, values: np.ndarray, low: float, high: float) -> None:
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def result(self) -> tuple[float, float] | None:
        return None if self.low is None else (self.low, self.high)


class MovingAverage:
    """Per-batch min and max, exponentially averaged: m = decay * m + (1 - decay) * batch."""

    def __init__(self, decay: float):
        self.decay = decay
        self.low = self.high = None

    def update(self, values: np.ndarray, low: float, high: float) -> None:
        if self.low is None:
            self.low, self.high = low, high
        else:
            self.low = self.decay * self.low + (1 - self.decay) * low
            self.high = self.decay * self.high + (1 - self.decay) * high

    def result(self) -> tuple[float, float] | None:
        return None if self.low is None else (self.low, self.high)


class Histogram:
    """Counts of every value seen over the range seen so far; when values fall outside it,
    the counts are re-binned onto the wider range (each count moves to the new bin holding
    its old bin's centre)."""

    def __init__(self, bins: int = HISTOGRAM_BINS):
        self.bins = bins
        self.low = self.high = None  # the histogram's range
        self.seen_min = self.seen_max = None
        self.counts: np.ndarray | None = None

    def update(self, values: np.ndarray, low: float, high: float) -> None:
        values = values.reshape(-1)
        if self.counts is None:
            self.low, self.high = low, _wide_enough(low, high)
            self.counts = np.zeros(self.bins, np.int64)
        elif low < self.low or high > self.high:
            old_centres = self._edges()[:-1] + (self.high - self.low) / self.bins / 2
            self.low = min(low, self.low)
            self.high = _wide_enough(self.low, max(high, self.high))
            self.counts = np.histogram(old_centres, self.bins, self._range(),
                                       weights=self.counts)[0].round().astype(np.int64)
        self.counts += np.histogram(values, self.bins, self._range())[0]  # numpy bins a block at a time
        self.seen_min = low if self.seen_min is None else min(self.seen_min, low)
        self.seen_max = high if self.seen_max is None else max(self.seen_max, high)

    def _edges(self) -> np.ndarray:
        return np.linspace(self.low, self.high, self.bins + 1)

    def _range(self) -> tuple[np.float64, np.float64]:
        """The range as float64, so numpy computes the bin edges in float64 whatever the values."""
        return np.float64(self.low), np.float64(self.high)


def _wide_enough(low: float, high: float) -> float:
    """`high`, or more: a histogram's range must be wide enough for distinct float64 bin edges."""
    return max(high, low + max(1e-6 * max(abs(low), abs(high)), 1e-12))


class Percentile(Histogram):
    """The (100 - p)-th and p-th percentiles of every value seen, from the histogram."""

    def __init__(self, percentile: float, bins: int = HISTOGRAM_BINS):
        super().__init__(bins)
        self.percentile = percentile

    def _quantile(self, fraction: float) -> float:
        cumulative = np.cumsum(self.counts)
        target = fraction * cumulative[-1]
        index = int(np.searchsorted(cumulative, target, side="left"))
        index = min(index, self.bins - 1)
        before = cumulative[index - 1] if index else 0
        inside = self.counts[index]
        share = (target - before) / inside if inside else 0.0
        edges = self._edges()
        return float(edges[index] + share * (edges[index + 1] - edges[index]))

    def result(self) -> tuple[float, float] | None:
        if self.counts is None:
            return None
        fraction = self.percentile / 100.0
        low = max(self.seen_min, self._quantile(1.0 - fraction))
        high = min(self.seen_max, self._quantile(fraction))
        return (low, max(low, high))


class Mse(Histogram):
    """The range [low, high] (holding 0) whose `bits`-bit quantization has the least mean
    squared error over the histogram (each bin's values at its centre): clipping error
    outside, step**2 / 12 inside. With `symmetric` the range is [-t, t]."""

    def __init__(self, bits: int = 8, symmetric: bool = False, bins: int = HISTOGRAM_BINS,
                 candidates: int = MSE_CANDIDATES):
        super().__init__(bins)
        self.levels = 2 ** bits - (2 if symmetric else 1)  # steps across the range (int16: [-qmax, qmax])
        self.symmetric = symmetric
        self.candidates = candidates

    def result(self) -> tuple[float, float] | None:
        if self.counts is None:
            return None
        edges = self._edges()
        centres = (edges[:-1] + edges[1:]) / 2
        counts = self.counts.astype(np.float64)
        # prefix sums of c, c*x, c*x^2 over bins: the clipping error of any end in O(1)
        sums = [np.concatenate([[0.0], np.cumsum(counts * centres ** k)]) for k in range(3)]
        below = lambda i, end: sums[2][i] - 2 * end * sums[1][i] + end ** 2 * sums[0][i]  # noqa: E731
        above = lambda j, end: (sums[2][-1] - sums[2][j]) - 2 * end * (sums[1][-1] - sums[1][j]) \
            + end ** 2 * (sums[0][-1] - sums[0][j])  # noqa: E731
        low_seen, high_seen = min(self.seen_min, 0.0), max(self.seen_max, 0.0)
        if self.symmetric:
            bound = max(-low_seen, high_seen)
            ends = np.linspace(bound / self.candidates, bound, self.candidates) if bound > 0 else np.zeros(1)
            lows, highs = -ends, ends
        else:
            lows = np.linspace(low_seen, 0.0, self.candidates, endpoint=False) if low_seen < 0 else np.zeros(1)
            highs = np.linspace(high_seen, 0.0, self.candidates, endpoint=False) if high_seen > 0 else np.zeros(1)
            lows, highs = np.meshgrid(lows, highs, indexing="ij")
            lows, highs = lows.ravel(), highs.ravel()
        i = np.searchsorted(centres, lows, side="left")  # bins wholly below the low end
        j = np.searchsorted(centres, highs, side="right")  # bins at or below the high end
        step = (highs - lows) / self.levels
        inside = sums[0][j] - sums[0][i]
        error = below(i, lows) + above(j, highs) + inside * step ** 2 / 12
        best = int(np.argmin(error))
        return float(lows[best]), float(highs[best])


def _statistic(method: str, decay: float, percentile: float, bits: int, symmetric: bool) -> _Statistic:
    if method == "minmax":
        return MinMax()
    if method == "moving_average":
        return MovingAverage(decay)
    if method == "mse":
        return Mse(bits, symmetric)
    return Percentile(percentile)


# -- runners ------------------------------------------------------------------------------------

Visit = Callable[[int, np.ndarray], None]  # (tensor number, its values), called once per tensor and run


class _Runner(Protocol):
    inputs: list[InputSpec]
    tensors: list[str]
    sample_bytes: int  # bytes of tensors one sample keeps alive during a run (0: unknown)

    def run(self, batch: dict[str, np.ndarray], visit: Visit) -> None: ...
    def close(self) -> None: ...


class _GraphDefRunner:
    """A GraphDef in a TensorFlow session, fetching `tensors` (`node:port`) each run."""

    def __init__(self, graph: Graph, inputs: Sequence[str] | None, tensors: Sequence[str] | None):
        from ..runtime.tensorflow import GraphDefSession, float32_outputs

        self.inputs = _graphdef_inputs(graph, inputs)
        self._session = GraphDefSession(graphdef.write(graph), graph.meta.get("source") or "<graphdef>")
        if tensors is None:
            skipped = _under_control_flow(graph)
            tensors = [t for t in float32_outputs(self._session) if Ref.parse(t).node not in skipped]
        self.tensors = [tensor_key(t) for t in tensors]
        self.sample_bytes = 0  # TensorFlow frees what no fetch needs: no bound to keep

    def run(self, batch: dict[str, np.ndarray], visit: Visit) -> None:
        for number, values in enumerate(self._session.run(batch, self.tensors)):
            visit(number, values)

    def close(self) -> None:
        self._session.close()


class _TfliteRunner:
    """A TFLite model in LiteRT keeping every tensor, reading `tensors` after each run where
    LiteRT keeps them (no copy). Inputs may be fed by tensor name or by the input key of the
    main subgraph's signature."""

    def __init__(self, model: bytes, graph: Graph, inputs: Sequence[str] | None, tensors: Sequence[str] | None):
        from ..runtime.litert import TfliteTensors

        if inputs is not None and list(inputs) != list(graph.inputs):
            raise CalibrationError(f"a TFLite model's inputs are fixed: {', '.join(graph.inputs)}")
        self._model = TfliteTensors(model, graph.meta.get("source") or "<tflite>")
        keys = _signature_keys(graph)
        self.inputs = [InputSpec(name, detail.dtype, detail.shape, keys.get(name, ()))
                       for name, detail in zip(graph.inputs, self._model.inputs)]
        self.sample_bytes = _sample_bytes(graph)
        available = _tflite_tensors(graph)
        if tensors is None:
            tensors = list(available)
        keys = [t if t in available else tensor_key(t) for t in tensors]  # TFLite names may hold ':'
        unknown = [t for t, key in zip(tensors, keys) if key not in available]
        if unknown:
            raise CalibrationError(f"no float32 tensor {unknown[0]!r} in the model's main subgraph")
        self.tensors = keys
        self._indices = [available[t] for t in self.tensors]

    def run(self, batch: dict[str, np.ndarray], visit: Visit) -> None:
        self._model.run([batch[spec.name] for spec in self.inputs])
        for number, index in enumerate(self._indices):
            values = self._model.view(index)  # a view into LiteRT's arena, gone before the next run
            if values is not None:
                visit(number, values)
            del values

    def close(self) -> None:
        pass


def _graphdef_inputs(graph: Graph, names: Sequence[str] | None) -> list[InputSpec]:
    if names is None:
        names = [n.name for n in graph if n.op in GRAPHDEF_INPUT_OPS]
    specs = []
    for name in names:
        node_name = Ref.parse(name).node
        if node_name not in graph or graph.node(node_name).op not in GRAPHDEF_INPUT_OPS:
            raise CalibrationError(f"input {name!r} is not a Placeholder of the graph")
        node = graph.node(node_name)
        dtype = node.attrs.get("dtype")
        shape = node.attrs.get("shape")
        if not isinstance(dtype, DType) or dtype.numpy is None:
            raise CalibrationError(f"input {node_name!r} has no numeric dtype")
        specs.append(InputSpec(node_name, np.dtype(dtype.numpy),
                               shape.dims if isinstance(shape, TensorShape) else None))
    if not specs:
        raise CalibrationError("the graph has no Placeholder to feed")
    return specs


def _under_control_flow(graph: Graph) -> set[str]:
    """Nodes at or after a TF1 Switch/Enter: their values may be dead or per-iteration, which
    Session.run cannot fetch."""
    starts = [n.name for n in graph if n.op in CONTROL_FLOW_OPS]
    found = set(starts)
    for name in starts:
        found |= graph.descendants(name)
    return found


def _tflite_tensors(graph: Graph) -> dict[str, int]:
    """`node:port` -> tensor index of every float32 input or operator output of the main
    subgraph (as read: indices are those of the file)."""
    available = {}
    for node in graph:
        if node.op in ("Const", "Variable", "Tensor"):
            continue
        for port, tensor in enumerate(node.outputs):
            if tensor.dtype is DType.FLOAT32 and tflite_keys.INDEX in tensor.meta:
                available[f"{node.name}:{port}"] = tensor.meta[tflite_keys.INDEX]
    return available


def _signature_keys(graph: Graph) -> dict[str, tuple[str, ...]]:
    """Input node -> the input keys the main subgraph's signature defs give its tensor."""
    by_tensor: dict[int, list[str]] = {}
    for sig in graph.meta.get(tflite_keys.SIGNATURE_DEFS) or []:
        if sig["subgraph"] is graph:
            for key, tensor in sig["inputs"]:
                by_tensor.setdefault(id(tensor), []).append(key)
    return {name: tuple(by_tensor.get(id(graph.node(name).outputs[0]), ())) for name in graph.inputs}


def _sample_bytes(graph: Graph) -> int:
    """Bytes of the tensors one sample adds to a run that keeps every tensor: each non-constant
    tensor's size without its first (batch) axis; unknown sizes count as 1."""
    total = 0
    for node in graph:
        if node.op in ("Const", "Variable"):
            continue
        for tensor in node.outputs:
            if tensor.shape and tensor.dtype is not None and tensor.dtype.itemsize:
                total += math.prod(d or 1 for d in tensor.shape[1:]) * tensor.dtype.itemsize
    return total


def _open(model: Graph | str | os.PathLike | bytes, inputs: Sequence[str] | None,
          tensors: Sequence[str] | None) -> _Runner:
    graph = model if isinstance(model, Graph) else load(model)
    if graph.format == "graphdef":
        return _GraphDefRunner(graph, inputs, tensors)
    if isinstance(model, Graph):
        data = tflite.write(graph)
    elif isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
    else:
        with open(model, "rb") as handle:
            data = handle.read()
    # read from the very bytes LiteRT runs, so tensor indices agree
    return _TfliteRunner(data, load(data), inputs, tensors)


# -- the run ------------------------------------------------------------------------------------

def calibrate(model: Graph | str | os.PathLike | bytes, data: Any, *, method: str = "minmax",
              decay: float = 0.9, percentile: float = 99.99, batch_size: int = 32,
              inputs: Sequence[str] | None = None, tensors: Sequence[str] | None = None,
              progress: bool | None = None, bits: int = 8, symmetric: bool = False,
              memory_mb: float = MEMORY_MB,
              observe: Mapping[str, Callable[[np.ndarray], None]] | None = None) -> Calibration:
    """Run `model` on `data` and return the range of each float32 tensor (all of them, or
    `tensors`, given as `node` or `node:port`).

    `inputs` names the GraphDef's Placeholders to feed (default: every Placeholder); a TFLite
    model's inputs may be given by tensor name or signature input key. Batches hold
    `batch_size` samples unless an input fixes its batch size, or fewer when LiteRT would keep
    more than `memory_mb` of tensors for one run. `bits` and `symmetric` are the quantization
    method=mse chooses ranges for. `progress`: a bar on stderr (None: on a terminal, for runs
    over a second). `observe` maps calibrated tensors to callables that are handed each batch's
    values too (where LiteRT keeps them: read them, do not keep them)."""
    if method not in METHODS:
        raise CalibrationError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    if not 0.0 <= decay < 1.0:
        raise CalibrationError(f"decay must be in [0, 1), got {decay}")
    if not 50.0 < percentile <= 100.0:
        raise CalibrationError(f"percentile must be in (50, 100], got {percentile}")
    if batch_size < 1:
        raise CalibrationError(f"batch_size must be at least 1, got {batch_size}")
    if not 2 <= bits <= 16:
        raise CalibrationError(f"bits must be 2..16, got {bits}")
    if not memory_mb > 0:
        raise CalibrationError(f"memory_mb must be positive, got {memory_mb}")
    source = os.fspath(data) if isinstance(data, (str, os.PathLike)) else "calibration data"
    runner = _open(model, inputs, tensors)
    try:
        fixed = {spec.fixed_batch for spec in runner.inputs} - {None}
        if len(fixed) > 1:
            raise CalibrationError(f"inputs fix different batch sizes: {sorted(fixed)}")
        fixed_batch = fixed.pop() if fixed else None
        size = fixed_batch or _bounded(batch_size, runner.sample_bytes, memory_mb)
        batches, total = sample_batches(data, runner.inputs, size)
        statistics = [_statistic(method, decay, percentile, bits, symmetric) for _ in runner.tensors]
        observers = _observers(runner.tensors, observe or {})
        samples = count = 0
        with Progress("calibrating", total, progress) as bar:
            for batch in _fixed_size(batches, fixed_batch):
                runner.run(batch, _Updater(runner.tensors, statistics, count, source, observers))
                count += 1
                samples += count_of(batch)
                bar.update(count_of(batch))
    finally:
        runner.close()
    ranges = {name: r for name, statistic in zip(runner.tensors, statistics) if (r := statistic.result()) is not None}
    options = {"decay": decay} if method == "moving_average" else {"percentile": percentile} \
        if method == "percentile" else {"bits": bits, "symmetric": symmetric} if method == "mse" else {}
    return Calibration(method, samples, count, ranges, {**options, "batch_size": size})


def _bounded(batch_size: int, sample_bytes: int, memory_mb: float) -> int:
    """`batch_size`, or fewer samples (at least one) when their tensors would pass memory_mb."""
    if sample_bytes <= 0:
        return batch_size
    return max(1, min(batch_size, int(memory_mb * (1 << 20)) // sample_bytes))


def _observers(tensors: list[str], observe: Mapping[str, Callable[[np.ndarray], None]]) -> dict[int, Callable]:
    numbers = {name: number for number, name in enumerate(tensors)}
    found = {}
    for name, observer in observe.items():
        key = name if name in numbers else tensor_key(name)
        if key not in numbers:
            raise CalibrationError(f"cannot observe {name!r}: not a calibrated float32 tensor")
        found[numbers[key]] = observer
    return found


class _Updater:
    """Feeds each tensor's values of one batch to its statistic and observer (NaN or infinity
    is an error naming the data and the tensor)."""

    def __init__(self, names: list[str], statistics: list[_Statistic], batch: int, source: str,
                 observers: dict[int, Callable[[np.ndarray], None]] | None = None):
        self.names, self.statistics, self.batch, self.source = names, statistics, batch, source
        self.observers = observers or {}

    def __call__(self, number: int, values: np.ndarray) -> None:
        if values.size == 0:
            return
        low, high = float(values.min()), float(values.max())  # NaN comes out of min and max
        if not (math.isfinite(low) and math.isfinite(high)):
            raise CalibrationError(f"{self.source}: tensor {self.names[number]} holds NaN or infinity on batch "
                                   f"{self.batch}; calibrate only the tensors that matter (tensors=...)")
        self.statistics[number].update(values, low, high)
        if number in self.observers:
            self.observers[number](values)


def _fixed_size(batches: Iterable[dict[str, np.ndarray]], size: int | None) -> Iterator[dict[str, np.ndarray]]:
    """Batches re-cut to exactly `size` samples when the model fixes its batch size."""
    for batch in batches:
        if size is None:
            yield batch
            continue
        count = count_of(batch)
        if count % size:
            raise FormatError(f"a batch of {count} samples: the model's inputs take batches of exactly "
                              f"{size}", "calibration data")
        for start in range(0, count, size):
            yield {name: array[start:start + size] for name, array in batch.items()}
