"""A TFLite operator as the compatibility rules see it: its tensors by slot, which are
constant, its options and version, and where it sits (subgraph, execution index).

This mirrors TFLite's OpSignature (tensorflow/lite/tools/versioning/op_signature.h).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from ...formats.tflite import keys as tflite_keys
from ...formats.tflite.ops import is_operator
from ...ir import CONST_OP, DType, Graph, Node, Ref, Tensor

DEQUANTIZE_OP = "DEQUANTIZE"


@dataclass(frozen=True)
class TensorSpec:
    tensor: Tensor
    is_const: bool

    @property
    def dtype(self) -> DType | None:
        return self.tensor.dtype

    @property
    def shape(self) -> tuple | None:
        return self.tensor.shape

    @property
    def rank(self) -> int | None:
        return None if self.tensor.shape is None else len(self.tensor.shape)

    @property
    def dims(self) -> tuple:
        """The shape with unknown sizes as -1 (as op_signature reports them); () for unknown rank."""
        return tuple(-1 if d is None else int(d) for d in (self.tensor.shape or ()))

    @property
    def quantized(self) -> bool:
        return self.tensor.quantization is not None


@dataclass
class OpSignature:
    graph: Graph
    node: Node
    subgraph: int
    index: int
    inputs: list[TensorSpec | None]  # None: an absent optional input (-1)
    outputs: list[TensorSpec]

    @property
    def op(self) -> str:
        return self.node.op

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def custom(self) -> bool:
        return bool(tflite_keys.is_custom(self.node))

    @property
    def version(self) -> int:
        return tflite_keys.op_version(self.node)

    @property
    def options(self) -> dict[str, Any]:
        return self.node.attrs

    def option(self, name: str, default: Any = 0) -> Any:
        value = self.node.attrs.get(name, default)
        return default if value is None else value

    def input(self, slot: int) -> TensorSpec | None:
        return self.inputs[slot] if 0 <= slot < len(self.inputs) else None

    def present_inputs(self) -> list[TensorSpec]:
        return [spec for spec in self.inputs if spec is not None]

    @property
    def runtime_inputs(self) -> int:
        """Inputs that are neither constant nor absent (GetNumberOfRuntimeInputs)."""
        return sum(1 for spec in self.inputs if spec is not None and not spec.is_const)

    @property
    def const_inputs(self) -> int:
        return sum(1 for spec in self.inputs if spec is not None and spec.is_const)


def graphs_of(graph: Graph) -> list[Graph]:
    """The main subgraph and the others, in model order (index = subgraph number)."""
    return [graph, *getattr(graph, "subgraphs", [])]


def operators(graph: Graph, const_dequantize: frozenset[DType] = frozenset()) -> Iterator[OpSignature]:
    """Every operator of every subgraph, in execution order. `const_dequantize`: see signature."""
    for number, sub in enumerate(graphs_of(graph)):
        index = 0
        for node in sub:
            if not is_operator(node):
                continue
            yield signature(sub, node, number, index, const_dequantize)
            index += 1


def primary_operators(graph: Graph) -> list[OpSignature]:
    """The operators of the primary subgraph (0), in execution order."""
    nodes = [node for node in graph if is_operator(node)]
    return [signature(graph, node, 0, index) for index, node in enumerate(nodes)]


def signature(graph: Graph, node: Node, subgraph: int, index: int,
              const_dequantize: frozenset[DType] = frozenset()) -> OpSignature:
    """The operator's signature. An input that a DEQUANTIZE computes from a constant of a
    type in `const_dequantize` is shown as that constant, the way a delegate that reads
    such constants itself sees it (the GPU delegate's FP16GraphPartitionHelper does so for
    float16: RemapFp16InputTensors)."""
    inputs: list[TensorSpec | None] = []
    for ref in graph.inputs_of(node.name):
        if ref is None:
            inputs.append(None)
            continue
        producer = graph.node(ref.node)
        folded = constant_dequantize_source(graph, producer, const_dequantize) if const_dequantize else None
        if folded is not None:
            producer, ref = folded
        tensor = producer.outputs[ref.port] if ref.port < len(producer.outputs) else Tensor(ref.node, None, None)
        inputs.append(TensorSpec(tensor, _is_const(producer)))
    return OpSignature(graph, node, subgraph, index, inputs, [TensorSpec(t, False) for t in node.outputs])


def constant_dequantize_source(graph: Graph, node: Node, types: frozenset[DType]) -> tuple[Node, Ref] | None:
    """(the constant, its ref) when `node` is a DEQUANTIZE of a constant whose type is in
    `types`; None otherwise."""
    if node.op != DEQUANTIZE_OP or tflite_keys.is_custom(node):
        return None
    refs = graph.inputs_of(node.name)
    if len(refs) != 1 or refs[0] is None:
        return None
    source = graph.node(refs[0].node)
    if not _is_const(source) or refs[0].port >= len(source.outputs):
        return None
    return (source, refs[0]) if source.outputs[refs[0].port].dtype in types else None


def _is_const(node: Node) -> bool:
    return node.op == CONST_OP and not tflite_keys.is_custom(node)
