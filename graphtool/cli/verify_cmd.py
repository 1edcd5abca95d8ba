"""`graphtool verify A B`: run both models in their real runtimes on the same inputs and
compare every output. Exit 0 when all are within tolerance, 1 when not (naming the worst
output), 2 on bad input.
"""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from ..runtime import DEFAULT_SAMPLES

if TYPE_CHECKING:
    from ..analysis.verify import OutputResult, VerifyReport

EXIT_WITHIN, EXIT_OUTSIDE = 0, 1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "verify", help="run two models on the same inputs and compare their outputs",
        description="Run A and B in their real runtimes (TensorFlow for GraphDefs and SavedModel directories, "
                    "the latter through their serving_default signature; LiteRT for TFLite) on "
                    "the same inputs and compare each output: max abs and relative error, SQNR, cosine "
                    "similarity, top-1 agreement. Inputs and outputs pair by name, else by order; "
                    "quantized tensors are (de)quantized with their own parameters. A passes when every "
                    "element satisfies |b - a| <= atol + rtol * |a|.")
    parser.add_argument("a", metavar="A", help="the reference model (.pb, .pbtxt, .tflite or a SavedModel directory)")
    parser.add_argument("b", metavar="B", help="the model to check")
    parser.add_argument("--data", metavar="F.npz",
                        help="inputs: arrays keyed by input name (else in order), one example per row")
    parser.add_argument("--samples", type=int, metavar="N",
                        help=f"random examples to run (default {DEFAULT_SAMPLES}), or rows of --data to use "
                             "(default all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (default 1e-4)")
    parser.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.verify import verify

    report = verify(args.a, args.b, data=args.data, samples=args.samples, seed=args.seed,
                    atol=args.atol, rtol=args.rtol)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render(report))
    return EXIT_WITHIN if report.passed else EXIT_OUTSIDE


def _number(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.3g}{unit}"


def _pair(a: str, b: str, how: str) -> str:
    return f"{a}" if a == b and how == "name" else f"{a} <-> {b} (by {how})"


def _output_lines(o: OutputResult) -> list[str]:
    status = "ok" if o.within_tolerance else "FAIL"
    shape = "" if o.shape is None else " [" + ",".join(map(str, o.shape)) + "]"
    lines = [f"  {_pair(o.a, o.b, o.matched_by)}{shape}: {status}"]
    if o.problem:
        lines.append(f"    {o.problem}")
        return lines
    if o.max_abs_error is None:
        lines.append(f"    {o.mismatches} element(s) differ")
        return lines
    sqnr = "inf" if o.sqnr_db is None and not o.max_abs_error else _number(o.sqnr_db, " dB")
    parts = [f"max abs {_number(o.max_abs_error)}", f"rel {_number(o.rel_error)}", f"SQNR {sqnr}",
             f"cosine {o.cosine:.6f}" if o.cosine is not None else "cosine -"]
    if o.top1_agreement is not None:
        parts.append(f"top-1 {o.top1_agreement:.1%}")
    if o.mismatches:
        parts.append(f"{o.mismatches} element(s) outside tolerance")
    lines.append("    " + ", ".join(parts))
    return lines


def render(report: VerifyReport) -> str:
    source = f"from {report.data}" if report.data else f"random, seed {report.seed}"
    lines = [f"A: {report.a}  ({report.runtime_a})",
             f"B: {report.b}  ({report.runtime_b})",
             f"{report.runs} run(s), inputs {source}: " + ", ".join(_pair(p.a, p.b, p.matched_by)
                                                                    for p in report.inputs),
             f"Outputs ({len(report.outputs)}), tolerance atol {report.atol:g} rtol {report.rtol:g}:"]
    for output in report.outputs:
        lines += _output_lines(output)
    worst = report.worst
    if worst is None:
        lines.append("PASS: every output is within tolerance")
    else:
        why = worst.problem or f"max abs error {_number(worst.max_abs_error)}"
        lines.append(f"FAIL: output {worst.b} is not within tolerance ({why})")
    return "\n".join(lines)
