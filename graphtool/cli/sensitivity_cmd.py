"""`graphtool sensitivity MODEL --data F.npz --transforms SPEC`: which layers a quantizing (or
pruning) transform hurts, ranked by the output SQNR loss each causes. Exit 0, 2 on bad input.
"""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from .common import errors_about

if TYPE_CHECKING:
    from ..analysis.sensitivity import SensitivityReport

EXAMPLES = """examples:
  graphtool sensitivity model.tflite --data samples.npz --transforms quantize_weights
  graphtool sensitivity model.tflite --data s.npz --transforms 'quantize_nodes(calibration=s.npz)' --json
  graphtool sensitivity model.tflite --data samples.npz --transforms quantize_weights --html report.html --png ranking.png
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sensitivity", help="rank layers by the output error a quantizing transform causes in each",
        description="Apply one transform that takes only= and keep= (quantize_weights, quantize_nodes, ...) to "
                    "one layer at a time (only=LAYER) and to every layer but one (keep=LAYER), run each variant "
                    "in its runtime (LiteRT for TFLite, TensorFlow for GraphDefs) on the samples, and rank the "
                    "layers by the output SQNR against the original model: the layer whose transform alone "
                    "hurts most comes first. Layers are the operators the transform changes.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", metavar="MODEL", help="the float model (.tflite, .pb or .pbtxt)")
    parser.add_argument("--data", required=True, metavar="F.npz",
                        help="samples: arrays keyed by input name (or signature input key), samples on the first axis")
    parser.add_argument("--transforms", required=True, metavar="SPEC",
                        help="the transform, e.g. 'quantize_weights(per_channel=false)'")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    parser.add_argument("--png", metavar="FILE", help="also write the ranking chart as a PNG image")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.sensitivity import sensitivity

    with errors_about(args.model):
        report = sensitivity(args.model, data=args.data, transforms=args.transforms)
    if args.html or args.png:
        _write_reports(report, args.html, args.png)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render(report))
    return 0


def _write_reports(report: SensitivityReport, html_path: str | None, png_path: str | None) -> None:
    """Render both before writing either: a failure leaves no file behind."""
    from ..analysis.report import render_png, write_report
    from ..analysis.sensitivity import ranking_chart, render_html

    pages = []
    if html_path:
        pages.append((html_path, render_html(report)))
    if png_path:
        pages.append((png_path, render_png(ranking_chart(report))))
    for path, content in pages:
        with errors_about(path):
            write_report(path, content)


def _db(value: float | None) -> str:
    return "inf" if value is None else f"{value:.2f}"


def render(report: SensitivityReport) -> str:
    source = f"{report.samples} samples" + (f" from {report.data}" if report.data else "")
    lines = [f"{report.model}: sensitivity to {report.transform} ({report.runtime}, {source})",
             f"every layer transformed: output SQNR {_db(report.all_sqnr_db)} dB",
             f"{'rank':>4}  {'alone dB':>9}  {'all but dB':>10}  {'loss dB':>8}  layer (op)"]
    for layer in report.layers:
        loss = "-" if layer.loss_db is None else f"{layer.loss_db:.2f}"
        lines.append(f"{layer.rank:>4}  {_db(layer.only_sqnr_db):>9}  {_db(layer.all_but_sqnr_db):>10}  "
                     f"{loss:>8}  {layer.name} ({layer.op})")
    top = report.layers[0]
    lines.append(f"most sensitive: {top.name} (output SQNR {_db(top.only_sqnr_db)} dB with it alone transformed)")
    return "\n".join(lines)
