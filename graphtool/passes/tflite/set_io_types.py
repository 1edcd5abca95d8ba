"""set_io_types for TFLite: the types a model takes and gives — float32, float16, int8, uint8 or
int16 — by removing or adding the QUANTIZE and DEQUANTIZE at its boundary.

Facts (no code taken) from tensorflow/lite/tools/optimize/modify_model_interface.cc and
tensorflow/lite/python/util.py (`modify_model_io_type`, what the converter runs for
inference_input_type / inference_output_type): an int8 or int16 input is the output of the
QUANTIZE that read the float input, which goes; an int8 or int16 output is the input of the
DEQUANTIZE that wrote the float output, which goes; signature defs follow. uint8 is only for
int8 boundaries: the input becomes uint8 with the QUANTIZE's scale and its zero point + 128,
the QUANTIZE staying (uint8 -> int8); the output DEQUANTIZE becomes a QUANTIZE int8 -> uint8
with the same shift. The converter's model with uint8 I/O has exactly that form.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ...formats.tflite import keys, ops, tables, versions
from ...ir import DType, Graph, Node, Ref, Tensor
from ..helpers import tflite_edit
from ..helpers.integer_rewrite import quantization
from ..registry import Context, PassError, PassResult, register

IO_TYPES = {"float32": DType.FLOAT32, "float16": DType.FLOAT16, "int8": DType.INT8, "uint8": DType.UINT8,
            "int16": DType.INT16}
INTEGER = (DType.INT8, DType.INT16)
INTEGER_OF = {DType.INT8: DType.INT8, DType.UINT8: DType.INT8, DType.INT16: DType.INT16}  # I/O type -> computed in
UINT8_SHIFT = 128  # uint8 zero point = int8 zero point + 128, same scale
CONVERSIONS = frozenset({"QUANTIZE", "DEQUANTIZE", "CAST"})


@dataclass(frozen=True)
class Params:
    inputs: list[str] = field(default_factory=list, metadata={
        "doc": "TYPE for every real-valued input, or \"NAME:TYPE\" for one (signature key or tensor name); "
               "TYPE is float32, float16, int8, uint8 or int16 (repeat for several)"})
    outputs: list[str] = field(default_factory=list, metadata={"doc": "the same for the outputs"})


@register("set_io_types", Params, formats=("tflite",), guarantee="quantization error")
def set_io_types(graph: Graph, params: Params, context: Context) -> PassResult:
    """Make a model take and give float32, float16, int8, uint8 or int16, by removing or adding the QUANTIZE/DEQUANTIZE at its inputs and outputs.

    inputs=TYPE sets every real-valued input (float or quantized; int32 indices, strings and
    bools stay), inputs="NAME:TYPE" one, by signature key or tensor name (a later entry for a
    name wins over the TYPE for all); outputs= the same. On a quantized model with float I/O
    (the converter's full-integer default, quantize_nodes' result): int8 or int16 removes the
    QUANTIZE after the input (the DEQUANTIZE before the output), so the model takes (gives)
    that QUANTIZE's input (DEQUANTIZE's output) integers; uint8, for int8 boundaries only, makes
    the input uint8 with the same scale and the zero point + 128 and keeps the QUANTIZE (now
    uint8 -> int8), and turns the output DEQUANTIZE into a QUANTIZE int8 -> uint8, as
    TensorFlow's modify_model_interface does. On a model with integer I/O, float32 adds them
    back (a QUANTIZE after the new float input, a DEQUANTIZE before the new float output);
    float16 adds a DEQUANTIZE float16 -> float32 after a float input and a CAST float32 ->
    float16 before a float output (and removes them for float32). A boundary that is not a
    plain QUANTIZE/DEQUANTIZE/CAST (a float input that float operators read, an output a
    float operator computes, a conversion whose result other operators read too, int16 asked
    to be uint8) is refused with the reason, and so is a name the model does not have.

    The tensor at the boundary keeps the name callers know it by: a tensor that becomes an
    input or output takes the removed one's name; one that stops being one adds its type
    (`_int8`, `_float32`). Signature keys stay and name the new tensors; every signature's
    subgraph is set, as the converter does. Op versions are raised as op_version.cc says, and
    min_runtime_version. The same real values in and out: the integers the model computes
    do not change (uint8 differs from int8 by the 128 shift only); float inputs are quantized
    at the boundary and float16 rounds. stats: inputs, outputs (name -> "old -> new")."""
    every_in, named_in = _requests("inputs", params.inputs)
    every_out, named_out = _requests("outputs", params.outputs)
    if every_in is None and every_out is None and not named_in and not named_out:
        raise PassError("set_io_types: give inputs=TYPE and/or outputs=TYPE (float32, float16, int8, uint8, int16)")
    work = graph.copy()
    buffers = tables.used_buffers(work)
    surgery = _Surgery(work)
    ports = _ports(work)
    _check_names("input", named_in, [p for p in ports if p.is_input])
    _check_names("output", named_out, [p for p in ports if not p.is_input])
    for port in ports:
        named = [dtype for name, dtype in (named_in if port.is_input else named_out).items() if name in port.names]
        target = named[-1] if named else every_in if port.is_input else every_out
        if target is not None:
            surgery.set(port, target, explicit=bool(named))
    if not any(surgery.changed.values()):
        return PassResult(False, surgery.changed_stats())
    versions.raise_versions(tables.subgraphs(work), {n.op for g in tables.subgraphs(work) for n in g
                                                      if ops.is_operator(n)} & CONVERSIONS)
    versions.raise_min_runtime(work)
    tables.compact_buffers(work, buffers)
    graph.restore(work)
    return PassResult(True, surgery.changed_stats())


def _requests(key: str, values: list[str]) -> tuple[DType | None, dict[str, DType]]:
    """(the type for every input (output), the types of the named ones) from TYPE and
    NAME:TYPE values (names may hold ':'; the type is after the last)."""
    every: DType | None = None
    named: dict[str, DType] = {}
    for value in values:
        name, _, type_name = value.rpartition(":")
        dtype = IO_TYPES.get(type_name.strip().lower())
        if dtype is None:
            raise PassError(f"set_io_types: {key}={value!r}: the type must be one of {', '.join(IO_TYPES)}")
        if name:
            named[name] = dtype
        else:
            every = dtype
    return every, named


# -- the model's inputs and outputs -----------------------------------------------------------

@dataclass
class _Port:
    """One input or output of an entry subgraph, by position (the tensor there changes as the
    surgery goes), and the names a caller may know it by."""

    graph: Graph
    is_input: bool
    index: int
    names: frozenset[str]

    @property
    def kind(self) -> str:
        return "input" if self.is_input else "output"

    @property
    def ref(self) -> Ref:
        return Ref(self.graph.inputs[self.index], 0) if self.is_input else self.graph.outputs[self.index]

    @property
    def tensor(self) -> Tensor:
        return self.graph.tensor(self.ref)


def _ports(model: Graph) -> list[_Port]:
    found = []
    for graph in tflite_edit.entry_graphs(model):
        for is_input, count in ((True, len(graph.inputs)), (False, len(graph.outputs))):
            for index in range(count):
                port = _Port(graph, is_input, index, frozenset())
                tensor = port.tensor
                port.names = frozenset([tensor.name, *tflite_edit.signature_keys(model, graph, tensor)])
                found.append(port)
    return found


def _check_names(kind: str, named: dict[str, DType], ports: list[_Port]) -> None:
    known = set().union(*(p.names for p in ports)) if ports else set()
    for name in named:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise PassError(f"set_io_types: the model has no {kind} named {name!r} ({kind}s: {listed})")


def io_type(tensor: Tensor) -> DType | None:
    """The I/O type a tensor is: float32, float16, or int8/uint8/int16 with one scale; None
    for other tensors (indices, strings, bools), which set_io_types leaves alone."""
    if tensor.dtype in (DType.FLOAT32, DType.FLOAT16):
        return tensor.dtype
    if tensor.dtype in (*INTEGER, DType.UINT8) and tflite_edit.per_tensor(tensor) is not None:
        return tensor.dtype
    return None


def _choices(quantized: DType) -> str:
    """The types a boundary quantized to `quantized` can be (uint8 shifts an int8 zero point)."""
    return "float32, int8 or uint8" if quantized is DType.INT8 else f"float32 or {quantized.value}"


# -- the surgery --------------------------------------------------------------------------------

class _Surgery:
    """Moves one boundary at a time to float32, then to the type asked for (each step a
    QUANTIZE/DEQUANTIZE/CAST added, removed or retyped), refusing where the boundary is not
    plain. Runs on a copy: a refusal leaves the model as it was."""

    def __init__(self, model: Graph):
        self.model = model
        self.changed: dict[str, dict[str, str]] = {"input": {}, "output": {}}

    def changed_stats(self) -> dict[str, dict[str, str]]:
        return {"inputs": self.changed["input"], "outputs": self.changed["output"]}

    def set(self, port: _Port, target: DType, explicit: bool) -> None:
        current = io_type(port.tensor)
        label = port.tensor.name
        if current is None:
            if explicit:
                raise PassError(f"set_io_types: {port.kind} {label!r} is {port.tensor.dtype.value}: only real-valued "
                                "inputs and outputs (float, or integers with a scale) change type")
            return
        if current is target:
            return
        computed, wanted = INTEGER_OF.get(current), INTEGER_OF.get(target)
        if computed and wanted and computed is not wanted:
            raise PassError(f"set_io_types: {port.kind} {label!r} is {current.value}, the model computes it in "
                            f"{computed.value}: it can be {_choices(computed)}, not {target.value}")
        if current is not DType.FLOAT32:
            (self._input_to_float if port.is_input else self._output_to_float)(port, current)
        if target is not DType.FLOAT32:
            (self._input_from_float if port.is_input else self._output_from_float)(port, target)
        self.changed[port.kind][label] = f"{current.value} -> {target.value}"

    # -- inputs ---------------------------------------------------------------------------------
    def _input_to_float(self, port: _Port, current: DType) -> None:
        if current in INTEGER:
            self._wrap_input(port, "QUANTIZE", DType.FLOAT32)
        elif current is DType.UINT8:
            self._reader(port, "QUANTIZE", lambda t: t.dtype is DType.INT8)
            port.tensor.dtype, port.tensor.quantization = DType.FLOAT32, None
        else:  # float16
            self._promote(port, self._reader(port, "DEQUANTIZE", lambda t: t.dtype is DType.FLOAT32))

    def _input_from_float(self, port: _Port, target: DType) -> None:
        if target is DType.FLOAT16:
            self._wrap_input(port, "DEQUANTIZE", DType.FLOAT16)
            return
        wanted = DType.INT8 if target is DType.UINT8 else target
        quantize = self._reader(port, "QUANTIZE", lambda t: tflite_edit.per_tensor(t) is not None)
        found = quantize.outputs[0].dtype
        if found is not wanted:
            raise PassError(f"set_io_types: input {port.tensor.name!r} is quantized to {found.value} by "
                            f"{quantize.name!r}: it can be {_choices(found)}, not {target.value}")
        if target is DType.UINT8:
            scale, zero_point = tflite_edit.per_tensor(quantize.outputs[0])
            port.tensor.dtype = DType.UINT8
            port.tensor.quantization = quantization((scale, zero_point + UINT8_SHIFT))
        else:
            self._promote(port, quantize)

    def _reader(self, port: _Port, op: str, output_ok: Callable[[Tensor], bool]) -> Node:
        """The one operator reading the input, which must be a plain `op` whose output passes
        `output_ok`; PassError saying what is there instead."""
        graph, label = port.graph, port.tensor.name
        readers = graph.consumers(port.ref)
        if port.ref in graph.outputs:
            raise PassError(f"set_io_types: input {label!r} is an output of the model too")
        if len(readers) != 1:
            found = ", ".join(f"{graph.node(c).op} {c!r}" for c, _ in readers[:3]) or "nothing"
            raise PassError(f"set_io_types: input {label!r} is read by {found}, not by one {op}: its boundary "
                            f"is not a plain {op}")
        node = graph.node(readers[0][0])
        if node.op != op or keys.is_custom(node) or len(node.outputs) != 1 or not output_ok(node.outputs[0]):
            what = f"{node.op} {node.name!r}" + (f" (to {node.outputs[0].dtype.value})" if node.op == op else "")
            raise PassError(f"set_io_types: input {label!r} is read by {what}, not by a plain {op}: the model "
                            "computes on it as it is")
        return node

    def _wrap_input(self, port: _Port, op: str, dtype: DType) -> None:
        """A new input of `dtype` feeding `op`, which computes what the input was."""
        graph, name = port.graph, port.graph.inputs[port.index]
        inner = port.tensor
        outer = Tensor(inner.name, dtype, inner.shape)
        tables.rename(inner, graph.unique_name(f"{inner.name}_{inner.dtype.value}"))
        graph.node(name).outputs = [outer]
        node = tflite_edit.add_operator(graph, op, [], inner)
        graph.replace_uses(Ref(name, 0), Ref(node.name, 0))
        graph.set_inputs(node.name, [Ref(name, 0)])
        tflite_edit.retarget_signatures(self.model, inner, outer)
        graph.toposort()

    def _promote(self, port: _Port, node: Node) -> None:
        """The operator reading the input goes; its output is the input now, by the input's name."""
        graph, name = port.graph, port.graph.inputs[port.index]
        old, new = port.tensor, node.outputs[0]
        graph.set_inputs(node.name, [])
        tflite_edit.make_input(node)
        graph.remove_node(name)
        graph.inputs[port.index] = node.name
        tflite_edit.retarget_signatures(self.model, old, new)
        tflite_edit.take_place(old, new)
        tflite_edit.rename_tensor(graph, Ref(node.name, 0), old.name)
        if graph.inputs[port.index] != old.name and old.name not in graph:
            graph.rename_node(graph.inputs[port.index], old.name)

    # -- outputs --------------------------------------------------------------------------------
    def _output_to_float(self, port: _Port, current: DType) -> None:
        if current in INTEGER:
            self._wrap_output(port, "DEQUANTIZE", DType.FLOAT32)
        elif current is DType.UINT8:
            node = self._producer(port, "QUANTIZE", lambda t: t.dtype is DType.INT8)
            tflite_edit.retype_operator(node, "DEQUANTIZE")
            port.tensor.dtype, port.tensor.quantization = DType.FLOAT32, None
        else:  # float16
            tflite_edit.bypass(self.model, port.graph, self._producer(
                port, "CAST", lambda t: t.dtype is DType.FLOAT32).name)

    def _output_from_float(self, port: _Port, target: DType) -> None:
        if target is DType.FLOAT16:
            self._wrap_output(port, "CAST", DType.FLOAT16)
            return
        wanted = DType.INT8 if target is DType.UINT8 else target
        node = self._producer(port, "DEQUANTIZE", lambda t: tflite_edit.per_tensor(t) is not None
                              and t.dtype in INTEGER)
        source = port.graph.tensor(port.graph.inputs_of(node.name)[0])
        if source.dtype is not wanted:
            raise PassError(f"set_io_types: output {port.tensor.name!r} is dequantized from {source.dtype.value} by "
                            f"{node.name!r}: it can be {_choices(source.dtype)}, not {target.value}")
        if target is DType.UINT8:
            scale, zero_point = tflite_edit.per_tensor(source)
            tflite_edit.retype_operator(node, "QUANTIZE")
            port.tensor.dtype = DType.UINT8
            port.tensor.quantization = quantization((scale, zero_point + UINT8_SHIFT))
        else:
            tflite_edit.bypass(self.model, port.graph, node.name)

    def _producer(self, port: _Port, op: str, input_ok: Callable[[Tensor], bool]) -> Node:
        """The operator computing the output, which must be a plain `op` of an input that
        passes `input_ok`, whose result nothing else reads; PassError saying what is there."""
        graph, label, ref = port.graph, port.tensor.name, port.ref
        node = graph.node(ref.node)
        inputs = graph.inputs_of(node.name) if ops.is_operator(node) else []
        source = graph.tensor(inputs[0]) if inputs and inputs[0] is not None else None
        if node.op != op or keys.is_custom(node) or ref.port != 0 or source is None or not input_ok(source):
            what = f"{node.op} {node.name!r}" + (f" (of {source.dtype.value})" if node.op == op and source else "")
            raise PassError(f"set_io_types: output {label!r} is computed by {what}, not by a plain {op}: the model "
                            "computes it as it is")
        readers = graph.consumers(ref)
        if readers:
            raise PassError(f"set_io_types: output {label!r} of {op} {node.name!r} is also read by "
                            f"{graph.node(readers[0][0]).op} {readers[0][0]!r}: its {op} stays")
        return node

    def _wrap_output(self, port: _Port, op: str, dtype: DType) -> None:
        """`op` after the output, giving it as `dtype`, by the output's name."""
        graph, ref = port.graph, port.ref
        inner = port.tensor
        if ref.node in graph.inputs:
            raise PassError(f"set_io_types: output {inner.name!r} is an input of the model too")
        name = tflite_edit.split_name(graph, ref)
        ref = port.ref  # the producer may have been renamed
        outer = Tensor(name, dtype, inner.shape)
        node = tflite_edit.add_operator(graph, op, [ref], outer)
        graph.outputs[port.index] = Ref(node.name, 0)
        tflite_edit.retarget_signatures(self.model, inner, outer)
