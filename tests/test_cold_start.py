"""A command imports what it runs, and nothing more: no analysis, runtime, rule table or
transform module it does not use. Each command runs in a fresh interpreter that reports the
modules it imported and the rule tables it read. No timing here: bench/bench_cold_start.py
measures the speed this buys."""
from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

import graphtool
from graphtool.passes import registry

from .conftest import ROOT, TFLITE_FIXTURES

MODEL = str(TFLITE_FIXTURES / "float_cnn.tflite")

CHILD = """
import json, sys
import graphtool.rules as rules

read, table = [], rules.table
rules.table = lambda name: (read.append(name), table(name))[1]
from graphtool.cli import main

try:
    main(sys.argv[1:])
except SystemExit:  # --help
    pass
print(json.dumps({"modules": sorted(sys.modules), "tables": sorted(set(read))}))
"""

IR = ("numpy", "networkx", "graphtool.ir", "graphtool.formats")  # what reading any model needs
ANALYSES = ("graphtool.analysis.",)
TRANSFORMS = tuple(f"graphtool.passes.{package}." for package in registry.TRANSFORM_PACKAGES) + \
    ("graphtool.passes.helpers",)  # the transforms and their numpy kernels
RUNTIMES = ("graphtool.runtime.",)  # calibration, LiteRT, TensorFlow; not the package's constants
GRAPHDEF = ("google.protobuf", "graphtool.formats.graphdef")  # a .tflite needs no protobuf


def imported(*argv: str) -> dict[str, list[str]]:
    """The modules `graphtool ARGV` imported and the rule tables it read."""
    done = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def under(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    """The modules under any of `prefixes`: "pkg." is pkg's submodules, "pkg" pkg and them."""
    return [m for m in modules
            if any(m.startswith(p) if p.endswith(".") else m == p or m.startswith(p + ".") for p in prefixes)]


@pytest.mark.parametrize("argv", [["--help"], ["transforms"], ["transforms", "--json"]], ids=" ".join)
def test_help_and_transforms_read_no_model_code(argv):
    """Neither numpy nor networkx, no format, analysis, runtime or transform module: the
    transform list comes from the registry's index."""
    modules = imported(*argv)["modules"]
    assert under(modules, IR + ANALYSES + TRANSFORMS + RUNTIMES) == []


def test_inspect_imports_the_inspect_analysis_only():
    found = imported("inspect", MODEL)
    modules = found["modules"]
    assert "graphtool.analysis.inspect" in modules
    assert [m for m in under(modules, ANALYSES) if m != "graphtool.analysis.inspect"] == []
    assert under(modules, ("graphtool.passes",) + RUNTIMES + GRAPHDEF) == []
    assert found["tables"] == []


def test_check_imports_its_target_checker_and_reads_its_table_only():
    found = imported("check", MODEL, "--target", "gpu")
    modules = found["modules"]
    assert {"graphtool.analysis.check", "graphtool.analysis.compat.gpu"} <= set(modules)
    others = ("inspect", "diff", "verify", "draw", "batch", "compat.edgetpu", "compat.micro", "compat.xnnpack",
              "compat.tflite_ops", "compat.graphdef_ops", "compat.runtime")
    assert under(modules, tuple(f"graphtool.analysis.{name}" for name in others)) == []
    assert under(modules, ("graphtool.passes",) + RUNTIMES + GRAPHDEF) == []
    assert found["tables"] == ["gpu"]


def test_transform_imports_the_modules_of_its_spec_only(tmp_path):
    modules = imported("transform", MODEL, str(tmp_path / "out.tflite"), "--transforms",
                       "strip_unused_nodes dedupe_buffers", "--quiet")["modules"]
    transforms = [m for m in under(modules, TRANSFORMS[:-1]) if m.count(".") == 3]
    assert sorted(transforms) == ["graphtool.passes.tflite.dedupe_buffers", "graphtool.passes.tflite.strip_unused_nodes"]
    assert under(modules, ANALYSES + RUNTIMES + GRAPHDEF) == []


def test_import_graphtool_imports_no_layer():
    code = "import sys, graphtool; print(sorted(m for m in sys.modules if m.startswith(('numpy', 'graphtool.'))))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['graphtool.errors']"


def test_every_public_name_resolves():
    """The lazy names are the eager ones of before: each resolves (as `from graphtool import *`
    takes them), dir() lists them, and the layers are attributes too."""
    assert all(getattr(graphtool, name) is not None for name in graphtool.__all__)
    assert set(graphtool.__all__) <= set(dir(graphtool))
    assert graphtool.inspect.__module__ == "graphtool.analysis.inspect" and graphtool.Graph.__name__ == "Graph"
    assert callable(graphtool.formats.dumps) and callable(graphtool.passes.get)
    with pytest.raises(AttributeError):
        graphtool.no_such_name  # noqa: B018


def test_the_lazy_table_says_what_type_checkers_see():
    """graphtool/__init__.py's TYPE_CHECKING imports and its run-time table name the same things."""
    tree = ast.parse((ROOT / "graphtool" / "__init__.py").read_text())
    guarded = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    seen = {alias.name: node.module for node in guarded.body for alias in node.names}
    assert seen == graphtool._PUBLIC
    assert set(graphtool._PUBLIC) | {"FormatError", "GraphError", "GraphtoolError", "UnknownFormatError",
                                     "__version__"} == set(graphtool.__all__)
