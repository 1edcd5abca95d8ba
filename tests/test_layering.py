"""The architecture holds: each layer imports only the layers below it (the layering table of
docs/architecture.md), and no module reaches into another package's private modules or
names (a leading underscore). Read from the source with `ast`: nothing is imported."""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGE = ROOT / "graphtool"

# layer -> the layers it may import (besides itself). The table of docs/architecture.md.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "logs": frozenset(),
    "ir": frozenset({"errors"}),
    "rules": frozenset({"errors"}),
    "formats": frozenset({"errors", "logs", "ir", "rules"}),
    "pattern": frozenset({"errors", "ir"}),
    "runtime": frozenset({"errors", "logs", "ir", "formats"}),
    "passes": frozenset({"errors", "logs", "ir", "rules", "formats", "pattern", "runtime"}),
    "analysis": frozenset({"errors", "logs", "ir", "rules", "formats", "pattern", "runtime", "passes"}),
    "cli": frozenset({"errors", "logs", "ir", "rules", "formats", "pattern", "runtime", "passes", "analysis", "__init__"}),
}
TOP_LEVEL = {"__init__", "__main__"}  # the package's front door: imports every layer, only cli imports it

# Trees outside the package whose imports of graphtool are checked for private names too.
OTHER_TREES = ("tests", "bench", "fuzz", "demo", "scripts", "fixtures", "schemas")


@dataclass(frozen=True)
class Import:
    source: Path       # the importing file
    line: int
    module: str        # the imported module, absolute ("graphtool.formats.graphdef._proto")
    names: tuple[str, ...]  # names taken from it (from X import a, b); () for `import X`


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: Path) -> str:
    """The package a file belongs to (its directory, dotted)."""
    return ".".join(path.relative_to(ROOT).parent.parts)


def imports_of(path: Path) -> list[Import]:
    """Every import in `path` (at any depth: lazy imports count), relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = _package_of(path).split(".") if _package_of(path) else []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = tuple(alias.name for alias in node.names)
            # `from pkg import sub` may name a submodule: check it as a module too
            found.append(Import(path, node.lineno, module, names))
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "graphtool":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _python_files(tree: Path) -> list[Path]:
    return sorted(p for p in tree.rglob("*.py") if "_pb2" not in p.name)


def layering_violations(files: list[Path]) -> list[str]:
    problems = []
    for path in files:
        own = _layer(_module_name(path))
        if own in TOP_LEVEL or own is None:
            continue
        allowed = MAY_IMPORT.get(own)
        if allowed is None:
            problems.append(f"{path.relative_to(ROOT)}: graphtool/{own} is not in the layering table")
            continue
        for imp in imports_of(path):
            if imp.module == "graphtool":  # from graphtool import x: a layer, or a name of its __init__
                targets = {name if name in MAY_IMPORT else "__init__" for name in imp.names}
            else:
                target = _layer(imp.module)
                targets = {target} if target is not None else set()
            for layer in targets - {own}:
                if layer not in allowed:
                    problems.append(f"{path.relative_to(ROOT)}:{imp.line}: {own} imports {layer} "
                                    f"({imp.module}); {own} may import {', '.join(sorted(allowed)) or 'nothing'}")
    return problems


def _package_of_module(module: str) -> str:
    """The package a module belongs to: itself for a package, else its parent."""
    path = ROOT.joinpath(*module.split("."))
    return module if (path / "__init__.py").is_file() else module.rpartition(".")[0]


def private_violations(files: list[Path]) -> list[str]:
    """Imports of a private module or name (leading underscore) of another package."""
    problems = []
    for path in files:
        own = _package_of(path)
        for imp in imports_of(path):
            if not imp.module.startswith("graphtool"):
                continue
            parts = imp.module.split(".")
            for depth, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:depth])
                    if owner != own:
                        problems.append(f"{path.relative_to(ROOT)}:{imp.line}: imports private module "
                                        f"{'.'.join(parts[:depth + 1])} of {owner}")
                    break
            else:
                if _package_of_module(imp.module) != own:
                    for name in imp.names:
                        if name.startswith("_") and not name.startswith("__"):
                            problems.append(f"{path.relative_to(ROOT)}:{imp.line}: imports private name "
                                            f"{name} from {imp.module}")
    return problems


def test_every_package_is_in_the_layering_table():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    modules = {p.stem for p in PACKAGE.glob("*.py")} - TOP_LEVEL
    assert packages | modules == set(MAY_IMPORT), (packages | modules) ^ set(MAY_IMPORT)


def test_layers_import_only_the_layers_below():
    problems = layering_violations(_python_files(PACKAGE))
    assert not problems, "\n".join(problems)


def test_no_module_imports_another_packages_private_names():
    files = _python_files(PACKAGE)
    for tree in OTHER_TREES:
        files += _python_files(ROOT / tree)
    problems = private_violations(files)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source, expected", [
    ("from ..formats.graphdef._proto import graphtool_graphdef_pb2 as pb\n", "private module graphtool.formats.graphdef._proto"),
    ("from ..formats.graphdef.reader import _node_from_proto\n", "private name _node_from_proto"),
    ("from ..analysis.calibrate import calibrate\n", "passes imports analysis"),
])
def test_the_checks_catch_what_they_are_for(tmp_path, monkeypatch, source, expected):
    """A planted bad import in a pass is reported (the checks can fail)."""
    fake_root = tmp_path
    module = fake_root / "graphtool" / "passes" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text(source)
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", fake_root)
    problems = layering_violations([module]) + private_violations([module])
    assert any(expected in p for p in problems), problems


def test_own_private_modules_are_allowed(tmp_path, monkeypatch):
    module = tmp_path / "graphtool" / "formats" / "graphdef" / "reader.py"
    module.parent.mkdir(parents=True)
    module.write_text("from ._proto import graphtool_graphdef_pb2 as pb\nfrom .attr_value import _scalar\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert layering_violations([module]) + private_violations([module]) == []
