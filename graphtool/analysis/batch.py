"""Many models in one call: the models that files, directories and globs name, each inspected
or checked by a pool of workers, one result per model.

    from graphtool.analysis.batch import check_many, find_models

    for result in check_many(find_models(["zoo/"]), "gpu", jobs=4):
        print(result.path, result.verdict)

Results come in input order, each as soon as it and every model before it are done: the same
inputs give the same output, however the work was scheduled. The work runs in any
`concurrent.futures.Executor` (a cluster's too): the function a worker runs is module-level
and its arguments plain data, so both pickle. Whatever goes wrong with one model (an
unreadable file, a target that does not apply, the crash of the worker process running it)
becomes that model's result, with a one-line `error`, instead of ending the batch. Without an
executor, `jobs` worker processes do the work (jobs=1: this process, one model after another).
"""
from __future__ import annotations

import glob
import os
import re
import signal
import warnings
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from .. import formats
from ..errors import GraphtoolError, one_line
from ..formats.savedmodel import is_saved_model
from ..ir import Graph
from ..logs import show_runtime_logs, showing
from .check import DELEGATES, CheckReport, check, parse_target
from .inspect import Summary, inspect

__all__ = ["ERROR", "BatchError", "CheckResult", "InspectResult", "ModelResult", "WorkerSettings", "check_many",
           "check_one", "default_jobs", "find_models", "inspect_many", "inspect_one", "is_glob"]

ERROR = "error"  # the verdict of a model that could not be checked
GLOB = re.compile(r"[*?[]")
CRASHED = "the worker process died on this model (a crash in native code, or out of memory)"

R = TypeVar("R", bound="ModelResult")
T = TypeVar("T")
Work = Callable[[str], R]
OnFinished = Callable[[int], None]


class BatchError(GraphtoolError):
    """A MODEL argument names no model: a missing path, a glob matching nothing, a directory
    holding none."""


# -- finding the models -------------------------------------------------------------------------

def is_glob(argument: str) -> bool:
    """Whether `argument` is a pattern to expand: it has *, ? or [ and names no existing path."""
    return bool(GLOB.search(argument)) and not os.path.lexists(argument)


def find_models(arguments: Iterable[str]) -> list[str]:
    """The models that files, directories and globs name, in argument order, each once.

    A file named (or matched by a glob) is a model whatever it holds: an unreadable one gets
    its row. A directory holding saved_model.pb is one model; any other directory is walked:
    its models are the files with a suffix graphtool reads (.tflite, .pb, .pbtxt, ...) or
    TFLite's file identifier, and the SavedModel directories, in sorted path order; other
    files and hidden entries are skipped. Raises BatchError for an argument naming none."""
    found: dict[str, str] = {}
    for argument in arguments:
        for path in _expand(argument):
            found.setdefault(os.path.normpath(path), path)
    return list(found.values())


def _expand(argument: str) -> list[str]:
    if is_glob(argument):
        matches = sorted(glob.glob(argument, recursive=True), key=_path_key)
        if not matches:
            raise BatchError(f"no file or directory matches {argument!r}")
        models = [model for match in matches for model in _models_at(match)]
        if not models:
            raise BatchError(f"no model in what {argument!r} matches")
        return models
    if not os.path.lexists(argument):
        raise BatchError(f"{argument}: no such file or directory")
    models = _models_at(argument)
    if not models:
        raise BatchError(f"{argument}: no model in this directory (.tflite, .pb or .pbtxt files, "
                         "SavedModel directories)")
    return models


def _models_at(path: str) -> list[str]:
    """A file or SavedModel directory is one model; another directory, the models under it."""
    if os.path.isdir(path) and not is_saved_model(path):
        return _walk(path)
    return [path]


def _walk(directory: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(directory):
        visible = sorted(name for name in dirs if not name.startswith("."))
        saved = [name for name in visible if is_saved_model(os.path.join(root, name))]
        dirs[:] = [name for name in visible if name not in saved]  # a SavedModel is not walked into
        found += [os.path.join(root, name) for name in saved]
        found += [path for name in files if not name.startswith(".")
                  and formats.looks_like_model(path := os.path.join(root, name))]
    return sorted(found, key=_path_key)


def _path_key(path: str) -> list[str]:
    return os.path.normpath(path).split(os.sep)


# -- results --------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class ModelResult:
    """One model of a batch: its path, its format (None when it could not be read), the one-line
    error that stopped its analysis, and the warnings graphtool raised on the way."""

    path: str
    format: str | None = None
    error: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, kw_only=True)
class CheckResult(ModelResult):
    """A model checked against `target`: its CheckReport, or None with `error` set."""

    target: str
    report: CheckReport | None = None

    @property
    def verdict(self) -> str:
        """The report's verdict (compatible, partial, none, incompatible), or "error"."""
        return ERROR if self.report is None else self.report.verdict

    @property
    def ok(self) -> bool:
        return self.report is not None and self.report.compatible

    def to_dict(self) -> dict[str, Any]:
        """The JSON line: {path, format, target, compatible, verdict, [min_runtime_version],
        operators, counts, error, warnings, findings}; operators and counts are null on an error."""
        report = self.report
        data: dict[str, Any] = {"path": self.path, "format": self.format, "target": self.target,
                                "compatible": self.ok, "verdict": self.verdict}
        if parse_target(self.target)[0] == "runtime":
            data["min_runtime_version"] = report.min_runtime_version if report else None
        if parse_target(self.target)[0] in DELEGATES:  # its partitions, as check --json (null on an error)
            delegation = report.to_dict() if report is not None and report.partitions is not None else {}
            data.update((key, delegation.get(key)) for key in PARTITION_KEYS)
        data.update(operators=report.operators if report else None, counts=report.counts if report else None,
                    error=self.error, warnings=list(self.warnings),
                    findings=[finding.to_dict() for finding in report.findings] if report else [])
        return data


@dataclass(frozen=True, kw_only=True)
class InspectResult(ModelResult):
    """A model inspected: its Summary, or None with `error` set."""

    summary: Summary | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON line: {path, format, error, warnings} and, when read, every key of
        `graphtool inspect --json`."""
        data: dict[str, Any] = {"path": self.path, "format": self.format, "error": self.error,
                                "warnings": list(self.warnings)}
        if self.summary is not None:
            data.update((key, value) for key, value in self.summary.to_dict().items() if key not in data)
        return data


PARTITION_KEYS = ("partitions", "delegated_ops", "total_ops", "delegated_macs_share")


# -- the work of one model (what a worker runs) ------------------------------------------------------

@dataclass(frozen=True)
class WorkerSettings:
    """What a worker takes from the process that started it: whether the runtimes' log lines
    show (graphtool -v), and whether to record warnings in the result (not in threads of one
    process: Python's warning machinery is process-wide)."""

    show_logs: bool = False
    record_warnings: bool = True


def check_one(path: str, target: str, settings: WorkerSettings = WorkerSettings()) -> CheckResult:
    """Load and check one model; every error becomes the result's `error`."""
    found, report = _attempt(path, settings, partial(check, target=target))
    return CheckResult(**found, target=target, report=report)


def inspect_one(path: str, structure: bool = False, settings: WorkerSettings = WorkerSettings()) -> InspectResult:
    """Load and inspect one model; every error becomes the result's `error`."""
    found, summary = _attempt(path, settings, partial(inspect, structure=structure))
    return InspectResult(**found, summary=summary)


def _attempt(path: str, settings: WorkerSettings, analyse: Callable[[Graph], T]) -> tuple[dict[str, Any], T | None]:
    """Load `path` and analyse it: the ModelResult fields, and the analysis (None on an error)."""
    if showing() != settings.show_logs:
        show_runtime_logs(settings.show_logs)
    found: dict[str, Any] = {"path": path}
    value = None
    with _recorded_warnings(settings.record_warnings) as caught:
        try:
            graph = formats.load(path)
            found["format"] = graph.format
            value = analyse(graph)
        except GraphtoolError as exc:
            found["error"] = _message(path, exc)
        except Exception as exc:  # a bug: reported on this model's row, the batch goes on
            found["error"] = f"internal error (please report it): {type(exc).__name__}: {_message(path, exc)}"
    found["warnings"] = tuple(one_line(str(warning.message)) for warning in caught)
    return found, value


@contextmanager
def _recorded_warnings(record: bool) -> Iterator[list[warnings.WarningMessage]]:
    if not record:
        yield []
        return
    with warnings.catch_warnings(record=True) as caught:
        yield caught


def _message(path: str, exc: BaseException) -> str:
    """The exception as one line, without the path the result already names."""
    return (one_line(str(exc)) or type(exc).__name__).removeprefix(f"{path}: ")


# -- running many ----------------------------------------------------------------------------------

def check_many(paths: Iterable[str], target: str, executor: Executor | None = None, jobs: int | None = None,
               on_finished: OnFinished | None = None) -> Iterator[CheckResult]:
    """Check each model of `paths` (files or SavedModel directories; see find_models) against
    `target`: one CheckResult per path, in input order. `executor` runs the work (else `jobs`
    processes, default_jobs() by default); `on_finished(n)` is called as models finish, in any
    order. An unknown target raises CheckError here, before any work."""
    parse_target(target)
    work = partial(check_one, target=target, settings=_settings(executor))
    return _results(list(paths), work, lambda path, error: CheckResult(path=path, target=target, error=error),
                    executor, jobs, on_finished)


def inspect_many(paths: Iterable[str], structure: bool = False, executor: Executor | None = None,
                 jobs: int | None = None, on_finished: OnFinished | None = None) -> Iterator[InspectResult]:
    """Inspect each model of `paths`: one InspectResult per path, in input order (as check_many)."""
    work = partial(inspect_one, structure=structure, settings=_settings(executor))
    return _results(list(paths), work, lambda path, error: InspectResult(path=path, error=error),
                    executor, jobs, on_finished)


def default_jobs() -> int:
    """The number of CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _settings(executor: Executor | None) -> WorkerSettings:
    return WorkerSettings(show_logs=showing(), record_warnings=not isinstance(executor, ThreadPoolExecutor))


def _results(paths: list[str], work: Work, failed: Callable[[str, str], R], executor: Executor | None,
             jobs: int | None, on_finished: OnFinished | None) -> Iterator[R]:
    notify = on_finished or (lambda count: None)
    if executor is not None:
        return _from_executor(paths, executor, work, failed, notify)
    if jobs is not None and jobs < 1:
        raise BatchError(f"jobs must be at least 1, not {jobs}")
    workers = min(jobs or default_jobs(), len(paths))
    if workers <= 1:
        return _in_this_process(paths, work, notify)
    return _from_pools(paths, work, failed, workers, notify)


def _in_this_process(paths: list[str], work: Work, notify: OnFinished) -> Iterator[R]:
    for path in paths:
        result = work(path)
        notify(1)
        yield result


def _from_executor(paths: list[str], executor: Executor, work: Work, failed: Callable[[str, str], R],
                   notify: OnFinished) -> Iterator[R]:
    """Results from the caller's executor: a model whose work did not come back gets a row
    saying why; nothing is retried (the executor is not ours to replace)."""
    for path, outcome in _outcomes(paths, executor, work, notify):
        if isinstance(outcome, BrokenExecutor):  # which _outcomes does not count
            notify(1)
        yield _settled(path, outcome, failed)


def _from_pools(paths: list[str], work: Work, failed: Callable[[str, str], R], workers: int,
                notify: OnFinished) -> Iterator[R]:
    """Results from process pools of our own. A worker process that dies (a crash in native
    code, the OOM killer) breaks its pool, and every model unfinished then fails with it: those
    run again in a pool of one worker, which runs them in order, so the first model unfinished
    when that pool breaks is the one that broke it; it gets the row, and the rest run on."""
    settled: dict[int, R] = {}
    position = 0  # the next result to yield
    todo = list(range(len(paths)))
    while todo:
        broken: list[int] = []
        with _pool(workers) as pool:
            for index, (path, outcome) in zip(todo, _outcomes([paths[i] for i in todo], pool, work, notify)):
                if isinstance(outcome, BrokenExecutor):
                    broken.append(index)
                    continue
                settled[index] = _settled(path, outcome, failed)
                while position in settled:
                    yield settled.pop(position)
                    position += 1
        if broken and workers == 1:
            culprit = broken.pop(0)
            notify(1)
            settled[culprit] = failed(paths[culprit], CRASHED)
        todo, workers = broken, 1
    yield from (settled[index] for index in sorted(settled))


def _settled(path: str, outcome: Any, failed: Callable[[str, str], R]) -> R:
    """The result, or a row saying why the work of `path` did not come back."""
    if isinstance(outcome, BaseException):
        return failed(path, f"its worker failed: {type(outcome).__name__}: {_message(path, outcome)}")
    return outcome


@contextmanager
def _pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers, when it is left early (Ctrl-C, a closed pipe, a caller
    that stops reading), are stopped at once rather than waited for."""
    pool = ProcessPoolExecutor(workers, initializer=_ignore_interrupts)
    try:
        yield pool
    except BaseException:
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's worker processes (Python 3.14's terminate_workers(); before it, the
    processes the pool keeps)."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _ignore_interrupts() -> None:
    """Ctrl-C is the command's to handle: its workers finish what they run, then stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _outcomes(paths: Sequence[str], executor: Executor, work: Work,
              notify: OnFinished) -> Iterator[tuple[str, Any]]:
    """Each path with its result or the exception its work raised, in input order, each as soon
    as it is done. `notify` counts the models finished, in whatever order they finish; a
    future failed by a broken executor is not counted (its model may run again)."""
    futures = [_submit(executor, work, path) for path in paths]
    pending = set(futures)

    def settle(done: set[Future]) -> None:
        notify(sum(1 for future in done if not isinstance(_outcome(future), BrokenExecutor)))

    for path, future in zip(paths, futures):
        while future in pending:
            if future.done():
                pending.discard(future)
                settle({future})
            else:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                settle(done)
        yield path, _outcome(future)


def _submit(executor: Executor, work: Work, path: str) -> Future:
    """executor.submit, or a future holding the error when submitting fails (a broken pool)."""
    try:
        return executor.submit(work, path)
    except Exception as exc:
        future: Future = Future()
        future.set_exception(exc)
        return future


def _outcome(future: Future) -> Any:
    """A done future's result, or the exception it holds."""
    try:
        return future.result()
    except Exception as exc:
        return exc
