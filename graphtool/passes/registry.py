"""Passes registered by name, with the formats they support and a typed params dataclass.

    @register("remove_device", formats=("graphdef",), guarantee="exact")
    def remove_device(graph: Graph, params: NoParams, context: Context) -> PassResult: ...

A pass's params are a frozen dataclass; values from a transform string (lists of strings)
are converted by the fields' types, and an unknown parameter is an error that lists the
valid ones. Every pass also takes `ignore_errors`.

The index (index.json beside this module, written by `make docs` from the registry itself)
names each transform's module, formats, guarantee, doc and parameters: `get` imports only
the modules of the transform asked for, and `catalog` lists every transform without
importing one. tests/passes/test_index.py holds the index equal to the registry.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import logging
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable

from ..errors import GraphtoolError

if TYPE_CHECKING:
    from ..ir import Graph

GUARANTEES = ("exact", "float rounding", "quantization error", "structure only")


class PassError(GraphtoolError):
    """A pass cannot run with these parameters or on this graph."""


@dataclass
class PassResult:
    changed: bool
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What a pass knows besides the graph: declared inputs and outputs (GTT's --inputs /
    --outputs), and a logger for skipped matches."""

    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("graphtool.passes"))


@dataclass(frozen=True)
class NoParams:
    """This transform takes no parameters (besides ignore_errors)."""


Parameter = tuple[str, str, Any, str]  # name, type, default, doc: as `graphtool transforms` lists it


def summary_of(doc: str) -> str:
    """A docstring's first paragraph, on one line."""
    return " ".join(doc.strip().split("\n\n")[0].split())


@dataclass(frozen=True)
class PassInfo:
    """A transform as `graphtool transforms` lists it, and the module that registers it: an
    entry of the index, read without importing the transform."""

    name: str
    formats: tuple[str, ...]
    guarantee: str
    doc: str
    module: str
    parameter_list: tuple[Parameter, ...]

    @property
    def summary(self) -> str:
        return summary_of(self.doc)

    def parameters(self) -> list[Parameter]:
        return list(self.parameter_list)


@dataclass(frozen=True)
class Pass:
    name: str
    function: Callable[[Graph, Any, Context], PassResult]
    params: type
    formats: tuple[str, ...]
    guarantee: str
    doc: str

    @property
    def summary(self) -> str:
        return summary_of(self.doc)

    def info(self) -> PassInfo:
        """This pass as the index records it."""
        return PassInfo(self.name, self.formats, self.guarantee, self.doc, self.function.__module__,
                        tuple(self.parameters()))

    def parameters(self) -> list[Parameter]:
        """(name, type, default, doc) for each parameter."""
        hints = typing.get_type_hints(self.params)
        out = []
        for f in dataclasses.fields(self.params):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            out.append((f.name, _type_name(hints[f.name]), default, f.metadata.get("doc", "")))
        return out

    def make_params(self, raw: dict[str, list[str]]) -> Any:
        hints = typing.get_type_hints(self.params)
        valid = [f.name for f in dataclasses.fields(self.params)]
        unknown = [k for k in raw if k not in valid]
        if unknown:
            raise PassError(f"{self.name}: unknown parameter {unknown[0]!r}; valid: "
                            f"{', '.join(valid + ['ignore_errors']) if valid else 'ignore_errors only'}")
        values = {}
        for key, items in raw.items():
            values[key] = _convert(self.name, key, hints[key], items)
        return self.params(**values)


_REGISTRY: dict[str, list[Pass]] = {}


def register(name: str, params: type = NoParams, formats: tuple[str, ...] = ("graphdef",),
             guarantee: str = "exact") -> Callable:
    """Register a pass function under its transform name. One name may be registered once
    per format, so a concept shared by GraphDefs and TFLite keeps one name (each format's
    implementation with its own parameters)."""
    if guarantee not in GUARANTEES:
        raise ValueError(f"guarantee must be one of {GUARANTEES}")

    def decorate(function: Callable) -> Callable:
        taken = [f for p in _REGISTRY.get(name, []) for f in p.formats if f in formats]
        if taken:
            raise ValueError(f"transform {name!r} registered twice for {taken[0]}")
        registered = _REGISTRY.setdefault(name, [])
        registered.append(Pass(name, function, params, tuple(formats), guarantee, function.__doc__ or ""))
        registered.sort(key=_load_order)
        return function

    return decorate


def _load_order(p: Pass) -> tuple[int, str]:
    """Where _load_all registers `p` among the passes of its name: their order (which `get`
    without a format and `all_passes` follow) does not depend on which module came first."""
    module = p.function.__module__
    package = module.removeprefix(f"{__package__}.").partition(".")[0]
    rank = TRANSFORM_PACKAGES.index(package) if package in TRANSFORM_PACKAGES else len(TRANSFORM_PACKAGES)
    return rank, module


def get(name: str, format: str | None = None) -> Pass:
    """The pass registered as `name` for `format` (any format when None). Imports the module
    the index names for it; every transform module only when that does not find it (a
    transform the index does not know yet, or no such transform)."""
    for entry in _index():
        if entry.name == name and (format is None or format in entry.formats):
            importlib.import_module(entry.module)
    found = _lookup(name, format)
    if found is None:
        _load_all()
        found = _lookup(name, format)
    if found is not None:
        return found
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise PassError(f"Transform {name!r} not recognized; {hint}known transforms: {', '.join(sorted(_REGISTRY))}")
    supported = sorted({f for p in _REGISTRY[name] for f in p.formats})
    raise PassError(f"{name} does not work on {format} models (it supports {', '.join(supported)})")


def _lookup(name: str, format: str | None) -> Pass | None:
    return next((p for p in _REGISTRY.get(name, []) if format is None or format in p.formats), None)


def all_passes(format: str | None = None) -> list[Pass]:
    """Every registered pass (one entry per name and format group), sorted by name. Imports
    every transform module: `catalog` says the same without importing one."""
    _load_all()
    return [p for name in sorted(_REGISTRY) for p in _REGISTRY[name] if format is None or format in p.formats]


def catalog(format: str | None = None) -> list[PassInfo]:
    """What all_passes(format) says of each pass, from the index: no transform is imported."""
    return [entry for entry in _index() if format is None or format in entry.formats]


TRANSFORM_PACKAGES = ("graphdef", "tflite", "common")
INDEX = "index.json"
INDEX_SCHEMA = "graphtool.passes.index.v1"


@functools.cache
def _load_all() -> None:
    """Import every transform module once (importing one registers its transform)."""
    import pkgutil

    for package in TRANSFORM_PACKAGES:
        module = importlib.import_module(f"{__package__}.{package}")
        for info in pkgutil.iter_modules(module.__path__):
            importlib.import_module(f"{module.__name__}.{info.name}")


@functools.cache
def _index() -> tuple[PassInfo, ...]:
    """The index as this package holds it."""
    try:
        data = json.loads(resources.files(__package__).joinpath(INDEX).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PassError(f"{INDEX} is missing from the installed package") from None
    if data.get("schema") != INDEX_SCHEMA:
        raise PassError(f"{INDEX} has schema {data.get('schema')!r}, graphtool reads {INDEX_SCHEMA!r}")
    return tuple(PassInfo(**{**entry, "formats": tuple(entry["formats"]),
                             "parameter_list": tuple(tuple(p) for p in entry["parameter_list"])})
                 for entry in data["passes"])


def index_text() -> str:
    """The index of the registry as it is (every transform module imported): what `make docs`
    writes to index.json, and what tests/passes/test_index.py compares it with."""
    passes = [dataclasses.asdict(p.info()) for p in all_passes()]
    return json.dumps({"schema": INDEX_SCHEMA, "passes": passes}, indent=1) + "\n"


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        return f"list of {_type_name(typing.get_args(hint)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint) if a is not type(None))
    return getattr(hint, "__name__", str(hint))


def _convert(transform: str, key: str, hint: Any, items: list[str]) -> Any:
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        (inner,) = typing.get_args(hint)[:1]
        return [_scalar(transform, key, inner, item) for item in items]
    if len(items) > 1:
        raise PassError(f"{transform}: parameter {key!r} given {len(items)} times; it takes one value")
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return _scalar(transform, key, hint, items[0])


def _scalar(transform: str, key: str, hint: Any, text: str) -> Any:
    try:
        if hint is bool:
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return lowered in ("true", "1")
        return hint(text)
    except ValueError:
        raise PassError(f"{transform}: parameter {key!r} wants {_type_name(hint)}, got {text!r}") from None
