"""check --fix: apply what graphtool can apply to make a .tflite model fit a target, check the
result again and verify it against the original in LiteRT.

What it applies, in order, each only when the model needs it:
- every target: the graphtool transforms the first check names as fixes (a finding's
  `fix`, e.g. fold_constants(fold_dequantize=true) for TFLite Micro), and decompose_ops for
  HARD_SWISH / LEAKY_RELU the target refuses;
- edgetpu, micro (integer accelerators): set_input_shape(batch=1) when an input's size is
  known only at run time, full-integer quantization calibrated on the samples
  (quantize_nodes, needs `data`) when float operators remain, and integer I/O
  (set_io_types to int8);
- gpu: float16 weights (quantize_weights(mode=float16)) for a float32 model: the GPU delegate
  computes in float16 by default and reads float16 constants itself (FP16GraphPartitionHelper).

The result says what was applied, the check before and after, and the output error of the
fixed model against the original on the samples (or seeded random inputs).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import GraphtoolError
from ..formats.tflite.ops import is_operator
from ..ir import DType, Graph
from .check import CheckError, CheckReport, check

FIX_TARGETS = ("edgetpu", "micro", "gpu")
INTEGER_TARGETS = ("edgetpu", "micro")
DECOMPOSABLE = ("HARD_SWISH", "LEAKY_RELU")
TRANSFORM_PREFIX = "graphtool transform: "


@dataclass(frozen=True)
class CheckState:
    """What `check` said of the model, as the before/after table shows it."""

    verdict: str
    compatible: bool
    errors: int
    partitions: int
    delegated_ops: int
    total_ops: int
    delegated_macs_share: float | None

    @classmethod
    def of(cls, report: CheckReport) -> CheckState:
        return cls(report.verdict, report.compatible, report.counts["error"], len(report.partitions or []),
                   report.delegated_ops, report.total_ops, report.delegated_macs_share)


@dataclass(frozen=True)
class OutputError:
    """The fixed model against the original (graphtool verify), worst output."""

    runs: int
    max_abs_error: float | None
    rel_error: float | None
    sqnr_db: float | None
    top1_agreement: float | None


@dataclass
class FixReport:
    """What `check --fix` did: the transforms applied, the check before and after, the
    output error, and whether the fixed model passes its own check (`passed`)."""

    target: str
    applied: list[str] = field(default_factory=list)
    before: CheckState | None = None
    after: CheckState | None = None
    output_error: OutputError | None = None
    after_report: CheckReport | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return self.after is not None and self.after.compatible

    def to_dict(self) -> dict[str, Any]:
        """--json: target, applied, before, after, output_error, passed."""
        return {"target": self.target, "applied": list(self.applied),
                "before": None if self.before is None else asdict(self.before),
                "after": None if self.after is None else asdict(self.after),
                "output_error": None if self.output_error is None else asdict(self.output_error),
                "passed": self.passed}


def fix(graph: Graph, target: str, data: str | os.PathLike | None = None) -> tuple[Graph, FixReport]:
    """A fixed copy of `graph` for `target` (edgetpu, micro or gpu) and what was done.

    `data`: an .npz of representative inputs keyed by input name or signature key (needed
    to quantize a float model for edgetpu or micro; also what the output error is measured
    on)."""
    from ..formats import dumps
    from ..passes import transform
    from .verify import verify

    if target not in FIX_TARGETS:
        raise CheckError(f"--fix supports targets {', '.join(FIX_TARGETS)}, not {target!r}")
    if graph.format != "tflite":
        raise CheckError("--fix works on .tflite models; convert the GraphDef first")
    original = dumps(graph)
    result = FixReport(target)
    first = check(graph, target)
    result.before = CheckState.of(first)
    fixed = graph.copy()
    for spec in _plan(first, fixed, target, data):
        transform(fixed, spec)
        result.applied.append(spec)
        if spec.startswith("quantize_nodes"):  # integer I/O once the operators are integer
            io = "set_io_types(inputs=int8, outputs=int8)"
            transform(fixed, io)
            result.applied.append(io)
    after = check(fixed, target)
    result.after, result.after_report = CheckState.of(after), after
    compared = verify(original, dumps(fixed), data=data, atol=0.0, rtol=0.0)
    worst = max(compared.outputs, key=lambda o: o.max_abs_error or 0.0, default=None)
    if worst is not None:
        result.output_error = OutputError(compared.runs, worst.max_abs_error, worst.rel_error, worst.sqnr_db,
                                          worst.top1_agreement)
    return fixed, result


def _plan(report: CheckReport, graph: Graph, target: str, data: str | os.PathLike | None) -> list[str]:
    """The transform specs to apply, in order."""
    plan: list[str] = []
    for finding in report.findings:
        if finding.fix and finding.fix.startswith(TRANSFORM_PREFIX):
            spec = finding.fix[len(TRANSFORM_PREFIX):]
            if spec not in plan:
                plan.append(spec)
    refused = {f.op for f in report.findings if f.severity == "error"}
    ops = {node.op for node in graph if is_operator(node)}
    decompose = [op for op in DECOMPOSABLE if op in ops and op in refused and not _target_has(target, op)]
    if decompose:
        plan.append("decompose_ops(" + ", ".join(f"op={op}" for op in decompose) + ")")
    if target in INTEGER_TARGETS:
        if any(d is None for name in graph.inputs for t in graph.node(name).outputs for d in (t.shape or ())):
            plan.append("set_input_shape(batch=1)")
        if _float_compute(graph):
            if data is None:
                raise CheckError(f"--fix for {target} quantizes the model to int8: give representative inputs "
                                 f"with --data F.npz (arrays keyed by input name)")
            plan.append(f"quantize_nodes(calibration=\"{os.fspath(data)}\")")
    elif target == "gpu" and _float_compute(graph) and _float32_weights(graph):
        plan.append("quantize_weights(mode=float16)")
    return plan


def _target_has(target: str, op: str) -> bool:
    """Whether the target's rule table lists `op` (then a refusal is about its tensors, which
    quantization fixes, not about the operator)."""
    from .. import rules

    table = rules.table(target)["ops"]
    return op in (table.get("names", ()) if "names" in table else table)


def _float_compute(graph: Graph) -> bool:
    """Whether some operator computes a float32 output (not a DEQUANTIZE at the output)."""
    return any(is_operator(node) and node.op != "DEQUANTIZE" and
               any(t.dtype == DType.FLOAT32 for t in node.outputs) for node in graph)


def _float32_weights(graph: Graph) -> bool:
    return any(node.op == "Const" and any(t.dtype == DType.FLOAT32 and t.shape and len(t.shape) > 1
                                          for t in node.outputs) for node in graph)


def render(result: FixReport, output: str) -> str:
    """The before/after table and the verdict line."""
    b, a = result.before, result.after
    if b is None or a is None:
        raise GraphtoolError("render takes the FixReport of a finished fix")

    def share(state: CheckState) -> str:
        return "-" if state.delegated_macs_share is None else f"{state.delegated_macs_share:.1%}"

    rows = [("verdict", b.verdict, a.verdict), ("errors", str(b.errors), str(a.errors))]
    if b.total_ops or a.total_ops:
        rows += [("partitions", str(b.partitions), str(a.partitions)),
                 ("delegated ops", f"{b.delegated_ops}/{b.total_ops}", f"{a.delegated_ops}/{a.total_ops}"),
                 ("delegated MACs", share(b), share(a))]
    error = result.output_error
    if error is not None:
        text = f"max abs {error.max_abs_error:.4g}" if error.max_abs_error is not None else "-"
        if error.top1_agreement is not None:
            text += f", top-1 agreement {error.top1_agreement:.1%}"
        rows.append(("output error", "-", f"{text} ({error.runs} runs)"))
    width = max(len(r[0]) for r in rows)
    left = max(len(r[1]) for r in rows + [("", "before", "")])
    lines = [f"applied: {' '.join(result.applied) if result.applied else 'nothing (no fix graphtool can apply)'}",
             f"  {'':<{width}}  {'before':<{left}}  after"]
    lines += [f"  {name:<{width}}  {x:<{left}}  {y}" for name, x, y in rows]
    if result.passed:
        lines.append(f"wrote {output}: passes check --target {result.target}")
    else:
        lines.append(f"wrote {output}, but it still FAILS check --target {result.target} "
                     f"({a.errors} error{'s' if a.errors != 1 else ''}; graphtool check {output} --target "
                     f"{result.target} lists them)")
    return "\n".join(lines)


def require_output(output: str | None) -> str:
    if not output:
        raise GraphtoolError("--fix needs -o OUT, the file to write the fixed model to")
    return output
