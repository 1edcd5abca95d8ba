"""The TFLite schemas graphtool ships (graphtool/formats/tflite/schema.json and
metadata_schema.json, the one copies) are what schemas/gen_tflite_schema.py derives from the
installed TensorFlow's flatc-generated schema module and from TFLite Support's
metadata_schema.fbs (tests/data/) through flatc: regenerating them (`make schema`) changes
nothing."""
from __future__ import annotations

import importlib.util
import json

import pytest

from ...conftest import ROOT
from .flatc_metadata import flatc


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


def test_the_metadata_schema_is_tflite_supports_with_its_licence():
    fbs = _generator().METADATA_FBS
    assert fbs == ROOT / "tests" / "data" / "metadata_schema.fbs"
    text = fbs.read_text()
    assert text.startswith("// Copyright 2020 The TensorFlow Authors. All Rights Reserved.")
    assert "Licensed under the Apache License, Version 2.0" in text.splitlines()[2]
    assert 'file_identifier "M001";' in text and "root_type ModelMetadata;" in text


def test_shipped_metadata_schema_is_what_the_generator_derives():
    flatc()
    generator = _generator()
    derived = generator.derive(generator.METADATA_FBS)
    assert (derived["file_identifier"], derived["root_type"]) == ("M001", "ModelMetadata")
    assert json.loads(generator.OUTPUTS["M001"].read_text()) == derived
