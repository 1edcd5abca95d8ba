"""`xnnpack`: which operators the XNNPACK delegate takes (rules: xnnpack.json, after
xnnpack_delegate.cc, checked against ai-edge-litert's interpreter). Anything it refuses
stays on the reference CPU kernels, splitting the model into delegated and undelegated
parts (the partitions: compat.partition)."""
from __future__ import annotations

from ... import rules
from ...ir import Graph
from .report import ERROR, CheckReport, Finding
from .signature import OpSignature, operators

STATIC_UNPACKERS = ("DEQUANTIZE", "DENSIFY")  # of a constant: XNNPACK unpacks them at delegation time


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
    where = entry.get("type_tensor", "output")
    spec = sig.input(0) if where == "input" else sig.input(1) if where == "input1" else \
        (sig.outputs[0] if sig.outputs else None)
    dtype = None if spec is None or spec.dtype is None else spec.dtype.value
    if dtype not in entry["types"]:
        return f"XNNPACK takes {sig.op} on {', '.join(entry['types'])}, not {dtype}"
    if entry.get("const_weights"):
        weights = sig.input(1)
        if weights is None or not (weights.is_const or _unpacked_const(sig, 1)):
            return f"XNNPACK needs {sig.op} weights to be constant"
    for slot in entry.get("const_inputs", ()):
        spec = sig.input(slot)
        if slot < len(sig.inputs) and spec is not None and not spec.is_const:
            return f"XNNPACK needs input {slot} of {sig.op} to be constant, it is computed at run time"
    return _limits(sig, entry)


def _limits(sig: OpSignature, entry: dict) -> str | None:
    if "unit_strides" in entry:
        strides = sig.input(entry["unit_strides"])
        if strides is None or not strides.is_const or any(int(s) != 1 for s in strides.tensor.data.flat):
            return f"XNNPACK takes {sig.op} with constant strides of 1 only"
    set_ = [name for name in entry.get("zero_options", ()) if sig.option(name, 0)]
    if set_:
        return f"XNNPACK does not take {sig.op} with {', '.join(set_)} set"
    if "positive_sizes" in entry:
        sizes = sig.input(entry["positive_sizes"])
        if sizes is None or not sizes.is_const or any(int(s) <= 0 for s in sizes.tensor.data.flat):
            return f"XNNPACK takes {sig.op} with constant positive sizes only (not -1)"
    if entry.get("float_weights"):
        source, weights = sig.input(0), sig.input(1)
        if source is not None and weights is not None and source.dtype is not None and weights.dtype is not None \
                and source.dtype.value == "float32" and weights.dtype.value != "float32":
            return f"XNNPACK does not take a hybrid {sig.op} ({source.dtype} input, {weights.dtype} weights)"
    if entry.get("static_shape"):
        source = sig.input(0)
        if source is None or source.shape is None or any(d is None for d in source.shape):
            return f"XNNPACK takes {sig.op} of a tensor with static dimensions only"
    if "scale_ratio" in entry and sig.outputs and sig.outputs[0].tensor.quantization is not None:
        low, high = entry["scale_ratio"]["min"], entry["scale_ratio"]["max"]
        out = float(sig.outputs[0].tensor.quantization.scale.flat[0])
        for spec in sig.present_inputs():
            q = spec.tensor.quantization
            if q is not None and out > 0 and not low <= float(q.scale.flat[0]) / out < high:
                return (f"XNNPACK takes a quantized {sig.op} only when each input's scale over the output's is in "
                        f"[{low:g}, {high:g})")
    if "min_rank" in entry:
        out = sig.outputs[0] if sig.outputs else None
        if out is None or out.rank is None or out.rank < entry["min_rank"]:
            return f"XNNPACK does not take a {sig.op} of a scalar"
    return None


def _unpacked_const(sig: OpSignature, slot: int) -> bool:
    """Weights that are DEQUANTIZE or DENSIFY of a constant count as constant (XNNPACK
    unpacks them when it delegates)."""
    ref = sig.graph.inputs_of(sig.name)[slot]
    producer = sig.graph.node(ref.node)
    if producer.op not in STATIC_UNPACKERS:
        return False
    source = sig.graph.inputs_of(producer.name)[0]
    return source is not None and sig.graph.node(source.node).op == "Const"
