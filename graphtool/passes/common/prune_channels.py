"""prune_channels: zero the least important output channels of conv and dense layers, then
thin_channels removes them (GraphDefs and TFLite)."""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import field
from types import ModuleType
from typing import Any, Callable, Hashable

import numpy as np

from ...ir import Graph, Node, Ref
from ..helpers.keep import Keep
from ..helpers.graphdef_nodes import protected
from ..registry import Context, NoParams, PassError, PassResult, register

CRITERIA = ("l1", "l2", "bn_gamma")


class _Fields:
    __annotations__ = {"sparsity": float, "global": bool, "criterion": str, "only": list[str],
                       "keep": list[str], "keep_op": list[str]}
    sparsity = field(default=0.3, metadata={"doc": "fraction of the output channels to zero, in [0, 1): of "
                                                   "each layer's, or of all layers' together with global"})
    criterion = field(default="l1", metadata={"doc": "importance of a channel: l1 or l2 (norm of its filter), "
                                                     "bn_gamma (|scale| of the batch norm after it; GraphDefs "
                                                     "whose batch norms are not folded)"})
    only = field(default_factory=list, metadata={"doc": "prune only these layers (operator or output tensor "
                                                        "names; repeat)"})
    keep = field(default_factory=list, metadata={"doc": "leave these layers whole (operator or output tensor "
                                                        "names; repeat)"})
    keep_op = field(default_factory=list, metadata={"doc": "leave layers of these operator types whole "
                                                           "(repeat, or comma-separated)"})


setattr(_Fields, "global", field(default=False, metadata={"doc": "rank channels across all layers (scores "
                                                                 "divided by their layer's mean) instead "
                                                                 "of within each layer"}))


class Params(dataclasses.dataclass(frozen=True, init=False, repr=False, eq=False)(_Fields)):  # type: ignore[misc]
    """prune_channels' parameters; `global` is a Python keyword, so the fields are declared
    by name and read with getattr."""

    def __init__(self, **values: Any):
        fields = {f.name: f for f in dataclasses.fields(self)}
        for name, f in fields.items():
            value = values.pop(name) if name in values else (
                f.default if f.default is not dataclasses.MISSING else f.default_factory())
            object.__setattr__(self, name, value)
        if values:
            raise TypeError(f"unknown parameter {next(iter(values))!r}")

    def __repr__(self) -> str:
        return "Params(" + ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)) + ")"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, f.name) == getattr(other, f.name)
                                                 for f in dataclasses.fields(self))

    def __hash__(self) -> int:
        return hash(tuple(repr(getattr(self, f.name)) for f in dataclasses.fields(self)))


def _format(graph: Graph, context: Context) -> tuple[ModuleType, list[Graph], Callable[[Graph], set[str]]]:
    """The format's thin_channels module, its graphs, and the nodes of a graph that must stay."""
    if graph.format == "tflite":
        from ...formats.tflite import tables
        from ..helpers import tflite_rewrite
        from ..tflite import thin_channels as module

        return module, tables.subgraphs(graph), lambda sub: tflite_rewrite.pinned(graph, sub)
    from ..graphdef import thin_channels as module

    return module, [graph], lambda sub: protected(sub, context.inputs + context.outputs)


def _check(params: Params, graph: Graph, graphs: list[Graph]) -> Keep:
    if not 0 <= params.sparsity < 1:
        raise PassError(f"prune_channels: sparsity={params.sparsity} is not in [0, 1)")
    if params.criterion not in CRITERIA:
        raise PassError(f"prune_channels: criterion={params.criterion!r}; one of {', '.join(CRITERIA)}")
    if params.criterion == "bn_gamma" and graph.format == "tflite":
        raise PassError("prune_channels: criterion=bn_gamma needs batch norms in the graph, and a .tflite has "
                        "them folded; use criterion=l1 or criterion=l2")
    if graph.format == "tflite":
        from ...formats.tflite import ops

        op_types = set(ops.builtin_codes())
    else:
        op_types = {node.op.upper() for g in graphs for node in g}
    return Keep.of("prune_channels", graphs, params.keep, params.keep_op, op_types, params.only)


def _left_out(keep: Keep, node: Node) -> str | None:
    reason = keep.reason(node)
    if reason is None and node.op.upper() in keep.ops:  # GraphDef op names are not upper case
        reason = "keep_op"
    return reason


@register("prune_channels", Params, formats=("graphdef", "tflite"), guarantee="quantization error")
def prune_channels(graph: Graph, params: Params, context: Context) -> PassResult:
    """Zero the least important output channels of conv and dense layers, then thin_channels.

    Lossy, by request: the model's outputs change by what the pruned channels contributed
    (listed under the closest guarantee there is; measure accuracy after it). The layers
    are those thin_channels edits (CONV_2D / Conv2D, FULLY_CONNECTED / MatMul, TFLite's
    TRANSPOSE_CONV, depthwise convolutions with multiplier 1), and the channels those whose removal it can follow
    through the graph: channels tied together by a residual add, a depthwise convolution or
    a bias add go together, as one group whose importance is the sum of its layers' channel
    scores, each divided by its layer's mean. criterion=l1 or l2 scores a channel by the
    norm of its filter (int8 weights dequantized), bn_gamma by |scale| of the inference batch
    norm right after its layer (GraphDefs only: a .tflite has its batch norms folded; layers
    without one are not pruned). sparsity times a layer's output channels is how many of
    its groups are zeroed (a group counts for the first layer in it), or with global=true,
    sparsity times the output channels of all those layers is how many of all groups are;
    a tensor keeps one channel.
    only=, keep= and keep_op= choose the layers as the quantizing transforms do: only= a
    group by its first layer (a depthwise conv after it follows), keep= and keep_op= by any
    layer in it, which then stays whole. Zeroing clears the filter, the bias and (GraphDefs)
    the batch norm's scale and offset, so the channel is exactly zero; thin_channels then
    removes it. Stats: criterion, groups (candidates), zeroed (groups), layers (channels
    zeroed per layer), left_out (candidate groups left whole, by reason), thin (thin_channels'
    stats but its layers)."""
    module, _, _ = _format(graph, context)
    stats = zero_channels(graph, params, context)
    thin = module.thin_channels(graph, NoParams(), context) if stats["zeroed"] else None
    stats["thin"] = {k: v for k, v in thin.stats.items() if k != "layers"} if thin is not None else {}
    return PassResult(bool(stats["zeroed"]), stats)


def zero_channels(graph: Graph, params: Params, context: Context) -> dict[str, Any]:
    """prune_channels without the thinning: zero the chosen channels in place; returns the
    stats but `thin`."""
    module, graphs, pinned = _format(graph, context)
    keep = _check(params, graph, graphs)
    candidates: list[tuple[Graph, list[tuple[Node, int]], float]] = []  # (subgraph, [(layer, channel)], score)
    left_out: Counter[str] = Counter()
    per_layer_groups: dict[tuple[int, str], list[int]] = {}  # (subgraph, layer) -> the groups it owns
    sizes: dict[tuple[int, str], int] = {}  # output channels of each layer that owns a group
    for index, sub in enumerate(graphs):
        protect = pinned(sub)
        layers = [node for node in sub if node.op in module.PRUNABLE_OPS and module.filters(sub, node) is not None]
        scores = {node.name: _scores(module, sub, node, params.criterion) for node in layers}
        if params.criterion == "bn_gamma" and not any(s is not None for s in scores.values()):
            raise PassError("prune_channels: criterion=bn_gamma found no batch norm after a conv or dense layer; "
                            "use criterion=l1 or criterion=l2")
        for group in _groups(module, sub, layers, protect):
            members = [(sub.node(key.node), channel) for key, channel in group if key.node in scores]
            if not members:
                continue
            owner = members[0][0]  # only= picks a group by its first layer; keep= and keep_op= by any
            reasons = [_left_out(keep, node) for node, _ in members]
            reasons = [reason for reason, (node, _) in zip(reasons, members) if reason != "only" or node is owner]
            reasons += ["no_batch_norm" for node, _ in members if scores[node.name] is None]
            if any(reasons):
                left_out[min(r for r in reasons if r)] += 1
                continue
            score = float(sum(scores[node.name][channel] for node, channel in members))
            per_layer_groups.setdefault((index, owner.name), []).append(len(candidates))
            sizes[(index, owner.name)] = scores[owner.name].size
            candidates.append((sub, members, score))
    chosen = _choose(candidates, per_layer_groups, sizes, params)
    zeroed: dict[tuple[int, str], np.ndarray] = {}
    for index in chosen:
        sub, members, _ = candidates[index]
        for node, channel in members:
            mask = zeroed.setdefault((id(sub), node.name), np.zeros(module.filters(sub, node).shape[0], bool))
            mask[channel] = True
    subs = {id(sub): sub for sub in graphs}
    for (sub_id, name), mask in sorted(zeroed.items(), key=lambda item: item[0][1]):
        sub = subs[sub_id]
        module.zero_channels(sub, sub.node(name), mask, pinned(sub))
    return {"criterion": params.criterion, "groups": len(candidates), "zeroed": len(chosen),
            "layers": {name: int(mask.sum()) for (_, name), mask in sorted(zeroed.items(), key=lambda i: i[0][1])},
            "left_out": dict(sorted(left_out.items()))}


def _scores(module: ModuleType, graph: Graph, node: Node, criterion: str) -> np.ndarray | None:
    """One score per output channel, divided by the layer's mean (None: no batch norm)."""
    if criterion == "bn_gamma":
        values = module.batch_norm_gamma(graph, node)
        if values is None:
            return None
    else:
        rows = module.filters(graph, node)
        values = np.abs(rows).sum(axis=1) if criterion == "l1" else np.sqrt((rows ** 2).sum(axis=1))
    mean = float(values.mean()) if values.size else 0.0
    return values / mean if mean > 0 else values


def _groups(module: ModuleType, graph: Graph, layers: list[Node], keep: set[str]) -> list[list[tuple[Hashable, int]]]:
    """The groups of channels thin_channels could remove if every layer were zeroed: asked
    of a copy of the graph with all of them zeroed."""
    work = graph.copy()
    for node in layers:
        module.zero_channels(work, work.node(node.name), np.ones(module.filters(graph, node).shape[0], bool), keep)
    plan = module.Analysis(work, keep).channels.solve()
    return [[(key, channel) for key, channel in group if isinstance(key, Ref)] for group in plan.groups]


def _choose(candidates: list, per_layer: dict[tuple[int, str], list[int]], sizes: dict[tuple[int, str], int],
            params: Params) -> list[int]:
    """Indices of the candidate groups to zero, the lowest scores first: sparsity times the
    layer's channels of each layer's groups, or of all the layers' channels among all groups."""
    if getattr(params, "global"):
        pools = [(list(range(len(candidates))), sum(sizes.values()))]
    else:
        pools = [(pool, sizes[layer]) for layer, pool in per_layer.items()]
    chosen: list[int] = []
    for pool, channels in pools:
        count = min(len(pool), int(np.floor(params.sparsity * channels + 1e-9)))
        ranked = sorted(pool, key=lambda index: (candidates[index][2], index))
        chosen += ranked[:count]
    return sorted(chosen)
