"""The rule tables: shipped copies equal their sources in schemas/compat/, every table is
versioned and names its sources, every rule's source exists, every transform a rule names
as a fix is registered, and the runtime table is the one quantize_weights reads."""
from __future__ import annotations

import json
import re

import pytest

from graphtool.analysis.compat import rules
from graphtool.passes import all_passes

from ..conftest import ROOT

SOURCES = ROOT / "schemas" / "compat"
SHIPPED = ROOT / "graphtool" / "analysis" / "rules"


def test_shipped_tables_equal_their_sources():
    assert sorted(p.name for p in SOURCES.glob("*.json")) == sorted(f"{t}.json" for t in rules.TABLES)
    for path in SOURCES.glob("*.json"):
        assert (SHIPPED / path.name).read_bytes() == path.read_bytes(), f"copy schemas/compat/{path.name} again"


@pytest.mark.parametrize("name", rules.TABLES)
def test_tables_are_versioned_and_name_their_sources(name):
    table = rules.table(name)
    assert table["schema"] == rules.SCHEMA and table["tensorflow"]
    for key, source in table["sources"].items():
        assert source["file"] and source["repository"] and source["tensorflow"], key
    referenced = set(re.findall(r'"source": "([^"]+)"', json.dumps(table)))
    assert referenced <= set(table["sources"]), referenced - set(table["sources"])


def test_fix_transforms_are_registered():
    text = "".join((SOURCES / f"{t}.json").read_text() for t in rules.TABLES)
    text += "".join(p.read_text() for p in (ROOT / "graphtool" / "analysis" / "compat").glob("*.py"))
    named = set(re.findall(r'transform(?:_fix\(|": )"([a-z_]+)', text))
    registered = {p.name for p in all_passes()}
    assert named and named <= registered, named - registered


def test_quantize_weights_reads_the_same_runtime_table():
    from graphtool.passes.helpers import tflite_versions as _tflite_versions

    assert _tflite_versions.RUNTIME_VERSIONS == rules.runtime_versions()
    assert _tflite_versions.min_runtime("CONV_2D", 5) == "2.4.0"


def test_unknown_table_is_an_error():
    with pytest.raises(rules.RulesError):
        rules.table("nope")


@pytest.mark.slow
def test_non_editable_install_ships_the_rule_tables(tmp_path):
    """Needs setup.cfg's package_data to list analysis/rules/*.json."""
    import os
    import subprocess
    import sys

    target = tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                            "--target", str(target), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    code = ("import sys, graphtool; from graphtool.analysis.check import check; "
            "r = check(graphtool.load(sys.argv[1]), 'micro'); print(graphtool.__file__, r.compatible)")
    run = subprocess.run([sys.executable, "-c", code, str(ROOT / "fixtures" / "tflite" / "float16.tflite")],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(target)), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(str(target)) and run.stdout.split()[-1] == "False"
