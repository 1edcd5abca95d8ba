"""`graphtool split`: the parts it writes, its --json (the API's data), and bad input: exit 2,
one line, nothing written."""
from __future__ import annotations

import json
import os

import pytest

from graphtool.analysis.split import split

from ..conftest import GRAPHDEF_FIXTURES, TFLITE_FIXTURES
from .test_cli import graphtool

FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
MAXPOOL, FLATTEN = "digits_cnn/maxpool/MaxPool", "digits_cnn/flatten/Reshape"


def test_split_writes_the_parts_and_says_what_each_takes(tmp_path):
    result = graphtool("split", FLOAT_CNN, "--at", f"{MAXPOOL},{FLATTEN}", "-o", "parts", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"wrote parts/part_0.tflite (8,280 bytes, 4 operators): serving_default_image:0 -> {MAXPOOL}",
        f"wrote parts/part_1.tflite (1,240 bytes, 2 operators): {MAXPOOL} -> {FLATTEN}",
        f"wrote parts/part_2.tflite (35,920 bytes, 3 operators): {FLATTEN} -> StatefulPartitionedCall:0"]
    expected = split(FLOAT_CNN, [MAXPOOL, FLATTEN])
    assert [(tmp_path / "parts" / f"part_{i}.tflite").read_bytes() for i in range(3)] == \
        [part.data for part in expected.parts]
    assert sorted(os.listdir(tmp_path)) == ["parts"]


def test_json_is_the_reports_data(tmp_path):
    result = graphtool("split", FLOAT_CNN, "--at", MAXPOOL, "-o", tmp_path / "parts", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    report = split(FLOAT_CNN, [MAXPOOL])
    assert data["parts"] == [{**part.to_dict(), "path": str(tmp_path / "parts" / f"part_{i}.tflite")}
                             for i, part in enumerate(report.parts)]
    assert data["inputs"] == report.inputs and data["at"] == [MAXPOOL]


@pytest.mark.parametrize("model, at, message", [
    (FLOAT_CNN, "nope", "no tensor named 'nope' in the main subgraph"),
    (FLOAT_CNN, "serving_default_image:0", "'serving_default_image:0' is an input: cut at tensors operators compute"),
    (FLOAT_CNN, f"{FLATTEN},{MAXPOOL}", "a later cut"),
    (FLOAT_CNN, ",", "--at is empty"),
    (TFLITE_FIXTURES / "control_flow.tflite", "x", "runs other subgraphs"),
    (GRAPHDEF_FIXTURES / "keras2_cnn.pb", "x", "split cuts TFLite models"),
    (TFLITE_FIXTURES / "missing.tflite", "x", "no such file"),
])
def test_bad_input_exits_2_in_one_line_and_writes_nothing(tmp_path, model, at, message):
    result = graphtool("split", model, "--at", at, "-o", tmp_path / "parts")
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("graphtool: error: ") and message in line
    if "--at" not in message:
        assert str(model) in line
    assert os.listdir(tmp_path) == []


def test_an_existing_non_empty_directory_is_an_error_and_stays_as_it_was(tmp_path):
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "part_0.tflite").write_bytes(b"mine")
    result = graphtool("split", FLOAT_CNN, "--at", MAXPOOL, "-o", tmp_path / "parts")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (f"graphtool: error: {tmp_path / 'parts'}: exists and is not an empty "
                                     "directory; give a new one")
    assert os.listdir(tmp_path / "parts") == ["part_0.tflite"]
    assert (tmp_path / "parts" / "part_0.tflite").read_bytes() == b"mine"


def test_transform_inputs_and_outputs_cut_a_tflite_model(tmp_path):
    out = tmp_path / "middle.tflite"
    result = graphtool("transform", FLOAT_CNN, out, "--inputs", MAXPOOL, "--outputs", FLATTEN,
                       "--transforms", "strip_unused_nodes")
    assert result.returncode == 0, result.stderr
    assert "inputs_replaced 1" in result.stderr
    middle = split(FLOAT_CNN, [MAXPOOL, FLATTEN]).parts[1]
    assert out.read_bytes() == middle.data  # the middle part of a split is that cut
