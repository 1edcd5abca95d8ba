"""rename_node for TFLite: give one tensor a new name, and the operator named after it."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...formats.tflite import tables
from ...ir import Graph, Ref
from ..helpers.tflite_cut import find_tensor
from ..registry import Context, PassError, PassResult, register


@dataclass(frozen=True)
class Params:
    old_node_name: str = field(default="", metadata={"doc": "tensor (or operator) to rename"})
    new_node_name: str = field(default="", metadata={"doc": "its new name"})


@register("rename_node", Params, formats=("tflite",), guarantee="structure only")
def rename_node(graph: Graph, params: Params, context: Context) -> PassResult:
    """Rename tensor `old_node_name` to `new_node_name`; the operator named after it follows.

    `old_node_name` names a tensor (or the operator that computes it, whose first output it
    is, or `operator:port`) in any one subgraph. Signature defs keep naming it (their keys do
    not change: rename_signature renames those), and so do the subgraph's inputs and outputs:
    LiteRT's get_input_details and get_output_details show the new name. Refused when another
    tensor or operator of its subgraph already has the new name, or when the old name is in
    several subgraphs. Only the name changes in the file. Stats: renamed."""
    old, new = params.old_node_name, params.new_node_name
    if not old or not new:
        raise PassError("rename_node: give old_node_name and new_node_name")
    sub, ref = _find(graph, old)
    if new != old and (new in sub or any(t.name == new for node in sub for t in node.outputs)):
        raise PassError(f"rename_node: a tensor named {new!r} already exists")
    tensor = sub.tensor(ref)
    tables.rename(tensor, new)
    if ref.node == old:
        sub.rename_node(old, new)
    return PassResult(new != old, {"renamed": int(new != old)})


def _find(graph: Graph, name: str) -> tuple[Graph, Ref]:
    """The one subgraph naming `name`, and the tensor there."""
    found = [(sub, ref) for sub in tables.subgraphs(graph) if (ref := find_tensor(sub, name)) is not None]
    if not found:
        raise PassError(f"rename_node: no tensor named {name!r}")
    if len(found) > 1:
        where = ", ".join(str(i) for i, sub in enumerate(tables.subgraphs(graph)) if any(sub is s for s, _ in found))
        raise PassError(f"rename_node: {name!r} names tensors in subgraphs {where}; rename_node renames a name "
                        "found in one subgraph only")
    return found[0]
