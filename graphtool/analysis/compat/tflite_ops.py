"""`tflite` and `tflite+select` for a .tflite model: is every operator a TFLite builtin
(or, with Select TF ops, an allowlisted Flex op)? Rules: tflite_builtins.json and
select_tf_ops.json."""
from __future__ import annotations

from ... import rules
from ...ir import Graph
from .report import ERROR, WARNING, CheckReport, Finding
from .signature import OpSignature, operators


def check(graph: Graph, report: CheckReport, select: bool) -> None:
    table = rules.table("tflite_builtins")
    allow = rules.table("select_tf_ops")
    prefix = allow["flex_prefix"]
    flex_ops = set(allow["ops"]["names"]) | set(allow["library_ops"]["names"])
    registered = set(table["custom_ops_in_builtin_resolver"]["names"])
    report.sources += [rules.source(table, key) for key in table["sources"]]
    if select:
        report.sources.append(rules.source(allow, "allowlist"))
    for sig in operators(graph):
        report.operators += 1
        finding = _check(sig, select, prefix, flex_ops, registered)
        if finding is not None:
            report.findings.append(finding)


def _check(sig: OpSignature, select: bool, prefix: str, flex_ops: set[str], registered: set[str]) -> Finding | None:
    if sig.op.startswith("BUILTIN_"):
        return _finding(sig, ERROR, f"builtin operator code {sig.op[8:]} is unknown to this TFLite schema")
    if not sig.custom:
        return None
    if sig.op.startswith(prefix):
        tf_op = sig.op[len(prefix):]
        if not select:
            return _finding(sig, ERROR, f"{sig.op} is a Select TF op (TensorFlow's {tf_op}), not a builtin: it needs "
                                        f"the Flex delegate", "run with the Flex delegate linked in (check --target "
                                                              "tflite+select), or rebuild the model without " + tf_op)
        if tf_op in flex_ops:
            return _finding(sig, WARNING, f"{sig.op} runs TensorFlow's {tf_op} through the Flex delegate, which must "
                                          f"be linked into the app (adds several MB)")
        return _finding(sig, ERROR, f"{sig.op}: TensorFlow's {tf_op} is not on the Select TF ops allowlist")
    if sig.op in registered:
        return _finding(sig, WARNING, f"custom op {sig.op}: not a builtin, but TFLite's BuiltinOpResolver registers "
                                      f"a kernel for it")
    return _finding(sig, ERROR, f"custom op {sig.op} is not a TFLite builtin: the app must register its kernel")


def _finding(sig: OpSignature, severity: str, reason: str, fix: str | None = None) -> Finding:
    return Finding(sig.name, sig.op, sig.subgraph, sig.index, severity, reason, fix)
