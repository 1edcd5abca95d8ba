"""verify: run two models in their real runtimes on the same inputs and compare outputs.

GraphDefs run in TensorFlow, TFLite models in LiteRT (main subgraph), SavedModel
directories in TensorFlow through their serving signature (as saved: variables, pruning
wrappers and all), so a frozen graph or a SavedModel can be checked against its own TFLite
conversion. Inputs and outputs are paired by name (a GraphDef's node name, a TFLite tensor
name or its signature name, a SavedModel signature's key or its tensor in the signature's
function, with or without `:0`), and what no name pairs goes by order. Inputs come from an
.npz file (arrays keyed by input name, else in order; one example per row along axis 0) or
are drawn at random by dtype and shape with a fixed seed, one example per run, unknown
dimensions as 1.
Values are compared as real numbers: quantized TFLite inputs are quantized and outputs
dequantized with the tensor's own scale and zero point.

An output passes when every element satisfies |b - a| <= atol + rtol * |a|, with A as the
reference. Each output reports max abs error, relative error (max abs error over max
|a|), SQNR, cosine similarity and, for [batch, classes]-shaped outputs, top-1 agreement.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import FormatError, GraphtoolError
from ..formats import dumps, load, savedmodel
from ..formats.graphdef import keys as graphdef_keys
from ..formats.tflite import keys as tflite_keys
from ..ir import DType, Graph, Quantization, Ref
from ..ir.quantization import real_range
from ..runtime import DEFAULT_SAMPLES
from ..runtime.samples import read_npz

GRAPHDEF_INPUT_OPS = frozenset({"Placeholder", "PlaceholderV2"})
NOT_OUTPUT_OPS = frozenset({"Const", "Assign", "NoOp", "Placeholder", "PlaceholderV2"})
RUNTIMES = {"graphdef": "TensorFlow", "tflite": "LiteRT", "savedmodel": "TensorFlow"}
INTEGER_RANGE = (0, 5)  # random integer inputs: small non-negative values, safe as indices and sizes
WORDS = np.array([b"graph", b"tool", b"lite"], dtype=object)


@dataclass(frozen=True)
class Endpoint:
    """An input or output of one model: the names it answers to, and its tensor type."""

    name: str  # what the runtime feeds / fetches
    aliases: tuple[str, ...]
    dtype: DType | None
    shape: tuple | None
    quantization: Quantization | None = None

    @property
    def quantized(self) -> bool:
        q = self.quantization
        return q is not None and q.scale.size > 0 and self.dtype is not None and self.dtype.numpy is not None \
            and self.dtype.numpy.kind in "iu"


@dataclass
class Pairing:
    a: str
    b: str
    matched_by: str  # "name" | "order"


@dataclass
class OutputResult:
    a: str
    b: str
    matched_by: str
    within_tolerance: bool
    shape: list[int] | None = None
    max_abs_error: float | None = None
    rel_error: float | None = None  # max abs error / max |a|
    sqnr_db: float | None = None  # None: infinite (no error)
    cosine: float | None = None
    top1_agreement: float | None = None  # share of rows whose argmax agrees (classifier-like outputs)
    mismatches: int = 0  # elements outside the tolerance
    problem: str | None = None  # why values could not be compared


@dataclass
class VerifyReport:
    a: str | None
    b: str | None
    runtime_a: str
    runtime_b: str
    atol: float
    rtol: float
    runs: int
    data: str | None  # the .npz file, or None for random inputs
    seed: int
    inputs: list[Pairing] = field(default_factory=list)
    outputs: list[OutputResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.within_tolerance for o in self.outputs)

    @property
    def worst(self) -> OutputResult | None:
        """The failing output furthest outside the tolerance (None when all pass)."""
        failing = [o for o in self.outputs if not o.within_tolerance]
        return max(failing, key=_badness, default=None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        worst = self.worst
        data["worst"] = None if worst is None else worst.b
        return data


def _badness(result: OutputResult) -> tuple:
    return (result.problem is not None, result.mismatches, result.max_abs_error or 0.0)


@dataclass
class _Model:
    """A model to run: a Graph and its serialized bytes, or a SavedModel signature loaded in
    TensorFlow (graph and data None)."""

    graph: Graph | None
    data: bytes | None
    source: str
    signature: Any = None  # graphtool.runtime.tensorflow.SavedModelSignature

    @property
    def format(self) -> str:
        if self.signature is not None:
            return "savedmodel"
        return self.graph.format or "unknown"

    def endpoints(self, kind: str) -> list[Endpoint]:
        if self.signature is not None:
            return _signature_endpoints(self.signature, kind)
        return endpoints(self.graph, kind)


def verify(a: Graph | str | os.PathLike | bytes, b: Graph | str | os.PathLike | bytes, *,
           data: str | os.PathLike | None = None, samples: int | None = None, seed: int = 0,
           atol: float = 1e-4, rtol: float = 1e-4) -> VerifyReport:
    """Run `a` and `b` on the same inputs and compare their outputs (A is the reference).

    `data`: an .npz of inputs; `samples`: how many runs (random inputs; default 8) or how
    many rows of `data` to use (default all)."""
    if atol < 0 or rtol < 0:
        raise GraphtoolError("atol and rtol must not be negative")
    if samples is not None and samples < 1:
        raise GraphtoolError("samples must be at least 1")
    model_a, model_b = _model(a, "A"), _model(b, "B")
    inputs_a, inputs_b = model_a.endpoints("inputs"), model_b.endpoints("inputs")
    outputs_a, outputs_b = model_a.endpoints("outputs"), model_b.endpoints("outputs")
    input_pairs = pair_endpoints(inputs_a, inputs_b, "inputs", model_a.source, model_b.source)
    output_pairs = pair_endpoints(outputs_a, outputs_b, "outputs", model_a.source, model_b.source)
    if not output_pairs:
        raise GraphtoolError(f"{model_a.source}: no outputs to compare")
    if data is not None:
        examples = _examples_from_file(os.fspath(data), input_pairs, samples)
    else:
        examples = _random_examples(input_pairs, samples or DEFAULT_SAMPLES, seed)
    run_a, run_b = _runner(model_a, [p[0] for p in input_pairs]), _runner(model_b, [p[1] for p in input_pairs])
    got_a: list[list[np.ndarray]] = []
    got_b: list[list[np.ndarray]] = []
    for example in examples:
        got_a.append(run_a(example, [p[0] for p in output_pairs]))
        got_b.append(run_b(example, [p[1] for p in output_pairs]))
    report = VerifyReport(model_a.source, model_b.source, RUNTIMES.get(model_a.format, "?"),
                          RUNTIMES.get(model_b.format, "?"), atol, rtol, len(examples),
                          None if data is None else os.fspath(data), seed,
                          inputs=[Pairing(x.name, y.name, how) for x, y, how in input_pairs])
    for i, (out_a, out_b, how) in enumerate(output_pairs):
        values_a, values_b = _gather([r[i] for r in got_a]), _gather([r[i] for r in got_b])
        report.outputs.append(compare_outputs(out_a.name, out_b.name, how, values_a, values_b, atol, rtol))
    return report


def _model(model: Graph | str | os.PathLike | bytes, label: str) -> _Model:
    if isinstance(model, Graph):
        graph = model
        source = graph.meta.get("source") or label
        held = savedmodel.unfrozen(graph) if graph.format == "graphdef" else []
        if held:
            raise GraphtoolError(f"{source}: variables {', '.join(held[:3])} hold values only in memory; run "
                                 "strip_pruning first, or verify the SavedModel directory itself")
        binary = dumps(graph, text=False) if graph.format == "graphdef" else dumps(graph)
        return _Model(graph, binary, source)
    if not isinstance(model, (bytes, bytearray, memoryview)) and savedmodel.is_saved_model(model):
        from ..runtime.tensorflow import SavedModelSignature

        return _Model(None, None, os.fspath(model), signature=SavedModelSignature(os.fspath(model)))
    graph = load(model)  # a missing file or a directory that is no SavedModel: FormatError naming it
    if isinstance(model, (bytes, bytearray, memoryview)):
        raw, source = bytes(model), label
    else:
        source = os.fspath(model)
        raw = None if graph.meta.get(graphdef_keys.TEXT) else _read_bytes(source)
    return _Model(graph, raw if raw is not None else dumps(graph, text=False), source)


def _read_bytes(path: str) -> bytes:
    """The file's bytes, as the runtime gets them (the file was just read as a model)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", source=path) from None


# -- endpoints -----------------------------------------------------------------------------

def endpoints(graph: Graph, kind: str) -> list[Endpoint]:
    """The inputs or outputs of `graph` as verify feeds and fetches them."""
    if graph.format == "tflite":
        aliases = _signature_names(graph, kind)
        if kind == "inputs":
            tensors = [graph.node(name).output(0) for name in graph.inputs]
        else:
            tensors = [graph.node(ref.node).output(ref.port) for ref in graph.outputs]
        return [Endpoint(t.name, _aliases(t.name, aliases.get(t.name)), t.dtype, t.shape, t.quantization)
                for t in tensors]
    if kind == "inputs":
        declared = graph.inputs or [n.name for n in graph if n.op in GRAPHDEF_INPUT_OPS]
        return [_graphdef_endpoint(graph, Ref(name, 0)) for name in declared]
    refs = graph.outputs or [Ref(n.name, 0) for n in graph if n.op not in NOT_OUTPUT_OPS
                             and not n.op.startswith("graphtool.") and not graph.is_used(n.name)]
    return [_graphdef_endpoint(graph, ref) for ref in refs]


def _signature_endpoints(signature: Any, kind: str) -> list[Endpoint]:
    """A SavedModel signature's inputs or outputs: fed and fetched by key, also answering to
    the name of the tensor in the signature's function (`image:0`, `Identity:0`), which is
    the node a GraphDef read from the SavedModel has."""
    points = []
    for tensor in signature.inputs if kind == "inputs" else signature.outputs:
        aliases = tuple(dict.fromkeys((tensor.key, *_aliases(tensor.tensor_name))))
        dtype = DType.from_numpy(tensor.dtype)
        points.append(Endpoint(tensor.key, aliases, dtype, tensor.shape))
    return points


def _graphdef_endpoint(graph: Graph, ref: Ref) -> Endpoint:
    node = graph.node(ref.node)
    tensor = node.output(ref.port)
    dtype = tensor.dtype if tensor is not None else node.attrs.get("dtype", node.attrs.get("T"))
    shape = tensor.shape if tensor is not None else None
    if shape is None and node.attrs.get("shape") is not None:
        shape = getattr(node.attrs["shape"], "dims", None)
    name = f"{ref.node}:{ref.port}"
    return Endpoint(name, _aliases(name), dtype if isinstance(dtype, DType) else None, shape)


def _signature_names(graph: Graph, kind: str) -> dict[str, str]:
    names = {}
    for signature in graph.meta.get(tflite_keys.SIGNATURE_DEFS) or []:
        if signature.get("subgraph") is graph:
            for name, tensor in signature[kind]:
                names[tensor.name] = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
    return names


def _aliases(name: str, signature_name: str | None = None) -> tuple[str, ...]:
    names = [name]
    node, sep, port = name.rpartition(":")
    if sep and port == "0":
        names.append(node)
    if signature_name:
        names.append(signature_name)
    return tuple(dict.fromkeys(names))


def pair_endpoints(a: list[Endpoint], b: list[Endpoint], kind: str, source_a: str = "A",
                   source_b: str = "B") -> list[tuple[Endpoint, Endpoint, str]]:
    """Pairs (a, b, how): a name shared by exactly one endpoint on each side pairs them; the
    rest pair in order. Refused when the counts differ."""
    if len(a) != len(b):
        raise GraphtoolError(f"{source_a} has {len(a)} {kind[:-1] if len(a) == 1 else kind} ({_names(a)}) but "
                             f"{source_b} has {len(b)} ({_names(b)}): they cannot be paired")
    by_name: dict[int, int] = {}
    for i, x in enumerate(a):
        hits = [j for j, y in enumerate(b) if set(x.aliases) & set(y.aliases)]
        if len(hits) == 1 and sum(1 for z in a if set(z.aliases) & set(b[hits[0]].aliases)) == 1:
            by_name[i] = hits[0]
    rest_b = iter(j for j in range(len(b)) if j not in by_name.values())
    pairs = []
    for i, x in enumerate(a):
        if i in by_name:
            pairs.append((x, b[by_name[i]], "name"))
        else:
            pairs.append((x, b[next(rest_b)], "order"))
    return pairs


def _names(points: list[Endpoint]) -> str:
    return ", ".join(p.name for p in points) or "none"


# -- inputs --------------------------------------------------------------------------------

Example = list[np.ndarray]  # real values, one per input pair


def _example_shape(x: Endpoint, y: Endpoint) -> tuple[int, ...]:
    shape_a, shape_b = x.shape, y.shape
    if shape_a is None and shape_b is None:
        raise GraphtoolError(f"input {x.name}: unknown rank on both sides; pass values with --data")
    if shape_a is None or shape_b is None or len(shape_a) != len(shape_b):
        if shape_a is not None and shape_b is not None:
            raise GraphtoolError(f"input {x.name} has shape {_shape_text(shape_a)} but {y.name} has "
                                 f"{_shape_text(shape_b)}")
        shape_a = shape_b = shape_a if shape_a is not None else shape_b
    dims = []
    for d_a, d_b in zip(shape_a, shape_b):
        if d_a is not None and d_b is not None and d_a != d_b:
            raise GraphtoolError(f"input {x.name} has shape {_shape_text(shape_a)} but {y.name} has "
                                 f"{_shape_text(shape_b)}")
        dims.append(d_a if d_a is not None else (d_b if d_b is not None else 1))
    return tuple(dims)


def _real_range(point: Endpoint) -> tuple[float, float] | None:
    if not point.quantized:
        return None
    q = point.quantization
    return real_range(point.dtype.numpy, float(np.ravel(q.scale)[0]), float(np.ravel(q.zero_point)[0]))


def _random_examples(pairs: list[tuple[Endpoint, Endpoint, str]], count: int, seed: int) -> list[Example]:
    rng = np.random.default_rng(seed)
    shapes = [_example_shape(x, y) for x, y, _ in pairs]
    return [[_random_value(rng, x, y, shape) for (x, y, _), shape in zip(pairs, shapes)] for _ in range(count)]


def _random_value(rng: np.random.Generator, x: Endpoint, y: Endpoint, shape: tuple[int, ...]) -> np.ndarray:
    ranges = [r for r in (_real_range(x), _real_range(y)) if r is not None]
    kinds = {p.dtype.numpy.kind if p.dtype is not None and p.dtype.numpy is not None else "?" for p in (x, y)}
    if ranges:  # a quantized side: stay inside what every quantized side can represent
        low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
        return rng.uniform(low, high, shape)
    if "f" in kinds:
        return rng.standard_normal(shape)
    if kinds == {"b"}:
        return rng.integers(0, 2, shape).astype(bool)
    if kinds <= {"i", "u"}:
        return rng.integers(*INTEGER_RANGE, shape)
    if kinds == {"O"}:
        return rng.choice(WORDS, shape)
    raise GraphtoolError(f"input {x.name}: cannot make random values of type {x.dtype} / {y.dtype}; "
                         "pass values with --data")


def _examples_from_file(path: str, pairs: list[tuple[Endpoint, Endpoint, str]], limit: int | None) -> list[Example]:
    arrays = read_npz(path)  # validated: no pickles, no decompression bombs, plain arrays
    chosen = []
    for x, y, _ in pairs:
        keys = [k for k in arrays if k in x.aliases or k in y.aliases]
        chosen.append(keys[0] if len(keys) == 1 else None)
    if None in chosen:
        if len(arrays) != len(pairs):
            raise GraphtoolError(f"{path}: arrays {', '.join(arrays) or 'none'} do not name the inputs "
                                 f"{_names([x for x, _, _ in pairs])}, and there are not as many of them")
        chosen = list(arrays)  # in order
    columns = [_rows(arrays[key], x, y, path, key) for key, (x, y, _) in zip(chosen, pairs)]
    counts = {len(c) for c in columns}
    if len(counts) > 1:
        raise GraphtoolError(f"{path}: the arrays hold different numbers of examples ({sorted(counts)})")
    count = counts.pop() if counts else 0
    if limit is not None:
        count = min(count, limit)
    if count == 0:
        raise GraphtoolError(f"{path}: no examples")
    return [[column[i] for column in columns] for i in range(count)]


def _rows(array: np.ndarray, x: Endpoint, y: Endpoint, path: str, key: str) -> list[np.ndarray]:
    """Split `array` into the examples fed one run at a time: rows along axis 0, each as
    many as the input's first dimension takes (1 when it is unknown)."""
    rank = len(x.shape) if x.shape is not None else (len(y.shape) if y.shape is not None else array.ndim)
    if array.ndim == rank + 1:
        return list(array)
    if array.ndim != rank:
        raise GraphtoolError(f"{path}: array {key!r} has rank {array.ndim}; input {x.name} takes rank {rank}")
    if rank == 0:
        return [array]
    first = next((s[0] for s in (x.shape, y.shape) if s and s[0] is not None), None) or 1
    if len(array) % first:
        raise GraphtoolError(f"{path}: array {key!r} has {len(array)} rows, not a multiple of input "
                             f"{x.name}'s batch of {first}")
    return [array[i:i + first] for i in range(0, len(array), first)]


# -- running -------------------------------------------------------------------------------

Runner = Callable[[Example, Sequence[Endpoint]], list[np.ndarray]]


def _runner(model: _Model, inputs: Sequence[Endpoint]) -> Runner:
    if model.format == "savedmodel":
        return _signature_runner(model, inputs)
    if model.format == "graphdef":
        return _graphdef_runner(model, inputs)
    if model.format == "tflite":
        return _tflite_runner(model, inputs)
    raise GraphtoolError(f"{model.source}: cannot run a {model.format} model")


def _graphdef_runner(model: _Model, inputs: Sequence[Endpoint]) -> Runner:
    from ..runtime.tensorflow import GraphDefSession

    session = GraphDefSession(model.data, model.source)

    def run(example: Example, outputs: Sequence[Endpoint]) -> list[np.ndarray]:
        feeds = {point.name: _as_type(value, point) for point, value in zip(inputs, example)}
        return [np.asarray(v) for v in session.run(feeds, [p.name for p in outputs])]

    return run


def _signature_runner(model: _Model, inputs: Sequence[Endpoint]) -> Runner:
    signature = model.signature

    def run(example: Example, outputs: Sequence[Endpoint]) -> list[np.ndarray]:
        results = signature.run({point.name: _as_type(value, point) for point, value in zip(inputs, example)})
        return [np.asarray(results[point.name]) for point in outputs]

    return run


def _tflite_runner(model: _Model, inputs: Sequence[Endpoint]) -> Runner:
    from ..runtime.litert import TfliteModel

    runtime = TfliteModel(model.data, model.source)
    by_name = {detail.name: detail for detail in runtime.inputs}
    missing = [p.name for p in inputs if p.name not in by_name]
    if missing:
        raise GraphtoolError(f"{model.source}: LiteRT knows no input {', '.join(missing)}")
    output_index = {detail.name: i for i, detail in enumerate(runtime.outputs)}

    def run(example: Example, outputs: Sequence[Endpoint]) -> list[np.ndarray]:
        values = {p.name: by_name[p.name].from_real(v) for p, v in zip(inputs, example)}
        results = runtime.run(values)
        got = []
        for point in outputs:
            if point.name not in output_index:
                raise GraphtoolError(f"{model.source}: LiteRT knows no output {point.name}")
            i = output_index[point.name]
            got.append(runtime.outputs[i].to_real(results[i]))
        return got

    return run


def _as_type(value: np.ndarray, point: Endpoint) -> np.ndarray:
    """An example value cast to the type a GraphDef input takes."""
    np_type = point.dtype.numpy if point.dtype is not None else None
    if np_type is None or np_type == np.dtype(object):
        return np.asarray(value)
    return np.asarray(value).astype(np_type)


def _gather(values: list[np.ndarray]) -> np.ndarray:
    if values and all(v.ndim > 0 for v in values) and len({v.shape[1:] for v in values}) == 1:
        return np.concatenate(values, axis=0)
    shapes = {v.shape for v in values}
    if len(shapes) == 1:
        return np.stack(values)
    return np.concatenate([v.ravel() for v in values])


# -- comparing -----------------------------------------------------------------------------

def compare_outputs(name_a: str, name_b: str, how: str, a: np.ndarray, b: np.ndarray, atol: float,
                    rtol: float) -> OutputResult:
    """The error measures of `b` against the reference `a`."""
    result = OutputResult(name_a, name_b, how, within_tolerance=False, shape=list(a.shape))
    if a.shape != b.shape:
        result.problem = f"shape {_shape_text(a.shape)} vs {_shape_text(b.shape)}"
        return result
    if a.dtype.kind in "OSU" or b.dtype.kind in "OSU":
        result.mismatches = int(np.sum(a != b))
        result.within_tolerance = result.mismatches == 0
        return result
    ref, got = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore"):
        error = np.abs(got - ref)
        inside = (error <= atol + rtol * np.abs(ref)) | (ref == got) | (np.isnan(ref) & np.isnan(got))
    result.mismatches = int(np.sum(~inside))
    result.within_tolerance = result.mismatches == 0
    finite = np.isfinite(ref) & np.isfinite(got)
    ref, got, error = ref[finite], got[finite], error[finite]
    result.max_abs_error = float(error.max()) if error.size else 0.0
    peak = float(np.abs(ref).max()) if ref.size else 0.0
    result.rel_error = result.max_abs_error / peak if peak else (0.0 if not result.max_abs_error else None)
    noise, signal = float(np.sum(error * error)), float(np.sum(ref * ref))
    result.sqnr_db = 10 * math.log10(signal / noise) if noise and signal else None
    norms = math.sqrt(signal) * math.sqrt(float(np.sum(got * got)))
    result.cosine = float(np.dot(ref, got) / norms) if norms else (1.0 if not signal and not noise else 0.0)
    if a.ndim == 2 and a.shape[-1] >= 2 and a.dtype.kind == "f":
        result.top1_agreement = float(np.mean(np.argmax(a, axis=-1) == np.argmax(b, axis=-1)))
    return result


def _shape_text(shape: Sequence | None) -> str:
    if shape is None:
        return "<unknown rank>"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"

