"""`graphtool verify A B`: run both models in their real runtimes on the same inputs and
compare every output. Exit 0 when all are within tolerance, 1 when not (naming the worst
output), 2 on bad input. `--layers` also pairs their intermediate tensors and names the
first layer where the error jumps (`--html`, `--png`: a report for people).
"""
from __future__ import annotations

import argparse
import json
import textwrap
from typing import TYPE_CHECKING

from ..runtime import DEFAULT_SAMPLES

if TYPE_CHECKING:
    from ..analysis.layers import LayersReport
    from ..analysis.verify import OutputResult, VerifyReport

EXIT_WITHIN, EXIT_OUTSIDE = 0, 1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "verify", help="run two models on the same inputs and compare their outputs",
        description=textwrap.fill(
                    "Run A and B in their real runtimes (TensorFlow for GraphDefs and SavedModel directories, "
                    "the latter through their serving_default signature; LiteRT for TFLite) on "
                    "the same inputs and compare each output: max abs and relative error, SQNR, cosine "
                    "similarity, top-1 agreement. Inputs and outputs pair by name, else by order; "
                    "quantized tensors are (de)quantized with their own parameters. A passes when every "
                    "element satisfies |b - a| <= atol + rtol * |a|. --layers also pairs the intermediate tensors "
                    "(by name, else by structure; across formats too), gives each pair's SQNR, max abs error, "
                    "cosine and the error of that layer alone (B's layer on A's inputs), and names the first "
                    "layer whose SQNR drops by --jump-db or more.", 79),
        epilog="examples:\n"
               "  graphtool verify model.pb model.tflite --data samples.npz\n"
               "  graphtool verify float.tflite int8.tflite --layers\n"
               "  graphtool verify float.tflite int8.tflite --layers --json\n"
               "  graphtool verify float.tflite int8.tflite --layers --html report.html --png sqnr.png",
        formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument("--layers", action="store_true",
                        help="compare every paired intermediate tensor too, and name the first divergence")
    parser.add_argument("--jump-db", type=float, default=10.0, metavar="DB",
                        help="with --layers: the SQNR drop in one layer that makes it the first divergence "
                             "(default 10)")
    parser.add_argument("--html", metavar="FILE", help="with --layers: write a self-contained HTML report")
    parser.add_argument("--png", metavar="FILE", help="with --layers: write the per-layer SQNR chart as PNG")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.verify import verify

    if args.layers:
        return run_layers(args)
    if args.html or args.png:
        from .common import UsageError

        raise UsageError("--html and --png need --layers")
    report = verify(args.a, args.b, data=args.data, samples=args.samples, seed=args.seed,
                    atol=args.atol, rtol=args.rtol)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render(report))
    return EXIT_WITHIN if report.passed else EXIT_OUTSIDE


def run_layers(args: argparse.Namespace) -> int:
    from ..analysis.layers import layers_chart, layers_html, verify_layers
    from ..analysis.report import render_png, write_report

    report = verify_layers(args.a, args.b, data=args.data, samples=args.samples, seed=args.seed,
                           atol=args.atol, rtol=args.rtol, jump_db=args.jump_db)
    pages = []  # rendered before anything is written: a failure leaves no file behind
    if args.html:
        pages.append((args.html, layers_html(report)))
    if args.png:
        pages.append((args.png, render_png(layers_chart(report))))
    for path, content in pages:
        write_report(path, content)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render_layers(report))
    return EXIT_WITHIN if report.passed else EXIT_OUTSIDE


def _db(value: float | None) -> str:
    return "inf" if value is None else f"{value:.1f}"


def _one_name(a: str, b: str) -> bool:
    """Whether A's tensor name says what B's does (`x:0` is `x`; a fused name holds the other)."""
    a, b = a.removesuffix(":0"), b.removesuffix(":0")
    return a == b or a in b.split(";") or b in a.split(";")


def render_layers(report: LayersReport) -> str:
    source = f"from {report.data}" if report.data else f"random, seed {report.seed}"
    lines = [f"A: {report.a}  ({report.runtime_a})",
             f"B: {report.b}  ({report.runtime_b})",
             (f"{report.runs} run(s), inputs {source}; {len(report.layers)} paired tensors, "
              f"{report.paired_operators} of B's {report.operators_b} operators ({report.coverage:.0%})"),
             f"{'#':>3}  {'SQNR dB':>8} {'alone dB':>8} {'drop dB':>7} {'max abs':>9} {'cosine':>8}  op  tensor (B)"]
    for layer in report.layers:
        mark = "*" if layer.b == report.first_divergence else " "
        if layer.problem:
            numbers = f"{layer.problem:>44}"
        else:
            alone = "-" if layer.layer_problem else _db(layer.layer_sqnr_db)
            drop = "-" if layer.drop_db is None else f"{layer.drop_db:.1f}"
            cosine = "-" if layer.cosine is None else f"{layer.cosine:.5f}"
            numbers = (f"{_db(layer.sqnr_db):>8} {alone:>8} {drop:>7} {_number(layer.max_abs_error):>9} "
                       f"{cosine:>8}")
        paired = "" if _one_name(layer.a, layer.b) else f"  <- {layer.a} (by {layer.matched_by})"
        lines.append(f"{mark}{layer.index:>2}  {numbers}  {layer.op}  {layer.b}{paired}")
    if report.first_divergence is None:
        lines.append(f"first divergence: none (no layer's SQNR drops by {report.jump_db:g} dB or more)")
    else:
        lines.append(f"first divergence: {report.first_divergence}")
    lines.append(f"Outputs ({len(report.outputs)}), tolerance atol {report.atol:g} rtol {report.rtol:g}:")
    for output in report.outputs:
        lines += _output_lines(output)
    lines.append("PASS: every output is within tolerance" if report.passed
                 else "FAIL: outputs are not within tolerance")
    return "\n".join(lines)


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
