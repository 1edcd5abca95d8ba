"""New input shapes propagated through a TFLite model, read only: the output shapes of every
operator downstream (tflite_shapes' rules), the values of small integer tensors computed
from shapes (SHAPE and the slicing and arithmetic after it, partly known where a size is
known only at run time), and control flow: WHILE and IF run their subgraphs with the shapes
of their inputs. The caller applies what it finds (`Propagation.changes`, `.rewrites`).

Operators whose inputs keep their shapes (and, for integer inputs, their values) keep their
outputs as the model says, whether graphtool has a rule for them or not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...errors import GraphtoolError
from ...formats.tflite import keys, ops, tables
from ...ir import DType, Graph, Node, Tensor
from .folding import Value
from .tflite_shapes import Known, Operands, Shape, ShapeError, count, infer, show

VALUE_TYPES = frozenset({DType.INT32, DType.INT64})
VALUE_LIMIT = 1024  # elements: the values followed are shapes, sizes, axes
CONTROL_FLOW = frozenset({"WHILE", "IF", "CALL_ONCE"})
# Ops whose known elements are the same op applied to the mask of known elements, in place
# of the inputs at these slots (None: all; the other inputs must be fully known): ops that
# move elements, and REDUCE_PROD (a product of 0s and 1s is their AND).
MASK_FOLLOWS: dict[str, tuple[int, ...] | None] = {
    "RESHAPE": (0,), "TRANSPOSE": (0,), "SQUEEZE": (0,), "EXPAND_DIMS": (0,), "STRIDED_SLICE": (0,),
    "SLICE": (0,), "GATHER": (0,), "CAST": (0,), "TILE": (0,), "FILL": (1,), "REDUCE_PROD": (0,), "PACK": None,
    "CONCATENATION": None}
# Ops whose result element is known where every input element it reads is (broadcasting).
ELEMENTWISE = frozenset({"ADD", "SUB", "MUL", "DIV", "FLOOR_DIV", "FLOOR_MOD", "MAXIMUM", "MINIMUM"})

ValueKernel = Callable[[Node, list[Value | None], list[Tensor | None], Tensor], Value]


@dataclass
class Rewrite:
    """A constant input (slot >= 0) or RESHAPE's new_shape option (slot -1) to hold `value`
    instead of `old`."""

    graph: Graph
    node: Node
    slot: int
    old: list
    value: list[int]


@dataclass
class Step:
    """One operator whose outputs were derived: its input and output shapes, and whether an
    output value is partly known (it carries a size known only at run time)."""

    node: Node
    inputs: list[Shape | None]
    outputs: list[Shape]
    carries_unknown: bool


class Propagation:
    """Shapes and values by tensor (id), as `call` derives them; `kernels` evaluate values
    (fold_constants' TFLite kernels, by op); `symbolic`: shapes to look at, not to write
    (Operands.symbolic)."""

    def __init__(self, kernels: dict[str, ValueKernel], symbolic: bool = False):
        self.kernels = {**kernels, **EXTRA_KERNELS}
        self.symbolic = symbolic
        self.shapes: dict[int, tuple[Tensor, Shape]] = {}
        self.values: dict[int, Known | None] = {}
        self.changed: set[int] = set()
        self.rewrites: list[Rewrite] = []
        self.steps: list[Step] = []
        self.runs: dict[int, tuple[list[Shape], list[Shape]]] = {}
        self.running: set[int] = set()

    # -- what it found ----------------------------------------------------------------------
    def shape(self, tensor: Tensor) -> Shape | None:
        found = self.shapes.get(id(tensor))
        return tensor.shape if found is None else found[1]

    def changes(self) -> list[tuple[Tensor, Shape]]:
        """(tensor, new shape) for each tensor whose shape differs from the model's."""
        return [(tensor, shape) for tensor, shape in self.shapes.values() if shape != tensor.shape]

    # -- subgraphs --------------------------------------------------------------------------
    def call(self, graph: Graph, shapes: list[Shape]) -> list[Shape]:
        """Run `graph` with these input shapes (once: a second run must bring the same ones);
        the shapes of its outputs."""
        key = id(graph)
        if key in self.running:
            raise ShapeError(f"subgraph {graph.name!r} runs itself")
        if len(shapes) != len(graph.inputs):
            raise ShapeError(f"subgraph {graph.name!r} takes {len(graph.inputs)} inputs, is given {len(shapes)}")
        if key in self.runs:
            before, outputs = self.runs[key]
            if before != shapes:
                raise ShapeError(f"subgraph {graph.name!r} is run with inputs {', '.join(map(show, before))} "
                                 f"and with {', '.join(map(show, shapes))}")
            return outputs
        self.running.add(key)
        try:
            outputs = self._run(graph, shapes)
        finally:
            self.running.discard(key)
        self.runs[key] = (shapes, outputs)
        return outputs

    def _run(self, graph: Graph, shapes: list[Shape]) -> list[Shape]:
        for name, shape in zip(graph.inputs, shapes):
            self._set(graph.node(name).outputs[0], shape)
        for node in _execution_order(graph):
            if not ops.is_operator(node):
                continue
            tensors = [None if ref is None else graph.tensor(ref) for ref in graph.inputs_of(node.name)]
            if any(t is not None and id(t) in self.changed for t in tensors):
                self._derive(graph, node, tensors)
            self._evaluate(node, tensors)
        return [self.shape(graph.tensor(ref)) for ref in graph.outputs]  # type: ignore[misc]

    def _set(self, tensor: Tensor, shape: Shape | None, value_may_change: bool = False) -> None:
        self.shapes[id(tensor)] = (tensor, shape)  # type: ignore[assignment]
        if shape != tensor.shape or value_may_change and _followed(tensor, shape):
            self.changed.add(id(tensor))

    # -- operators --------------------------------------------------------------------------
    def _derive(self, graph: Graph, node: Node, tensors: list[Tensor | None]) -> None:
        inputs = [None if t is None else self.shape(t) for t in tensors]
        if node.op in CONTROL_FLOW:
            outputs = self._control_flow(node, inputs)
        else:
            operands = Operands(node, inputs, [None if t is None else self.value(t) for t in tensors],
                                [None if t is None else t.shape for t in tensors], [t.shape for t in node.outputs],
                                [t is not None and _is_constant(t) for t in tensors], symbolic=self.symbolic)
            outputs = infer(operands)
            self.rewrites += [Rewrite(graph, node, slot, old, new)
                              for slot, (old, new) in sorted(operands.rewrites.items())]
        for tensor, shape in zip(node.outputs, outputs):
            self._set(tensor, shape, value_may_change=True)
        self.steps.append(Step(node, inputs, outputs, False))

    def _control_flow(self, node: Node, inputs: list[Shape | None]) -> list[Shape]:
        where = f"{node.op} {node.name!r}"
        if any(s is None for s in inputs):
            raise ShapeError(f"{where}: an input has an unknown rank")
        if node.op == "WHILE":
            carried = self._loop(node, inputs)  # type: ignore[arg-type]
            self.call(node.attrs["cond_subgraph_index"], carried)
            return carried
        if node.op == "IF":
            branches = [self.call(node.attrs[key], inputs[1:]) for key in  # type: ignore[arg-type]
                        ("then_subgraph_index", "else_subgraph_index")]
            return [_either(a, b) for a, b in zip(*branches)]
        return [t.shape for t in node.outputs]  # CALL_ONCE: no inputs, no outputs

    def _loop(self, node: Node, outer: list[Shape]) -> list[Shape]:
        """The shapes a WHILE's loop values keep: the outer ones, unknown where the body changes
        them and declares them unknown (the model's loop grows them); ShapeError where it
        changes a size it declares known."""
        body: Graph = node.attrs["body_subgraph_index"]
        declared = [body.node(name).outputs[0].shape for name in body.inputs]
        carried = list(outer)
        before = self._state()
        outputs = self.call(body, carried)
        if all(_within(given, taken) for given, taken in zip(outputs, carried)):
            return carried
        relaxed = []
        for i, (given, taken, said) in enumerate(zip(outputs, carried, declared)):
            if len(given) != len(taken) or said is None or len(said) != len(taken) or any(
                    g != t and s is not None for g, t, s in zip(given, taken, said)):
                raise ShapeError(f"{node.op} {node.name!r}: its body makes loop value {i} {show(given)} from "
                                 f"{show(taken)}: the loop changes a shape per iteration")
            relaxed.append(tuple(t if g == t else None for g, t in zip(given, taken)))
        self._restore(before)
        self.call(body, relaxed)
        return relaxed

    def _state(self) -> tuple:
        return (dict(self.shapes), dict(self.values), set(self.changed), len(self.rewrites), len(self.steps),
                dict(self.runs))

    def _restore(self, state: tuple) -> None:
        self.shapes, self.values, self.changed, rewrites, steps, self.runs = state
        del self.rewrites[rewrites:], self.steps[steps:]

    # -- values -----------------------------------------------------------------------------
    def value(self, tensor: Tensor) -> Known | None:
        """The value of an integer tensor as far as known (constants, and what `_evaluate` found)."""
        key = id(tensor)
        if key not in self.values:
            known = None
            if _is_constant(tensor) and tensor.dtype in VALUE_TYPES and _small(tensor.shape):
                known = Known(np.asarray(tensor.data, np.int64))
            self.values[key] = known
        return self.values[key]

    def _evaluate(self, node: Node, tensors: list[Tensor | None]) -> None:
        """The value of the operator's output when it is a small integer tensor whose inputs'
        values (or, for SHAPE and RANK, shapes) are known."""
        if len(node.outputs) != 1 or not _followed(node.outputs[0], self.shape(node.outputs[0])):
            return
        out = node.outputs[0]
        known: Known | None = None
        try:
            if node.op in ("SHAPE", "RANK") and tensors and tensors[0] is not None:
                known = _shape_value(self.shape(tensors[0]), out, node.op)
            elif node.op in self.kernels and not keys.is_custom(node):
                known = self._computed(node, tensors, out)
        except (GraphtoolError, ValueError, IndexError, TypeError, OverflowError):
            known = None
        self.values[id(out)] = known
        if known is not None and not known.complete and self.steps and self.steps[-1].node is node:
            self.steps[-1].carries_unknown = True

    def _computed(self, node: Node, tensors: list[Tensor | None], out: Tensor) -> Known | None:
        inputs = [None if t is None else self.value(t) for t in tensors]
        if any(t is not None and v is None for t, v in zip(tensors, inputs)):
            return None
        values = [None if v is None else Value(v.array, DType.INT64) for v in inputs]
        wide = Tensor(out.name, DType.INT64, out.shape)
        result = np.asarray(self.kernels[node.op](node, values, tensors, wide).array, np.int64)
        if np.any(result != result.astype(out.dtype.numpy)):
            return None  # it overflows the tensor's type: the model would not compute it either
        if all(v is None or v.complete for v in inputs):
            return Known(result)
        mask = self._mask(node, inputs, values, tensors, out)
        return None if mask is None else Known(result, mask)

    def _mask(self, node: Node, inputs: list[Known | None], values: list[Value | None],
              tensors: list[Tensor | None], out: Tensor) -> np.ndarray | None:
        """Which elements of the result are known, when some of an input's are not."""
        present = [v for v in inputs if v is not None]
        if node.op in ELEMENTWISE:
            masks = [np.ones(v.array.shape, bool) if v.known is None else v.known for v in present]
            return np.logical_and.reduce(np.broadcast_arrays(*masks)) if masks else None
        if node.op not in MASK_FOLLOWS:
            return None
        slots = MASK_FOLLOWS[node.op] or tuple(range(len(inputs)))
        if any(v is not None and not v.complete for i, v in enumerate(inputs) if i not in slots):
            return None
        swapped = [Value(_mask_of(v), DType.INT32) if i in slots and v is not None else values[i]
                   for i, v in enumerate(inputs)]
        mask_out = Tensor(out.name, DType.INT32, out.shape)
        return np.asarray(self.kernels[node.op](node, swapped, tensors, mask_out).array) != 0


def _execution_order(graph: Graph) -> list[Node]:
    """The nodes in graph order, the order a TFLite subgraph's operators run in; in
    topological order when some node comes before a node it reads (a graph built by hand)."""
    nodes, seen = graph.nodes, set()
    for node in nodes:
        if any(producer not in seen for producer in graph.producers(node.name)):
            return [graph.node(name) for name in graph.topological_order()]
        seen.add(node.name)
    return nodes


def _is_constant(tensor: Tensor) -> bool:
    return tensor.is_constant and not tables.is_variable(tensor)


def _small(shape: Shape | None) -> bool:
    size = None if shape is None else count(shape)
    return size is not None and size <= VALUE_LIMIT


def _followed(tensor: Tensor, shape: Shape | None) -> bool:
    """Whether the tensor's value is one graphtool follows (a small integer tensor)."""
    return tensor.dtype in VALUE_TYPES and _small(shape)


def _mask_of(known: Known) -> np.ndarray:
    return np.ones(known.array.shape, np.int32) if known.known is None else known.known.astype(np.int32)


def _shape_value(shape: Shape | None, out: Tensor, op: str) -> Known | None:
    if shape is None:
        return None
    if op == "RANK":
        return Known(np.array(len(shape), np.int64))
    array = np.array([1 if d is None else d for d in shape], np.int64).reshape(out.shape or (len(shape),))
    if any(d is None for d in shape):
        return Known(array, np.array([d is not None for d in shape]))
    return Known(array)


def _within(given: Shape, taken: Shape) -> bool:
    """Whether a body output fits the shape its loop value is taken with."""
    return len(given) == len(taken) and all(t is None or g == t for g, t in zip(given, taken))


def _either(a: Shape, b: Shape) -> Shape | None:
    """An IF output: the branches' shapes, unknown where they differ."""
    if len(a) != len(b):
        return None
    return tuple(x if x == y else None for x, y in zip(a, b))


# -- value kernels fold_constants does not have ------------------------------------------------------

def _gather(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    params, indices = inputs[0], inputs[1]
    if int(node.attrs.get("batch_dims", 0)):
        raise ValueError("batch_dims")
    array = np.take(params.array, indices.array.astype(np.int64), axis=int(node.attrs.get("axis", 0)))
    return Value(array.astype(out.dtype.numpy), out.dtype)


def _reduce_prod(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    x, axes = inputs[0], inputs[1]
    axis = tuple(int(a) % max(x.array.ndim, 1) for a in axes.array.reshape(-1)) if x.array.ndim else None
    array = np.prod(x.array.astype(np.int64), axis=axis, keepdims=bool(node.attrs.get("keep_dims", False)))
    return Value(np.asarray(array).astype(out.dtype.numpy), out.dtype)


def _slice(node: Node, inputs: list[Value | None], tensors: list[Tensor | None], out: Tensor) -> Value:
    x, begin, size = inputs[0], inputs[1].array.reshape(-1), inputs[2].array.reshape(-1)
    index = tuple(slice(int(b), None if int(s) == -1 else int(b) + int(s)) for b, s in zip(begin, size))
    return Value(np.ascontiguousarray(x.array[index]), out.dtype)


EXTRA_KERNELS: dict[str, ValueKernel] = {"GATHER": _gather, "REDUCE_PROD": _reduce_prod, "SLICE": _slice}
