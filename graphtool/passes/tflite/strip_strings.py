"""strip_strings: remove the names and descriptions a TFLite model does not need to run."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...formats.tflite import keys, tables
from ...ir import Graph, Tensor
from ..registry import Context, PassResult, register


@dataclass(frozen=True)
class Params:
    keep_signature_defs: bool = field(default=False, metadata={
        "doc": "keep the signature defs (their keys and input/output names), which TF's strip_strings drops"})


@register("strip_strings", Params, formats=("tflite",), guarantee="exact")
def strip_strings(graph: Graph, params: Params, context: Context) -> PassResult:
    """Remove names and descriptions the model does not need to run (TF's strip_strings).

    As TensorFlow's flatbuffer_utils.strip_strings does: removes the model description,
    subgraph names, tensor names, and the signature defs (unless keep_signature_defs=true). Operator custom codes,
    metadata names and values, and strings inside operator options stay. Exact: only names
    change; inputs and outputs are then found by position (or by signature, when kept)."""
    names = 0
    for sub in tables.subgraphs(graph):
        if sub.name or (sub.meta.get(keys.SUBGRAPH) or {}).get("name") is not None:
            names += 1
            sub.name = ""
            sub.meta[keys.SUBGRAPH] = {k: v for k, v in (sub.meta.get(keys.SUBGRAPH) or {}).items()
                                           if k != "name"}
        for node in sub:
            for tensor in node.outputs:
                names += _unname(tensor)
    header = graph.meta.get(keys.HEADER) or {}
    description = bool(graph.meta.get(keys.DESCRIPTION)) or header.get("description") is not None
    if description:
        graph.meta[keys.DESCRIPTION] = ""
        graph.meta[keys.HEADER] = {k: v for k, v in header.items() if k != "description"}
    signatures = 0
    if not params.keep_signature_defs and graph.meta.get(keys.SIGNATURE_DEFS):
        signatures = len(graph.meta[keys.SIGNATURE_DEFS])
        graph.meta[keys.SIGNATURE_DEFS] = None
    stats = {"names_removed": names, "description_removed": description, "signature_defs_removed": signatures}
    return PassResult(bool(names or description or signatures), stats)


def _unname(tensor: Tensor) -> int:
    """Clear a tensor's name. A tensor unchanged since it was read keeps its table as read
    without the name field (as TF leaves it), so its read record loses the name too; a
    changed one is described anew by the writer, with an empty name."""
    table = tensor.meta.get(keys.TABLE)
    if not tensor.name and (table is None or table.get("name") is None):
        return 0
    unchanged = table is not None and keys.described_as_read(tensor)
    tensor.name = ""
    if table is not None:
        tensor.meta[keys.TABLE] = {k: v for k, v in table.items() if k != "name"}
    if unchanged:
        keys.mark_described(tensor)
    return 1
