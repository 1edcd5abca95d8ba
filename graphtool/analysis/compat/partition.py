"""How a delegate cuts a TFLite model into the parts it runs and the parts the CPU runs.

Given which operators of the primary subgraph a delegate supports, `epochs` forms the
node subsets TFLite's runtime forms (PartitionGraphIntoIndependentNodeSubsets in
tensorflow/lite/graph_info.cc, greedy): epoch after epoch, sweep the operators in
execution order and put every operator whose inputs are all computed into the current
epoch when it is of the epoch's kind (delegated or not); the first ready operator of an
epoch sets its kind. Each delegated epoch becomes one DELEGATE node.

`select` then applies GraphPartitionHelper's choice (tensorflow/lite/delegates/utils.cc):
keep the N largest delegated subsets of at least M operators, and partition again.
The rules per target (which N and M, what is supported) are data: graphtool/rules/*.json
under "partitioner".
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ...formats.tflite.ops import is_operator
from ...ir import Graph


@dataclass(frozen=True)
class OperatorGraph:
    """The primary subgraph's operators in execution order and, for each, the operators
    whose outputs it reads (constants and model inputs are always ready)."""

    names: tuple[str, ...]
    ops: tuple[str, ...]
    producers: tuple[tuple[int, ...], ...]  # data dependencies, plus the side-effect chain
    consumers: tuple[tuple[int, ...], ...]  # data only

    @classmethod
    def of(cls, graph: Graph, side_effect_ops: Collection[str] = (),
           side_effect_types: Collection[str] = ()) -> OperatorGraph:
        """`side_effect_ops` and operators reading or writing a tensor of `side_effect_types`
        might have side effects (subgraph.cc: OpMightHaveSideEffect): each waits for the
        previous such operator (graph_info.cc's control edges)."""
        nodes = [node for node in graph if is_operator(node)]
        index = {node.name: i for i, node in enumerate(nodes)}
        producers: list[tuple[int, ...]] = []
        consumers: list[list[int]] = [[] for _ in nodes]
        last_effect: int | None = None
        for i, node in enumerate(nodes):
            refs = [ref for ref in graph.inputs_of(node.name) if ref is not None]
            found = {index[ref.node] for ref in refs if ref.node in index}
            for p in sorted(found):
                consumers[p].append(i)
            tensors = [graph.tensor(ref) for ref in refs] + list(node.outputs)
            if node.op in side_effect_ops or any(t is not None and t.dtype is not None and
                                                 t.dtype.value in side_effect_types for t in tensors):
                if last_effect is not None:
                    found.add(last_effect)
                last_effect = i
            producers.append(tuple(sorted(found)))
        return cls(tuple(n.name for n in nodes), tuple(n.op for n in nodes), tuple(producers),
                   tuple(tuple(c) for c in consumers))

    def __len__(self) -> int:
        return len(self.names)


def epochs(ops: OperatorGraph, delegated: set[int]) -> list[tuple[bool, list[int]]]:
    """The node subsets in order: (delegated?, operator indices), as graph_info.cc forms them
    greedily."""
    count = len(ops)
    epoch_of = [-1] * count
    subsets: list[tuple[bool, list[int]]] = []
    assigned = 0
    while assigned < count:
        kind: bool | None = None
        members: list[int] = []
        progress = True
        while progress:
            progress = False
            for i in range(count):
                if epoch_of[i] != -1 or any(epoch_of[p] == -1 for p in ops.producers[i]):
                    continue
                mine = i in delegated
                if kind is None:
                    kind = mine
                if mine != kind:
                    continue
                epoch_of[i] = len(subsets)
                members.append(i)
                progress = True
        if not members:  # unreachable for an acyclic operator graph
            break
        subsets.append((bool(kind), members))
        assigned += len(members)
    return subsets


def delegated_subsets(ops: OperatorGraph, delegated: set[int]) -> list[list[int]]:
    """The delegated node subsets (each one DELEGATE node), in the order the runtime makes them."""
    return [sorted(members) for kind, members in epochs(ops, delegated) if kind]


def select(ops: OperatorGraph, supported: set[int], max_partitions: int | None,
           min_size: int = 0) -> list[list[int]]:
    """GraphPartitionHelper: the `max_partitions` largest subsets (ties: the earlier first)
    of at least `min_size` operators; None keeps them all."""
    subsets = delegated_subsets(ops, supported)
    if max_partitions is None and min_size <= 1:
        return subsets
    ranked = sorted(subsets, key=lambda s: -len(s))  # stable: equal sizes keep execution order
    kept: list[list[int]] = []
    for subset in ranked[:max_partitions] if max_partitions is not None else ranked:
        if len(subset) < min_size:
            break
        kept.append(subset)
    return delegated_subsets(ops, {i for s in kept for i in s})
