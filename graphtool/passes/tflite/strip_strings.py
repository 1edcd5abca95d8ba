"""strip_strings: remove the names and descriptions a TFLite model does not need to run."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...ir import Graph, Tensor
from ..registry import Context, PassResult, register
from ..helpers import tflite_model


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
    for sub in tflite_model.subgraphs(graph):
        if sub.name or (sub.meta.get("tflite.subgraph") or {}).get("name") is not None:
            names += 1
            sub.name = ""
            sub.meta["tflite.subgraph"] = {k: v for k, v in (sub.meta.get("tflite.subgraph") or {}).items()
                                           if k != "name"}
        for node in sub:
            for tensor in node.outputs:
                names += _unname(tensor)
    header = graph.meta.get("tflite.header") or {}
    description = bool(graph.meta.get("description")) or header.get("description") is not None
    if description:
        graph.meta["description"] = ""
        graph.meta["tflite.header"] = {k: v for k, v in header.items() if k != "description"}
    signatures = 0
    if not params.keep_signature_defs and graph.meta.get("signature_defs"):
        signatures = len(graph.meta["signature_defs"])
        graph.meta["signature_defs"] = None
    stats = {"names_removed": names, "description_removed": description, "signature_defs_removed": signatures}
    return PassResult(bool(names or description or signatures), stats)


def _unname(tensor: Tensor) -> int:
    """Clear a tensor's name. A tensor unchanged since it was read keeps its table as read
    without the name field (as TF leaves it), so its read record loses the name too; a
    changed one is described anew by the writer, with an empty name."""
    table = tensor.meta.get("tflite.table")
    if not tensor.name and (table is None or table.get("name") is None):
        return 0
    unchanged = table is not None and tensor.meta.get("tflite.read") == (
        tensor.name, tensor.dtype, tensor.shape, tensor.quantization)
    tensor.name = ""
    if table is not None:
        tensor.meta["tflite.table"] = {k: v for k, v in table.items() if k != "name"}
    if unchanged:
        tensor.meta["tflite.read"] = (tensor.name, tensor.dtype, tensor.shape, tensor.quantization)
    return 1
