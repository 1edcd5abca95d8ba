"""strip_unused_nodes for TFLite: make --inputs/--outputs the model's inputs and outputs,
drop what no output needs, then the buffers, operator codes and subgraphs nothing uses any
more."""
from __future__ import annotations

from ...ir import Graph
from ..helpers.tflite_cut import cut, tensor_ref
from ..registry import Context, NoParams, PassResult, register


@register("strip_unused_nodes", NoParams, formats=("tflite",), guarantee="exact")
def strip_unused_nodes(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Remove what no output needs, then the unused buffers, operator codes and subgraphs; --inputs and --outputs cut the model there.

    Operators and tensors no subgraph output needs go. Kept in each subgraph: its inputs
    (a subgraph's inputs are its calling convention), what its outputs need, and operators
    with side effects or unknown semantics (variables, CALL_ONCE, control flow, hash
    tables, custom ops, operators without outputs) with what they need.

    --outputs (tensor names, or `operator:port`) become the main subgraph's outputs.
    --inputs become its inputs, as the Graph Transform Tool's do: any tensor an operator
    computes may be one (it keeps its name, type, shape and quantization), and what only it
    needed goes; the model's inputs still needed stay, after them. An input whose operator
    is still needed for another of its outputs, a constant and a variable are refused. The
    main subgraph's signature def then names exactly its inputs and outputs: entries of
    those it already named keep their keys, new ones are keyed by tensor name. GTT's
    type/shape parameters, which make the Placeholders a GraphDef input becomes, have no
    TFLite counterpart: a TFLite input keeps its tensor's own.

    Buffer 0 (the empty one) and metadata buffers stay; the rest are renumbered in order.
    A subgraph goes when no kept operator and no signature refers to it. Exact: what stays
    is not changed. Stats: removed, inputs_replaced, subgraphs_removed, buffers_dropped,
    bytes_dropped, operator_codes_dropped."""
    inputs = [tensor_ref(graph, name) for name in context.inputs] if context.inputs else None
    outputs = [tensor_ref(graph, name) for name in context.outputs] if context.outputs else None
    stats = cut(graph, inputs, outputs)
    return PassResult(any(stats.values()), stats)
