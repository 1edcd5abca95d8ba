"""Regenerate what is made from the registry (`make docs`): docs/transforms.md, the transform
reference, and graphtool/passes/index.json, the registry's index (what `graphtool transforms`
lists and where `graphtool transform` finds each transform's module).

The page is a fixed header and `graphtool transforms --markdown`; tests/test_docs.py fails
when the page and the registry drift apart, tests/passes/test_index.py when the index does.
"""
from __future__ import annotations

import sys
from pathlib import Path

from graphtool.cli.transforms_cmd import markdown
from graphtool.passes import all_passes, registry

ROOT = Path(__file__).resolve().parent.parent
TRANSFORMS_PAGE = ROOT / "docs" / "transforms.md"
INDEX = ROOT / "graphtool" / "passes" / registry.INDEX
HEADER = """# Transform reference

<!-- generated from the registry by `make docs` (scripts/update_docs.py): do not edit -->

Every transform graphtool registers, by name and format: what it matches, what it
guarantees about the model's outputs, and its parameters. Each also takes
`ignore_errors=true`. `graphtool transforms [--format graphdef|tflite] [-v]` prints the same;
[commands.md](commands.md#graphtool-transform-in-out---transforms-spec---inputs-ab---outputs-c)
explains transform strings, [writing-a-transform.md](writing-a-transform.md) how to add one.
"""


def expected_text() -> str:
    """The page as the registry describes it now."""
    return f"{HEADER}\n{markdown(all_passes())}"


def main() -> int:
    TRANSFORMS_PAGE.write_text(expected_text())
    print(f"updated {TRANSFORMS_PAGE}")
    INDEX.write_text(registry.index_text(), encoding="utf-8")
    print(f"updated {INDEX}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
