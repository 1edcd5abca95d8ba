"""The registry's index (graphtool/passes/index.json) is the registry: `graphtool transforms`
lists it and `get` imports the modules it names, so it must not drift from the transform
modules. `make docs` rewrites it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from graphtool.passes import PassError, all_passes, catalog, get, registry

from ..conftest import ROOT

INDEX = ROOT / "graphtool" / "passes" / registry.INDEX


def test_the_index_is_the_registry():
    assert INDEX.read_text(encoding="utf-8") == registry.index_text(), \
        "graphtool/passes/index.json is not the registry any more: run `make docs`"


def test_the_catalog_reads_back_what_the_registry_says():
    """Every field survives the trip through JSON (a tuple default would come back a list)."""
    assert catalog() == [p.info() for p in all_passes()]
    assert catalog("tflite") == [p.info() for p in all_passes("tflite")]


def test_every_entry_names_the_module_that_registers_it():
    for entry in catalog():
        assert get(entry.name, entry.formats[0]).function.__module__ == entry.module


def test_the_order_does_not_depend_on_which_transform_came_first():
    """`get` imports one module: a name's passes still come in the order importing them all
    gives (get without a format returns the first; the index and the docs list them so)."""
    code = ("import sys\nimport graphtool.passes.tflite.quantize_weights\n"
            "from graphtool.passes import get, registry\n"
            "print(get('quantize_weights').function.__module__, registry.index_text() == open(sys.argv[1]).read())")
    run = subprocess.run([sys.executable, "-c", code, str(INDEX)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["graphtool.passes.graphdef.quantize_weights", "True"]


def test_get_finds_a_transform_the_index_does_not_know(monkeypatch):
    """An index behind the transform folders costs imports, never a wrong answer."""
    monkeypatch.setattr(registry, "_index", lambda: ())
    assert get("remove_device", "graphdef").name == "remove_device"
    with pytest.raises(PassError, match="does not work on tflite models"):
        get("remove_device", "tflite")


@pytest.mark.slow
def test_non_editable_install_ships_the_index(non_editable_install, tmp_path):
    """Needs setup.cfg's package_data to list passes/index.json."""
    code = "import graphtool; from graphtool.passes import catalog; print(graphtool.__file__, len(catalog()))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env=dict(os.environ, PYTHONPATH=str(non_editable_install)))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(str(non_editable_install)) and int(run.stdout.split()[-1]) == len(catalog())
