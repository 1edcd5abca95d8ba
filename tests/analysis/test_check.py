"""graphtool.check and `graphtool check`: targets, the report, --json exactly as specified,
exit statuses (0 compatible, 1 not, 2 bad input)."""
from __future__ import annotations

import importlib
import json

import pytest

import graphtool
from graphtool.analysis.check import TARGETS, CheckError, CheckReport, check

from ..conftest import GRAPHDEF_FIXTURES, TFLITE_FIXTURES

cli_main = importlib.import_module("graphtool.cli.main")  # graphtool.cli.main is also a function
FINDING_KEYS = ["node", "op", "subgraph", "index", "severity", "reason", "fix"]


def run_cli(argv: list[str]) -> int:
    """`graphtool ARGV` through the CLI's main (errors go to stderr)."""
    return cli_main.main(argv)


def test_json_has_exactly_the_specified_keys(capsys):
    assert run_cli(["check", str(TFLITE_FIXTURES / "float_cnn.tflite"), "--target", "edgetpu", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["target", "compatible", "verdict", "partitions", "delegated_ops", "total_ops",
                          "delegated_macs_share", "findings"]  # a delegate: its partitions too
    assert data["partitions"] == [] and data["delegated_ops"] == 0 and data["total_ops"] == 9
    assert data["target"] == "edgetpu" and data["compatible"] is False and data["verdict"] == "none"
    assert data["findings"] and all(list(f) == FINDING_KEYS for f in data["findings"])
    assert {f["severity"] for f in data["findings"]} == {"error"}


def test_runtime_json_carries_the_minimum_version(capsys):
    assert run_cli(["check", str(TFLITE_FIXTURES / "dynamic_range.tflite"), "-t", "runtime", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["target", "compatible", "verdict", "min_runtime_version", "findings"]
    assert data["min_runtime_version"] == "2.17.0"


def test_exit_statuses(capsys):
    assert run_cli(["check", str(TFLITE_FIXTURES / "full_int8.tflite"), "--target", "edgetpu"]) == 0
    assert run_cli(["check", str(TFLITE_FIXTURES / "flex_op.tflite"), "--target", "tflite"]) == 1
    assert run_cli(["check", str(TFLITE_FIXTURES / "flex_op.tflite"), "--target", "tflite+select"]) == 0
    assert run_cli(["check", str(TFLITE_FIXTURES / "float_cnn.tflite"), "--target", "npu"]) == 2
    assert run_cli(["check", str(GRAPHDEF_FIXTURES / "keras2_cnn.pb"), "--target", "gpu"]) == 2
    assert run_cli(["check", str(TFLITE_FIXTURES / "missing.tflite"), "--target", "tflite"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("graphtool: error")]
    assert len(errors) == 3 and "npu" in errors[0] and "convert the GraphDef" in errors[1]


def test_text_report_has_counts_locations_and_fixes(capsys):
    assert run_cli(["check", str(TFLITE_FIXTURES / "float16.tflite"), "--target", "micro"]) == 1
    text = capsys.readouterr().out
    assert "NOT compatible with micro" in text and "10 errors" in text
    assert "[0:0]" in text and "fix: graphtool transform: fold_constants(fold_dequantize=true)" in text


def test_graphdef_outputs_option(capsys):
    code = run_cli(["check", str(GRAPHDEF_FIXTURES / "function_library.pb"), "-t", "tflite", "--outputs", "Identity"])
    assert code == 1 and "inline_partitionedcall" in capsys.readouterr().out


def test_python_api_returns_the_report_dataclass():
    report = check(graphtool.load(TFLITE_FIXTURES / "custom_op.tflite"), "tflite")
    assert isinstance(report, CheckReport)
    assert report.compatible  # AudioSpectrogram and Mfcc: BuiltinOpResolver registers both
    assert report.counts == {"error": 0, "warning": 2, "info": 0}
    assert report.sources and all("TensorFlow" in s for s in report.sources)
    assert report.to_dict()["findings"][0]["subgraph"] == 0


def test_flex_ops_need_select():
    graph = graphtool.load(TFLITE_FIXTURES / "flex_op.tflite")
    (plain,) = check(graph, "tflite").findings
    (select,) = check(graph, "tflite+select").findings
    assert (plain.op, plain.severity) == ("FlexMatrixDeterminant", "error")
    assert select.severity == "warning" and "Flex delegate" in select.reason


def test_subgraphs_are_checked_with_their_numbers():
    report = check(graphtool.load(TFLITE_FIXTURES / "control_flow.tflite"), "gpu")
    assert {f.subgraph for f in report.findings} > {0}
    assert report.operators == sum(1 for _ in _operators(TFLITE_FIXTURES / "control_flow.tflite"))


def _operators(path):
    from graphtool.analysis.compat.signature import operators
    return operators(graphtool.load(path))


def test_every_target_runs_on_every_tflite_fixture():
    for path in sorted(TFLITE_FIXTURES.glob("*.tflite")):
        graph = graphtool.load(path)
        for target in TARGETS:
            report = check(graph, target)
            assert report.operators > 0, (path.name, target)


def test_targets_that_need_tflite_refuse_graphdefs():
    graph = graphtool.load(GRAPHDEF_FIXTURES / "keras2_cnn.pb")
    for target in ("gpu", "edgetpu", "micro", "xnnpack", "runtime", "runtime:2.5.0"):
        with pytest.raises(CheckError):
            check(graph, target)
    with pytest.raises(CheckError):
        check(graphtool.load(TFLITE_FIXTURES / "float_cnn.tflite"), "tflite", outputs=["x"])
