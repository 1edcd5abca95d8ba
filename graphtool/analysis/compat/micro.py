"""`micro`: can TensorFlow Lite for Microcontrollers run it? Every operator needs a kernel
in the resolver, and some kernels refuse signatures the full runtime accepts (hybrid
float/int8 operators, float16 DEQUANTIZE); string and sparse tensors cannot be allocated.
Rules: micro.json (tensorflow/tflite-micro)."""
from __future__ import annotations

from ... import rules
from ...formats.tflite import keys as tflite_keys
from ...ir import Graph
from .report import ERROR, CheckReport, Finding, transform_fix
from .signature import OpSignature, operators


def check(graph: Graph, report: CheckReport) -> None:
    table = rules.table("micro")
    report.sources += [rules.source(table, key) for key in table["sources"]]
    for sig in operators(graph):
        report.operators += 1
        problem = _problem(sig, table)
        if problem is not None:
            reason, fix = problem
            report.findings.append(Finding(sig.name, sig.op, sig.subgraph, sig.index, ERROR, reason, fix))


def _problem(sig: OpSignature, table: dict) -> tuple[str, str | None] | None:
    if sig.custom:
        if sig.op in table["custom_ops"]["names"]:
            return None
        return f"TFLite Micro has no kernel for the custom op {sig.op}", None
    if sig.op not in table["ops"]["names"]:
        return f"TFLite Micro has no kernel for {sig.op}", None
    bad = sorted({spec.dtype.value for spec in [*sig.present_inputs(), *sig.outputs] if spec.dtype is not None}
                 & set(table["unsupported_tensor_types"]["types"]))
    if bad:
        return f"{sig.op} uses {', '.join(bad)} tensors, which TFLite Micro cannot allocate", None
    if any(spec.tensor.meta.get(tflite_keys.SPARSITY) is not None for spec in sig.present_inputs()):
        return f"{sig.op} reads a sparse tensor; TFLite Micro has no sparse tensors", \
            "store the weights dense (convert without EXPERIMENTAL_SPARSITY)"
    hybrid = table["hybrid"]
    if sig.op in hybrid["ops"]:
        source, weights = sig.input(0), sig.input(hybrid["weights_input"])
        if source is not None and weights is not None and source.dtype is not None and weights.dtype is not None \
                and source.dtype.value in hybrid["activation_types"] and weights.dtype.value in hybrid["weight_types"]:
            return (f"{sig.op} is hybrid ({source.dtype} input, {weights.dtype} weights): TFLite Micro has no "
                    f"hybrid kernels"), "quantize the model fully to int8 (or keep its weights float32)"
    rule = table["input_types"].get(sig.op)
    if rule is not None:
        spec = sig.input(rule["input"])
        if spec is not None and spec.dtype is not None and spec.dtype.value not in rule["types"]:
            fix = rule.get("fix")
            use_fix = fix is not None and (fix.get("when") != "const_input" or spec.is_const)
            return (f"TFLite Micro's {sig.op} takes {', '.join(rule['types'])} input, not {spec.dtype}",
                    transform_fix(fix["transform"]) if use_fix else None)
    return None
