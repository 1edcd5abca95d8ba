"""TFLite Support metadata (support_metadata.py): graphtool's codec against the Python flatc
generates from the official metadata_schema.fbs, the JSON format's round trip, the parser
version rules, and hostile buffers (FormatError, nothing else)."""
from __future__ import annotations

from dataclasses import replace

import flatbuffers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphtool.errors import FormatError
from graphtool.formats.tflite import support_metadata as sm
from graphtool.formats.tflite.support_metadata import (AssociatedFile, AudioProperties, BoundingBoxProperties,
                                                       ImageProperties, ModelMetadata, Normalization, TensorGroup,
                                                       TensorMetadata)

from .flatc_metadata import flatc_metadata  # noqa: F401 - the fixture

LABELS = AssociatedFile("labels.txt", "TENSOR_AXIS_LABELS", sm.LABELS_DESCRIPTION, "en")
METADATA = ModelMetadata(
    "Detector", "Finds things.", "2", "me", "MIT",
    inputs=(TensorMetadata("image", "An image.", content=ImageProperties("RGB", 300, 200),
                           normalization=Normalization((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
                           stats_min=(-1.0,), stats_max=(1.0,)),),
    outputs=(TensorMetadata("location", content=BoundingBoxProperties((1, 0, 3, 2), "BOUNDARIES", "RATIO"),
                            range=(2, 2)),
             TensorMetadata("category", content=sm.FeatureProperties(), range=(2, 2),
                            associated_files=(AssociatedFile("labels.txt", "TENSOR_VALUE_LABELS"),)),
             TensorMetadata("score", associated_files=(LABELS,)),
             TensorMetadata("number of detections")),
    output_groups=(TensorGroup("detection_result", ("location", "category", "score")),),
    associated_files=(AssociatedFile("vocab.txt", "VOCABULARY", version="3"),))


def test_encoded_metadata_read_by_flatc_generated_python(flatc_metadata):
    data = sm.encode(METADATA)
    fb = flatc_metadata
    assert fb.ModelMetadata.ModelMetadataBufferHasIdentifier(data, 0)
    theirs = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAs(data, 0))
    assert (theirs.name, theirs.description, theirs.version, theirs.author, theirs.license) == \
        (b"Detector", b"Finds things.", b"2", b"me", b"MIT")
    assert theirs.minParserVersion == b"1.4.1"  # an associated file with a version
    (subgraph,) = theirs.subgraphMetadata
    image = subgraph.inputTensorMetadata[0]
    assert image.content.contentPropertiesType == fb.ContentProperties.ImageProperties
    assert image.content.contentProperties.colorSpace == fb.ColorSpaceType.RGB
    size = image.content.contentProperties.defaultSize
    assert (size.width, size.height) == (300, 200)
    (unit,) = image.processUnits
    assert unit.optionsType == fb.ProcessUnitOptions.NormalizationOptions
    assert list(unit.options.mean) == list(unit.options.std) == [127.5] * 3
    assert list(image.stats.min) == [-1.0] and list(image.stats.max) == [1.0]
    location, category, score, count = subgraph.outputTensorMetadata
    box = location.content.contentProperties
    assert location.content.contentPropertiesType == fb.ContentProperties.BoundingBoxProperties
    assert list(box.index) == [1, 0, 3, 2] and box.type == fb.BoundingBoxType.BOUNDARIES
    assert (location.content.range.min, location.content.range.max) == (2, 2)
    assert category.associatedFiles[0].type == fb.AssociatedFileType.TENSOR_VALUE_LABELS
    labels = score.associatedFiles[0]
    assert (labels.name, labels.type, labels.description, labels.locale) == \
        (b"labels.txt", fb.AssociatedFileType.TENSOR_AXIS_LABELS, sm.LABELS_DESCRIPTION.encode(), b"en")
    assert count.name == b"number of detections" and count.content is None
    assert subgraph.outputTensorGroups[0].tensorNames == [b"location", b"category", b"score"]
    assert theirs.associatedFiles[0].version == b"3"


def test_encoding_is_what_flatcs_object_api_packs(flatc_metadata):
    """Byte for byte: graphtool lays the buffer out as flatc's object API does."""
    data = sm.encode(METADATA)
    fb = flatc_metadata
    builder = flatbuffers.Builder(0)
    builder.Finish(fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAs(data, 0)).Pack(builder), b"M001")
    assert bytes(builder.Output()) == data


def test_metadata_packed_by_flatc_decodes(flatc_metadata):
    """What flatc's object API writes (TFLite Support's writers use it), graphtool reads,
    process units it does not write included."""
    fb = flatc_metadata
    audio = fb.TensorMetadataT()
    audio.name = "waveform"
    audio.content = fb.ContentT()
    audio.content.contentPropertiesType = fb.ContentProperties.AudioProperties
    audio.content.contentProperties = fb.AudioPropertiesT()
    audio.content.contentProperties.sampleRate, audio.content.contentProperties.channels = 16000, 1
    scores = fb.TensorMetadataT()
    scores.name = "scores"
    calibration = fb.ProcessUnitT()
    calibration.optionsType = fb.ProcessUnitOptions.ScoreCalibrationOptions
    calibration.options = fb.ScoreCalibrationOptionsT()
    scores.processUnits = [calibration]
    subgraph = fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [audio], [scores]
    model = fb.ModelMetadataT()
    model.name, model.subgraphMetadata, model.minParserVersion = "Sounds", [subgraph], "1.3.0"
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), b"M001")
    decoded = sm.decode(bytes(builder.Output()))
    assert decoded.name == "Sounds" and decoded.min_parser_version == "1.3.0"
    assert decoded.inputs[0].content == AudioProperties(16000, 1)
    assert decoded.outputs[0].process_units == ("ScoreCalibrationOptions",)


def test_decode_gives_back_what_was_encoded():
    decoded = sm.decode(sm.encode(METADATA))
    assert decoded == replace(METADATA, min_parser_version="1.4.1")


def test_json_round_trip():
    """to_json gives the format from_json reads; the read-only keys aside, it reads back the same
    (a tensor without content becomes a feature tensor, as TFLite Support's writers make it)."""
    document = sm.to_json(sm.decode(sm.encode(METADATA)))
    assert document["min_parser_version"] == "1.4.1"
    del document["min_parser_version"]
    back, paths = sm.from_json(document)
    featured = tuple(replace(t, content=t.content or sm.FeatureProperties()) for t in METADATA.outputs)
    assert back == replace(METADATA, outputs=featured)
    assert {name: path for name, (path, _) in paths.items()} == {"labels.txt": "labels.txt", "vocab.txt": "vocab.txt"}


@pytest.mark.parametrize("change, version", [
    ({}, "1.0.0"),
    ({"associated_files": (AssociatedFile("v.txt", "VOCABULARY"),)}, "1.0.1"),
    ({"input_groups": (TensorGroup("g", ()),)}, "1.2.0"),
    ({"inputs": (TensorMetadata(content=AudioProperties(8000, 1)),)}, "1.3.0"),
    ({"associated_files": (AssociatedFile("i.bin", "SCANN_INDEX_FILE"),)}, "1.4.0"),
    ({"associated_files": (AssociatedFile("l.txt", version="1"),)}, "1.4.1"),
])
def test_min_parser_version_follows_tflite_supports_rules(change, version):
    assert sm.min_parser_version(ModelMetadata(**change)) == version


@pytest.mark.parametrize("document, where", [
    ({"inputs": [], "outputs": [], "nmae": "x"}, "unknown key 'nmae'"),
    ({"outputs": []}, "inputs: is missing"),
    ({"inputs": {}, "outputs": []}, "inputs: is an object, not a list of objects"),
    ({"inputs": [{"name": 3}], "outputs": []}, "inputs[0].name: is a number, not a string"),
    ({"inputs": [{"image": {"color_space": "CMYK"}}], "outputs": []}, "inputs[0].image.color_space: 'CMYK'"),
    ({"inputs": [{"image": {}, "audio": {}}], "outputs": []}, "gives image and audio"),
    ({"inputs": [{"image": {"width": -1}}], "outputs": []}, "inputs[0].image.width: -1 is outside"),
    ({"inputs": [{"normalization": {"mean": [1], "std": [0]}}], "outputs": []}, "std has a zero"),
    ({"inputs": [{"normalization": {"mean": [1, 2], "std": [1]}}], "outputs": []}, "mean has 2 values and std 1"),
    ({"inputs": [{"normalization": {"mean": [True], "std": [1]}}], "outputs": []}, "mean: is not a list of finite"),
    ({"inputs": [{"stats": {"min": [float("nan")]}}], "outputs": []}, "stats.min: is not a list of finite"),
    ({"inputs": [], "outputs": [{"bounding_box": {"index": [0, 1]}}]}, "index: has 2 numbers; a box has 4"),
    ({"inputs": [], "outputs": [{"labels": "a/l.txt"}, {"labels": "b/l.txt"}]}, "would both be stored as l.txt"),
    ({"inputs": [], "outputs": [{"labels": "dir/"}]}, "outputs[0].labels: names no file"),
    ({"inputs": [], "outputs": [{"associated_files": [{"file": "x", "type": "LABELS"}]}]}, "'LABELS' is not one of"),
    ({"inputs": [{"name": "a"}], "outputs": [], "input_groups": [{"name": "g", "tensors": ["b"]}]},
     "input_groups[0].tensors: 'b' is not the name of any of the document's inputs"),
    ([], "the document: is a list, not an object"),
])
def test_documents_that_are_not_metadata_are_refused_naming_the_key(document, where):
    with pytest.raises(FormatError) as raised:
        sm.from_json(document)
    assert where in str(raised.value)


@pytest.mark.parametrize("data", [b"", b"\x00" * 7, b"\x08\x00\x00\x00TFL3\x00\x00\x00\x00", b"M001" * 3])
def test_buffers_that_are_not_metadata_raise_format_error(data):
    with pytest.raises(FormatError):
        sm.decode(data)


VALID = sm.encode(METADATA)


@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(VALID)))
def test_corrupted_metadata_decodes_or_raises_format_error(flips, keep):
    """Bytes flipped and the buffer cut short: a FormatError or metadata that turn into JSON."""
    data = bytearray(VALID)
    for position, value in flips:
        data[position] = value
    try:
        decoded = sm.decode(bytes(data[:keep]) if keep < len(data) else bytes(data))
    except FormatError:
        return
    assert isinstance(sm.to_json(decoded), dict)
