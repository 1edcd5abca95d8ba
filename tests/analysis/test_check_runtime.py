"""`runtime` and `runtime:<version>` against what the TFLite converter wrote into its
models' min_runtime_version metadata."""
from __future__ import annotations

import pytest

import graphtool
from graphtool.analysis.check import check
from graphtool.analysis.compat.runtime import metadata_version

from ..conftest import tflite_fixture_paths


@pytest.mark.parametrize("path", tflite_fixture_paths(), ids=lambda p: p.stem)
def test_runtime_equals_the_converters_metadata(path):
    graph = graphtool.load(path)
    written = metadata_version(graph)
    report = check(graph, "runtime")
    assert report.min_runtime_version == written
    assert report.compatible
    assert report.to_dict()["min_runtime_version"] == written


def test_fixtures_cover_several_runtime_versions():
    versions = {metadata_version(graphtool.load(p)) for p in tflite_fixture_paths()}
    assert {"1.5.0", "1.14.0", "2.17.0"} <= versions


def test_runtime_version_target_flags_operators_that_need_newer_runtimes():
    graph = graphtool.load(tflite_fixture_paths()[0].parent / "dynamic_range.tflite")
    old = check(graph, "runtime:2.10.0")
    assert not old.compatible
    assert {(f.op, f.severity) for f in old.findings} == {("FULLY_CONNECTED", "error")}
    assert all("2.17.0" in f.reason for f in old.findings)
    assert check(graph, "runtime:2.17.0").compatible
    assert check(graph, "runtime:2.17").compatible
    assert check(graph, "runtime:3").compatible


def test_a_changed_operator_version_moves_the_minimum():
    graph = graphtool.load(tflite_fixture_paths()[0].parent / "float_cnn.tflite")
    conv = next(n for n in graph if n.op == "CONV_2D")
    conv.meta["version"] = 5  # per-channel hybrid conv: runtime_version.cc says 2.4.0
    assert check(graph, "runtime").min_runtime_version == "2.4.0"
    conv.meta["version"] = 99
    report = check(graph, "runtime")
    assert any(f.severity == "warning" and "no entry" in f.reason for f in report.findings)


@pytest.mark.parametrize("target", ["runtime:", "runtime:2.x", "runtime:1.2.3.4", "tpu", ""])
def test_bad_targets_are_refused(target):
    graph = graphtool.load(tflite_fixture_paths()[0])
    with pytest.raises(graphtool.GraphtoolError):
        check(graph, target)
