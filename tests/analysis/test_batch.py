"""Many models in one call (graphtool.analysis.batch): which files a directory or glob names,
one result per model in input order whatever runs the work, and every failure a result."""
from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest

from graphtool import formats
from graphtool.analysis import batch
from graphtool.analysis.batch import BatchError, CheckResult, check_many, check_one, find_models, inspect_many
from graphtool.analysis.check import CheckError

from ..conftest import GRAPHDEF_FIXTURES, TFLITE_FIXTURES

COMPATIBLE = ("float_cnn.tflite", "full_int8.tflite", "sparse.tflite")  # with --target gpu
PARTIAL = ("control_flow.tflite", "strings.tflite")
CHECK_KEYS = ["path", "format", "target", "compatible", "verdict", "partitions", "delegated_ops", "total_ops",
              "delegated_macs_share", "operators", "counts", "error", "warnings", "findings"]  # a delegate (gpu)


def zoo(tmp_path: Path, names=COMPATIBLE + PARTIAL, corrupt: bool = True) -> Path:
    """A directory of fixture copies (and a corrupt .tflite): the models, sorted, are its files."""
    root = tmp_path / "zoo"
    root.mkdir(parents=True)
    for name in names:
        shutil.copy(TFLITE_FIXTURES / name, root / name)
    if corrupt:
        (root / "corrupt.tflite").write_bytes((TFLITE_FIXTURES / "float_cnn.tflite").read_bytes()[:300])
    return root


def as_str(paths) -> list[str]:
    return [str(path) for path in paths]


# -- finding the models -------------------------------------------------------------------------------

def test_a_directory_walk_finds_model_files_and_savedmodels_and_skips_the_rest(tmp_path):
    root = tmp_path / "models"
    (root / "vision" / "v1").mkdir(parents=True)
    (root / "exported" / "variables").mkdir(parents=True)
    (root / ".cache").mkdir()
    shutil.copy(TFLITE_FIXTURES / "float_cnn.tflite", root / "vision" / "v1" / "cnn.tflite")
    shutil.copy(TFLITE_FIXTURES / "sparse.tflite", root / "model.bin")  # TFLite by its bytes
    shutil.copy(GRAPHDEF_FIXTURES / "keras2_cnn.pb", root / "vision" / "frozen.pb")
    shutil.copy(GRAPHDEF_FIXTURES / "keras2_cnn.pbtxt", root / "frozen.pbtxt")
    (root / "exported" / "saved_model.pb").write_bytes(b"")  # a SavedModel: one model, not walked into
    shutil.copy(TFLITE_FIXTURES / "float_cnn.tflite", root / "exported" / "inside.tflite")
    shutil.copy(TFLITE_FIXTURES / "float_cnn.tflite", root / ".cache" / "hidden.tflite")
    shutil.copy(TFLITE_FIXTURES / "float_cnn.tflite", root / ".hidden.tflite")
    (root / "README.md").write_text("not a model\n")
    (root / "labels.txt").write_text("cat\ndog\n")
    shutil.copy(TFLITE_FIXTURES / "digits_test.npz", root / "data.npz")

    found = find_models([str(root)])
    assert [os.path.relpath(path, root) for path in found] == [
        "exported", "frozen.pbtxt", "model.bin", os.path.join("vision", "frozen.pb"),
        os.path.join("vision", "v1", "cnn.tflite")]


def test_arguments_keep_their_order_each_model_once(tmp_path):
    root = zoo(tmp_path, corrupt=False)
    first = str(root / "sparse.tflite")
    found = find_models([first, str(root), str(root / "float_cnn.tflite")])
    assert found[0] == first
    assert sorted(map(os.path.basename, found)) == sorted(COMPATIBLE + PARTIAL)
    assert found[1:] == [path for path in as_str(sorted(root.iterdir())) if path != first]


def test_a_named_file_is_a_model_whatever_it_holds(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    assert find_models([str(notes)]) == [str(notes)]


def test_globs_expand_sorted_and_recursively(tmp_path):
    root = zoo(tmp_path, corrupt=False)
    (root / "deeper").mkdir()
    shutil.copy(TFLITE_FIXTURES / "float16.tflite", root / "deeper" / "f16.tflite")
    assert find_models([str(root / "s*.tflite")]) == as_str([root / "sparse.tflite", root / "strings.tflite"])
    assert str(root / "deeper" / "f16.tflite") in find_models([str(root / "**" / "*.tflite")])


@pytest.mark.parametrize("argument, message", [
    ("nothing/*.tflite", "no file or directory matches '{tmp}/nothing/*.tflite'"),
    ("missing", "{tmp}/missing: no such file or directory"),
    ("empty", "{tmp}/empty: no model in this directory"),
])
def test_an_argument_naming_no_model_is_a_batch_error(tmp_path, argument, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("nothing here\n")
    with pytest.raises(BatchError) as raised:
        find_models([str(TFLITE_FIXTURES / "float_cnn.tflite"), str(tmp_path / argument)])
    assert str(raised.value).startswith(message.format(tmp=tmp_path))
    assert "\n" not in str(raised.value)


# -- results -------------------------------------------------------------------------------------------

def test_results_come_in_input_order_one_per_model_the_same_however_run(tmp_path):
    paths = find_models([str(zoo(tmp_path))])
    runs = [list(check_many(paths, "gpu", jobs=jobs)) for jobs in (2, 2, 1)]
    with ThreadPoolExecutor(3) as executor:
        runs.append(list(check_many(paths, "gpu", executor=executor)))
    assert [result.path for result in runs[0]] == paths
    assert all([r.to_dict() for r in run] == [r.to_dict() for r in runs[0]] for run in runs[1:])
    verdicts = {os.path.basename(r.path): r.verdict for r in runs[0]}
    assert verdicts == {**dict.fromkeys(COMPATIBLE, "compatible"), **dict.fromkeys(PARTIAL, "partial"),
                        "corrupt.tflite": "error"}


def test_an_unreadable_model_is_a_result_with_a_one_line_error(tmp_path):
    (result,) = check_many([str(zoo(tmp_path, names=()) / "corrupt.tflite")], "gpu")
    assert result.report is None and result.format is None and not result.ok
    assert result.error and "\n" not in result.error and not result.error.startswith(result.path)
    line = result.to_dict()
    assert list(line) == CHECK_KEYS
    assert (line["compatible"], line["verdict"], line["operators"], line["counts"], line["findings"]) == \
        (False, "error", None, None, [])


def test_a_target_that_does_not_apply_is_a_result_naming_the_format():
    (result,) = check_many([str(GRAPHDEF_FIXTURES / "keras2_cnn.pb")], "gpu")
    assert (result.format, result.verdict) == ("graphdef", "error")
    assert "checks TFLite models" in result.error


def test_a_check_line_is_the_one_model_json_plus_path_format_and_counts():
    path = str(TFLITE_FIXTURES / "control_flow.tflite")
    (result,) = check_many([path], "gpu")
    line = result.to_dict()
    assert list(line) == CHECK_KEYS
    assert {key: line[key] for key in result.report.to_dict()} == result.report.to_dict()
    assert (line["path"], line["format"], line["operators"]) == (path, "tflite", result.report.operators)
    assert line["counts"] == result.report.counts
    (runtime,) = check_many([path], "runtime:2.10.0")
    assert "min_runtime_version" in runtime.to_dict()
    error = CheckResult(path="x.tflite", target="runtime", error="unreadable").to_dict()
    assert error["min_runtime_version"] is None


def test_an_inspect_line_is_the_one_model_json_plus_error_and_warnings(tmp_path):
    good, corrupt = (str(path) for path in sorted(zoo(tmp_path, names=("float_cnn.tflite",)).iterdir())[::-1])
    read, unreadable = inspect_many([good, corrupt], jobs=2)
    summary = formats.load(good)
    assert list(read.to_dict())[:4] == ["path", "format", "error", "warnings"]
    from graphtool.analysis.inspect import inspect
    expected = inspect(summary).to_dict()
    assert {key: read.to_dict()[key] for key in expected} == expected
    assert read.ok and not unreadable.ok
    assert set(unreadable.to_dict()) == {"path", "format", "error", "warnings"}


def test_warnings_raised_reading_a_model_are_in_its_result(tmp_path):
    misnamed = tmp_path / "model.pb"
    shutil.copy(TFLITE_FIXTURES / "float_cnn.tflite", misnamed)
    (result,) = check_many([str(misnamed)], "gpu", jobs=1)
    assert result.ok and result.format == "tflite"
    assert result.warnings == (f"{misnamed}: the suffix says binary GraphDef, the bytes are TFLite; read as TFLite",)


def test_an_unknown_target_is_refused_before_any_work():
    with pytest.raises(CheckError, match="unknown target 'nope'"):
        check_many([str(TFLITE_FIXTURES / "float_cnn.tflite")], "nope")


def test_jobs_below_one_are_refused():
    with pytest.raises(BatchError, match="jobs must be at least 1"):
        check_many([str(TFLITE_FIXTURES / "float_cnn.tflite")], "gpu", jobs=0)


# -- executors ----------------------------------------------------------------------------------------

class CountingExecutor(Executor):
    """An executor of the caller's: runs every call in this thread, counting them."""

    def __init__(self):
        self.submitted: list[str] = []
        self.inner = ThreadPoolExecutor(1)

    def submit(self, fn, /, *args, **kwargs):
        self.submitted.append(args[0])
        return self.inner.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, **kwargs):
        self.inner.shutdown(wait)


def test_a_callers_executor_runs_every_model():
    paths = as_str(TFLITE_FIXTURES / name for name in COMPATIBLE)
    executor = CountingExecutor()
    finished = []
    results = list(check_many(paths, "gpu", executor=executor, on_finished=finished.append))
    executor.shutdown()
    assert executor.submitted == paths
    assert [r.verdict for r in results] == ["compatible"] * 3 and sum(finished) == 3


def test_the_work_and_its_result_pickle_for_other_processes():
    work = partial(check_one, target="gpu")
    again = pickle.loads(pickle.dumps(work))
    result = again(str(TFLITE_FIXTURES / "float_cnn.tflite"))
    assert pickle.loads(pickle.dumps(result)).to_dict() == result.to_dict()


def _crash_on(names: tuple[str, ...], real, path):
    """formats.load that kills the worker process on these models."""
    if os.path.basename(path) in names:
        os._exit(3)
    return real(path)


fork_only = pytest.mark.skipif(multiprocessing.get_start_method() != "fork",
                               reason="the crash is planted by patching the parent, which needs forked workers")


@fork_only
@pytest.mark.parametrize("crashing", [("full_int8.tflite",), ("control_flow.tflite", "sparse.tflite")])
def test_a_worker_that_dies_is_its_models_result_and_the_rest_run_on(tmp_path, monkeypatch, crashing):
    paths = find_models([str(zoo(tmp_path, corrupt=False))])
    monkeypatch.setattr(formats, "load", partial(_crash_on, crashing, formats.load))
    finished = []
    results = list(check_many(paths, "gpu", jobs=2, on_finished=finished.append))
    assert [r.path for r in results] == paths and sum(finished) == len(paths)
    crashed = {os.path.basename(r.path): r.error for r in results if r.verdict == "error"}
    assert crashed == dict.fromkeys(crashing, batch.CRASHED)
    assert all(r.report is not None for r in results if os.path.basename(r.path) not in crashing)


@fork_only
def test_a_broken_executor_of_the_callers_gives_rows_not_an_exception(tmp_path, monkeypatch):
    paths = find_models([str(zoo(tmp_path, corrupt=False))])
    monkeypatch.setattr(formats, "load", partial(_crash_on, ("float_cnn.tflite",), formats.load))
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as executor:
        results = list(check_many(paths, "gpu", executor=executor))
    assert [r.path for r in results] == paths
    broken = [r for r in results if r.verdict == "error"]
    assert broken and all("BrokenProcessPool" in r.error for r in broken)
    assert os.path.join(os.path.dirname(paths[0]), "float_cnn.tflite") in [r.path for r in broken]
