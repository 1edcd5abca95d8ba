"""`graphtool diff A B`: what changed between two models, grouped like a unified diff.

Exit status 0 when the models are the same (constants within --atol/--rtol), 1 when they
differ, 2 on bad input.
"""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..analysis.diff import Change, DiffReport, WeightChange

EXIT_SAME, EXIT_DIFFERENT = 0, 1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "diff", help="structural and weight differences between two models",
        description="Compare two models of the same format: nodes removed, added and renamed (matched "
                    "by name, then by structure), op / attribute / input changes, tensor dtype, shape and "
                    "quantization changes, constant values (max abs and relative L2 difference, SQNR, "
                    "sparsity), signatures and metadata. Exit 0 when equal, 1 when not.")
    parser.add_argument("a", metavar="A", help="the model before (.pb, .pbtxt or .tflite)")
    parser.add_argument("b", metavar="B", help="the model after")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for constants (default 0)")
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance for constants (default 0)")
    parser.add_argument("--ignore-names", action="store_true",
                        help="match nodes by structure only and do not report renames")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.diff import diff

    report = diff(args.a, args.b, atol=args.atol, rtol=args.rtol, ignore_names=args.ignore_names)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif not report.same:
        print(render(report))
    return EXIT_SAME if report.same else EXIT_DIFFERENT


def _name(name: str, subgraph: int) -> str:
    return f"[subgraph {subgraph}] {name}" if subgraph else name


def _type(dtype: str | None, shape: list | None) -> str:
    if dtype is None and shape is None:
        return ""
    dims = "?" if shape is None else "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"
    return f" {dtype or '?'} {dims}"


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _change_lines(change: Change, indent: str) -> list[str]:
    lines = []
    if change.a is not None:
        lines.append(f"-{indent}{change.what}: {_value(change.a)}")
    if change.b is not None:
        lines.append(f"+{indent}{change.what}: {_value(change.b)}")
    return lines


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _number(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.4g}{unit}"


def _weight_line(w: WeightChange) -> str:
    dtype = w.dtype_a if w.dtype_a == w.dtype_b else f"{w.dtype_a} -> {w.dtype_b}"
    quant = "" if w.quantization_a == w.quantization_b else \
        f" ({w.quantization_a or 'float'} -> {w.quantization_b or 'float'})"
    head = f"  {_name(w.name, w.subgraph)}{_type(dtype, w.shape)}{quant}"
    if w.max_abs is None:
        return f"{head}: {w.note or 'values differ'}"
    sqnr = "inf" if w.sqnr_db is None and w.rel_l2 == 0 else _number(w.sqnr_db, " dB")
    parts = [f"max abs {_number(w.max_abs)}", f"rel L2 {_number(w.rel_l2)}", f"SQNR {sqnr}"]
    if w.zeros_a != w.zeros_b:
        parts.append(f"zeros {w.zeros_a:.1%} -> {w.zeros_b:.1%}")
    return f"{head}: " + ", ".join(parts) + (f" ({w.note})" if w.note else "")


def render(report: DiffReport) -> str:
    """The differences as text: header lines, then one @@ section per kind of change."""
    lines = [f"--- {report.a or 'A'}  ({report.format}, {report.nodes_a} nodes)",
             f"+++ {report.b or 'B'}  ({report.format}, {report.nodes_b} nodes)"]
    if report.graph:
        lines.append(f"@@ model: {_count(len(report.graph), 'change')} @@")
        for change in report.graph:
            lines += _change_lines(change, " ")
    if report.removed:
        lines.append(f"@@ removed: {_count(len(report.removed), 'node')} @@")
        lines += [f"- {_name(n.name, n.subgraph)}  ({n.op}{_type(n.dtype, n.shape)})" for n in report.removed]
    if report.added:
        lines.append(f"@@ added: {_count(len(report.added), 'node')} @@")
        lines += [f"+ {_name(n.name, n.subgraph)}  ({n.op}{_type(n.dtype, n.shape)})" for n in report.added]
    if report.renamed:
        lines.append(f"@@ renamed: {_count(len(report.renamed), 'node')} @@")
        for r in report.renamed:
            lines += [f"- {_name(r.a, r.subgraph)}  ({r.op})", f"+ {_name(r.b, r.subgraph)}  ({r.op})"]
    if report.changed:
        lines.append(f"@@ changed: {_count(len(report.changed), 'node')} @@")
        for node in report.changed:
            lines.append(f"  {_name(node.name, node.subgraph)}  ({node.op})")
            for change in node.changes:
                lines += _change_lines(change, "   ")
    if report.weights:
        tolerance = "" if not (report.atol or report.rtol) else f" beyond atol {report.atol:g} rtol {report.rtol:g}"
        lines.append(f"@@ weights: {_count(len(report.weights), 'constant')} changed{tolerance} @@")
        lines += [_weight_line(w) for w in report.weights]
    return "\n".join(lines)
