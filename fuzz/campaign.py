"""Run a campaign: generate inputs in this process (deterministic for a seed), check each
in a worker process that is timed, memory-capped and replaced when it hangs or dies, and
count what happened. Failing inputs are saved as regression inputs."""
from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import random
import resource
import signal
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable

from .oracle import Verdict, signature

MB = 1 << 20
BLOCKED_MODULES = ("tensorflow", "tf_keras", "keras", "ai_edge_litert", "ai_edge_quantizer")


@dataclass(frozen=True)
class Target:
    """A fuzz target: `inputs()` builds a generator with generate(rng) -> (bytes, suffix,
    recipe); `checker()` builds the oracle, called with the path of one input file."""

    name: str
    inputs: Callable[[], Any]
    checker: Callable[[], Callable[[str], Verdict]]
    runtimes: bool = False  # the worker may import TensorFlow and LiteRT (commands that calibrate or verify)


@dataclass(frozen=True)
class Limits:
    seconds: float = 5.0       # an input taking longer is a failure (plus seconds_per_mb of input)
    seconds_per_mb: float = 10.0
    megabytes: float = 300.0   # an input allocating more (traced or resident) is a failure (plus
    megabytes_per_mb: float = 10.0  # this many times its own size)
    hard_seconds: float = 30.0  # the worker is interrupted (then killed) past this
    address_space_mb: float = 4096.0  # RLIMIT_AS headroom over the worker's start: allocations fail past it
    trace_python: bool = False  # also measure with tracemalloc (exact Python/numpy peaks, ~5x slower)


@dataclass
class Result:
    index: int
    recipe: str
    suffix: str
    verdict: Verdict
    seconds: float = 0.0
    traced_mb: float = 0.0
    rss_mb: float = 0.0  # resident memory this input added at its peak


@dataclass
class Report:
    target: str
    seed: int
    inputs: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)          # "outcome: ErrorType" -> count
    allowed: Counter = field(default_factory=Counter)         # "step: ErrorType" after a successful read
    failures: Counter = field(default_factory=Counter)        # signature -> count
    failure_examples: dict[str, str] = field(default_factory=dict)
    saved: list[str] = field(default_factory=list)
    slowest: dict[str, Any] = field(default_factory=dict)
    peak_traced_mb: float = 0.0
    peak_rss_mb: float = 0.0
    worker_restarts: int = 0

    def add(self, result: Result) -> None:
        v = result.verdict
        self.inputs += 1
        self.outcomes[v.outcome] += 1
        if v.outcome in ("rejected", "failed") and v.error:
            self.errors[f"{v.outcome}: {v.error}"] += 1
        for step, note in v.notes.items():
            self.allowed[f"{step}: {note.split(':', 1)[0]}"] += 1
        if v.problems:
            key = signature(v)
            self.failures[key] += 1
            self.failure_examples.setdefault(key, f"input {result.index} ({result.recipe}): {v.problems[0]}")
        if result.seconds > self.slowest.get("seconds", -1):
            self.slowest = {"seconds": round(result.seconds, 3), "index": result.index, "recipe": result.recipe,
                            "outcome": v.outcome, "error": v.error}
        self.peak_traced_mb = max(self.peak_traced_mb, result.traced_mb)
        self.peak_rss_mb = max(self.peak_rss_mb, result.rss_mb)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("outcomes", "errors", "allowed", "failures"):
            data[key] = dict(sorted(getattr(self, key).items(), key=lambda kv: -kv[1]))
        return data


def input_rng(seed: int, target: str, index: int) -> random.Random:
    """The generator for input `index`: any input of a campaign can be made again alone."""
    return random.Random(f"{seed}:{target}:{index}")


# -- the worker ----------------------------------------------------------------------------
class _Hang(BaseException):
    """Raised by SIGALRM in the worker when an input runs past the hard limit."""


class _BlockImports:
    """A meta path finder that makes the runtimes look uninstalled (the core install): the
    readers must not need them, and passes that do must say so with a GraphtoolError."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED_MODULES:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the fuzz worker)", name=name)
        return None


def _status(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def worker_main(conn: Connection, target: Target, limits: Limits, workdir: str) -> None:
    if not target.runtimes:
        sys.meta_path.insert(0, _BlockImports())
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    logging.getLogger("graphtool").setLevel(logging.ERROR)  # passes log skips; a campaign has millions
    check = target.checker()
    if os.path.exists("/proc/self/status") and limits.address_space_mb:
        cap = _status("VmSize") + int(limits.address_space_mb * MB)
        resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))

    def on_alarm(signum, frame):
        raise _Hang(f"still running after {limits.hard_seconds:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    if limits.trace_python:
        tracemalloc.start(1)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        index, data, suffix, recipe = message
        path = os.path.join(workdir, "input" + suffix)
        with open(path, "wb") as handle:
            handle.write(data)
        conn.send(run_one(check, path, limits, index, recipe, suffix))
        os.unlink(path)


def run_one(check: Callable[[str], Verdict], path: str, limits: Limits, index: int = 0, recipe: str = "",
            suffix: str = "") -> Result:
    """Check one input file, timed and measured: the resident memory it added at its peak
    (Linux: VmHWM after resetting it), and with tracemalloc running, its traced peak."""
    tracing = tracemalloc.is_tracing()
    if tracing:
        tracemalloc.clear_traces()
        tracemalloc.reset_peak()
    traced_before = tracemalloc.get_traced_memory()[0] if tracing else 0
    can_reset = _reset_peak_rss()
    rss_before = _status("VmRSS") if can_reset else 0
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, limits.hard_seconds)
    try:
        verdict = check(path)
    except _Hang as exc:
        verdict = Verdict()
        verdict.fail("hang", f"interrupted after {limits.hard_seconds:.0f} s", exc)
    except BaseException as exc:  # noqa: BLE001 - the oracle itself must not take the worker down
        verdict = Verdict()
        verdict.fail("harness", "the check raised", exc)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - start - verdict.oracle_seconds
    traced = (tracemalloc.get_traced_memory()[1] - traced_before) / MB if tracing else 0.0
    rss = (_status("VmHWM") - rss_before) / MB if can_reset else 0.0
    size_mb = os.path.getsize(path) / MB
    allowed = limits.seconds + limits.seconds_per_mb * size_mb
    if seconds > allowed and not any(p.startswith("hang") for p in verdict.problems):
        verdict.fail("time", f"took {seconds:.2f} s (limit {allowed:.1f} s)")
    allowed = limits.megabytes + limits.megabytes_per_mb * size_mb
    if max(traced, rss) > allowed:
        verdict.fail("memory", f"allocated {max(traced, rss):.0f} MB (limit {allowed:.0f} MB)")
    return Result(index, recipe, suffix, verdict, seconds, traced, rss)


class _Worker:
    def __init__(self, target: Target, limits: Limits, context):
        self.workdir = tempfile.mkdtemp(prefix="graphtool-fuzz-")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=worker_main, args=(child, target, limits, self.workdir), daemon=True)
        self.process.start()
        child.close()
        self.job: tuple | None = None
        self.started = 0.0

    def submit(self, job: tuple) -> None:
        self.job, self.started = job, time.monotonic()
        self.conn.send(job)

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        for name in os.listdir(self.workdir):
            os.unlink(os.path.join(self.workdir, name))
        os.rmdir(self.workdir)


# -- the campaign --------------------------------------------------------------------------
def run_campaign(target: Target, seed: int, max_inputs: int | None, max_seconds: float | None,
                 limits: Limits = Limits(), jobs: int = 1, corpus: Path | None = None,
                 progress: Callable[[Report], None] | None = None, saves_per_bug: int = 3) -> Report:
    """Check up to `max_inputs` inputs (or for `max_seconds`) of `target` and report."""
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    generator = target.inputs()
    report = Report(target.name, seed)
    workers = [_Worker(target, limits, context) for _ in range(max(1, jobs))]
    start = time.monotonic()
    next_index, last_progress = 0, start

    def more() -> bool:
        return ((max_inputs is None or next_index < max_inputs)
                and (max_seconds is None or time.monotonic() - start < max_seconds))

    def record(result: Result, data: bytes) -> None:
        report.add(result)
        if result.verdict.problems and corpus is not None:
            _save(corpus, target.name, seed, result, data, report, saves_per_bug)

    try:
        for worker in workers:
            if more():
                worker.submit(_job(generator, seed, target.name, next_index))
                next_index += 1
        while any(w.job is not None for w in workers):
            busy = [w for w in workers if w.job is not None]
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=1.0)
            for i, worker in enumerate(workers):
                if worker.job is None:
                    continue
                result, job = None, worker.job
                if worker.conn in ready:
                    try:
                        result = worker.conn.recv()
                    except (EOFError, OSError):
                        result = None
                    if result is not None:
                        worker.job = None
                if result is None and (worker.process.sentinel in ready or not worker.process.is_alive()
                                       or time.monotonic() - worker.started > limits.hard_seconds + 30):
                    result = _lost(worker, limits)
                    worker.stop(kill=True)
                    workers[i] = worker = _Worker(target, limits, context)
                    report.worker_restarts += 1
                if result is None:
                    continue
                record(result, job[1])
                if more():
                    worker.submit(_job(generator, seed, target.name, next_index))
                    next_index += 1
            if progress and time.monotonic() - last_progress > 10:
                report.seconds = time.monotonic() - start
                progress(report)
                last_progress = time.monotonic()
    finally:
        for worker in workers:
            worker.stop(kill=worker.job is not None)
    report.seconds = round(time.monotonic() - start, 2)
    return report


def replay(target: Target, paths: list[Path], limits: Limits = Limits()) -> list[Result]:
    """Check saved inputs in a worker process, as a campaign would (a hang or a crash
    becomes a failing Result instead of stopping the caller)."""
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    results = []
    worker = _Worker(target, limits, context)
    try:
        for index, path in enumerate(paths):
            suffix = "".join(path.suffixes[-1:])
            worker.submit((index, path.read_bytes(), suffix, path.name))
            if worker.conn.poll(limits.hard_seconds + 30):
                try:
                    results.append(worker.conn.recv())
                    worker.job = None
                    continue
                except (EOFError, OSError):
                    pass
            results.append(_lost(worker, limits))
            worker.stop(kill=True)
            worker = _Worker(target, limits, context)
    finally:
        worker.stop(kill=worker.job is not None)
    return results


def _job(generator, seed: int, target: str, index: int) -> tuple:
    data, suffix, recipe = generator.generate(input_rng(seed, target, index))
    return index, data, suffix, recipe


def _lost(worker: _Worker, limits: Limits) -> Result:
    """The worker died (a crash in C code, the OOM killer) or never answered."""
    index, data, suffix, recipe = worker.job
    verdict = Verdict()
    worker.process.join(1)
    code = worker.process.exitcode
    if code is None:
        verdict.fail("hang", f"no answer after {limits.hard_seconds + 30:.0f} s; worker killed")
    else:
        verdict.fail("crash", f"the worker process died (exit code {code})")
    return Result(index, recipe, suffix, verdict, time.monotonic() - worker.started)


def _save(corpus: Path, target: str, seed: int, result: Result, data: bytes, report: Report,
          saves_per_bug: int) -> None:
    """Keep a failing input as a regression input (a few per distinct failure)."""
    key = signature(result.verdict)
    if report.failures[key] > saves_per_bug:
        return
    folder = corpus / target
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(data).hexdigest()[:16] + result.suffix
    if (folder / name).exists():
        return
    (folder / name).write_bytes(data)
    (folder / (name + ".why")).write_text(
        f"target {target}, seed {seed}, input {result.index}\nrecipe: {result.recipe}\n"
        f"signature: {key}\n\n" + "\n\n".join(result.verdict.problems) + "\n")
    report.saved.append(str(folder / name))
