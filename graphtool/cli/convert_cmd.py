"""`graphtool convert IN OUT`: rewrite a model with no transform (e.g. .pb <-> .pbtxt)."""
from __future__ import annotations

import argparse
import os

from ..errors import GraphtoolError
from .common import load_model


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "convert", help="re-encode a model losslessly (binary <-> text GraphDef, .tflite)",
        description="Read IN and write it to OUT with no transform; the suffixes choose the "
                    "encoding (.pb binary, .pbtxt text, .tflite). The output is written atomically.")
    parser.add_argument("input", metavar="IN", help="model to read: .pb, .pbtxt, .tflite, or a SavedModel directory")
    parser.add_argument("output", metavar="OUT", help="where to write it; its suffix chooses the encoding")
    parser.add_argument("--in-place", action="store_true", help="allow OUT to be IN")
    parser.add_argument("--allow-unknown-fields", action="store_true",
                        help="write a TFLite model even though fields from a newer schema would be dropped")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import formats

    if not args.in_place and os.path.exists(args.input) and os.path.exists(args.output) \
            and os.path.samefile(args.input, args.output):
        raise GraphtoolError(f"{args.output}: output is the input; pass --in-place to overwrite it")
    graph = load_model(args.input)
    formats.save(graph, args.output, allow_unknown=args.allow_unknown_fields)
    print(f"wrote {args.output} ({os.path.getsize(args.output):,} bytes, {len(graph):,} nodes)")
    return 0
