"""Apply an integer plan (integer_plan.Plan) to a TFLite graph: integer operators read and write
integer tensors, weights become int8 (symmetric, per channel), biases int32 (int64 in 16x8),
constants read as activations are quantized with their value's parameters, and QUANTIZE /
DEQUANTIZE go wherever a float tensor meets an integer operator.

Names: a tensor that is integer only keeps its name; where a float tensor and its integer
form both exist, the float one keeps the name (and its place in the model's tensor list and
signature defs) and the integer one adds `_int8` / `_int16`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Protocol

import numpy as np

from ...formats.tflite import keys, tables
from ...ir import CONST_OP, DType, Graph, Node, Quantization, Ref, Tensor, make_const
from ...ir.quantization import bias_scales, quantize, quantize_bias, symmetric
from .integer_plan import IntOp, Params, Plan, Value

WEIGHT_QMAX = 127  # int8 weights in [-127, 127]
# Options tables of the operators whose 16x8 form sets an option (integer_ops.OpRule.int16_attrs).
OPTIONS_TABLES = {"ADD": "AddOptions", "SUB": "SubOptions", "CONV_2D": "Conv2DOptions",
                  "FULLY_CONNECTED": "FullyConnectedOptions", "TRANSPOSE_CONV": "TransposeConvOptions"}


@dataclass
class Rewritten:
    """What the rewrite did, for the transform's stats."""

    counts: Counter
    bias_clipped: int


class Rounder(Protocol):
    def round(self, weights: np.ndarray, axis: int | None, qmax: int) -> tuple[np.ndarray, np.ndarray]: ...


def apply(graph: Graph, plan: Plan, per_channel: bool, rounding: str = "away",
          rounders: Mapping[str, Rounder] | None = None) -> Rewritten:
    """Rewrite `graph` as `plan` says. Weights round as `rounding` says (symmetric()'s away or
    even), or through the operator's entry in `rounders` (gptq.Layer) where it has one."""
    rewriter = _Rewriter(graph, plan, per_channel, rounding, rounders or {})
    rewriter.run()
    return Rewritten(rewriter.counts, rewriter.bias_clipped)


def quantization(params: Params) -> Quantization:
    scale, zero_point = params
    return Quantization(np.array([scale], np.float32), np.array([zero_point], np.int64), 0)


class _Rewriter:
    def __init__(self, graph: Graph, plan: Plan, per_channel: bool, rounding: str, rounders: Mapping[str, Rounder]):
        self.graph, self.plan, self.per_channel = graph, plan, per_channel
        self.rounding, self.rounders = rounding, rounders
        self.dtype = plan.dtype
        self.suffix = f"_{plan.dtype.value}"
        self.integer: dict[Value, Ref] = {}  # where each value's integer form is read
        self.stored: dict[tuple, str] = {}  # (constant, how quantized) -> the integer constant's node
        self.replaced: set[str] = set()  # float constants some integer constant replaced
        self.counts: Counter = Counter()
        self.bias_clipped = 0

    def run(self) -> None:
        for op in self.plan.ops.values():
            self._outputs(op)
        for op in self.plan.ops.values():
            for slot, value in op.inputs.items():
                self._input(op, slot, value)
            if op.rule.weight is not None:
                self._weights(op)
            if self.dtype is DType.INT16 and op.rule.int16_attrs:
                self._set_options(op, dict(op.rule.int16_attrs))
        self._drop_unused_constants()
        self.graph.toposort()

    # -- outputs ---------------------------------------------------------------------------------
    def _outputs(self, op: IntOp) -> None:
        """Each quantized output becomes integer; when something still reads it as float (a
        float operator, a graph output), that reader gets a DEQUANTIZE of it."""
        node = op.node
        for port, value in op.outputs.items():
            ref, tensor = Ref(node.name, port), node.outputs[port]
            readers = [(c, s) for c, s in self.graph.consumers(ref) if not self._reads_integer(c, s)]
            is_output = ref in self.graph.outputs
            params = self.plan.params[value]
            self.integer[value] = ref
            if not readers and not is_output:
                tensor.dtype, tensor.quantization = self.dtype, quantization(params)
                continue
            node.outputs[port] = Tensor(tensor.name + self.suffix, self.dtype, tensor.shape,
                                        quantization=quantization(params))
            dequantize = self._add_op("DEQUANTIZE", self.graph.unique_name(f"{tensor.name}/dequantize"), ref, tensor)
            for consumer, slot in readers:
                self.graph.set_input(consumer, slot, dequantize)
            self.graph.outputs = [dequantize if out == ref else out for out in self.graph.outputs]
            self.counts["dequantize_added"] += 1

    def _reads_integer(self, consumer: str, slot: int) -> bool:
        op = self.plan.ops.get(consumer)
        return op is not None and slot in op.inputs

    # -- inputs ----------------------------------------------------------------------------------
    def _input(self, op: IntOp, slot: int, value: Value) -> None:
        ref = self.graph.inputs_of(op.node.name)[slot]
        kind = value[0]
        if kind == "tensor" and value in self.integer and self.integer[value] == ref:
            return  # an integer operator's output, read in place
        params = self.plan.params[value]
        if kind == "const":
            target = self._constant(ref, params)
        elif kind == "tensor":
            target = self._quantized(value, ref, params)
        elif self.graph.node(ref.node).op == CONST_OP:  # requantize a constant: quantize it so
            target = self._constant(ref, params)
        elif ref.node in self.plan.ops:  # requantize an integer operator's output: int -> int
            target = self._add_op("QUANTIZE", self.graph.unique_name(f"{ref.node}/requantize"), ref,
                                  self._new_tensor(self.graph.tensor(ref).name + "_requantized", ref, params))
            self.counts["requantize_added"] += 1
        else:  # requantize a float tensor: quantize it so
            target = self._quantized(value, ref, params)
        self.graph.set_input(op.node.name, slot, target)

    def _quantized(self, value: Value, ref: Ref, params: Params) -> Ref:
        """The integer form of a float tensor: one QUANTIZE per value."""
        if value not in self.integer:
            tensor = self.graph.tensor(ref)
            self.integer[value] = self._add_op("QUANTIZE", self.graph.unique_name(tensor.name + self.suffix), ref,
                                               self._new_tensor(tensor.name + self.suffix, ref, params))
            self.counts["quantize_added"] += 1
        return self.integer[value]

    def _constant(self, ref: Ref, params: Params) -> Ref:
        """A float constant read as an activation, quantized with `params` (asymmetric)."""
        values = np.asarray(self.graph.tensor(ref).data, np.float32)
        data = quantize(values, params[0], params[1], self.dtype.numpy)
        return self._store(ref, ("activation", params), data, quantization(params))

    # -- weights and biases -----------------------------------------------------------------------
    def _weights(self, op: IntOp) -> None:
        rule, inputs = op.rule, self.graph.inputs_of(op.node.name)
        weight_ref = inputs[rule.weight.slot]
        axis = rule.weight.axis if self.per_channel else None
        weights = np.asarray(self.graph.tensor(weight_ref).data, np.float32)
        rounder = self.rounders.get(op.node.name)
        data, scales = rounder.round(weights, axis, WEIGHT_QMAX) if rounder is not None else \
            symmetric(weights, axis, WEIGHT_QMAX, rounding=self.rounding)
        zeros = np.zeros(scales.size, np.int64)
        self.graph.set_input(op.node.name, rule.weight.slot, self._store(
            weight_ref, ("weight", axis), data, Quantization(scales, zeros, axis or 0)))
        self.counts["weights"] += 1
        bias_ref = inputs[rule.bias] if rule.bias is not None and rule.bias < len(inputs) else None
        if bias_ref is None:
            return
        input_scale = self.plan.params[op.inputs[rule.inputs[0]]][0]
        bias_scale = bias_scales(input_scale, scales)
        dtype = np.int64 if self.dtype is DType.INT16 else np.int32
        bias, clipped = quantize_bias(np.asarray(self.graph.tensor(bias_ref).data, np.float32), bias_scale, dtype)
        self.bias_clipped += clipped
        self.graph.set_input(op.node.name, rule.bias, self._store(
            bias_ref, ("bias", bias_scale.tobytes()), bias, Quantization(bias_scale, np.zeros(bias_scale.size, np.int64), 0)))
        self.counts["biases"] += 1

    # -- constants --------------------------------------------------------------------------------
    def _store(self, ref: Ref, how: tuple, data: np.ndarray, quant: Quantization) -> Ref:
        """The constant at `ref` stored quantized: in place when every reader reads it this way
        (the tensor keeps its name and buffer), else as a new constant beside it."""
        key = (ref.node, ref.port, how)
        if key in self.stored:
            return Ref(self.stored[key], 0)
        tensor = self.graph.tensor(ref)
        dtype = DType.from_numpy(data.dtype)
        if self._only_reader(ref, how):
            tensor.dtype, tensor.data, tensor.quantization = dtype, data, quant
            name = ref.node
        else:
            name = self.graph.unique_name(tensor.name + self.suffix)
            node = make_const(name, data, dtype)
            node.outputs[0].quantization = quant
            self.graph.add_node(node)
            self.replaced.add(ref.node)
        self.stored[key] = name
        self.counts["constants"] += 1
        return Ref(name, 0)

    def _only_reader(self, ref: Ref, how: tuple) -> bool:
        """True when every reader of the constant is an integer operator reading it as `how`
        (a bias: one reader, its scale depends on the reader's input)."""
        named = {id(t) for t in tables.signature_tensors(self.graph, self.graph)}
        if ref.port != 0 or ref in self.graph.outputs or id(self.graph.tensor(ref)) in named:
            return False
        readers = self.graph.consumers(ref)
        if how[0] == "bias":
            return len(readers) == 1
        return all(consumer in self.plan.ops and self._use_of(self.plan.ops[consumer], slot) == how
                   for consumer, slot in readers)

    def _use_of(self, op: IntOp, slot: int) -> tuple | None:
        """How integer operator `op` reads the constant at `slot` (as _store's `how`)."""
        rule = op.rule
        if rule.weight is not None and slot == rule.weight.slot:
            return ("weight", rule.weight.axis if self.per_channel else None)
        if slot in op.inputs and op.inputs[slot][0] != "requant":
            return ("activation", self.plan.params[op.inputs[slot]])
        return None

    def _drop_unused_constants(self) -> None:
        buffers = set()
        for name in sorted(self.replaced):
            if name in self.graph and not self.graph.is_used(name) and \
                    all(ref.node != name for ref in self.graph.outputs):
                buffers.add(tables.buffer_of(self.graph.node(name).outputs[0]))
                self.graph.remove_node(name)
        if buffers - {0}:
            tables.compact_buffers(self.graph, buffers - {0})

    # -- helpers ----------------------------------------------------------------------------------
    def _new_tensor(self, name: str, like: Ref, params: Params) -> Tensor:
        return Tensor(name, self.dtype, self.graph.tensor(like).shape, quantization=quantization(params))

    def _add_op(self, op: str, name: str, source: Ref, output: Tensor) -> Ref:
        self.graph.add_node(Node(name, op, outputs=[output], meta={keys.VERSION: 1}), inputs=[source])
        return Ref(name, 0)

    def _set_options(self, op: IntOp, attrs: dict) -> None:
        """Set the options the 16x8 kernel is written with (quantized_bias_type only where
        there is a bias)."""
        inputs = self.graph.inputs_of(op.node.name)
        if op.rule.bias is None or op.rule.bias >= len(inputs) or inputs[op.rule.bias] is None:
            attrs.pop("quantized_bias_type", None)
        if attrs:
            op.node.meta.setdefault(keys.OPTIONS_TYPE, OPTIONS_TABLES[op.node.op])
            op.node.attrs = {**op.node.attrs, **attrs}
