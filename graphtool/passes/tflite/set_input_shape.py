"""set_input_shape for TFLite: give inputs new static shapes (or a batch known only at run
time) and write the shapes every tensor then has into the model."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ...formats.tflite import keys, tables, versions
from ...ir import CONST_OP, Graph, Node, Ref, Tensor
from ..helpers import tflite_rewrite
from ..helpers.tflite_propagate import Propagation, Rewrite, Step
from ..helpers.tflite_shapes import Shape, ShapeError, show
from ..registry import Context, PassError, PassResult, register
from .fold_constants import TFLITE_KERNELS

INT32_MAX = 2**31 - 1
# Operators whose version (formats/tflite/versions.py) can follow their input shapes when the
# ranks stay: broadcasting over more than 4 dimensions, grouped convolution.
SHAPE_VERSIONED = frozenset({"SUB", "DIV", "MAXIMUM", "MINIMUM", "CONV_2D"})
UNKNOWN = ("-1", "?")  # how a shape string writes a size known only at run time


@dataclass(frozen=True)
class Params:
    shape: list[str] = field(default_factory=list, metadata={
        "doc": 'new shape, e.g. "4,224,224,3" (-1: a size known only at run time); repeat with name= '
               "for several inputs, paired in order"})
    name: list[str] = field(default_factory=list, metadata={
        "doc": "input the shape at the same position is for (tensor name or signature input key); "
               "without it, shape is for the model's only input"})
    batch: int | None = field(default=None, metadata={
        "doc": "new first dimension of every input (of the named ones, with name=); -1: known only at run time"})


@dataclass(frozen=True)
class Target:
    """One input to reshape: its subgraph (the model's or a signature's), node and new shape."""

    graph: Graph
    name: str
    shape: Shape


@register("set_input_shape", Params, formats=("tflite",), guarantee="exact")
def set_input_shape(graph: Graph, params: Params, context: Context) -> PassResult:
    """Give inputs new shapes and write the shape every tensor then has, so the model runs with them as loaded.

    `shape="4,224,224,3"` for the model's only input; `name=…, shape=…` pairs for several
    (a name is an input tensor or a signature's input key); `batch=N` sets the first
    dimension of every input but scalars (or of the named ones). -1 makes a size known only
    at run time:
    `batch=-1` gives a model converted for one batch size a dynamic batch again, where every
    operator allows it. The new shapes go through every operator downstream, by LiteRT's
    shape rules: elementwise ops with broadcasting, convolutions and pooling (padding,
    strides, dilation), FULLY_CONNECTED (keep_num_dims), BATCH_MATMUL (adj_x/adj_y,
    broadcast batch dimensions), RESHAPE, SQUEEZE, EXPAND_DIMS, TRANSPOSE, PAD, the
    reductions (keep_dims), CONCATENATION, PACK/UNPACK, SPLIT/SPLIT_V, SLICE/STRIDED_SLICE
    (masks), GATHER, RESIZE_*, TRANSPOSE_CONV, TILE, FILL, BROADCAST_TO, DEPTH_TO_SPACE,
    SPACE_TO_DEPTH, activations, QUANTIZE/DEQUANTIZE, CAST, ARG_MAX, ... (graphtool's
    passes/helpers/tflite_shapes.py lists them). Shape operands computed from the shapes
    (SHAPE and the slicing and arithmetic after it) are evaluated; those ops stay and compute
    the new values when the model runs. WHILE and IF run their subgraphs with the shapes of
    their inputs; a loop whose body changes a shape per iteration is refused. The shapes are
    written to each tensor's `shape` and `shape_signature`.

    A constant RESHAPE shape (TRANSPOSE_CONV output_shape, BROADCAST_TO shape) that bakes the
    old batch, as the converter writes [1, 1280] for a model converted at batch 1, is rewritten to the new
    batch when its first dimension is the old batch and the rest holds what the rest of the
    input held; then every operator must keep batch rows apart (checked with the batch
    unknown): one that would reduce over the batch or drop it, as a LayerNormalization
    converted at batch 1 does, is refused, naming it. Refused with one line naming the
    operator or input: an unknown input name, a shape of the wrong rank, an operator that
    cannot take the new shapes or has no shape rule here. Operators whose inputs keep their
    shapes keep their outputs as they are. Exact: the model computes what the original
    computes resized to these shapes in LiteRT or, where a baked batch was rewritten, on each
    batch row alone. Stats: inputs (name: new shape), tensors_reshaped, constants_rewritten,
    operators (derived)."""
    targets = _targets(graph, params)
    propagation = _propagate(graph, targets)
    if propagation.rewrites:
        _check_batch_rows(graph, targets, propagation, context)
    rewritten = _apply(graph, propagation)
    stats = {"inputs": {t.name: _text(t.shape) for t in targets},
             "tensors_reshaped": rewritten["reshaped"],
             "constants_rewritten": rewritten["constants"], "operators": len(propagation.steps)}
    return PassResult(bool(rewritten["reshaped"] or rewritten["constants"]), stats)


# -- what to change --------------------------------------------------------------------------

def _entries(graph: Graph) -> list[Graph]:
    """The subgraphs a caller runs: the model's, and each signature's."""
    found = [graph]
    for sig in graph.meta.get(keys.SIGNATURE_DEFS) or []:
        if all(sig["subgraph"] is not g for g in found):
            found.append(sig["subgraph"])
    return found


def _inputs(graph: Graph) -> list[tuple[Graph, str]]:
    return [(entry, name) for entry in _entries(graph) for name in entry.inputs]


def _resolve(graph: Graph, name: str) -> tuple[Graph, str]:
    """The input `name` means: an input tensor of an entry subgraph, else a signature's input key."""
    found = [(g, n) for g, n in _inputs(graph) if n == name]
    if not found:
        for sig in graph.meta.get(keys.SIGNATURE_DEFS) or []:
            sub = sig["subgraph"]
            found += [(sub, n) for key, tensor in sig["inputs"] if key == name
                      for n in sub.inputs if sub.node(n).outputs[0] is tensor]
    unique = list({(id(g), n): (g, n) for g, n in found}.values())
    if len(unique) == 1:
        return unique[0]
    if unique:
        raise PassError(f"set_input_shape: {name!r} names inputs of {len(unique)} signatures; use the tensor name")
    raise PassError(f"set_input_shape: the model has no input {name!r}; its inputs: "
                    f"{', '.join(n for _, n in _inputs(graph))}")


def _targets(graph: Graph, params: Params) -> list[Target]:
    if params.batch is not None and params.shape:
        raise PassError("set_input_shape: give shape= or batch=, not both")
    if params.batch is None and not params.shape:
        raise PassError("set_input_shape: give shape= (with name= for several inputs) or batch=")
    named = [_resolve(graph, name) for name in params.name]
    if params.batch is not None:
        size = _size(params.batch, "batch")
        chosen = named or [(g, n) for g, n in _inputs(graph) if _old(g, n)]
        return [Target(g, n, _with_batch(g, n, size)) for g, n in chosen]
    if not named:
        inputs = _inputs(graph)
        if len(inputs) != 1 or len(params.shape) != 1:
            raise PassError(f"set_input_shape: the model has {len(inputs)} inputs "
                            f"({', '.join(n for _, n in inputs)}): name each shape with name=")
        named = inputs
    if len(named) != len(params.shape):
        raise PassError(f"set_input_shape: {len(named)} name(s) and {len(params.shape)} shape(s): give one shape "
                        "per name, in order")
    targets = [Target(g, n, _parse(text, g, n)) for (g, n), text in zip(named, params.shape)]
    seen = Counter((id(t.graph), t.name) for t in targets)
    twice = [t.name for t in targets if seen[(id(t.graph), t.name)] > 1]
    if twice:
        raise PassError(f"set_input_shape: input {twice[0]!r} is given two shapes")
    return targets


def _old(graph: Graph, name: str) -> Shape | None:
    return graph.node(name).outputs[0].shape


def _size(value: int, what: str) -> int | None:
    if value == -1:
        return None
    if not 1 <= value <= INT32_MAX:
        raise PassError(f"set_input_shape: {what} {value} is not a size (1 to {INT32_MAX}, or -1)")
    return value


def _with_batch(graph: Graph, name: str, batch: int | None) -> Shape:
    old = _old(graph, name)
    if not old:
        raise PassError(f"set_input_shape: input {name!r} has shape {show(old)}: it has no batch dimension")
    return (batch, *old[1:])


def _parse(text: str, graph: Graph, name: str) -> Shape:
    """'4,224,224,3' -> (4, 224, 224, 3); -1 or ? -> None; '' -> () (a scalar)."""
    parts = [part.strip() for part in text.split(",")] if text.strip() else []
    dims: list[int | None] = []
    for part in parts:
        if part in UNKNOWN:
            dims.append(None)
            continue
        try:
            value = int(part)
        except ValueError:
            raise PassError(f"set_input_shape: shape {text!r} for {name!r}: {part!r} is not a size") from None
        dims.append(_size(value, f"shape {text!r} for {name!r}: size"))
    old = _old(graph, name)
    if old is not None and len(old) != len(dims):
        raise PassError(f"set_input_shape: shape {text!r} for {name!r} has rank {len(dims)}; the input has "
                        f"shape {show(old)}, rank {len(old)}")
    return tuple(dims)


def _text(shape: Shape) -> str:
    return ",".join("-1" if d is None else str(d) for d in shape)


# -- propagating -----------------------------------------------------------------------------

def _propagate(graph: Graph, targets: list[Target], batch_unknown: bool = False) -> Propagation:
    """The shapes every tensor takes (or, with `batch_unknown`, would take with the targets'
    first dimension unknown: shapes to look at, not to write)."""
    propagation = Propagation(TFLITE_KERNELS, symbolic=batch_unknown)
    for entry in _entries(graph):
        wanted = {t.name: t.shape for t in targets if t.graph is entry}
        if not wanted:
            continue
        shapes = [wanted.get(name, _old(entry, name)) for name in entry.inputs]
        if batch_unknown:
            shapes = [(None, *s[1:]) if name in wanted and s else s for name, s in zip(entry.inputs, shapes)]
        try:
            propagation.call(entry, shapes)  # type: ignore[arg-type]
        except ShapeError as exc:
            raise PassError(f"set_input_shape: {exc}") from None
    return propagation


def _check_batch_rows(graph: Graph, targets: list[Target], propagation: Propagation, context: Context) -> None:
    """After rewriting shapes that baked the old batch, make sure every operator keeps batch
    rows apart: with the batch unknown, no operator may turn an input of unknown size into
    outputs of known sizes (it would reduce over the batch, or drop it) unless an output's
    value carries the unknown size (SHAPE)."""
    dynamic = all(not t.shape or t.shape[0] is None for t in targets)
    if dynamic:
        probe = propagation
    else:
        try:
            probe = _propagate(graph, targets, batch_unknown=True)
        except PassError as exc:  # an operator needs the batch known: nothing to look at with it unknown
            context.log.warning("set_input_shape: batch rows not checked: %s", exc)
            return
    for step in probe.steps:
        if _drops_unknown(step):
            first = propagation.rewrites[0]
            more = len(propagation.rewrites) - 1
            raise PassError(f"set_input_shape: {step.node.op} {step.node.name!r} would mix batch rows: it takes "
                            f"{show(_first_unknown(step))} to {', '.join(map(show, step.outputs))} with the batch "
                            f"unknown, once shapes that bake the old batch are read as batch-first ({first.node.op} "
                            f"{first.node.name!r}: {_value_text(first.old)} -> {_value_text(first.value)}"
                            f"{f' and {more} more' if more else ''}); convert the model with a dynamic batch instead")


def _drops_unknown(step: Step) -> bool:
    unknown_in = any(s is not None and None in s for s in step.inputs)
    unknown_out = any(None in s for s in step.outputs)
    return unknown_in and bool(step.outputs) and not unknown_out and not step.carries_unknown


def _first_unknown(step: Step) -> Shape | None:
    return next(s for s in step.inputs if s is not None and None in s)


def _value_text(value: list) -> str:
    return "[" + ", ".join(map(str, value)) + "]"


# -- writing it ------------------------------------------------------------------------------

def _apply(graph: Graph, propagation: Propagation) -> dict[str, int]:
    """Write the new shapes and the rewritten constants into the model."""
    changes = propagation.changes()
    for tensor, shape in changes:
        tensor.shape = shape
    buffers_before = tables.used_buffers(graph)
    constants = _rewrite_constants(graph, propagation.rewrites)
    if constants:
        tables.compact_buffers(graph, buffers_before)
    touched = {step.node.op for step in propagation.steps} & SHAPE_VERSIONED
    if touched:
        before = [keys.op_version(n) for g in tables.subgraphs(graph) for n in g]
        versions.raise_versions(tables.subgraphs(graph), touched)
        if before != [keys.op_version(n) for g in tables.subgraphs(graph) for n in g]:
            versions.raise_min_runtime(graph)
    return {"reshaped": len(changes), "constants": constants}


def _rewrite_constants(graph: Graph, rewrites: list[Rewrite]) -> int:
    """Each rewrite: the new_shape option in place; a constant in place when every use of it
    takes the same new value (and nothing else names it), else a new constant for the uses
    that take it. Returns how many constants (and options) changed."""
    done = 0
    by_constant: dict[tuple[int, Ref], list[Rewrite]] = {}
    for rewrite in rewrites:
        if rewrite.slot < 0:
            old = rewrite.node.attrs.get("new_shape")
            rewrite.node.attrs = {**rewrite.node.attrs, "new_shape": np.asarray(
                rewrite.value, np.asarray(old).dtype if old is not None else np.int32)}
            done += 1
            continue
        ref = rewrite.graph.inputs_of(rewrite.node.name)[rewrite.slot]
        by_constant.setdefault((id(rewrite.graph), ref), []).append(rewrite)
    for (_, ref), group in by_constant.items():
        done += _rewrite_constant(group[0].graph, graph, ref, group)
    return done


def _rewrite_constant(graph: Graph, model: Graph, ref: Ref, group: list[Rewrite]) -> int:
    tensor = graph.node(ref.node).outputs[ref.port]
    uses = {(name, slot) for name, slot in graph.consumers(ref)}
    values = {tuple(r.value) for r in group}
    pinned = ref.node in tflite_rewrite.pinned(model, graph)
    if len(values) == 1 and uses == {(r.node.name, r.slot) for r in group} and not pinned:
        tensor.data = np.asarray(group[0].value, tensor.dtype.numpy)
        return 1
    for value in sorted(values):
        name = graph.unique_name(ref.node)
        data = np.asarray(value, tensor.dtype.numpy)
        graph.add_node(Node(name, CONST_OP, outputs=[Tensor(name, tensor.dtype, data.shape, data)]))
        for rewrite in group:
            if tuple(rewrite.value) == value:
                graph.set_input(rewrite.node.name, rewrite.slot, Ref(name))
    tflite_rewrite.remove_unused(graph, [ref.node], tflite_rewrite.pinned(model, graph))
    return len(values)
