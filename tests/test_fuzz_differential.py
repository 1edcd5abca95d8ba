"""Fuzzing with a second opinion, and the command targets: a short differential campaign
(LiteRT judges .tflite mutants, TensorFlow judges GraphDef ones) and a short campaign per
command target end with no failure; the judge is shown to catch a reader that refuses what
the runtime runs and a writer that changes what it writes; the command checker catches a
partial output, a changed input and an exception.

Campaigns of any length: make fuzz FUZZ_TARGET=differential|commands FUZZ_SECONDS=1200.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

import graphtool
from fuzz.campaign import Limits, run_campaign
from fuzz.run import COMMANDS, TARGETS

from .conftest import TFLITE_FIXTURES

CI_SEED = 20261207
HANG_ONLY = Limits(seconds=Limits.hard_seconds, hard_seconds=Limits.hard_seconds + 60)

pytestmark = [pytest.mark.litert, pytest.mark.tf]


@pytest.fixture(scope="module")
def checker():
    from fuzz.differential import DifferentialChecker

    check = DifferentialChecker()
    yield check
    for oracle in check.oracles.values():
        oracle.close()


@pytest.mark.slow
def test_short_differential_campaign():
    report = run_campaign(TARGETS["differential"], CI_SEED, 300, None, HANG_ONLY, jobs=2, corpus=None)
    assert report.inputs == 300
    assert not report.failures, {k: report.failure_examples[k] for k in report.failures}
    # both runtimes answered, and both ways: the mutants reach past the first check
    assert report.allowed["litert: runs"] > 30 and report.allowed["litert: refuses"] > 30, dict(report.allowed)
    assert report.allowed["tensorflow: runs"] > 5, dict(report.allowed)


def test_the_judge_catches_a_reader_that_refuses_what_litert_runs(checker, monkeypatch, tmp_path):
    path = tmp_path / "model.tflite"
    shutil.copyfile(TFLITE_FIXTURES / "float_cnn.tflite", path)
    assert not checker(str(path)).problems
    import fuzz.differential as differential

    def refusing(source):
        raise graphtool.FormatError("refused", source=str(source), where="subgraph 0")
    monkeypatch.setattr(differential.graphtool, "load", refusing)
    verdict = checker(str(path))
    assert verdict.problems and verdict.problems[0].startswith("rejects: graphtool rejects a model litert runs")


def test_the_judge_catches_a_writer_that_changes_the_model(checker, monkeypatch, tmp_path):
    path = tmp_path / "model.tflite"
    shutil.copyfile(TFLITE_FIXTURES / "float_cnn.tflite", path)
    import fuzz.differential as differential

    real = differential.dumps

    def other_weights(graph, path=None, **kwargs):  # a weight changed: LiteRT's outputs change
        constant = next(n.outputs[0] for n in graph if n.op == "Const" and n.outputs[0].data.ndim >= 2)
        constant.data = constant.data * 1.5
        return real(graph, path, **kwargs)
    monkeypatch.setattr(differential, "dumps", other_weights)
    verdict = checker(str(path))
    assert verdict.problems and verdict.problems[0].startswith("lossless: litert runs on the input"), verdict


def test_a_graphdef_tensorflow_imports_is_read_and_kept(checker, tmp_path):
    """A repeated control input and a constant whose dtype attr is not a type: TensorFlow
    imports the first and refuses the second; graphtool reads both and writes them back as
    they were, so TensorFlow's answer does not change."""
    from graphtool.formats.graphdef import messages as pb

    graph = pb.GraphDef()
    graph.node.add(name="a", op="NoOp")
    graph.node.add(name="b", op="NoOp", input=["^a", "^a"])
    path = tmp_path / "repeated.pb"
    path.write_bytes(graph.SerializeToString())
    verdict = checker(str(path))
    assert verdict.notes["tensorflow"] == "runs" and not verdict.problems, verdict
    assert graphtool.inspect(graphtool.load(path)).warnings == ["node 1 ('b'): repeated control input"]
    const = graph.node.add(name="c", op="Const")
    const.attr["dtype"].s = b"float"  # not a type: TensorFlow refuses the graph
    const.attr["value"].tensor.dtype = 1
    const.attr["value"].tensor.float_val.append(1.0)
    path.write_bytes(graph.SerializeToString())
    verdict = checker(str(path))
    assert verdict.notes["tensorflow"] == "refuses" and not verdict.problems, verdict


@pytest.mark.slow
@pytest.mark.parametrize("name", COMMANDS)
def test_short_command_campaign(name):
    report = run_campaign(TARGETS[name], CI_SEED, 60, None, HANG_ONLY, jobs=2, corpus=None)
    assert report.inputs == 60
    assert not report.failures, {k: report.failure_examples[k] for k in report.failures}
    # valid and invalid command lines both: at least a third succeed, and some are refused
    valid = report.outcomes["valid"]
    assert valid >= 20, dict(report.outcomes)
    if name != "thin_channels":  # takes no parameters: only a few inputs add one it does not know
        assert report.outcomes["rejected"] >= 3, dict(report.outcomes)


def _recipe(tmp_path: Path, target: str, model: str = "tflite/float_cnn.tflite", seed: int = 1) -> str:
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"target": target, "model": model, "seed": seed}))
    return str(path)


def test_the_command_checker_catches_partial_output_and_crashes(monkeypatch, tmp_path):
    from fuzz import transform_gen
    from fuzz.transform_gen import CommandChecker

    check = CommandChecker()
    recipe = _recipe(tmp_path, "set_input_shape")
    assert not check(recipe).problems

    cli = sys.modules["graphtool.cli.main"]  # the package's `main` attribute is the function

    def partial(argv):
        Path(argv[2]).write_bytes(b"half")
        return 2
    monkeypatch.setattr(cli, "main", partial)
    verdict = check(recipe)
    assert any(p.startswith("partial") for p in verdict.problems), verdict
    assert any(p.startswith("message") for p in verdict.problems), verdict

    def crash(argv):
        raise KeyError("boom")
    monkeypatch.setattr(cli, "main", crash)
    assert check(recipe).problems[0].startswith("run: ")

    def touches_input(argv):
        Path(argv[1]).write_bytes(b"changed")
        Path(argv[2]).write_bytes(b"out")
        return 0
    monkeypatch.setattr(cli, "main", touches_input)
    assert check(recipe).problems[0].startswith("input: ")
    assert transform_gen.COMMANDS["check_fix"].ok_codes == (0, 1)


def test_a_difference_the_runtime_does_not_repeat_is_not_a_failure(checker, monkeypatch, tmp_path):
    """The runtime stalls once on graphtool's copy (a loaded machine): asked again in a fresh
    process it answers as on the input, so the judge notes it and calls nothing."""
    import fuzz.differential as differential
    from fuzz.runtime_oracle import Opinion

    path = tmp_path / "model.tflite"
    shutil.copyfile(TFLITE_FIXTURES / "float_cnn.tflite", path)
    real_dumps = differential.dumps
    # other bytes, the same model: LiteRT answers the same on both
    monkeypatch.setattr(differential, "dumps", lambda graph, *args, **kwargs: real_dumps(graph, *args, **kwargs)
                        + bytes(16))
    oracle, stalled = checker.oracles["litert"], []
    real_ask = oracle.ask

    def stalling_once(asked):
        if ".written-" in asked and not stalled:
            stalled.append(asked)
            return Opinion(False, error="the litert process died or hung on it", crashed=True)
        return real_ask(asked)
    monkeypatch.setattr(oracle, "ask", stalling_once)
    verdict = checker(str(path))
    assert stalled and not verdict.problems and verdict.notes["litert"].startswith("not reproduced"), verdict
