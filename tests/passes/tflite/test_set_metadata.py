"""set_metadata: TFLite Support metadata from a JSON file, read back by graphtool and by the
Python flatc generates from the official metadata_schema.fbs; associated files zipped onto
the model; signatures and the other metadata kept; LiteRT's outputs unchanged; the same
bytes for the same inputs; bad documents refused with one line (exit 2) and no output."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tflite

import graphtool
from graphtool.cli import main
from graphtool.errors import GraphtoolError
from graphtool.formats import dumps
from graphtool.formats.tflite import associated_files, keys, support_metadata

from ...conftest import FIXTURES, TFLITE_FIXTURES, random_inputs, run_litert
from ...formats.tflite.flatc_metadata import flatc_metadata  # noqa: F401 - the fixture

MODEL = TFLITE_FIXTURES / "float_cnn.tflite"
EXAMPLES = FIXTURES / "metadata"
DIGITS = EXAMPLES / "digits_classifier.json"
LABELS = (EXAMPLES / "digits_labels.txt").read_bytes()


def with_metadata(model: Path, document: Path) -> bytes:
    graph = graphtool.load(model)
    graphtool.transform(graph, f"set_metadata(file={document})")
    return dumps(graph, "out.tflite")


@pytest.fixture(scope="module")
def digits() -> bytes:
    return with_metadata(MODEL, DIGITS)


def entries(data: bytes) -> dict[str, bytes]:
    """The model's metadata entries, read with the tflite package (flatc's Python of TFLite's schema)."""
    model = tflite.Model.GetRootAsModel(data, 0)
    return {model.Metadata(i).Name().decode(): model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy().tobytes()
            for i in range(model.MetadataLength())}


def test_written_metadata_read_back_by_flatc_generated_python(digits, flatc_metadata):
    fb = flatc_metadata
    data = entries(digits)["TFLITE_METADATA"]
    assert fb.ModelMetadata.ModelMetadataBufferHasIdentifier(data, 0)
    metadata = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAs(data, 0))
    document = json.loads(DIGITS.read_text())
    assert (metadata.name, metadata.version, metadata.author, metadata.license, metadata.minParserVersion) == \
        (b"Digits classifier", b"1.0", b"graphtool examples", b"Apache-2.0", b"1.0.0")
    (subgraph,) = metadata.subgraphMetadata
    (image,) = subgraph.inputTensorMetadata
    assert image.name == b"image"
    assert image.content.contentPropertiesType == fb.ContentProperties.ImageProperties
    properties = image.content.contentProperties
    assert properties.colorSpace == fb.ColorSpaceType.GRAYSCALE
    assert (properties.defaultSize.width, properties.defaultSize.height) == (8, 8)
    assert image.processUnits[0].optionsType == fb.ProcessUnitOptions.NormalizationOptions
    assert list(image.processUnits[0].options.mean) == document["inputs"][0]["normalization"]["mean"]
    assert list(image.processUnits[0].options.std) == document["inputs"][0]["normalization"]["std"]
    (probability,) = subgraph.outputTensorMetadata
    (labels,) = probability.associatedFiles
    assert (labels.name, labels.type) == (b"digits_labels.txt", fb.AssociatedFileType.TENSOR_AXIS_LABELS)


def test_written_metadata_read_back_by_graphtool(digits):
    metadata = support_metadata.decode(graphtool.load(digits).meta[keys.METADATA][keys.SUPPORT_METADATA])
    assert (metadata.name, metadata.author, metadata.license) == ("Digits classifier", "graphtool examples",
                                                                  "Apache-2.0")
    assert metadata.inputs[0].normalization == support_metadata.Normalization((0.0,), (16.0,))
    assert [f.name for f in metadata.files()] == ["digits_labels.txt"]


def test_associated_files_are_read_by_zipfile_from_the_model_file(digits, tmp_path):
    path = tmp_path / "digits.tflite"
    path.write_bytes(digits)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["digits_labels.txt"]
        assert archive.read("digits_labels.txt") == LABELS
        assert archive.getinfo("digits_labels.txt").compress_type == zipfile.ZIP_STORED


def test_signatures_and_the_other_metadata_stay(digits):
    before, after = entries(MODEL.read_bytes()), entries(digits)
    assert list(after) == list(before) + ["TFLITE_METADATA"]
    assert {name: after[name] for name in before} == before
    model = tflite.Model.GetRootAsModel(digits, 0)
    assert model.SignatureDefsLength() == 1 and model.SignatureDefs(0).SignatureKey() == b"serving_default"
    original = graphtool.load(MODEL).meta[keys.SIGNATURE_DEFS]
    kept = graphtool.load(digits).meta[keys.SIGNATURE_DEFS]
    assert [(s["key"], [n for n, _ in s["inputs"]], [n for n, _ in s["outputs"]]) for s in kept] == \
        [(s["key"], [n for n, _ in s["inputs"]], [n for n, _ in s["outputs"]]) for s in original]


@pytest.mark.litert
def test_the_model_runs_in_litert_with_the_same_outputs(digits):
    from ai_edge_litert.interpreter import Interpreter

    original = MODEL.read_bytes()
    inputs = random_inputs(Interpreter(model_content=original), seed=3)
    for expected, got in zip(run_litert(original, inputs), run_litert(digits, inputs)):
        np.testing.assert_array_equal(got, expected)
    assert Interpreter(model_content=digits).get_signature_list() == \
        Interpreter(model_content=original).get_signature_list()


def test_the_same_inputs_give_the_same_bytes(digits):
    assert with_metadata(MODEL, DIGITS) == digits
    assert dumps(graphtool.load(digits), "again.tflite") == digits


def test_setting_metadata_again_replaces_the_metadata_and_the_files(digits, tmp_path):
    document = json.loads(DIGITS.read_text())
    document["name"] = "Renamed"
    del document["outputs"][0]["labels"]
    (tmp_path / "plain.json").write_text(json.dumps(document))
    (tmp_path / "digits.tflite").write_bytes(digits)
    graph = graphtool.load(tmp_path / "digits.tflite")
    graphtool.transform(graph, f"set_metadata(file={tmp_path / 'plain.json'})")
    again = dumps(graph, "again.tflite")
    assert list(entries(again)).count("TFLITE_METADATA") == 1
    assert support_metadata.decode(entries(again)["TFLITE_METADATA"]).name == "Renamed"
    assert keys.ASSOCIATED_FILES not in graph.meta and not zipfile.is_zipfile(io.BytesIO(again))


def test_entries_match_the_tensors_they_name_in_any_order_or_go_by_position(tmp_path):
    """strings.tflite has two inputs and two outputs: entries naming them in reverse order
    are written in the model's order; entries naming none are taken in that order."""
    model = TFLITE_FIXTURES / "strings.tflite"
    graph = graphtool.load(model)
    inputs = [graph.node(name).outputs[0].name for name in graph.inputs]
    named = {"inputs": [{"tensor": name, "name": f"in {name}"} for name in reversed(inputs)],
             "outputs": [{"name": "first"}, {"name": "second"}]}
    (tmp_path / "named.json").write_text(json.dumps(named))
    written = support_metadata.decode(entries(with_metadata(model, tmp_path / "named.json"))["TFLITE_METADATA"])
    assert [t.name for t in written.inputs] == [f"in {name}" for name in inputs]
    assert [t.name for t in written.outputs] == ["first", "second"]


def test_associated_files_are_read_relative_to_the_document(tmp_path):
    folder = tmp_path / "meta"
    shutil.copytree(EXAMPLES, folder)
    written = with_metadata(MODEL, folder / "digits_classifier.json")
    archive = graphtool.load(written).meta[keys.ASSOCIATED_FILES]
    assert associated_files.read(archive, "digits_labels.txt") == LABELS


BAD = {
    "wrong_count": ({"inputs": [], "outputs": [{}]},
                    "inputs: 0 entries; the model has 1 input: serving_default_image:0"),
    "wrong_name": ({"inputs": [{"tensor": "image"}], "outputs": [{}]},
                   "inputs[0].tensor: 'image' is not an input of the model (serving_default_image:0)"),
    "too_many": ({"inputs": [{}], "outputs": [{"tensor": "StatefulPartitionedCall:0"}, {}]},
                 "outputs: 2 entries; the model has 1 output"),
    "missing_file": ({"inputs": [{}], "outputs": [{"labels": "no_such_labels.txt"}]},
                     "outputs[0].labels: cannot read"),
    "channels": ({"inputs": [{"normalization": {"mean": [0, 0, 0], "std": [1, 1, 1]}}], "outputs": [{}]},
                 "inputs[0].normalization: 3 values; serving_default_image:0 [None, 8, 8, 1] has 1 channels"),
    "unknown_key": ({"inputs": [{"normalisation": {}}], "outputs": [{}]}, "inputs[0]: unknown key 'normalisation'"),
    "malformed": ("{\"inputs\": [}", "not valid JSON: Expecting value (line 1, column 13)"),
    "not_utf8": (b"\xff\xfe{}", "cannot be read as text"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_documents_exit_2_with_one_line_and_no_output(name, tmp_path, capsys):
    document, message = BAD[name]
    path = tmp_path / f"{name}.json"
    if isinstance(document, bytes):
        path.write_bytes(document)
    else:
        path.write_text(document if isinstance(document, str) else json.dumps(document))
    out = tmp_path / "out.tflite"
    code = main(["transform", str(MODEL), str(out), "--transforms", f"set_metadata(file={path})"])
    stdout, stderr = capsys.readouterr()
    assert code == 2 and stdout == "" and not out.exists()
    (line,) = stderr.splitlines()
    assert line.startswith("graphtool: error: ") and f"{path}: " in line and message in line


def test_a_document_naming_some_tensors_only_is_refused(tmp_path):
    model = TFLITE_FIXTURES / "strings.tflite"
    (tmp_path / "m.json").write_text(json.dumps({"inputs": [{"tensor": "serving_default_ids:0"}, {}],
                                                 "outputs": [{}, {}]}))
    with pytest.raises(GraphtoolError, match="name every one's, or none"):
        with_metadata(model, tmp_path / "m.json")


def test_a_refused_document_leaves_the_graph_as_it_was(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"inputs": [{}], "outputs": [{"labels": "missing.txt"}]}))
    graph = graphtool.load(with_metadata(MODEL, DIGITS))
    before = (dict(graph.meta[keys.METADATA]), graph.meta[keys.ASSOCIATED_FILES])
    with pytest.raises(GraphtoolError, match="missing.txt"):
        graphtool.transform(graph, f"set_metadata(file={tmp_path / 'm.json'})")
    assert (graph.meta[keys.METADATA], graph.meta[keys.ASSOCIATED_FILES]) == before


def test_no_file_is_an_error():
    with pytest.raises(GraphtoolError, match="needs file=METADATA.json"):
        graphtool.transform(graphtool.load(MODEL), "set_metadata")


@pytest.mark.slow
def test_a_non_editable_install_writes_and_reads_metadata(non_editable_install, tmp_path):
    """The metadata schema is package data: an install as users get it has it."""
    code = ("import graphtool, sys\n"
            "from graphtool.formats.tflite import keys, support_metadata\n"
            "graph = graphtool.load(sys.argv[1])\n"
            "graphtool.transform(graph, f'set_metadata(file={sys.argv[2]})')\n"
            "metadata = support_metadata.decode(graph.meta[keys.METADATA][keys.SUPPORT_METADATA])\n"
            "print(graphtool.__file__, metadata.name)\n")
    env = dict(os.environ, PYTHONPATH=str(non_editable_install))
    run = subprocess.run([sys.executable, "-c", code, str(MODEL), str(DIGITS)], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(str(non_editable_install)) and run.stdout.rstrip().endswith("Digits classifier")
