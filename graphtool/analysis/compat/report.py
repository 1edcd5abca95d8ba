"""What a compatibility check returns: findings per operator and the verdict.

`CheckReport.to_dict()` is exactly what `graphtool check --json` prints:
{"target", "compatible", "verdict", "min_runtime_version" (runtime targets only), for delegates
"partitions" ([{"operators", "names"}]), "delegated_ops", "total_ops", "delegated_macs_share",
then "findings": [...]}.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .delegation import Gap, Partition

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)

# Verdicts. A delegate (GPU, XNNPACK, Edge TPU) that takes some operators runs the model,
# partly: "partial". A runtime that lacks an operator cannot run the model: "incompatible".
COMPATIBLE, PARTIAL, NONE, INCOMPATIBLE = "compatible", "partial", "none", "incompatible"


@dataclass(frozen=True)
class Finding:
    """One thing the target does not (fully) support.

    `subgraph` and `index` locate a TFLite operator (subgraph 0 is the main one; index is
    the operator's position in execution order); both are None for GraphDef nodes and for
    model-wide findings, whose `node` and `op` may be None too. `fix` names the graphtool
    transform that repairs it ("graphtool transform: ..."), or says what else to do.
    """

    node: str | None
    op: str | None
    subgraph: int | None
    index: int | None
    severity: str
    reason: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "op": self.op, "subgraph": self.subgraph, "index": self.index,
                "severity": self.severity, "reason": self.reason, "fix": self.fix}


@dataclass
class CheckReport:
    """The verdict for one target: compatible when no finding is an error."""

    target: str
    findings: list[Finding] = field(default_factory=list)
    min_runtime_version: str | None = None
    is_runtime_target: bool = False
    is_delegate: bool = False  # a delegate runs what it takes and leaves the rest to the CPU
    format: str | None = None
    operators: int = 0  # operators (TFLite) or nodes (GraphDef) examined
    sources: list[str] = field(default_factory=list)  # the rule sources consulted
    # delegates only (compat.delegation): the parts of the primary subgraph the delegate runs
    partitions: list[Partition] | None = None
    total_ops: int = 0  # operators of the primary subgraph
    delegated_ops: int = 0
    delegated_macs_share: float | None = None  # None: no operator that multiplies-accumulates
    cpu_gaps: list[Gap] = field(default_factory=list)
    taken_elsewhere: int = 0  # operators of other subgraphs (control flow bodies) the delegate takes

    @property
    def compatible(self) -> bool:
        return not any(f.severity == ERROR for f in self.findings)

    @property
    def refused_operators(self) -> int:
        """Operators with an error finding (each counted once)."""
        return len({(f.subgraph, f.index) for f in self.findings if f.severity == ERROR and f.index is not None})

    @property
    def verdict(self) -> str:
        """compatible; for a delegate partial (it takes some operators) or none; for anything
        else incompatible."""
        if self.compatible:
            return COMPATIBLE
        if not self.is_delegate:
            return INCOMPATIBLE
        if self.partitions is not None:
            return PARTIAL if self.delegated_ops or self.taken_elsewhere else NONE
        model_wide = any(f.severity == ERROR and f.index is None for f in self.findings)
        return NONE if model_wide or self.refused_operators >= self.operators else PARTIAL

    @property
    def counts(self) -> dict[str, int]:
        """Findings by severity, every severity present (0 when none)."""
        found = Counter(f.severity for f in self.findings)
        return {severity: found.get(severity, 0) for severity in SEVERITIES}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"target": self.target, "compatible": self.compatible, "verdict": self.verdict}
        if self.is_runtime_target:
            data["min_runtime_version"] = self.min_runtime_version
        if self.partitions is not None:
            data["partitions"] = [{"operators": p.operators, "names": p.names} for p in self.partitions]
            data["delegated_ops"] = self.delegated_ops
            data["total_ops"] = self.total_ops
            data["delegated_macs_share"] = self.delegated_macs_share
        data["findings"] = [f.to_dict() for f in self.findings]
        return data


def transform_fix(spec: str) -> str:
    """The `fix` text for a graphtool transform."""
    return f"graphtool transform: {spec}"
