"""SavedModel directory -> a GraphDef Graph of its serving signature, variables frozen.

TensorFlow (the `tf` extra, imported only here and only when a SavedModel is read) loads
the SavedModel and inlines the signature's function calls with its own inliner (the one
`convert_variables_to_constants_v2` uses); the rest happens on graphtool's IR:

- the signature's inputs are the graph's `inputs`, its outputs the graph's `outputs`;
- each captured variable becomes a `VarHandleOp` named after the variable, its value kept
  in a side table, `graph.meta[VARIABLES]` (handle node name -> VariableValue);
- a variable the graph only reads is frozen: every ReadVariableOp of it becomes a Const
  holding the value (keeping the read's name), and the handle goes;
- a variable the graph also writes stays a VarHandleOp with its value in the side table:
  freezing it needs to know what the writes mean. TF-MOT's pruning wrappers write
  `kernel * mask` back to the kernel on every call; the `strip_pruning` transform applies
  those writes and freezes what they leave (TensorFlow's own freezing fails on them);
- control edges from constants and NoOps left with nothing to wait for are dropped.

The side table is replaced, never changed in place (graph copies share "."-keyed meta).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import FormatError, first_line, install_hint
from ..ir import CONST_OP, DType, Graph, Node, Ref, Tensor, make_const
from ..ir.attrs import TensorShape
from ..logs import prepare_tensorflow, quietly

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
DEFAULT_SIGNATURE = "serving_default"
VARIABLES = "savedmodel.variables"
"""graph.meta key: {VarHandleOp node name: VariableValue} for variables not frozen yet."""
SIGNATURE = "savedmodel.signature"
"""graph.meta key: {"key", "inputs": {name: node}, "outputs": {name: "node:port"}}."""

READ_OP = "ReadVariableOp"
HANDLE_OP = "VarHandleOp"
PASS_THROUGH = "Identity"


@dataclass(frozen=True)
class VariableValue:
    """A variable's name in TensorFlow (`conv/kernel`) and its value when it was read."""

    name: str
    value: np.ndarray


def is_saved_model(path: str | os.PathLike) -> bool:
    """True for a directory holding saved_model.pb (or .pbtxt)."""
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, f)) for f in SAVED_MODEL_FILES)


@quietly
def read(path: str, signature: str | None = None) -> Graph:
    """The SavedModel's `signature` (default serving_default, or its only one) as a Graph."""
    from . import graphdef

    key, function, _loaded = load_signature(path, signature)  # _loaded keeps the variables alive
    graph_def = _inlined(function, path)
    graph = graphdef.read(graph_def.SerializeToString(deterministic=True), source=path)
    graph.meta.pop(graphdef.keys.TEXT, None)
    _bind_signature(graph, key, function, path)
    _bind_captures(graph, function, path)
    for handle in list(graph.meta[VARIABLES]):
        freeze_if_read_only(graph, handle)
    drop_dead_control(graph)
    return graph


# -- IR helpers (no TensorFlow): shared with the strip_pruning transform ----------------------

def unfrozen(graph: Graph) -> list[str]:
    """Names of the variables whose values only the side table holds: writing the graph
    now would lose them (strip_pruning freezes TF-MOT's)."""
    return sorted(v.name for v in (graph.meta.get(VARIABLES) or {}).values())


def handle_uses(graph: Graph, handle: str) -> tuple[list[str], list[str], list[str]]:
    """(reads, other users, pass-through Identity nodes) of a variable handle, following
    Identity chains (inlined function calls forward handles through them)."""
    reads: list[str] = []
    others: list[str] = []
    chain: list[str] = []
    stack = [handle]
    while stack:
        producer = stack.pop()
        for consumer, slot in graph.consumers(producer):
            op = graph.node(consumer).op
            if op == READ_OP and slot == 0:
                reads.append(consumer)
            elif op == PASS_THROUGH:
                chain.append(consumer)
                stack.append(consumer)
            else:
                others.append(consumer)
    return sorted(set(reads)), sorted(set(others)), chain


def become_const(graph: Graph, name: str, value: np.ndarray) -> None:
    """Turn node `name` (a read) into a Const holding `value`, keeping its name, place,
    device and control inputs; its data inputs go."""
    node = graph.node(name)
    const = make_const(name, value)
    graph.set_inputs(name, [])
    node.op, node.attrs, node.outputs = const.op, const.attrs, const.outputs
    _forget_source(node)


def _forget_source(node: Node) -> None:
    """graphdef.keys.forget_source, imported here rather than with this module: asking
    whether a path is a SavedModel imports no protobuf."""
    from .graphdef import keys

    keys.forget_source(node)


def remove_handle(graph: Graph, handle: str) -> bool:
    """Remove the handle and its pass-through chain once nothing reads them, and its side
    table entry. Returns whether it went."""
    _, others, chain = handle_uses(graph, handle)
    for name in reversed(chain):
        if name in graph and not graph.is_used(name):
            graph.remove_node(name)
    if graph.is_used(handle):
        return False
    graph.remove_node(handle)
    graph.meta[VARIABLES] = {k: v for k, v in graph.meta.get(VARIABLES, {}).items() if k != handle}
    return True


def freeze_if_read_only(graph: Graph, handle: str) -> bool:
    """Freeze a side-table variable that nothing but ReadVariableOp uses. Returns whether it did."""
    reads, others, _ = handle_uses(graph, handle)
    if others:
        return False
    value = graph.meta[VARIABLES][handle].value
    for read in reads:
        _check_read(graph, read, value)
        become_const(graph, read, value)
    remove_handle(graph, handle)
    return True


def drop_dead_control(graph: Graph) -> int:
    """Drop control edges from constants (a constant is always ready) and NoOps with no
    inputs left (they wait for nothing), until none is left. Declared outputs stay.
    Returns how many edges and nodes went."""
    kept = {r.node for r in graph.outputs}
    dropped = 0
    changed = True
    while changed:
        changed = False
        for node in list(graph):
            if node.op == CONST_OP:
                for consumer in graph.control_consumers(node.name):
                    graph.remove_control_input(consumer, node.name)
                    dropped += 1
            elif node.op == "NoOp" and node.name not in kept and not graph.inputs_of(node.name) \
                    and not graph.control_inputs_of(node.name):
                for consumer in graph.control_consumers(node.name):
                    graph.remove_control_input(consumer, node.name)
                graph.remove_node(node.name)
                dropped += 1
                changed = True
    return dropped


def _check_read(graph: Graph, read: str, value: np.ndarray) -> None:
    dtype = graph.node(read).attrs.get("dtype")
    if isinstance(dtype, DType) and dtype.numpy is not None and np.dtype(dtype.numpy) != value.dtype:
        raise FormatError(f"{read!r} reads {dtype} from a variable holding {value.dtype}")


# -- TensorFlow side -------------------------------------------------------------------------

@quietly
def _tensorflow() -> Any:
    prepare_tensorflow()
    try:
        import tensorflow as tf
    except ImportError:
        raise FormatError(f"reading a SavedModel needs TensorFlow: {install_hint('tf')}") from None
    return tf


@quietly
def load_signature(path: str, key: str | None = None) -> tuple[str, Any, Any]:
    """(key, concrete function, loaded object) of the SavedModel's signature `key` (default
    serving_default, or its only one), by tf.saved_model.load; FormatError naming `path` if
    it cannot. Keep the loaded object while using the function: it owns the variables."""
    tf = _tensorflow()
    try:
        loaded = tf.saved_model.load(path)
    except (OSError, ValueError, RuntimeError, tf.errors.OpError) as exc:
        raise FormatError(f"cannot load the SavedModel: {first_line(exc)}", source=path) from None
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    if not signatures:
        raise FormatError("the SavedModel has no signatures", source=path)
    if key is None:
        key = DEFAULT_SIGNATURE if DEFAULT_SIGNATURE in signatures or len(signatures) != 1 else next(iter(signatures))
    if key not in signatures:
        raise FormatError(f"no signature {key!r}; it has {', '.join(sorted(signatures))}", source=path)
    return key, signatures[key], loaded


def _inlined(function: Any, path: str) -> Any:
    """The signature's GraphDef with every function call inlined, by TensorFlow's inliner."""
    try:
        from tensorflow.python.framework import convert_to_constants
        inline = convert_to_constants._run_inline_graph_optimization
    except (ImportError, AttributeError):
        raise FormatError("this TensorFlow has no function inliner graphtool knows", source=path) from None
    return inline(function, lower_control_flow=False, aggressive_inlining=True)


def _bind_signature(graph: Graph, key: str, function: Any, path: str) -> None:
    """Declare the signature's inputs and outputs on the graph."""
    _, kwargs = function.structured_input_signature
    inputs = signature_inputs(function)
    outputs = list(function.outputs)
    names = sorted(function.structured_outputs) if isinstance(function.structured_outputs, dict) else \
        [f"output_{i}" for i in range(len(outputs))]
    for tensor in inputs + outputs:
        if tensor.op.name not in graph:
            raise FormatError(f"the inlined signature has no node {tensor.op.name!r}", source=path)
    graph.inputs = [t.op.name for t in inputs]
    graph.outputs = [Ref(t.op.name, t.value_index) for t in outputs]
    spec_names = [spec.name or arg for arg, spec in sorted(kwargs.items())] if kwargs else graph.inputs
    graph.meta[SIGNATURE] = {
        "key": key,
        "inputs": dict(zip(spec_names, graph.inputs)),
        "outputs": {name: str(ref) for name, ref in zip(names, graph.outputs)},
    }


def signature_inputs(function: Any) -> list:
    """The signature function's input tensors that callers feed (not its captured variables
    and constants), in the order of its sorted keyword arguments."""
    captured = {t.name for t in function.graph.internal_captures}
    return [t for t in function.inputs if t.name not in captured]


def _bind_captures(graph: Graph, function: Any, path: str) -> None:
    """Captured variables become VarHandleOps (values in the side table); captured
    constants become Consts."""
    import tensorflow as tf

    variables = {id(v.handle): v for v in function.graph.variables}
    table: dict[str, VariableValue] = {}
    renames: dict[str, str] = {}
    for external, internal in function.graph.captures:
        name = internal.op.name
        if name not in graph:
            continue  # a capture the inlined graph does not use
        variable = variables.get(id(external))
        node = graph.node(name)
        if variable is not None:
            value = np.asarray(variable.numpy())
            wanted = graph.unique_name(variable.name.split(":")[0], set(renames.values()))
            renames[name] = wanted
            _become_handle(node, wanted, variable, value)
            table[name] = VariableValue(variable.name.split(":")[0], value)
        elif external.dtype != tf.resource:
            become_const(graph, name, np.asarray(external.numpy()))
        else:
            raise FormatError(f"the signature captures {name!r}, a resource that is not a variable "
                              "(a table or an iterator): not supported", source=path)
    graph.meta[VARIABLES] = table
    if renames:
        graph.rename_nodes(renames)
        graph.meta[VARIABLES] = {renames.get(k, k): v for k, v in table.items()}


def _become_handle(node: Node, new_name: str, variable: Any, value: np.ndarray) -> None:
    dtype = DType.from_numpy(value.dtype)
    node.op = HANDLE_OP
    node.attrs = {"dtype": dtype, "shape": TensorShape(tuple(value.shape)),
                  "shared_name": variable.name.split(":")[0], "container": ""}
    node.outputs = [Tensor(new_name, DType.RESOURCE, ())]
    _forget_source(node)
