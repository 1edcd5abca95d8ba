"""rename_signature: give a signature def a new key, and its inputs and outputs new keys."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...formats.tflite import keys
from ...ir import Graph, Tensor
from ..registry import Context, PassError, PassResult, register

Entries = list[tuple[str, Tensor]]


@dataclass(frozen=True)
class Params:
    old_name: str = field(default="", metadata={"doc": "signature to rename (may be left out when there is one)"})
    new_name: str = field(default="", metadata={"doc": "its new key (empty: keep it)"})
    old_input_name: list[str] = field(default_factory=list, metadata={"doc": "input key to rename (repeat for several)"})
    new_input_name: list[str] = field(default_factory=list, metadata={"doc": "its new key, in the same order"})
    old_output_name: list[str] = field(default_factory=list,
                                       metadata={"doc": "output key to rename (repeat for several)"})
    new_output_name: list[str] = field(default_factory=list, metadata={"doc": "its new key, in the same order"})


@register("rename_signature", Params, formats=("tflite",), guarantee="structure only")
def rename_signature(graph: Graph, params: Params, context: Context) -> PassResult:
    """Rename a signature def (`old_name` to `new_name`) and the keys of its inputs and outputs.

    Input keys are renamed pairwise: the first old_input_name becomes the first
    new_input_name, and so on; outputs likewise. What LiteRT's get_signature_list and
    signature runners use changes; the tensors, their names (rename_node renames those)
    and the subgraph do not. Refused when a name is not there, when the new key is another
    signature's, or when two inputs (or outputs) would share a key. Stats:
    signatures_renamed, inputs_renamed, outputs_renamed."""
    signatures = graph.meta.get(keys.SIGNATURE_DEFS) or []
    if not signatures:
        raise PassError("rename_signature: the model has no signature defs")
    if not (params.new_name or params.old_input_name or params.old_output_name):
        raise PassError("rename_signature: nothing to rename: give new_name, old_input_name/new_input_name or "
                        "old_output_name/new_output_name")
    index = _signature(signatures, params.old_name)
    sig = signatures[index]
    key = params.new_name or sig["key"]
    if any(other["key"] == key for i, other in enumerate(signatures) if i != index):
        raise PassError(f"rename_signature: a signature named {key!r} already exists")
    inputs = _renamed(sig["inputs"], params.old_input_name, params.new_input_name, f"{sig['key']!r} input")
    outputs = _renamed(sig["outputs"], params.old_output_name, params.new_output_name, f"{sig['key']!r} output")
    stats = {"signatures_renamed": int(key != sig["key"]), "inputs_renamed": _changes(sig["inputs"], inputs),
             "outputs_renamed": _changes(sig["outputs"], outputs)}
    if any(stats.values()):
        renamed = {**sig, "key": key, "inputs": inputs, "outputs": outputs}
        graph.meta[keys.SIGNATURE_DEFS] = [renamed if i == index else s for i, s in enumerate(signatures)]
    return PassResult(any(stats.values()), stats)


def _signature(signatures: list[dict], name: str) -> int:
    """The index of the signature keyed `name` (the only one, when `name` is empty)."""
    known = ", ".join(repr(sig["key"]) for sig in signatures)
    if not name:
        if len(signatures) > 1:
            raise PassError(f"rename_signature: the model has {len(signatures)} signatures ({known}): give old_name")
        return 0
    for index, sig in enumerate(signatures):
        if sig["key"] == name:
            return index
    raise PassError(f"rename_signature: no signature named {name!r} (signatures: {known})")


def _renamed(entries: Entries, old: list[str], new: list[str], what: str) -> Entries:
    """`entries` with the keys of `old` renamed to those of `new`, pairwise."""
    if len(old) != len(new):
        raise PassError(f"rename_signature: {len(old)} old and {len(new)} new {what.split()[-1]} names: give them in pairs")
    if "" in new:
        raise PassError(f"rename_signature: an empty {what} name")
    mapping = dict(zip(old, new))
    present = [key for key, _ in entries]
    for name in old:
        if name not in present:
            raise PassError(f"rename_signature: no {what} named {name!r} (keys: {', '.join(present)})")
    result = [(mapping.get(key, key), tensor) for key, tensor in entries]
    keys_after = [key for key, _ in result]
    clash = next((key for key in keys_after if keys_after.count(key) > 1), None)
    if clash is not None:
        raise PassError(f"rename_signature: two {what}s would be named {clash!r}")
    return result


def _changes(before: Entries, after: Entries) -> int:
    return sum(a[0] != b[0] for a, b in zip(before, after))
