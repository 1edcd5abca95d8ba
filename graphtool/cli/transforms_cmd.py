"""`graphtool transforms`: every transform with its formats, parameters and doc."""
from __future__ import annotations

import argparse
import json
import re


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("transforms", help="list the transforms, their parameters and docs",
                            description="List every transform `graphtool transform` knows.")
    parser.add_argument("--format", choices=("graphdef", "tflite"), help="only transforms for this format")
    parser.add_argument("--json", action="store_true", help="print one JSON list")
    parser.add_argument("--verbose", "-v", action="store_true", help="full docs, not only the summary")
    parser.add_argument("--markdown", action="store_true",
                        help="print the reference as markdown (docs/transforms.md's)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..passes import catalog

    passes = catalog(args.format)  # from the registry's index: no transform is imported
    if args.markdown:
        print(markdown(passes))
        return 0
    if args.json:
        print(json.dumps([{"name": p.name, "formats": list(p.formats), "guarantee": p.guarantee,
                           "summary": p.summary, "doc": p.doc.strip(),
                           "parameters": [{"name": n, "type": t, "default": d, "doc": doc}
                                          for n, t, d, doc in p.parameters()]} for p in passes],
                         indent=2, default=str))
        return 0
    for p in passes:
        print(f"{p.name}  [{', '.join(p.formats)}; {p.guarantee}]")
        print(f"    {p.summary}")
        if args.verbose:
            for line in p.doc.strip().splitlines()[1:]:
                print(f"    {line.strip()}")
        for name, type_name, default, doc in p.parameters():
            shown = "" if default in (None, "", []) else f" = {spec_value(default)}"
            print(f"    {name} ({type_name}{shown}){': ' + doc if doc else ''}")
        print("    ignore_errors (bool = false)")
    return 0


def spec_value(value: object) -> str:
    """A parameter value as a transform string writes it (true/false, as ignore_errors)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def markdown(passes) -> str:
    """The transform reference as markdown: one section per transform, from the registry."""
    lines = []
    for p in passes:
        lines.append(f"#### `{p.name}` ({', '.join(p.formats)})")
        lines.append("")
        lines.append(f"Formats: {', '.join(p.formats)}. Numeric guarantee: {p.guarantee}.")
        lines.append("")
        for paragraph in re.split(r"\n\s*\n", p.doc.strip()):
            lines.append(" ".join(line.strip() for line in paragraph.splitlines()))
            lines.append("")
        params = p.parameters()
        if params:
            lines.append("| parameter | type | default | meaning |")
            lines.append("|---|---|---|---|")
            for name, type_name, default, text in params:
                shown = "" if default in (None, "", []) else f"`{spec_value(default)}`"
                lines.append(f"| `{name}` | {type_name} | {shown} | {text} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
