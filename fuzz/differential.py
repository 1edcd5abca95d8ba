"""The differential target: graphtool's verdict on a mutated model against the runtime's.

Inputs are the TFLite and GraphDef targets' mutants (DIFFERENTIAL_GRAPHDEF_SHARE of them
GraphDefs). For each, the runtime that owns the format is asked first (fuzz/runtime_oracle.py:
LiteRT loads and runs a .tflite on seeded inputs; TensorFlow imports a GraphDef), then graphtool:

- graphtool rejects a model the runtime accepts -> failure (a model that runs is a model users
  have: graphtool must read it, keep what is odd, and say so in `inspect`);
- graphtool reads it and writes it back; when the bytes differ, the runtime is asked about the
  written file, and any other answer (accepts vs refuses, other outputs, another imported
  graph) -> failure: lossless holds for odd files too.

graphtool accepting a model the runtime refuses is allowed (graphtool is an editor: it must
open broken models to fix them), and so is a model the runtime crashes on.
"""
from __future__ import annotations

import os
import random
import time
from pathlib import Path

import graphtool
from graphtool import GraphtoolError
from graphtool.formats import dumps
from graphtool.formats.tflite import keys

from .oracle import Verdict, kept_input
from .runtime_oracle import Opinion, Oracle

DIFFERENTIAL_GRAPHDEF_SHARE = 0.15
REPEATS = 3  # runs of the input again when its result and the written file's differ: is the runtime consistent?


class DifferentialInputs:
    """generate(rng) -> (bytes, suffix, recipe): a TFLite mutant, or now and then a GraphDef one."""

    def __init__(self, fixtures: Path):
        from .graphdef_gen import GraphdefInputs
        from .tflite_gen import TfliteInputs

        self.tflite = TfliteInputs(fixtures / "tflite")
        self.graphdef = GraphdefInputs(fixtures / "graphdef")

    def generate(self, rng: random.Random) -> tuple[bytes, str, str]:
        source = self.graphdef if rng.random() < DIFFERENTIAL_GRAPHDEF_SHARE else self.tflite
        return source.generate(rng)


def _runtime(path: str) -> str:
    return "litert" if path.endswith(".tflite") else "tensorflow"


def _answer(opinion: Opinion) -> str:
    if opinion.crashed:
        return "crashes"
    if not opinion.ok:
        return "refuses"
    return "runs" if opinion.fingerprint and not opinion.fingerprint.startswith("loaded") else "loads"


class DifferentialChecker:
    """The oracles start with the checker (in the worker, before the first timed input)."""

    def __init__(self):
        self.oracles = {"litert": Oracle("litert"), "tensorflow": Oracle("tensorflow")}
        for oracle in self.oracles.values():
            oracle.process = oracle.start()

    def __call__(self, path: str) -> Verdict:
        verdict = Verdict()
        with kept_input(path, verdict):
            self._check(path, verdict)
        return verdict

    def _check(self, path: str, verdict: Verdict) -> None:
        runtime = _runtime(path)
        oracle = self.oracles[runtime]
        theirs = self._ask(oracle, path, verdict)
        verdict.notes[runtime] = _answer(theirs)
        try:
            graph = graphtool.load(path)
        except GraphtoolError as exc:
            verdict.outcome, verdict.error, verdict.message = "rejected", type(exc).__name__, str(exc)[:500]
            if theirs.ok:
                verdict.fail("rejects", f"graphtool rejects a model {runtime} {_answer(theirs)}: {str(exc)[:300]}")
            return
        except Exception as exc:  # noqa: BLE001 - anything but GraphtoolError is a failure
            verdict.fail("load", "unexpected exception", exc)
            return
        written = self._write(verdict, graph, path, theirs)
        if written is None or written == Path(path).read_bytes():
            return
        copy = os.path.join(os.path.dirname(os.path.abspath(path)), ".written-" + os.path.basename(path))
        Path(copy).write_bytes(written)
        try:
            ours = self._ask(oracle, copy, verdict)
            if (ours.ok, ours.fingerprint) != (theirs.ok, theirs.fingerprint):
                self._judge_difference(verdict, runtime, path, copy, graph, theirs, ours)
        finally:
            os.unlink(copy)

    def _judge_difference(self, verdict: Verdict, runtime: str, path: str, copy: str, graph,
                          theirs: Opinion, ours: Opinion) -> None:
        """The runtime answered otherwise on what graphtool wrote back. Not graphtool's doing
        when the runtime is not consistent with itself, or when every field was kept (LiteRT's
        object API says so) and the result depends only on where the bytes lie, which a model
        can only do by reading outside its buffers: then inspect must warn about it."""
        oracle = self.oracles[runtime]
        # both again in a fresh process: memory never written differs between processes, LiteRT's
        # caches (XNNPACK's packed weights) may answer from a model run before, and a loaded
        # machine may stall one answer past the timeout
        oracle.close()
        fresh = [self._ask(oracle, p, verdict) for p in (path, copy)]
        if (fresh[0].ok, fresh[0].fingerprint) == (fresh[1].ok, fresh[1].fingerprint):
            verdict.notes[runtime] = ("not reproduced: asked again in a fresh process, the runtime answers the "
                                      "same on both files")
            return
        if theirs.ok and ours.ok:
            again = {self._ask(oracle, path, verdict).fingerprint for _ in range(REPEATS)}
            if ours.fingerprint in again or len(again | {theirs.fingerprint, fresh[0].fingerprint}) > 1:
                verdict.notes[runtime] = ("nondeterministic: the same file gives other outputs (reads memory it never "
                                          "wrote, or what an earlier model left)")
                return
        unknown = graph.meta.get(keys.UNKNOWN) if runtime == "litert" else None
        if unknown and not theirs.ok:
            # written with allow_unknown: the fields graphtool's schema does not know are left out
            # (documented), and one of them is what the runtime refused
            verdict.notes["lossless"] = f"fields unknown to graphtool's schema left out: {unknown[0][:200]}"
            return
        if runtime == "litert" and self._timed(verdict, oracle.same_fields, path, copy):
            warnings = graphtool.inspect(graph).warnings
            if warnings:
                verdict.notes["lossless"] = ("every field kept; LiteRT's result depends on where they lie, on a model "
                                             f"inspect warns about ({warnings[0][:200]})")
            else:
                verdict.fail("lossless", "every field kept, yet LiteRT's result changed: the model reads outside "
                                         "what it declares, and inspect does not warn about it")
            return
        verdict.fail("lossless", f"{runtime} {_answer(theirs)} on the input ({theirs.error or theirs.fingerprint[:16]})"
                                 f" but {_answer(ours)} on what graphtool wrote back "
                                 f"({ours.error or ours.fingerprint[:16]})")

    def _ask(self, oracle: Oracle, path: str, verdict: Verdict) -> Opinion:
        return self._timed(verdict, oracle.ask, path)

    @staticmethod
    def _timed(verdict: Verdict, call, *args):
        """call(*args), its time counted as the runtime's (verdict.oracle_seconds), not graphtool's."""
        start = time.perf_counter()
        try:
            return call(*args)
        finally:
            verdict.oracle_seconds += time.perf_counter() - start

    @staticmethod
    def _write(verdict: Verdict, graph, path: str, theirs: Opinion) -> bytes | None:
        try:
            return dumps(graph, path, allow_unknown=True)
        except GraphtoolError as exc:
            verdict.notes["write"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            if theirs.ok:
                verdict.fail("write", f"graphtool reads a model the runtime {_answer(theirs)} but cannot write it "
                                      f"back: {str(exc)[:300]}")
        except Exception as exc:  # noqa: BLE001
            verdict.fail("write", "unexpected exception", exc)
        return None
