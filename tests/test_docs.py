"""README.md and docs/ stay true: the README is short and starts with the two quick-start
commands, every relative link and anchor resolves, every page is indexed, the command table
and the make targets named exist, and docs/transforms.md is the registry's."""
from __future__ import annotations

import argparse
import re
import runpy
from collections import Counter
from pathlib import Path

from graphtool.cli.main import build_parser

from .conftest import ROOT
from .test_layering import MAY_IMPORT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 300

FENCE = re.compile(r"^```.*?^```[ \t]*$", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def prose(text: str) -> str:
    """`text` without fenced code blocks, where nothing is a link or a heading."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    kept = "".join(c for c in heading.strip().lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file; a repeated slug gets -1, -2, ... as on GitHub."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in HEADING.findall(prose(path.read_text())):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def relative_links(path: Path) -> list[str]:
    """The link targets of a page that are neither URLs nor inside code."""
    text = CODE_SPAN.sub("", prose(path.read_text()))
    return [target for target in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def broken(path: Path, target: str) -> str | None:
    """Why the link `target` on page `path` does not resolve, or None when it does."""
    file, _, anchor = target.partition("#")
    destination = (path.parent / file).resolve() if file else path
    if not destination.exists():
        return f"{path.name}: {target}: no such file"
    if anchor and (destination.suffix != ".md" or anchor not in anchors(destination)):
        return f"{path.name}: {target}: no heading with anchor #{anchor}"
    return None


def test_readme_is_at_most_300_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_quick_start_is_make_demo_and_make_test():
    text = README.read_text()
    quick = text[text.index("## Quick start"):]
    block = quick[quick.index("```sh") + 5:quick.index("```", quick.index("```sh") + 5)]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_slugs_are_githubs():
    assert slug("`graphtool transforms [--format graphdef|tflite] [--json] [-v]`") == \
        "graphtool-transforms---format-graphdeftflite---json--v"
    assert slug("Pruned models: `strip_pruning`, `freeze_variables`, `sparsify`") == \
        "pruned-models-strip_pruning-freeze_variables-sparsify"
    assert slug("`graphtool draw MODEL -o OUT.{dot,svg,png,html}`") == "graphtool-draw-model--o-outdotsvgpnghtml"


def test_link_checker_finds_broken_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A title\n\n[ok](#a-title) [gone](missing.md) [bad](#nope) `[code](x.md)`\n"
                    "```\n[fenced](y.md)\n# not a heading\n```\n[web](https://example.com)\n")
    assert relative_links(page) == ["#a-title", "missing.md", "#nope"]
    assert [target for target in relative_links(page) if broken(page, target)] == ["missing.md", "#nope"]


def test_every_relative_link_resolves():
    problems = [problem for page in PAGES for target in relative_links(page)
                if (problem := broken(page, target))]
    assert not problems, "\n".join(problems)


def test_every_docs_page_is_linked_from_the_readme_and_the_index():
    pages = {path.name for path in DOCS.glob("*.md")} - {"README.md"}
    assert pages, "docs/ has no pages"
    readme = {Path(target.partition("#")[0]).name for target in relative_links(README)
              if target.startswith("docs/")}
    index = {target.partition("#")[0] for target in relative_links(DOCS / "README.md")}
    assert pages <= readme, f"README.md does not link {sorted(pages - readme)}"
    assert pages <= index, f"docs/README.md does not list {sorted(pages - index)}"


def test_the_readme_command_table_lists_every_command():
    parser = build_parser()
    (commands,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    table = re.findall(r"^\| \[`([a-z]+)[^`]*`\]\(docs/commands\.md#", README.read_text(), re.M)
    assert sorted(table) == sorted(commands.choices)


def test_every_make_target_named_exists():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = set()
    for page in PAGES:
        text = page.read_text()
        named |= set(re.findall(r"`make ([a-z][a-z-]*)", text))
        for block in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M):
            named |= set(re.findall(r"^make ([a-z][a-z-]*)", block, re.M))
    assert named, "no make target named"
    assert named <= targets, f"not Makefile targets: {sorted(named - targets)}"


def _layers_table() -> dict[str, set[str]]:
    """docs/architecture.md's layering table: folder -> the layers its "may import" cell names."""
    text = (DOCS / "architecture.md").read_text()
    section = text[text.index("\n## Layers\n"):text.index("\n## ", text.index("\n## Layers\n") + 1)]
    table = {}
    for folder, cell in re.findall(r"^\| \[graphtool/(\w+)/\]\(.*?\) \|.*\| ([^|]+) \|$", section, re.M):
        names = cell.strip().replace("formats' public surface", "formats")
        table[folder] = set() if names.startswith("nothing") else {"*"} if names == "everything" \
            else set(names.split(", "))
    return table


def test_the_layering_table_is_the_one_tests_hold():
    table = _layers_table()
    leaves = {"errors", "logs"}  # modules every layer may import, named under the table
    layers = set(MAY_IMPORT) - leaves
    assert set(table) == layers
    for layer, allowed in table.items():
        expected = MAY_IMPORT[layer] - leaves - {"__init__"}
        assert allowed == ({"*"} if expected == layers - {layer} else expected), layer


def test_transform_reference_matches_the_registry():
    script = runpy.run_path(str(ROOT / "scripts" / "update_docs.py"))  # not as __main__: writes nothing
    assert script["TRANSFORMS_PAGE"].read_text() == script["expected_text"](), \
        "docs/transforms.md is stale: run `make docs`"
