"""What a delegate (xnnpack, gpu, edgetpu) runs of a model: its partitions of the primary
subgraph, the CPU gaps between them and why each starts, and the share of the arithmetic
delegated. The target's checker has already refused operators (error findings); this
applies the delegate's partitioner to the rest, with the rules of its table's
"partitioner" entry:

- xnnpack, gpu: the runtime's node subsets (compat.partition), the GPU delegate keeping
  only its largest max_partitions, with FP16GraphPartitionHelper's float16 DEQUANTIZE rule;
- edgetpu: "prefix": the compiler maps the operators up to the first one it cannot map.
"""
from __future__ import annotations

from dataclasses import dataclass

from ... import rules
from ...formats.tflite.ops import is_operator
from ...ir import DType, Graph
from .macs import macs
from .partition import OperatorGraph, delegated_subsets, select
from .report import ERROR, CheckReport, Finding
from .signature import OpSignature, constant_dequantize_source, graphs_of, primary_operators


@dataclass(frozen=True)
class Partition:
    """One part the delegate runs (one DELEGATE node): operator indices of the primary
    subgraph, in execution order, and their names."""

    operators: list[int]
    names: list[str]


@dataclass(frozen=True)
class Gap:
    """Consecutive operators (execution order) the CPU runs; why the first one does."""

    first: int
    last: int
    name: str
    op: str
    reason: str


def apply(graph: Graph, report: CheckReport, target: str) -> None:
    """Fill the report's partitions, counts, MAC share and CPU gaps for `target`."""
    table = rules.table(target)
    partitioner = table["partitioner"]
    report.sources.append(rules.source(table, partitioner["source"]))
    sigs = primary_operators(graph)
    refused = {f.index: f for f in report.findings
               if f.severity == ERROR and f.subgraph == 0 and f.index is not None}
    if partitioner.get("mode") == "prefix":
        subsets, why = _prefix(graph, sigs, refused, table)
    else:
        subsets, why = _runtime(graph, sigs, refused, table, partitioner, target)
    names = [sig.name for sig in sigs]
    report.partitions = [Partition(list(s), [names[i] for i in s]) for s in subsets]
    taken = {i for s in subsets for i in s}
    report.total_ops = len(sigs)
    report.delegated_ops = len(taken)
    weights = [macs(sig) for sig in sigs]
    total = sum(weights)
    report.delegated_macs_share = None if total == 0 else round(sum(weights[i] for i in taken) / total, 4)
    report.cpu_gaps = _gaps(sigs, taken, refused, why)
    if partitioner.get("mode") != "prefix":  # the runtime delegates every subgraph's nodes alike
        others = sum(1 for sub in graphs_of(graph)[1:] for node in sub if is_operator(node))
        report.taken_elsewhere = others - len({(f.subgraph, f.index) for f in report.findings
                                               if f.severity == ERROR and f.subgraph})


def _runtime(graph: Graph, sigs: list[OpSignature], refused: dict[int, Finding], table: dict,
             partitioner: dict, target: str) -> tuple[list[list[int]], dict[int, str]]:
    ops = OperatorGraph.of(graph, partitioner.get("side_effect_ops", ()), partitioner.get("side_effect_types", ()))
    supported = set(range(len(sigs))) - set(refused)
    why: dict[int, str] = {}
    folded = frozenset(DType(t) for t in table.get("constant_dequantize", {}).get("input_types", ()))
    set_aside = {sig.index for sig in sigs if folded and constant_dequantize_source(graph, sig.node, folded)}
    supported -= set_aside
    unpackers = set(partitioner.get("static_unpackers", ()))
    if unpackers:  # XNNPACK: a constant's DEQUANTIZE / DENSIFY goes with all its readers, or stays
        for sig in sigs:
            if sig.index in supported and sig.op in unpackers and sig.inputs and sig.inputs[0] is not None \
                    and sig.inputs[0].is_const and not set(ops.consumers[sig.index]) <= supported:
                supported.discard(sig.index)
                why[sig.index] = f"{sig.op} of a constant that an operator left on the CPU reads"
    limit, least = partitioner.get("max_partitions"), partitioner.get("min_partition_size", 0)
    subsets = select(ops, supported, limit, least)
    if set_aside and subsets:
        first = max(subsets, key=len)  # FP16GraphPartitionHelper: the first of the largest
        joined = {i for i in set_aside if ops.consumers[i] and set(ops.consumers[i]) <= set(first)}
        subsets = delegated_subsets(ops, {i for s in subsets for i in s} | joined)
        for i in set_aside - joined:
            why[i] = "DEQUANTIZE of a float16 constant whose consumers are not all in the delegated partition"
    kept = {i for s in subsets for i in s}
    for i in supported - kept:
        why[i] = (f"supported, but the {target} delegate takes only its {limit} largest partition"
                  f"{'' if limit == 1 else 's'} (max_delegated_partitions)")
    return subsets, why


def _prefix(graph: Graph, sigs: list[OpSignature], refused: dict[int, Finding],
            table: dict) -> tuple[list[list[int]], dict[int, str]]:
    from .edgetpu import edge_operators

    edges = edge_operators(graph, table, sigs)
    mapped: list[int] = []
    why: dict[int, str] = {}
    stop: OpSignature | None = None
    for sig in sigs:
        if sig.index in edges and sig.index not in refused:
            why[sig.index] = f"{sig.op} at the model's {table['edge_ops'][sig.op]} runs on the CPU"
        elif stop is not None:
            why[sig.index] = f"after {stop.name} ({stop.op}), where the compiler stopped"
        elif sig.index in refused:
            stop = sig
        else:
            mapped.append(sig.index)
    return ([mapped] if mapped else []), why


def _gaps(sigs: list[OpSignature], taken: set[int], refused: dict[int, Finding],
          why: dict[int, str]) -> list[Gap]:
    gaps: list[Gap] = []
    start: int | None = None
    for i in range(len(sigs) + 1):
        on_cpu = i < len(sigs) and i not in taken
        if on_cpu and start is None:
            start = i
        elif not on_cpu and start is not None:
            sig = sigs[start]
            reason = refused[start].reason if start in refused else why.get(start, "not delegated")
            gaps.append(Gap(start, i - 1, sig.name, sig.op, reason))
            start = None
    return gaps


def strip(total: int, partitions: list[Partition], width: int = 64) -> str:
    """One character per operator (or per group of operators when there are more than
    `width`): '#' delegated, '.' CPU, ':' a group with both."""
    taken = {i for p in partitions for i in p.operators}
    step = max(1, -(-total // width))
    chars = []
    for start in range(0, total, step):
        group = [i in taken for i in range(start, min(total, start + step))]
        chars.append("#" if all(group) else "." if not any(group) else ":")
    return "".join(chars)
