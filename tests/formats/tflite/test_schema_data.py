"""The TFLite schema graphtool ships (graphtool/formats/tflite/schema.json, the one copy)
is what schemas/gen_tflite_schema.py derives from the installed TensorFlow's flatc-generated
schema module: regenerating it (`make schema`) changes nothing."""
from __future__ import annotations

import importlib.util
import json

import pytest

from ...conftest import ROOT


def _generator():
    spec = importlib.util.spec_from_file_location("gen_tflite_schema", ROOT / "schemas" / "gen_tflite_schema.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_writes_into_the_package():
    assert _generator().OUT == ROOT / "graphtool" / "formats" / "tflite" / "schema.json"


@pytest.mark.slow
def test_shipped_schema_is_what_the_generator_derives():
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("needs TensorFlow's schema_py_generated.py (pip install -e '.[test]')")
    generator = _generator()
    source = generator.default_module()
    derived = generator.describe(source.read_text())
    derived["derived_from"] = source.name
    assert json.loads(generator.OUT.read_text()) == derived
