"""`graphtool draw MODEL -o OUT.{dot,svg,png,html}`: a picture of the graph for people."""
from __future__ import annotations

import argparse
import sys

from .common import errors_about, load_model

BIG_GRAPH = 500  # nodes beyond which collapsing scopes is suggested


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "draw", help="draw the graph as DOT, SVG, PNG or HTML",
        description="Draw a model: one box per node labelled with its op, name and output shape; "
                    "constants folded into their consumer's label; control dependencies dashed; TFLite "
                    "subgraphs as clusters. .dot needs nothing; .svg, .png and .html need Graphviz's `dot`.")
    parser.add_argument("model", metavar="MODEL", help=".pb, .pbtxt or .tflite file, or a SavedModel directory")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="where to write: .dot (or .gv), .svg, .png or .html")
    parser.add_argument("--collapse-scopes", type=int, metavar="DEPTH", default=None,
                        help="draw each name scope DEPTH levels deep (a/b/... for 2) as one box")
    parser.add_argument("--show-constants", action="store_true",
                        help="draw constants as their own boxes instead of folding them into consumers")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.draw import draw, node_count

    graph = load_model(args.model)
    with errors_about(args.output):
        fmt = draw(graph, args.output, collapse_depth=args.collapse_scopes, fold_constants=not args.show_constants)
    count = node_count(graph)
    print(f"wrote {args.output} ({fmt}, {count:,} nodes)")
    if count > BIG_GRAPH and args.collapse_scopes is None:
        print(f"hint: {count:,} nodes is a lot to read; --collapse-scopes 2 draws name scopes as boxes",
              file=sys.stderr)
    return 0
