"""`gpu`: which operators the TFLite GPU delegate takes (rules: gpu.json, after
tensorflow/lite/tools/versioning/gpu_compatibility.cc). An operator it refuses runs on the
CPU instead, splitting the model into delegated and CPU parts."""
from __future__ import annotations

from ...ir import Graph
from . import predicates, rules
from .report import ERROR, CheckReport, Finding
from .signature import operators


def check(graph: Graph, report: CheckReport) -> None:
    table = rules.table("gpu")
    report.sources.append(rules.source(table, "gpu"))
    for sig in operators(graph):
        report.operators += 1
        specs = (table["custom_ops"] if sig.custom else table["ops"]).get(sig.op)
        if specs is None:
            kind = "custom op" if sig.custom else "op"
            reason = f"the GPU delegate does not support the {kind} {sig.op}; it runs on the CPU"
        else:
            problem = predicates.run(sig, specs)
            if problem is None:
                continue
            reason = f"the GPU delegate does not take this {sig.op}: {problem}; it runs on the CPU"
        report.findings.append(Finding(sig.name, sig.op, sig.subgraph, sig.index, ERROR, reason))
