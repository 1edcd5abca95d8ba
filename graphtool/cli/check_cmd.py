"""`graphtool check MODEL --target T`: will the model's operators run on a runtime or
accelerator? Exit 0 compatible, 1 not, 2 bad input."""
from __future__ import annotations

import argparse
import json
import textwrap
from typing import TYPE_CHECKING

from ..rules import TARGETS
from . import batch
from .common import UsageError, errors_about, load_model

if TYPE_CHECKING:
    from ..analysis.check import CheckReport

EXIT_INCOMPATIBLE = 1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "check", help="operator compatibility with a runtime or accelerator",
        description=textwrap.fill("Check every operator against a target: tflite (a GraphDef: would TFLITE_BUILTINS alone "
                    "convert it; a .tflite: only builtins), tflite+select (plus Select TF ops), gpu, edgetpu, "
                    "micro, xnnpack, runtime (the minimum TFLite runtime) or runtime:X.Y.Z (every operator "
                    "checked against that runtime). A delegate (gpu, edgetpu, xnnpack) that takes some "
                    "operators but not all partially delegates the model (verdict `partial`; the CPU runs "
                    "the rest). Exit status 0 when compatible, 1 when partial or not compatible, 2 on bad "
                    "input. --json's `verdict` is compatible, partial, none (a delegate takes nothing) or "
                    "incompatible. Several models, a directory (walked for .tflite, .pb and .pbtxt files and "
                    "SavedModel directories) or a glob: every model is checked, --jobs at a time, one row "
                    "each (--json: one JSON object per line; verdict `error` for a model that could not be "
                    "read or checked, with its `error`) and a count of verdicts; exit status 0 when every "
                    "one is compatible, 1 otherwise, 2 when an argument names no model. For gpu, xnnpack and "
                    "edgetpu the delegate's partitions follow: a strip along execution order and the first "
                    "operator of every CPU gap with its reason (--json: partitions, delegated_ops, total_ops, "
                    "delegated_macs_share).", 79),
        epilog="examples:\n"
               "  graphtool check model.tflite --target xnnpack\n"
               "  graphtool check model.tflite --target gpu --json\n"
               "  graphtool check frozen.pb --target tflite --outputs Identity\n"
               "  graphtool check models/ --target edgetpu --jobs 4\n"
               "  graphtool check float.tflite --target edgetpu --fix --data calib.npz -o edgetpu.tflite",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    batch.add_arguments(parser)
    parser.add_argument("--target", "-t", required=True, metavar="T",
                        help=f"one of {', '.join(TARGETS)}, runtime:<version>")
    parser.add_argument("--outputs", default="", metavar="A,B",
                        help="GraphDef only: check just what these output nodes need (as the converter does)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (several models: one per line)")
    parser.add_argument("--all", action="store_true", help="also list info findings in the text output")
    parser.add_argument("--fix", action="store_true",
                        help="edgetpu, micro, gpu: apply the fixes graphtool can (int8 quantization with --data, "
                             "integer I/O, a static batch, float16 weights for gpu, the transforms findings name), "
                             "check again, verify against the original and write -o OUT; exit 1 if OUT still "
                             "fails the check")
    parser.add_argument("-o", "--output", metavar="OUT", help="with --fix: where to write the fixed model")
    parser.add_argument("--data", metavar="F.npz",
                        help="with --fix: representative inputs keyed by input name (calibration and the output "
                             "error)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = batch.single_model(args.model)
    if args.fix or args.output or args.data:
        return _run_fix(args, model)
    if model is None:
        return batch.run_check(args)
    from ..analysis.check import check, parse_target

    outputs = [name for name in args.outputs.split(",") if name] or None
    with errors_about(model):
        parse_target(args.target)
        report = check(load_model(model), args.target, outputs=outputs)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(render(report, model, show_info=args.all))
    return 0 if report.compatible else EXIT_INCOMPATIBLE


def _run_fix(args: argparse.Namespace, model: str | None) -> int:
    from ..analysis.check import parse_target
    from ..analysis.check_fix import fix, require_output
    from ..analysis.check_fix import render as render_fix
    from ..formats import save

    if not args.fix:
        raise UsageError("-o and --data go with --fix")
    if model is None:
        raise UsageError("--fix takes one model")
    output = require_output(args.output)
    with errors_about(model):
        parse_target(args.target)
        fixed, result = fix(load_model(model), args.target, data=args.data)
    with errors_about(output):
        save(fixed, output)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(render_fix(result, output))
    return 0 if result.passed else EXIT_INCOMPATIBLE


def render(report: CheckReport, path: str, show_info: bool = False) -> str:
    from ..analysis.check import NONE, PARTIAL

    counts = report.counts
    unit = "nodes" if report.format == "graphdef" else "operators"
    tally = ", ".join(_plural(counts[key], noun) for key, noun in (("error", "error"), ("warning", "warning"),
                                                                    ("info", "note")))
    if report.verdict == PARTIAL and report.partitions is not None:
        head = (f"partially delegated to {report.target} ({report.delegated_ops:,} of {report.total_ops:,} {unit} "
                f"in {_plural(len(report.partitions), 'partition')}")
    elif report.verdict == PARTIAL:
        taken = report.operators - report.refused_operators
        head = f"partially delegated to {report.target} ({taken:,} of {report.operators:,} {unit}"
    elif report.verdict == NONE and report.partitions is not None:
        head = f"NOT compatible with {report.target} (0 of {report.total_ops:,} {unit} delegated"
    else:
        verdict = "compatible with" if report.compatible else "NOT compatible with"
        head = f"{verdict} {report.target} ({report.operators:,} {unit} checked"
    lines = [f"{path}: {head}; {tally})"]
    if report.is_runtime_target:
        lines.append(f"Minimum runtime: {report.min_runtime_version or 'unknown'}")
    if report.partitions is not None:
        lines += _partition_lines(report)
    for finding in report.findings:
        if finding.severity == "info" and not show_info:
            continue
        where = "" if finding.subgraph is None else f"[{finding.subgraph}:{finding.index}] "
        node = f"{finding.node} ({finding.op})" if finding.node else "model"
        lines.append(f"  {finding.severity:<7} {where}{node}: {finding.reason}")
        if finding.fix:
            lines.append(f"          fix: {finding.fix}")
    hidden = counts["info"] if not show_info else 0
    if hidden:
        lines.append(f"  ({_plural(hidden, 'note')} hidden; --all shows them)")
    return "\n".join(lines)


def _partition_lines(report: CheckReport) -> list[str]:
    """The strip along execution order, then every CPU gap with why its first op is there."""
    from ..analysis.compat.delegation import strip

    share = "" if report.delegated_macs_share is None else f", {report.delegated_macs_share:.1%} of MACs"
    head = (f"Partitions: {len(report.partitions)} ({report.delegated_ops:,}/{report.total_ops:,} ops{share}); "
            f"strip in execution order ('#' {report.target}, '.' CPU):")
    lines = [head, f"  {strip(report.total_ops, report.partitions)}"]
    for gap in report.cpu_gaps:
        span = f"[{gap.first}]" if gap.first == gap.last else f"[{gap.first}-{gap.last}]"
        lines.append(f"  CPU from {span} {gap.name} ({gap.op}): {gap.reason}")
    return lines


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
