"""`graphtool split MODEL --at T1,T2 -o DIR`: a TFLite model cut into consecutive parts."""
from __future__ import annotations

import argparse
import json

from .common import UsageError, errors_about, load_model


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "split", help="cut a TFLite model at tensors into consecutive parts",
        description="Cut a TFLite model at the tensors --at names (in the order they are computed) into "
                    "parts DIR/part_0.tflite, part_1.tflite, ... whose chain computes what the model does: "
                    "each part reads the model's inputs and earlier parts' outputs by tensor name. A tensor "
                    "a skip connection carries past a cut is an output of the part that computes it and an "
                    "input of each later part that reads it. DIR must not exist or be empty; it is written "
                    "whole or not at all.")
    parser.add_argument("model", metavar="MODEL", help=".tflite file")
    parser.add_argument("--at", required=True, metavar="T1,T2", help="tensors to cut at (comma-separated)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to create for the parts")
    parser.add_argument("--json", action="store_true", help="print the parts as one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.split import check_directory, split

    names = [name.strip() for name in args.at.split(",") if name.strip()]
    if not names:
        raise UsageError("--at is empty: name the tensors to cut at")
    check_directory(args.output)
    graph = load_model(args.model)
    with errors_about(args.model):
        report = split(graph, names, args.output)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    for part in report.parts:
        print(f"wrote {part.path} ({part.size:,} bytes, {part.operators} operators): "
              f"{', '.join(part.inputs)} -> {', '.join(part.outputs)}")
    return 0
