"""add_default_attributes: fill in attrs a node leaves out with its op's defaults."""
from __future__ import annotations

import copy
from typing import Any

from ...errors import install_hint
from ...formats import graphdef
from ...ir import MISSING_OP, Graph
from ...logs import prepare_tensorflow, quietly
from ..registry import Context, NoParams, PassError, PassResult, register

INSTALL_HINT = install_hint("tf")


@register("add_default_attributes", NoParams, formats=("graphdef",), guarantee="exact")
def add_default_attributes(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Give every node the attrs its op declares with a default value but the node lacks.

    Needs TensorFlow (the `tf` extra: pip install 'graph-transform-tool[tf]'): the defaults come from
    TF's op registry, as in GTT. Ops TF does not know (custom ops, function names used as
    ops) are left alone and counted. Nodes inside the function library are not touched.
    Exact: an absent attr and its default mean the same."""
    registry = _op_registry()
    cache: dict[str, dict[str, Any] | None] = {}
    added = 0
    unknown: set[str] = set()
    for node in graph:
        if node.op == MISSING_OP:
            continue
        if node.op not in cache:
            cache[node.op] = _defaults(registry, node.op)
        defaults = cache[node.op]
        if defaults is None:
            unknown.add(node.op)
            continue
        for key, value in defaults.items():
            if key not in node.attrs:
                node.attrs[key] = copy.deepcopy(value)  # no value shared between nodes
                added += 1
    return PassResult(added > 0, {"added": added, "unknown_ops": sorted(unknown)})


@quietly
def _op_registry() -> Any:
    prepare_tensorflow()
    try:
        from tensorflow.python.framework import op_def_registry
    except ImportError as exc:
        raise PassError(f"add_default_attributes needs TensorFlow for its op registry ({exc}); "
                        f"install it with: {INSTALL_HINT}") from None
    return op_def_registry


def _defaults(registry: Any, op: str) -> dict[str, Any] | None:
    """Attr name -> default value (as a graphtool attr) for `op`; None if TF lacks the op."""
    op_def = registry.get(op)
    if op_def is None:
        return None
    defaults = {}
    for attr_def in op_def.attr:
        if attr_def.HasField("default_value"):
            defaults[attr_def.name] = graphdef.attr_from_bytes(attr_def.default_value.SerializeToString(),
                                                               f"{op} default for {attr_def.name!r}")
    return defaults
