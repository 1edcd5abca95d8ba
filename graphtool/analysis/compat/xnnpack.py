"""`xnnpack`: which operators the XNNPACK delegate takes (rules: xnnpack.json, after
xnnpack_delegate.cc). Anything it refuses stays on the reference CPU kernels, splitting the
model into delegated and undelegated parts."""
from __future__ import annotations

from ... import rules
from ...ir import Graph
from .report import ERROR, CheckReport, Finding
from .signature import OpSignature, operators


def check(graph: Graph, report: CheckReport) -> None:
    table = rules.table("xnnpack")
    report.sources.append(rules.source(table, "delegate"))
    for sig in operators(graph):
        report.operators += 1
        reason = _problem(sig, table)
        if reason is not None:
            report.findings.append(Finding(sig.name, sig.op, sig.subgraph, sig.index, ERROR,
                                           f"{reason}; it runs on the CPU without XNNPACK"))


def _problem(sig: OpSignature, table: dict) -> str | None:
    if sig.custom:
        return None if sig.op in table["custom_ops"] else f"XNNPACK does not take the custom op {sig.op}"
    entry = table["ops"].get(sig.op)
    if entry is None:
        return f"XNNPACK does not take {sig.op}"
    spec = sig.input(0) if sig.op in ("DEQUANTIZE",) else (sig.outputs[0] if sig.outputs else None)
    dtype = None if spec is None or spec.dtype is None else spec.dtype.value
    if dtype not in entry["types"]:
        return f"XNNPACK takes {sig.op} on {', '.join(entry['types'])}, not {dtype}"
    if entry.get("const_weights"):
        weights = sig.input(1)
        if weights is None or not (weights.is_const or _dequantized_const(sig, 1)):
            return f"XNNPACK needs {sig.op} weights to be constant"
    if entry.get("same_quantization") and dtype in ("int8", "uint8"):
        source, out = sig.input(0), sig.outputs[0]
        qa, qb = source.tensor.quantization if source else None, out.tensor.quantization
        if qa is None or qb is None or qa.scale.tolist() != qb.scale.tolist() or \
                qa.zero_point.tolist() != qb.zero_point.tolist():
            return f"XNNPACK takes a quantized {sig.op} only when input and output share scale and zero point"
    return None


def _dequantized_const(sig: OpSignature, slot: int) -> bool:
    """Weights that are DEQUANTIZE(constant) count as constant (XNNPACK folds it)."""
    ref = sig.graph.inputs_of(sig.name)[slot]
    producer = sig.graph.node(ref.node)
    if producer.op != "DEQUANTIZE":
        return False
    source = sig.graph.inputs_of(producer.name)[0]
    return source is not None and sig.graph.node(source.node).op == "Const"
