"""inspect shows TFLite Support metadata: the model's name, description, version, author and
license, each input's image properties and normalization, each output's label file with its
label count; in text and in --json (set_metadata's JSON format). What cannot be read is a
warning, never a crash."""
from __future__ import annotations

import json

import pytest

import graphtool
from graphtool.cli import main
from graphtool.formats import dumps
from graphtool.formats.tflite import keys

from ..conftest import FIXTURES, TFLITE_FIXTURES

EXAMPLES = FIXTURES / "metadata"


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    graph = graphtool.load(TFLITE_FIXTURES / "float_cnn.tflite")
    graphtool.transform(graph, f"set_metadata(file={EXAMPLES / 'digits_classifier.json'})")
    path = tmp_path_factory.mktemp("inspect") / "digits.tflite"
    path.write_bytes(dumps(graph, path))
    return path


def inspect(capsys, *args) -> str:
    assert main(["inspect", *map(str, args)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def test_text_shows_the_metadata(digits, capsys):
    out = inspect(capsys, digits)
    assert "TFLite Support metadata: Digits classifier, version 1.0 (parser 1.0.0)" in out
    assert "  Recognises a handwritten digit in an 8x8 grayscale image." in out
    assert "  Author: graphtool examples; license: Apache-2.0" in out
    assert "  Input image (serving_default_image:0): image GRAYSCALE 8x8; normalization mean [0] std [16]" in out
    assert "  Output probability (StatefulPartitionedCall:0): stats min [0] max [1]; " \
           "labels digits_labels.txt (10 labels)" in out
    assert "Associated files (1, zipped after the model): digits_labels.txt (50 B, 10 labels)" in out


def test_json_shows_the_metadata_in_set_metadatas_format(digits, capsys):
    data = json.loads(inspect(capsys, digits, "--json"))
    document = json.loads((EXAMPLES / "digits_classifier.json").read_text())
    shown = data["support_metadata"]
    assert {key: shown[key] for key in ("name", "description", "version", "author", "license")} == \
        {key: document[key] for key in ("name", "description", "version", "author", "license")}
    assert shown["inputs"][0] == document["inputs"][0]
    assert shown["outputs"][0]["associated_files"] == [
        {"file": "digits_labels.txt", "type": "TENSOR_AXIS_LABELS",
         "description": "Labels for categories that the model can recognize."}]
    assert data["associated_files"] == [{"name": "digits_labels.txt", "bytes": 50, "labels": 10}]
    assert data["unreadable"] == []


def test_a_model_without_metadata_shows_none(capsys):
    data = json.loads(inspect(capsys, TFLITE_FIXTURES / "float_cnn.tflite", "--json"))
    assert (data["support_metadata"], data["associated_files"], data["unreadable"]) == (None, [], [])


@pytest.mark.parametrize("damage", ["garbage", "truncated", "no_archive"])
def test_what_cannot_be_read_is_a_warning(digits, damage, tmp_path, capsys):
    graph = graphtool.load(digits)
    raw = graph.meta[keys.METADATA][keys.SUPPORT_METADATA]
    if damage == "no_archive":
        del graph.meta[keys.ASSOCIATED_FILES]
    else:
        broken = b"not a flatbuffer" if damage == "garbage" else raw[:len(raw) // 2]
        graph.meta[keys.METADATA] = {**graph.meta[keys.METADATA], keys.SUPPORT_METADATA: broken}
    path = tmp_path / "damaged.tflite"
    path.write_bytes(dumps(graph, path))
    out = inspect(capsys, path)
    expected = "which the model does not carry" if damage == "no_archive" else "TFLITE_METADATA cannot be read: "
    (warning,) = [line for line in out.splitlines() if line.startswith("Warning: ")]
    assert expected in warning
    assert json.loads(inspect(capsys, path, "--json"))["unreadable"] == [warning.removeprefix("Warning: ")]
