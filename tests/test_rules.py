"""The rule tables (graphtool/rules/*.json, the one copy): every table is versioned and
names its sources, every rule's source exists, every transform a rule names as a fix is
registered, the runtime table is the one the TFLite format's versions read, and a
non-editable install ships them."""
from __future__ import annotations

import json
import re

import pytest

from graphtool import rules
from graphtool.passes import all_passes

from .conftest import ROOT

SHIPPED = ROOT / "graphtool" / "rules"


def test_every_table_file_is_a_known_table():
    assert sorted(p.name for p in SHIPPED.glob("*.json")) == sorted(f"{t}.json" for t in rules.TABLES)


@pytest.mark.parametrize("name", rules.TABLES)
def test_tables_are_versioned_and_name_their_sources(name):
    table = rules.table(name)
    assert table["schema"] == rules.SCHEMA and table["tensorflow"]
    for key, source in table["sources"].items():
        assert source["file"] and source["repository"] and source["tensorflow"], key
    referenced = set(re.findall(r'"source": "([^"]+)"', json.dumps(table)))
    assert referenced <= set(table["sources"]), referenced - set(table["sources"])


def test_fix_transforms_are_registered():
    text = "".join((SHIPPED / f"{t}.json").read_text() for t in rules.TABLES)
    text += "".join(p.read_text() for p in (ROOT / "graphtool" / "analysis" / "compat").glob("*.py"))
    named = set(re.findall(r'transform(?:_fix\(|": )"([a-z_]+)', text))
    registered = {p.name for p in all_passes()}
    assert named and named <= registered, named - registered


def test_tflite_versions_read_the_same_runtime_table():
    from graphtool.formats.tflite import versions

    assert versions.RUNTIME_VERSIONS == rules.runtime_versions()
    assert versions.min_runtime("CONV_2D", 5) == "2.4.0"


def test_unknown_table_is_an_error():
    with pytest.raises(rules.RulesError):
        rules.table("nope")


@pytest.mark.slow
def test_non_editable_install_ships_the_rule_tables(non_editable_install, tmp_path):
    """Needs setup.cfg's package_data to list rules/*.json."""
    import os
    import subprocess
    import sys

    target = non_editable_install
    code = ("import sys, graphtool; from graphtool.analysis.check import check; "
            "r = check(graphtool.load(sys.argv[1]), 'micro'); print(graphtool.__file__, r.compatible)")
    run = subprocess.run([sys.executable, "-c", code, str(ROOT / "fixtures" / "tflite" / "float16.tflite")],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(target)), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(str(target)) and run.stdout.split()[-1] == "False"
