"""What each input must do. A model file ends as a valid Graph (that validates, inspects,
writes, reads back and writes again to the same bytes) or as a GraphtoolError whose message
names the file and where; a transform string parses (and round-trips) or raises SpecError
saying where. Anything else is a problem. The input file is never changed."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import graphtool
from graphtool import FormatError, GraphtoolError
from graphtool.cli.inspect_cmd import render
from graphtool.formats import dumps
from graphtool.passes import SpecError, parse, transform

from .hostile import PWNED_MARKER

GRAPHTOOL_DIR = Path(graphtool.__file__).resolve().parent
# Words by which an error says where in the file it is.
WHERE = re.compile(r"\b(offset|byte|node|tensor|subgraph|operator|buffer|opcode|signature|metadata|line|"
                   r"character|column|field|table|vtable|identifier|string|vector|attr|function|library|"
                   r"quantization|input|output|index|header|root|member|archive|array)s?\b|"
                   r"\b(file is|empty file|not an? \S+ file|holds no)", re.I)


@dataclass
class Verdict:
    """How one input ended: outcome is "valid", "invalid" (read, but Graph.validate refused
    it), "rejected" (a GraphtoolError when reading or parsing) or "failed"."""

    outcome: str = "valid"
    error: str | None = None  # type of the GraphtoolError that rejected it, or of the first failure
    message: str = ""
    problems: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # step -> what it raised (allowed)
    oracle_seconds: float = 0.0  # time spent waiting for a runtime in another process: not graphtool's

    def fail(self, step: str, what: str, exc: BaseException | None = None) -> None:
        if exc is not None:
            what = f"{what}: {describe(exc)}"
            self.error = self.error if self.problems else type(exc).__name__
        elif not self.problems:
            self.error = step
        self.problems.append(f"{step}: {what}")
        self.outcome = "failed"


def summary(exc: BaseException, limit: int = 400) -> str:
    """Type, message (cut at `limit` characters) and the innermost graphtool frame."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).resolve().is_relative_to(GRAPHTOOL_DIR)]
    where = (f"{Path(frames[-1].filename).resolve().relative_to(GRAPHTOOL_DIR.parent)}:{frames[-1].lineno} "
             f"in {frames[-1].name}") if frames else "no graphtool frame"
    message = str(exc)
    message = message if len(message) <= limit else message[:limit] + "…"
    return f"{type(exc).__name__}: {message} [{where}]"


def describe(exc: BaseException) -> str:
    """summary(), with the full traceback after."""
    return summary(exc) + "\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def signature(verdict: Verdict) -> str:
    """What makes two failures the same bug: the first problem's step, type and frame."""
    first = verdict.problems[0] if verdict.problems else ""
    head = first.split("\n", 1)[0]
    frame = re.search(r"\[([^\]]*)\]", head)
    step = head.split(":", 1)[0]
    detail = frame.group(1) if frame else re.sub(r"/\S+", "PATH", re.sub(r"\d+(\.\d+)?", "N", head))[:80]
    return f"{step}|{verdict.error}|{detail}"


def _names_file_and_where(exc: GraphtoolError, path: str, where: bool = True) -> str | None:
    """None when the message is as required, else what is missing."""
    text = str(exc)
    if not text.startswith(f"{path}: "):
        return "the message does not start with the file's name"
    if not where:
        return None
    rest = text[len(path) + 2:]
    if not (isinstance(exc, FormatError) and exc.where) and not WHERE.search(rest):
        return "the message does not say where in the file"
    return None


def _touch_data(graph) -> None:
    for g in [graph, *graph.subgraphs]:
        for node in g:
            for tensor in node.outputs:
                if tensor is not None and tensor.is_constant:
                    tensor.data  # noqa: B018  (loaders are lazy)


def _fingerprint(path: str) -> tuple:
    data = Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest(), sorted(os.listdir(os.path.dirname(os.path.abspath(path))))


def _nothing_ran(verdict: Verdict) -> None:
    """Hostile strings in the inputs would create PWNED_MARKER if anything ran them."""
    if os.path.exists(PWNED_MARKER):
        os.unlink(PWNED_MARKER)
        verdict.fail("code", f"{PWNED_MARKER} was created: something in the input was executed")


@contextlib.contextmanager
def kept_input(path: str, verdict: Verdict) -> Iterator[None]:
    """Around a check: the input file and its folder must be as they were, and nothing in the
    input may have been executed."""
    before = _fingerprint(path)
    try:
        yield
    finally:
        if _fingerprint(path) != before:
            verdict.fail("input", "the input file or its folder changed")
        _nothing_ran(verdict)


def check_model(path: str) -> Verdict:
    """Read a model file and put what was read through everything a user would do."""
    verdict = Verdict()
    with kept_input(path, verdict):
        _check_model(path, verdict)
    return verdict


def _allowed(verdict: Verdict, step: str, exc: GraphtoolError, path: str, need_file: bool = True) -> None:
    verdict.notes[step] = f"{type(exc).__name__}: {str(exc)[:300]}"
    if need_file and isinstance(exc, FormatError):
        missing = _names_file_and_where(exc, path)
        if missing:
            verdict.fail(step, f"{missing}: {str(exc)[:300]!r}")


def _check_model(path: str, verdict: Verdict) -> None:
    try:
        graph = graphtool.load(path)
    except GraphtoolError as exc:
        verdict.outcome, verdict.error, verdict.message = "rejected", type(exc).__name__, str(exc)[:500]
        missing = _names_file_and_where(exc, path)
        if missing:
            verdict.fail("load", f"{missing}: {str(exc)[:300]!r}")
        return
    except Exception as exc:  # noqa: BLE001 - anything but GraphtoolError is what we look for
        verdict.fail("load", "unexpected exception", exc)
        return

    for step, action in (("data", lambda: _touch_data(graph)), ("validate", graph.validate)):
        try:
            action()
        except GraphtoolError as exc:
            _allowed(verdict, step, exc, path, need_file=step == "data")
            verdict.outcome = "invalid" if verdict.outcome == "valid" else verdict.outcome
        except Exception as exc:  # noqa: BLE001
            verdict.fail(step, "unexpected exception", exc)
            return
    valid = verdict.outcome == "valid"

    try:
        summary = graphtool.inspect(graph, structure=True)
        json.dumps(summary.to_dict())
        render(summary)
    except FormatError as exc:  # lazy data that turn out broken: fine if it names the file
        _allowed(verdict, "inspect", exc, path)
    except Exception as exc:  # noqa: BLE001 - inspect must cope with whatever was read
        verdict.fail("inspect", "unexpected exception", exc)

    written = _write(verdict, graph, path, valid)
    if written is not None:
        _reread(verdict, written, path, valid, data_ok="data" not in verdict.notes)
        if valid and graph.format == "tflite":
            _split(verdict, graph)

    try:
        transform(graph, "sort_by_execution_order")
    except GraphtoolError as exc:
        _allowed(verdict, "transform", exc, path, need_file=False)
        return
    except Exception as exc:  # noqa: BLE001
        verdict.fail("transform", "unexpected exception", exc)
        return
    if written is not None:  # it could be written before: a transform that succeeded keeps it so
        try:
            dumps(graph, path, allow_unknown=True)
        except Exception as exc:  # noqa: BLE001
            verdict.fail("transform", "the transformed graph cannot be written", exc)


def _split(verdict: Verdict, graph) -> None:
    """`graphtool split` at the middle operator's first output: parts graphtool reads back, or a
    GraphtoolError (state, control flow, a cut with nothing after it, ...)."""
    operators = [node for node in graph if node.op not in ("Input", "Const", "Variable", "Tensor") and node.outputs]
    if not operators:
        return
    try:
        report = graphtool.split(graph, [operators[len(operators) // 2].name])
        for part in report.parts:
            graphtool.load(part.data).validate()
    except GraphtoolError as exc:
        verdict.notes["split"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    except Exception as exc:  # noqa: BLE001
        verdict.fail("split", "unexpected exception", exc)


def _write(verdict: Verdict, graph, path: str, valid: bool) -> bytes | None:
    for allow_unknown in (False, True):
        try:
            return dumps(graph, path, allow_unknown=allow_unknown)
        except GraphtoolError as exc:
            if graph.format == "tflite" and not allow_unknown and "does not know" in str(exc):
                continue  # fields from a newer schema: refused unless allowed, then written
            _allowed(verdict, "write", exc, path, need_file=False)
            if valid and not isinstance(exc, FormatError):
                verdict.fail("write", f"a valid graph could not be written: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001
            verdict.fail("write", "unexpected exception", exc)
            return None
    return None


def _reread(verdict: Verdict, written: bytes, path: str, valid: bool, data_ok: bool) -> None:
    """What graphtool wrote, graphtool must read (as it read the input: constants that did
    not decode are written back as they were, and still do not), and writing that again
    changes nothing."""
    copy = os.path.join(os.path.dirname(os.path.abspath(path)), ".written-" + os.path.basename(path))
    try:
        Path(copy).write_bytes(written)
        try:
            again = graphtool.load(copy)
            if data_ok:
                _touch_data(again)
            if valid:
                again.validate()
            rewritten = dumps(again, path, allow_unknown=True)
        except Exception as exc:  # noqa: BLE001 - graphtool wrote a file it cannot read back
            verdict.fail("reread", "graphtool cannot read back what it wrote", exc)
            return
        if rewritten != written:
            verdict.fail("reread", f"writing what was read back gives other bytes ({len(written)} -> "
                                   f"{len(rewritten)})")
    finally:
        if os.path.exists(copy):
            os.unlink(copy)


# -- transform strings --------------------------------------------------------------------
class SpecChecker:
    """Parse a transform string; when it parses, check it round-trips through str(call),
    then run it on small models of both formats: only GraphtoolError may come out."""

    def __init__(self, models: list[tuple[str, bytes]]):
        self.models = models

    def __call__(self, path: str) -> Verdict:
        verdict = Verdict()
        try:
            return self._check(path, verdict)
        finally:
            _nothing_ran(verdict)

    def _check(self, path: str, verdict: Verdict) -> Verdict:
        text = Path(path).read_bytes().decode("utf-8", "surrogatepass")
        try:
            calls = parse(text)
        except SpecError as exc:
            verdict.outcome, verdict.error, verdict.message = "rejected", "SpecError", str(exc)[:500]
            if "at character" not in str(exc):
                verdict.fail("parse", f"SpecError does not say where: {str(exc)[:300]!r}")
            return verdict
        except Exception as exc:  # noqa: BLE001
            verdict.fail("parse", "unexpected exception", exc)
            return verdict
        try:
            again = parse(" ".join(str(c) for c in calls))
            if [(c.name, c.params) for c in again] != [(c.name, c.params) for c in calls]:
                verdict.fail("round trip", "str(call) parses to other calls")
        except Exception as exc:  # noqa: BLE001
            verdict.fail("round trip", "str(call) does not parse", exc)
        rejected = []
        for name, model in self.models:
            try:
                graph = graphtool.load(model)
                transform(graph, calls)
            except GraphtoolError as exc:
                rejected.append(type(exc).__name__)
                verdict.notes[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
                continue
            except Exception as exc:  # noqa: BLE001
                verdict.fail(f"transform {name}", "unexpected exception", exc)
                continue
            try:  # the fixtures can be written, and a pipeline that succeeded must keep them so
                dumps(graph, allow_unknown=True)
            except Exception as exc:  # noqa: BLE001
                verdict.fail(f"write {name}", "the transformed graph cannot be written", exc)
        if rejected and len(rejected) == len(self.models) and verdict.outcome == "valid":
            verdict.outcome, verdict.error = "rejected", rejected[0]
        return verdict


# -- calibration data ---------------------------------------------------------------------
class CalibrationChecker:
    """An .npz of samples reads into numeric arrays (checked against a model's inputs) or
    raises FormatError naming the file and member; a calibration .json loads or raises
    FormatError naming the file. Nothing is unpickled or evaluated."""

    def __init__(self):
        import numpy as np

        from graphtool.runtime.samples import InputSpec, check_samples, read_npz
        from graphtool.runtime.calibrate import Calibration

        self.read_npz, self.check_samples, self.load_json = read_npz, check_samples, Calibration.load
        # digits_test.npz's arrays as inputs of a model (float_cnn takes images)
        self.inputs = [InputSpec("images", np.dtype(np.float32), (None, 8, 8, 1)),
                       InputSpec("labels", np.dtype(np.int32), (None,))]

    def __call__(self, path: str) -> Verdict:
        verdict = Verdict()
        with kept_input(path, verdict):
            self._check(path, verdict)
        return verdict

    def _check(self, path: str, verdict: Verdict) -> None:
        steps = [("load", lambda: self.load_json(path))] if path.endswith(".json") else [
            ("read", lambda: self.read_npz(path)),
            ("check", lambda: self.check_samples(arrays, self.inputs, path))]
        arrays = None
        for step, action in steps:
            try:
                arrays = action()
            except GraphtoolError as exc:
                verdict.outcome, verdict.error, verdict.message = "rejected", type(exc).__name__, str(exc)[:500]
                # a calibration .json's messages name the key; a binary file's must say where
                missing = _names_file_and_where(exc, path, where=not path.endswith(".json"))
                if missing:
                    verdict.fail(step, f"{missing}: {str(exc)[:300]!r}")
                return
            except Exception as exc:  # noqa: BLE001
                verdict.fail(step, "unexpected exception", exc)
                return
