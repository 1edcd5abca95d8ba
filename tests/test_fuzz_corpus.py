"""Fuzzing in the test suite: every input a campaign ever saved (tests/fuzz_corpus/<target>/)
is checked again, a short campaign with a fixed seed runs for each target, and the
harness itself is shown to catch what it is there to catch (unexpected exceptions,
hangs, crashes, memory, error messages that do not name the file).

A campaign of any length: python fuzz/run.py --target all --seconds 600 (see fuzz/run.py).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

import graphtool
from fuzz.campaign import Limits, Target, input_rng, replay, run_campaign
from fuzz.oracle import SpecChecker, Verdict, check_model, signature
from fuzz.run import CORPUS, SPEC_MODELS, TARGETS, regenerate

from .conftest import GRAPHDEF_FIXTURES, installed

CI_SEED = 20261127
CI_INPUTS = {"tflite": 300, "graphdef": 300, "spec": 300, "calibration": 200}
# A campaign's time limit per input (5 s) is a fuzzing verdict, not one for the suite: here an
# input fails on time only by hanging past the hard limit (30 s, ~40 times the slowest input
# these campaigns make).
HANG_ONLY = Limits(seconds=Limits.hard_seconds)
# How long the "hang" checker sleeps: a replay that took this long waited it out.
HANG_SECONDS = 60

# Saved inputs that still fail because of code outside graphdef/ and passes/spec.py (the
# files the fuzzing task could fix). Each is reported with its traceback; fix the code,
# then delete the entry: the strict xfail turns into a failure once the input passes.
KNOWN: dict[str, str] = {}
# Failure signatures (fuzz.oracle.signature, line numbers dropped) the short campaigns may
# still meet, for the same reason; any other failure fails the test.
KNOWN_SIGNATURES: set[str] = set()


def _without_line(key: str) -> str:
    return re.sub(r":\d+ in ", " in ", key)


def _corpus() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.glob("*/*") if p.is_file() and not p.name.endswith(".why"))


def _param(path: Path):
    key = f"{path.parent.name}/{path.name}"
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN[key])] if key in KNOWN else []
    return pytest.param(path, id=key, marks=marks)


def _runtimes_missing() -> str | None:
    """Why the targets that run LiteRT and TensorFlow (differential, the commands') cannot be
    replayed here, or None."""
    missing = [name for name in ("tensorflow", "ai_edge_litert") if not installed(name)]
    return f"needs {', '.join(missing)} (pip install -e '.[test]')" if missing else None


def _needs_runtimes(name: str) -> bool:
    return name == "differential" or TARGETS[name].runtimes


@pytest.fixture(scope="module")
def replayed() -> dict[Path, object]:
    """Every saved input checked once, in a worker per target (a hang cannot stop the suite)."""
    results = {}
    paths = _corpus()
    for name in sorted({p.parent.name for p in paths}):
        if _needs_runtimes(name) and _runtimes_missing():
            continue
        group = [p for p in paths if p.parent.name == name]
        limits = HANG_ONLY if not _needs_runtimes(name) else Limits(seconds=HANG_ONLY.seconds,
                                                                    hard_seconds=HANG_ONLY.hard_seconds + 60)
        results.update(zip(group, replay(TARGETS[name], group, limits)))
    return results


@pytest.mark.parametrize("path", [_param(p) for p in _corpus()])
def test_saved_input_passes(replayed, path):
    if _needs_runtimes(path.parent.name) and _runtimes_missing():
        pytest.skip(_runtimes_missing())
    verdict = replayed[path].verdict
    assert not verdict.problems, f"{path}:\n" + "\n".join(verdict.problems)


def test_the_corpus_is_documented():
    """Every saved input says why it was kept, and every KNOWN entry still exists."""
    for path in _corpus():
        why = path.with_name(path.name + ".why")
        assert why.is_file() and why.read_text().strip(), f"{path} has no .why"
    names = {f"{p.parent.name}/{p.name}" for p in _corpus()}
    assert set(KNOWN) <= names, set(KNOWN) - names
    assert {p.parent.name for p in _corpus()} <= set(TARGETS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CI_INPUTS))
def test_short_campaign(name):
    report = run_campaign(TARGETS[name], CI_SEED, CI_INPUTS[name], None, HANG_ONLY, jobs=2, corpus=None)
    assert report.inputs == CI_INPUTS[name]
    unknown = {k: report.failure_examples[k] for k in report.failures if _without_line(k) not in KNOWN_SIGNATURES}
    assert not unknown, "\n\n".join(f"{k}:\n{v}" for k, v in unknown.items())
    # the mutators reach past the first check, and not everything is refused
    assert report.outcomes["rejected"] > CI_INPUTS[name] // 10, dict(report.outcomes)
    assert report.outcomes["valid"] + report.outcomes["invalid"] > CI_INPUTS[name] // 20, dict(report.outcomes)
    if report.failures:
        pytest.xfail(f"known failures only: {dict(report.failures)}")


# -- the harness can fail ---------------------------------------------------------------
class _Bytes:
    """A generator of trivial inputs."""

    def generate(self, rng):
        return bytes([rng.randrange(256)]), ".bin", "one byte"


_HELD_IN_WORKER: list = []


def _checker(kind: str):
    def check(path: str) -> Verdict:
        if kind == "raise":
            raise ValueError("boom")
        if kind == "hang":
            time.sleep(HANG_SECONDS)
        if kind == "memory":
            # touched, so resident, and kept until the worker exits: the current RSS shows it
            # when the harness measures, not only the kernel's high-water mark
            _HELD_IN_WORKER.append(np.ones(400 << 20, np.uint8))
        if kind == "crash":
            os._exit(3)
        if kind == "unexpected":
            verdict = Verdict()
            try:
                {}["missing"]
            except KeyError as exc:
                verdict.fail("load", "unexpected exception", exc)
            return verdict
        return Verdict()
    return check


@pytest.mark.parametrize("kind,step", [("raise", "harness"), ("hang", "hang"), ("memory", "memory"),
                                       ("crash", "crash"), ("unexpected", "load"), ("fine", None)])
def test_campaign_catches_and_saves_failures(tmp_path, kind, step):
    target = Target(f"fake_{kind}", _Bytes, lambda: _checker(kind))
    # touching 400 MB can take seconds on a loaded machine: the memory case gets time to be judged on memory
    limits = Limits(seconds=60 if kind == "memory" else 5, megabytes=300,
                    hard_seconds=1 if kind == "hang" else 90 if kind == "memory" else 30, address_space_mb=0)
    report = run_campaign(target, 1, 2, None, limits, jobs=1, corpus=tmp_path)
    assert report.inputs == 2
    if step is None:
        assert not report.failures and report.outcomes == {"valid": 2}
        assert not list(tmp_path.iterdir())
        return
    assert report.outcomes["failed"] == 2, report.to_dict()
    assert all(key.startswith(step + "|") for key in report.failures), dict(report.failures)
    saved = sorted((tmp_path / target.name).iterdir())
    assert [p.suffix for p in saved] == [".bin", ".why"] * (len(saved) // 2) and saved
    assert step in saved[1].read_text()


def test_replay_reports_a_hang_without_hanging(tmp_path):
    path = tmp_path / "input.bin"
    path.write_bytes(b"x")
    start = time.monotonic()
    (result,) = replay(Target("fake", _Bytes, lambda: _checker("hang")), [path], Limits(hard_seconds=1))
    assert result.verdict.problems[0].startswith("hang")
    assert time.monotonic() - start < HANG_SECONDS, "replay waited the hang out"


def test_oracle_demands_the_file_name_and_where(monkeypatch, tmp_path):
    path = tmp_path / "model.pb"
    path.write_bytes(b"\x0a\x05")  # truncated
    verdict = check_model(str(path))
    assert verdict.outcome == "rejected" and not verdict.problems, verdict
    from graphtool import formats

    def nameless(source):
        raise graphtool.FormatError("something is wrong")
    monkeypatch.setattr(graphtool, "load", nameless)
    verdict = check_model(str(path))
    assert verdict.outcome == "failed" and "file's name" in verdict.problems[0]

    def nowhere(source):
        raise graphtool.FormatError("something is wrong", source=str(source))
    monkeypatch.setattr(graphtool, "load", nowhere)
    assert "say where" in check_model(str(path)).problems[0]

    def crash(source):
        raise IndexError("list index out of range")
    monkeypatch.setattr(graphtool, "load", crash)
    verdict = check_model(str(path))
    assert verdict.error == "IndexError" and signature(verdict).startswith("load|IndexError|")
    assert formats.load is not crash


def test_oracle_catches_a_round_trip_that_changes(monkeypatch, tmp_path):
    path = tmp_path / "model.pb"
    path.write_bytes((GRAPHDEF_FIXTURES / "keras2_cnn.pb").read_bytes())
    assert check_model(str(path)).outcome == "valid"
    import fuzz.oracle as oracle

    calls = []
    real = oracle.dumps

    def drifting(graph, path=None, **kwargs):
        calls.append(1)
        return real(graph, path, **kwargs) + (b"\x00" if len(calls) > 1 else b"")
    monkeypatch.setattr(oracle, "dumps", drifting)
    verdict = check_model(str(path))
    assert any(p.startswith("reread") for p in verdict.problems), verdict


def test_spec_oracle_runs_transforms_on_both_formats(tmp_path):
    checker = SpecChecker([(p.suffix.lstrip("."), p.read_bytes()) for p in SPEC_MODELS])
    spec = tmp_path / "x.spec"
    spec.write_text("sort_by_execution_order")
    assert checker(str(spec)).outcome == "valid"
    spec.write_text('remove_nodes(op="unterminated')
    verdict = checker(str(spec))
    assert verdict.outcome == "rejected" and verdict.error == "SpecError" and not verdict.problems


@pytest.mark.parametrize("name", [n for n in TARGETS if TARGETS[n] is not None])
def test_campaign_inputs_are_reproducible(name):
    """Input i of (target, seed) can be made again alone: saved failures can be explained."""
    first = [regenerate(name, 7, i) for i in range(20)]
    again = [regenerate(name, 7, i) for i in reversed(range(20))][::-1]
    assert first == again
    assert len({data for data, _, _ in first}) > 15
    assert input_rng(7, name, 3).random() == input_rng(7, name, 3).random()
