"""Run a pipeline of transforms: GTT strings, or a list of them, from Python or the CLI."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import GraphtoolError
from .registry import Context, PassError, get
from .spec import TransformCall, parse

if TYPE_CHECKING:
    from ..ir import Graph


@dataclass
class PassReport:
    name: str
    changed: bool
    stats: dict[str, Any]
    seconds: float
    nodes_before: int
    nodes_after: int
    error: str | None = None  # set when ignore_errors let a failure pass


@dataclass
class TransformReport:
    passes: list[PassReport] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(p.changed for p in self.passes)


Spec = str | Iterable[str | TransformCall | tuple[str, dict]]


def calls_of(spec: Spec) -> list[TransformCall]:
    """Normalise a pipeline given as a string, or a list of strings, calls or (name, params)."""
    if isinstance(spec, str):
        return parse(spec)
    calls: list[TransformCall] = []
    for item in spec:
        if isinstance(item, TransformCall):
            calls.append(item)
        elif isinstance(item, tuple):
            name, params = item
            calls.append(TransformCall(name, {k: _values(v) for k, v in params.items()}))
        else:
            calls.extend(parse(item))
    return calls


SCALARS = (str, int, float, bool)


def _values(value: Any) -> list:
    """A parameter given from Python as the list of values a transform string would give: a
    scalar or a list of scalars as text; any other object (calibration samples, say) as it is,
    for a parameter whose type takes it."""
    if isinstance(value, SCALARS):
        return [str(value)]
    if isinstance(value, list) and all(isinstance(item, SCALARS) for item in value):
        return [str(item) for item in value]
    return [value]


def transform(graph: Graph, spec: Spec, inputs: Iterable[str] = (), outputs: Iterable[str] = (),
              validate: bool = True) -> TransformReport:
    """Apply the transforms in `spec` to `graph`, in order, in place.

    Every call is checked (names, parameters, formats) before any runs. After each pass the
    graph is validated; a failure names the pass and its place in the pipeline. A pass
    given ignore_errors=true that fails leaves the graph as it found it."""
    calls = calls_of(spec)
    context = Context(list(inputs), list(outputs))
    planned = []
    for call in calls:
        params = dict(call.params)
        ignore = _ignore_errors(call.name, params.pop("ignore_errors", []))
        try:
            transform_pass = get(call.name, graph.format)
        except PassError:
            if not ignore:
                raise
            transform_pass = get(call.name)  # another format's: runs as a failure that ignore_errors lets pass
        planned.append((call, transform_pass, transform_pass.make_params(params), ignore))

    report = TransformReport()
    for index, (call, transform_pass, params, ignore) in enumerate(planned, 1):
        where = f"{call.name} (transform {index} of {len(planned)})"
        before = len(graph)
        snapshot = graph.copy() if ignore else None
        start = time.perf_counter()
        try:
            if graph.format not in transform_pass.formats:
                raise PassError(f"{call.name} does not work on {graph.format} models")
            result = transform_pass.function(graph, params, context)
            if validate:
                graph.validate()
        except GraphtoolError as exc:
            if not ignore:
                message = str(exc).removeprefix(f"{call.name}: ")  # the pass often names itself
                raise PassError(f"{where}: {message}") from exc
            graph.restore(snapshot)
            report.passes.append(PassReport(call.name, False, {}, time.perf_counter() - start, before,
                                            len(graph), error=str(exc)))
            context.log.warning("%s failed, ignored: %s", where, exc)
            continue
        report.passes.append(PassReport(call.name, result.changed, result.stats,
                                        time.perf_counter() - start, before, len(graph)))
    return report


def _ignore_errors(name: str, values: list[str]) -> bool:
    if not values:
        return False
    if len(values) > 1 or values[0].lower() not in ("true", "false", "1", "0"):
        raise PassError(f"{name}: ignore_errors takes true or false")
    return values[0].lower() in ("true", "1")
