"""`runtime` and `runtime:<version>`: the oldest TFLite runtime that has every operator at
its version, from the (op, version) -> minimum runtime table of runtime_version.cc
(rules: runtime_versions.json, which the quantize_weights pass reads too)."""
from __future__ import annotations

from functools import cache

from ... import rules
from ...errors import GraphtoolError
from ...formats.tflite import keys as tflite_keys
from ...formats.tflite import versions
from ...ir import Graph
from .report import ERROR, INFO, WARNING, CheckReport, Finding
from .signature import operators


@cache
def version_key(version: str) -> tuple[int, ...]:
    """"2.17.0" -> (2, 17, 0); "2.4" compares as (2, 4, 0); GraphtoolError if malformed."""
    try:
        return versions.runtime_key(version)
    except ValueError as exc:
        raise GraphtoolError(str(exc)) from None


def check(graph: Graph, report: CheckReport, target_version: str | None) -> None:
    table = rules.table("runtime_versions")
    report.sources += [rules.source(table, key) for key in table["sources"]]
    limit = version_key(target_version) if target_version else None
    best: str | None = None
    for sig in operators(graph):
        report.operators += 1
        where = (sig.name, sig.op, sig.subgraph, sig.index)
        if sig.custom:
            report.findings.append(Finding(*where, INFO, f"custom op {sig.op}: runtime_version.cc has no entry "
                                                         f"for custom ops"))
            continue
        needed = versions.min_runtime(sig.op, sig.version)
        if needed is None:
            report.findings.append(Finding(*where, WARNING, f"{sig.op} version {sig.version} has no entry in "
                                                            f"runtime_version.cc: its minimum runtime is unknown"))
            continue
        if best is None or version_key(needed) > version_key(best):
            best = needed
        if limit is not None and version_key(needed) > limit:
            report.findings.append(Finding(*where, ERROR, f"{sig.op} version {sig.version} needs TFLite runtime "
                                                          f"{needed} or newer; the target is {target_version}"))
    report.min_runtime_version = best
    written = metadata_version(graph)
    if written is not None and best is not None and written != best:
        report.findings.append(Finding(None, None, None, None, INFO, f"the min_runtime_version metadata says "
                                                                     f"{written}; the operators need {best}"))


def metadata_version(graph: Graph) -> str | None:
    """The version string in the model's min_runtime_version metadata, if any."""
    raw = (graph.meta.get(tflite_keys.METADATA) or {}).get(versions.METADATA_KEY)
    return None if raw is None else versions.decode_runtime(raw)
