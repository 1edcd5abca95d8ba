"""remove_nodes for TFLite: bypass operators of the given types (GTT semantics), where what
every other operator reads stays the same."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ...formats.tflite import keys, tables
from ...ir import Graph, Node, Ref, Tensor
from ..helpers import tflite_edit, tflite_rewrite
from ..helpers.skips import Skip, Skips
from ..registry import Context, PassResult, register


@dataclass(frozen=True)
class Params:
    op: list[str] = field(default_factory=list, metadata={"doc": "operator to bypass, e.g. DEQUANTIZE (repeat for several)"})
    max_inputs: int = field(default=1, metadata={
        "doc": "only bypass operators with at most this many inputs that are not constants"})


@register("remove_nodes", Params, formats=("tflite",), guarantee="exact")
def remove_nodes(graph: Graph, params: Params, context: Context) -> PassResult:
    """Bypass operators of the given types: what read the operator's output reads its first input instead.

    As the Graph Transform Tool's remove_nodes, for TFLite: operators in `op` with at most
    max_inputs inputs that are not constants (a RESHAPE's shape is a constant) go, repeating
    until nothing changes; constants only they read go too, and the buffers and operator codes
    nothing uses any more. A bypass that would change what an operator reads — another type,
    shape or quantization — is left alone with the reason (stats["skipped"]): a RESHAPE that
    reshapes stays, a no-op one goes. The outputs of the main subgraph and of signatures may
    change, which is what removing a trailing DEQUANTIZE means: the model then gives the
    integers it dequantized, and the tensor takes the output's name (signature keys follow;
    set_io_types changes the whole interface). Also left alone: custom operators, operators
    named by --inputs/--outputs, ones with several outputs or whose output an operator names
    as an intermediate, and, where the type, shape or quantization would change, outputs of
    subgraphs that operators call. Exact for operators that pass their first input through (a
    RESHAPE to the same shape, a DEQUANTIZE at an output); other values are what you asked
    for. stats: removed (op -> count), skipped."""
    keep = set(context.inputs) | set(context.outputs)
    wanted = set(params.op)
    skipped = Skips("remove_nodes", context.log)
    entries = tflite_edit.entry_graphs(graph)
    removed: Counter[str] = Counter()
    buffers, codes = tables.used_buffers(graph), tables.used_operator_codes(graph)
    for sub in tables.subgraphs(graph):
        refusals: dict[str, Skip] = {}
        left: list[str] = []
        changed = True
        while changed:
            changed = False
            for node in [n for n in sub if n.op in wanted and not keys.is_custom(n) and not _named(n, keep)]:
                try:
                    _check(sub, node, params.max_inputs, any(sub is g for g in entries))
                except Skip as skip:
                    refusals[node.name] = skip
                    continue
                refusals.pop(node.name, None)
                left += [r.node for r in sub.inputs_of(node.name) if r is not None]
                tflite_edit.bypass(graph, sub, node.name)
                removed[node.op] += 1
                changed = True
        for name, skip in refusals.items():
            skipped.add(name, skip)
        tflite_rewrite.remove_unused(sub, left, tflite_rewrite.pinned(graph, sub))
    if removed:
        tables.compact_buffers(graph, buffers)
        tables.compact_operator_codes(graph, codes)
    return PassResult(bool(removed), {"removed": dict(sorted(removed.items())), "skipped": skipped.stats()})


def _named(node: Node, names: set[str]) -> bool:
    return node.name in names or any(t.name in names for t in node.outputs)


def _check(graph: Graph, node: Node, max_inputs: int, is_entry: bool) -> None:
    """Skip unless bypassing `node` leaves what operators read as it was."""
    inputs = graph.inputs_of(node.name)
    if not inputs or inputs[0] is None:
        raise Skip("no_input")
    computed = [r for r in inputs if r is not None and tflite_rewrite.constant(graph, r) is None]
    if len(computed) > max_inputs:
        raise Skip("inputs", f"{len(computed)} inputs that are not constants (max_inputs={max_inputs})")
    if len(node.outputs) != 1:
        raise Skip("other_outputs", f"{len(node.outputs)} outputs")
    out, source = node.outputs[0], graph.tensor(inputs[0])
    if any(any(t is out for t in n.meta.get(keys.INTERMEDIATES) or ()) for n in graph):
        raise Skip("intermediate")
    readers = graph.consumers(Ref(node.name, 0))
    difference = _difference(source, out)
    if difference is None or not readers and Ref(node.name, 0) not in graph.outputs:
        return
    if readers:
        raise Skip(f"changes_{difference}", f"{readers[0][0]!r} would read {source.name!r} for {out.name!r}")
    if not is_entry:
        raise Skip(f"changes_{difference}", f"{out.name!r} is an output of a subgraph an operator calls")


def _difference(source: Tensor, out: Tensor) -> str | None:
    """What a reader of `out` would see changed if it read `source`: its type, shape or
    quantization; None when nothing."""
    if source.dtype is not out.dtype:
        return "type"
    if source.shape != out.shape:
        return "shape"
    if not tflite_edit.same_quantization(source.quantization, out.quantization):
        return "quantization"
    return None
