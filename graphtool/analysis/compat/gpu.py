"""`gpu`: which operators the TFLite GPU delegate takes (rules: gpu.json, after
tensorflow/lite/tools/versioning/gpu_compatibility.cc). An operator it refuses runs on the
CPU instead, splitting the model into delegated and CPU parts.

Float16 models (the converter's float16 quantization) keep their weights as FLOAT16
constants behind DEQUANTIZE. The delegate's partitioner (FP16GraphPartitionHelper,
tensorflow/lite/delegates/utils.cc) reads those constants itself: it does not check such a
DEQUANTIZE, and checks the operators reading its output with the float16 constant as their
input. Such a DEQUANTIZE is delegated with the rest when every other operator is; otherwise
it stays on the CPU (an info finding says so).
"""
from __future__ import annotations

from ... import rules
from ...ir import DType, Graph
from . import predicates
from .report import ERROR, INFO, CheckReport, Finding
from .signature import OpSignature, constant_dequantize_source, operators


def check(graph: Graph, report: CheckReport) -> None:
    table = rules.table("gpu")
    report.sources.append(rules.source(table, "gpu"))
    folded = _constant_dequantize_types(table)
    if folded:
        report.sources.append(rules.source(table, table["constant_dequantize"]["source"]))
    set_aside: list[OpSignature] = []
    for sig in operators(graph, folded):
        report.operators += 1
        if constant_dequantize_source(sig.graph, sig.node, folded) is not None:
            set_aside.append(sig)
            continue
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
    if not report.compatible:  # partial delegation: the set-aside DEQUANTIZEs stay on the CPU
        for sig in set_aside:
            dtype = sig.inputs[0].dtype.value if sig.inputs and sig.inputs[0] and sig.inputs[0].dtype else "?"
            report.findings.append(Finding(
                sig.name, sig.op, sig.subgraph, sig.index, INFO,
                f"DEQUANTIZE of a {dtype} constant: delegated operators read the constant itself, but with the "
                "model only partly delegated this DEQUANTIZE stays on the CPU"))
        report.findings.sort(key=lambda f: (f.subgraph, f.index))


def _constant_dequantize_types(table: dict) -> frozenset[DType]:
    entry = table.get("constant_dequantize")
    return frozenset(DType(name) for name in entry["input_types"]) if entry else frozenset()
