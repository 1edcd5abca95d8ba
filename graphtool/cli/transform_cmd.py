"""`graphtool transform IN OUT --transforms SPEC`: run a pipeline, write the result.

transform_graph's own flags work too (--in_graph --out_graph --inputs --outputs
--transforms --output_as_text), so existing command lines run unchanged.
"""
from __future__ import annotations

import argparse
import os
import sys

from .common import UsageError, errors_about, load_model


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "transform", help="run Graph Transform Tool transforms and write the result",
        description="Apply a pipeline of transforms, given as a Graph Transform Tool string, e.g. "
                    "'remove_nodes(op=Identity) fold_constants(ignore_errors=true) fold_batch_norms'. "
                    "The output is written only when every transform succeeded. "
                    "`graphtool transforms` lists them.")
    parser.add_argument("input", metavar="IN", nargs="?", help="model to read (or --in_graph)")
    parser.add_argument("output", metavar="OUT", nargs="?", help="where to write (or --out_graph)")
    parser.add_argument("--in_graph", "--in-graph", dest="in_graph", help=argparse.SUPPRESS)
    parser.add_argument("--out_graph", "--out-graph", dest="out_graph", help=argparse.SUPPRESS)
    parser.add_argument("--transforms", required=True, metavar="SPEC", help="the transforms to run, in order")
    parser.add_argument("--inputs", default="", metavar="A,B", help="input node names (comma-separated)")
    parser.add_argument("--outputs", default="", metavar="C,D", help="output node names (comma-separated)")
    parser.add_argument("--output_as_text", "--output-as-text", dest="output_as_text", default=None,
                        nargs="?", const=True, type=_bool, metavar="BOOL",
                        help="write a text GraphDef (.pbtxt) whatever the suffix (alone: true)")
    parser.add_argument("--in-place", action="store_true", help="allow OUT to be IN")
    parser.add_argument("--allow-unknown-fields", action="store_true",
                        help="write a TFLite model even though fields from a newer schema would be dropped")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    parser.add_argument("--json", action="store_true", help="print the per-transform report as JSON")
    parser.set_defaults(run=run)


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r} (a bare --output_as_text "
                                         "goes after IN and OUT, or write --output_as_text=true)")
    return text.lower() in ("true", "1")


def _one_of(positional: str, value: str | None, flag: str, flag_value: str | None) -> str | None:
    """The path given as a positional argument or as its GTT flag; both only when they agree."""
    if value and flag_value and os.path.abspath(value) != os.path.abspath(flag_value):
        raise UsageError(f"{positional} is {value!r} but {flag} is {flag_value!r}: give one of them")
    return value or flag_value


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def run(args: argparse.Namespace) -> int:
    from .. import formats
    from ..passes import transform

    source = _one_of("IN", args.input, "--in_graph", args.in_graph)
    target = _one_of("OUT", args.output, "--out_graph", args.out_graph)
    if not source or not target:
        raise UsageError("transform needs IN and OUT (or --in_graph and --out_graph)")
    if not args.transforms.strip():
        raise UsageError("--transforms is empty: name at least one transform (`graphtool transforms` lists them)")
    if not args.in_place and os.path.exists(target) and os.path.exists(source) and os.path.samefile(source, target):
        raise UsageError(f"{target}: output is the input; pass --in-place to overwrite it")
    graph = load_model(source)
    with errors_about(source):
        report = transform(graph, args.transforms, inputs=_names(args.inputs), outputs=_names(args.outputs))
    formats.save(graph, target, text=args.output_as_text, allow_unknown=args.allow_unknown_fields)
    if args.json:
        import dataclasses
        import json

        print(json.dumps([dataclasses.asdict(p) for p in report.passes], indent=2, default=str))
    elif not args.quiet:
        for p in report.passes:
            status = f"ignored error: {p.error}" if p.error else ("changed" if p.changed else "no change")
            stats = ", ".join(f"{k} {v}" for k, v in p.stats.items())
            print(f"{p.name}: {status}; nodes {p.nodes_before} -> {p.nodes_after}"
                  + (f"; {stats}" if stats else "") + f" ({p.seconds:.2f}s)", file=sys.stderr)
        print(f"wrote {target} ({os.path.getsize(target):,} bytes, {len(graph):,} nodes)")
    return 0
