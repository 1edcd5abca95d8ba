"""rename_op for TFLite: give custom operators another custom code."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...formats.tflite import keys, ops, tables
from ...ir import Graph
from ..registry import Context, PassError, PassResult, register


@dataclass(frozen=True)
class Params:
    old_op_name: str = field(default="", metadata={"doc": "custom code to rename"})
    new_op_name: str = field(default="", metadata={"doc": "its new custom code"})


@register("rename_op", Params, formats=("tflite",), guarantee="structure only")
def rename_op(graph: Graph, params: Params, context: Context) -> PassResult:
    """Give every custom operator with code `old_op_name` the code `new_op_name` (its custom options unchanged).

    For a runtime that registers a kernel under another name (a renamed or vendor custom op,
    a stand-in for a Flex op). Every subgraph; the operator code is renamed where it stands in
    the model's list, so operators keep their opcode indices. Builtin operators have fixed codes: naming a builtin as either name is
    refused, as is an empty name. stats: renamed."""
    old, new = params.old_op_name, params.new_op_name
    builtins = ops.builtin_codes()
    if not old or not new:
        raise PassError("rename_op: give old_op_name= and new_op_name= (custom operator codes)")
    try:
        new.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise PassError(f"rename_op: new_op_name {new!r} cannot be written as UTF-8") from None
    for name in (old, new):
        if name in builtins:
            raise PassError(f"rename_op: {name} is a builtin operator, whose code is fixed; rename_op renames "
                            "custom operator codes")
    renamed = 0
    for sub in tables.subgraphs(graph):
        for node in sub:
            if node.op == old and keys.is_custom(node):
                node.op = new
                renamed += 1
    if renamed:
        _rename_codes(graph, old, new)
    return PassResult(renamed > 0, {"renamed": renamed})


def _rename_codes(graph: Graph, old: str, new: str) -> None:
    """The operator codes of `old` become codes of `new` in place, so operators keep their
    opcode indices (new records: the list as read is shared)."""
    code = new.encode("utf-8", "surrogateescape")
    graph.meta[keys.OPERATOR_CODES] = [
        {**entry, "custom_code": code} if ops.is_custom(entry) and ops.op_name(entry) == old else entry
        for entry in graph.meta.get(keys.OPERATOR_CODES) or []]
