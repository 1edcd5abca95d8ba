"""`edgetpu`: a fully int8 model passes; a float one fails with the reasons and a fix."""
from __future__ import annotations

import graphtool
from graphtool.analysis.check import check

from ..conftest import TFLITE_FIXTURES


def test_full_int8_model_passes():
    report = check(graphtool.load(TFLITE_FIXTURES / "full_int8.tflite"), "edgetpu")
    assert report.compatible, [f.reason for f in report.findings]
    assert report.operators == 9
    assert all(f.severity != "error" for f in report.findings)


def test_float_model_fails_with_reasons_and_a_fix():
    report = check(graphtool.load(TFLITE_FIXTURES / "float_cnn.tflite"), "edgetpu")
    assert not report.compatible
    assert report.counts["error"] == report.operators == 9
    fc = next(f for f in report.findings if f.op == "FULLY_CONNECTED")
    assert "weights" in fc.reason and "float32" in fc.reason and "int8" in fc.reason
    assert fc.subgraph == 0 and fc.index == 6
    assert all(f.fix and "TFLITE_BUILTINS_INT8" in f.fix for f in report.findings)


def test_dynamic_range_model_fails_on_its_float_activations_only():
    report = check(graphtool.load(TFLITE_FIXTURES / "dynamic_range.tflite"), "edgetpu")
    conv = next(f for f in report.findings if f.op == "CONV_2D" and f.index == 2)
    assert "input, bias and output are float32" in conv.reason  # its weights are int8 already


def test_first_unsupported_operator_stops_the_compiler():
    graph = graphtool.load(TFLITE_FIXTURES / "full_int8.tflite")
    pool = next(n for n in graph if n.op == "MAX_POOL_2D")
    pool.op = "L2_POOL_2D"  # an op the Edge TPU does not support, mid-model
    findings = check(graph, "edgetpu").findings
    stopped = next(f for f in findings if f.op == "L2_POOL_2D")
    assert stopped.severity == "error" and "stops here" in stopped.reason
    later = [f for f in findings if f.index is not None and f.index > stopped.index]
    assert later and all(f.severity == "warning" and "CPU" in f.reason for f in later)


def test_more_than_three_non_unit_dimensions_is_refused():
    graph = graphtool.load(TFLITE_FIXTURES / "full_int8.tflite")
    source = graph.node(graph.inputs[0])
    source.outputs[0].shape = (2, 8, 8, 1)  # batch 2: four non-unit dimensions
    reasons = " ".join(f.reason for f in check(graph, "edgetpu").findings)
    assert "more than 3 non-unit" in reasons
