"""The zip archive after a model's flatbuffer (associated_files.py): found on read, kept
byte for byte through read -> write, moved along when the flatbuffer changes size, readable
by Python's zipfile, and nothing but FormatError (or a note in the unknown fields) from a
broken one."""
from __future__ import annotations

import io
import random
import struct
import zipfile

import pytest

import graphtool
from graphtool.errors import FormatError
from graphtool.formats import dumps
from graphtool.formats.tflite import associated_files, keys, writer

from ...conftest import TFLITE_FIXTURES

MODEL = (TFLITE_FIXTURES / "float_cnn.tflite").read_bytes()
FILES = {"labels.txt": b"cat\ndog\n", "vocab é.txt": b"a b c\n"}


def appended(model: bytes, files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    """`model` with `files` appended as TFLite Support's MetadataPopulator does it: Python's
    zipfile in append mode on the model file."""
    handle = io.BytesIO(model)
    handle.seek(0, io.SEEK_END)
    with zipfile.ZipFile(handle, "a", compression=compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return handle.getvalue()


def test_a_model_with_an_appended_zip_round_trips_byte_for_byte():
    data = appended(MODEL, FILES)
    graph = graphtool.load(data)
    assert graph.meta[keys.UNKNOWN] == []
    assert [e.name for e in associated_files.entries(graph.meta[keys.ASSOCIATED_FILES])] == list(FILES)
    assert dumps(graph, "m.tflite") == data


def test_a_model_without_one_has_none():
    graph = graphtool.load(MODEL)
    assert keys.ASSOCIATED_FILES not in graph.meta
    assert dumps(graph, "m.tflite") == MODEL


def test_the_archive_moves_with_the_end_of_the_flatbuffer():
    """A longer flatbuffer moves the archive: its offsets follow, zipfile still reads it."""
    graph = graphtool.load(appended(MODEL, FILES))
    graph.meta[keys.METADATA] = {**graph.meta[keys.METADATA], "notes": b"x" * 1000}
    written = dumps(graph, "m.tflite")
    assert len(written) > len(MODEL) + 1000
    with zipfile.ZipFile(io.BytesIO(written)) as archive:
        assert archive.testzip() is None
        assert {name: archive.read(name) for name in archive.namelist()} == FILES
    assert graphtool.load(written).meta[keys.ASSOCIATED_FILES] == graph.meta[keys.ASSOCIATED_FILES]


def test_built_archives_are_stored_deterministic_and_read_by_zipfile():
    built = associated_files.build(FILES)
    assert built == associated_files.build(dict(FILES))
    with zipfile.ZipFile(io.BytesIO(built)) as archive:
        assert archive.testzip() is None
        assert [info.compress_type for info in archive.infolist()] == [zipfile.ZIP_STORED] * 2
        assert {name: archive.read(name) for name in archive.namelist()} == FILES
    assert associated_files.read(built, "labels.txt") == FILES["labels.txt"]
    placed = MODEL + associated_files.placed(built, len(MODEL))
    with zipfile.ZipFile(io.BytesIO(placed)) as archive:
        assert archive.read("vocab é.txt") == FILES["vocab é.txt"]


def test_compressed_files_are_listed_but_not_read():
    graph = graphtool.load(appended(MODEL, FILES, zipfile.ZIP_DEFLATED))
    archive = graph.meta[keys.ASSOCIATED_FILES]
    assert [e.method for e in associated_files.entries(archive)] == [zipfile.ZIP_DEFLATED] * 2
    with pytest.raises(FormatError, match="is compressed"):
        associated_files.read(archive, "labels.txt")
    with pytest.raises(FormatError, match="has no file"):
        associated_files.read(archive, "other.txt")


def _end_record(data: bytes) -> int:
    return data.rindex(associated_files.EOCD_SIGNATURE)


def test_an_archive_graphtool_cannot_keep_is_noted_and_writing_refuses_to_drop_it():
    data = bytearray(appended(MODEL, FILES))
    central = data.index(associated_files.CENTRAL_SIGNATURE, len(MODEL))
    struct.pack_into("<I", data, central + 42, 2**31)  # a local header offset past the file
    graph = graphtool.load(bytes(data))
    assert keys.ASSOCIATED_FILES not in graph.meta
    (note,) = graph.meta[keys.UNKNOWN]
    assert "associated files" in note and "lies outside the archive" in note
    with pytest.raises(FormatError, match="associated files"):
        dumps(graph, "m.tflite")
    assert dumps(graph, "m.tflite", allow_unknown=True) == MODEL


def test_zip64_archives_are_noted():
    data = bytearray(appended(MODEL, FILES))
    struct.pack_into("<I", data, _end_record(bytes(data)) + 16, 0xFFFFFFFF)
    (note,) = graphtool.load(bytes(data)).meta[keys.UNKNOWN]
    assert "zip64" in note


def test_end_record_bytes_that_are_no_archive_are_ignored():
    """An end-record signature whose comment does not reach the end of the file, or whose
    central directory is not there, is some other data's bytes."""
    for tail in (associated_files.EOCD_SIGNATURE + b"\0" * 30,
                 associated_files.EOCD_SIGNATURE + struct.pack("<4H2IH", 0, 0, 1, 1, 46, 0, 0)):
        graph = graphtool.load(MODEL + tail)
        assert keys.ASSOCIATED_FILES not in graph.meta and graph.meta[keys.UNKNOWN] == []


def test_an_archive_reaching_into_the_model_is_refused():
    with pytest.raises(FormatError, match="outside the archive"):
        associated_files.locate(appended(MODEL, FILES), len(MODEL) + 10)
    assert associated_files.locate(MODEL, 8) is None


def test_broken_archives_give_format_errors_only():
    data = appended(MODEL, FILES)
    start = len(MODEL)
    rng = random.Random(7)
    outcomes = set()
    for _ in range(3000):
        broken = bytearray(data)
        for _ in range(rng.choice([1, 2, 4])):
            broken[rng.randrange(start, len(broken))] = rng.randrange(256)
        try:
            archive = associated_files.locate(bytes(broken), 8)
            if archive is not None:
                for entry in associated_files.entries(archive):
                    if entry.method == 0:
                        associated_files.read(archive, entry.name)
                associated_files.placed(archive, 12345)
            outcomes.add("read" if archive else "none")
        except FormatError:
            outcomes.add("FormatError")
    assert outcomes == {"read", "none", "FormatError"}


def test_the_archive_follows_buffers_stored_after_the_flatbuffer():
    """The external layout (models past 2 GB) puts buffer data after the flatbuffer; the
    archive goes after them, and reading finds it there, not inside them."""
    graph = graphtool.load(appended(MODEL, FILES))
    written = writer.write(graph, external=True)
    again = graphtool.load(written)
    assert again.meta[keys.EXTERNAL] and again.meta[keys.ASSOCIATED_FILES] == graph.meta[keys.ASSOCIATED_FILES]
    assert writer.write(again) == written
    with zipfile.ZipFile(io.BytesIO(written)) as archive:
        assert archive.read("labels.txt") == FILES["labels.txt"]
