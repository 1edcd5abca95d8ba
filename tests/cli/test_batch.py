"""`graphtool check` and `inspect` on directories and globs: one row or JSON line per model, in
input order, unreadable files as rows, exit 0 all fine / 1 any not / 2 bad usage."""
from __future__ import annotations

import json
import shutil

import pytest

from ..analysis.test_batch import CHECK_KEYS, COMPATIBLE, PARTIAL, zoo
from ..conftest import GRAPHDEF_FIXTURES, TFLITE_FIXTURES
from .test_cli import graphtool


def lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_check_a_directory_prints_one_json_line_per_model_in_order(tmp_path):
    root = zoo(tmp_path)
    result = graphtool("check", root, "--target", "gpu", "--json", "--jobs", "2")
    assert result.returncode == 1, result.stderr  # partial models and a corrupt one
    found = lines(result.stdout)
    assert [line["path"] for line in found] == [str(path) for path in sorted(root.iterdir())]
    assert all(list(line) == CHECK_KEYS for line in found)
    verdicts = {line["path"].rsplit("/", 1)[1]: line["verdict"] for line in found}
    assert verdicts == {**dict.fromkeys(COMPATIBLE, "compatible"), **dict.fromkeys(PARTIAL, "partial"),
                        "corrupt.tflite": "error"}
    assert result.stderr == ""


def test_an_unreadable_file_is_a_row_with_its_error_and_exit_1(tmp_path):
    root = zoo(tmp_path, names=COMPATIBLE)
    result = graphtool("check", root, "--target", "gpu")
    assert result.returncode == 1 and result.stderr == ""
    (row,) = [line for line in result.stdout.splitlines() if "corrupt.tflite" in line]
    assert row.split()[1:3] == ["-", "error"] and "runs past the end of the file" in row
    assert result.stdout.splitlines()[-1] == \
        "4 models checked against gpu: 3 compatible, 1 error (NOT all compatible)"


def test_all_compatible_exits_0_and_partial_exits_1(tmp_path):
    fine = graphtool("check", zoo(tmp_path / "a", names=COMPATIBLE, corrupt=False), "--target", "gpu")
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert fine.stdout.splitlines()[0].split() == ["model", "format", "verdict", "operators", "errors", "warnings",
                                                   "notes"]
    assert fine.stdout.splitlines()[-1] == "3 models checked against gpu: 3 compatible"
    mixed = graphtool("check", zoo(tmp_path / "b", corrupt=False), "--target", "gpu")
    assert mixed.returncode == 1
    assert mixed.stdout.splitlines()[-1].endswith("3 compatible, 2 partial (NOT all compatible)")


def test_the_output_is_the_same_bytes_however_many_jobs(tmp_path):
    root = zoo(tmp_path)
    runs = [graphtool("check", root, "--target", "gpu", "--jobs", jobs).stdout for jobs in ("2", "2", "1", "3")]
    assert len(set(runs)) == 1 and len(runs[0].splitlines()) == 1 + 6 + 1


def test_directories_globs_and_files_mix_in_argument_order(tmp_path):
    root = zoo(tmp_path, corrupt=False)
    extra = tmp_path / "frozen.pb"
    shutil.copy(GRAPHDEF_FIXTURES / "keras2_cnn.pb", extra)
    result = graphtool("check", extra, root / "s*.tflite", root, "--target", "tflite", "--json")
    assert result.returncode == 0, result.stderr
    paths = [line["path"] for line in lines(result.stdout)]
    assert paths[:3] == [str(extra), str(root / "sparse.tflite"), str(root / "strings.tflite")]
    assert sorted(paths[3:]) == sorted(str(root / name) for name in COMPATIBLE + PARTIAL if not name.startswith("s"))


@pytest.mark.parametrize("command", [["check", "--target", "gpu"], ["inspect"]])
def test_a_glob_matching_nothing_exits_2_with_one_line_naming_it(tmp_path, command):
    pattern = str(tmp_path / "nothing" / "*.tflite")
    result = graphtool(*command, TFLITE_FIXTURES / "float_cnn.tflite", pattern)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"graphtool: error: no file or directory matches '{pattern}'\n"


@pytest.mark.parametrize("args, message", [
    (["--target", "gpu", "--jobs", "0"], "argument --jobs/-j: expected a whole number of at least 1, not '0'"),
    (["--target", "tflite", "--outputs", "Identity"], "--outputs checks one GraphDef"),
    (["--target", "nope"], "unknown target 'nope'"),
])
def test_bad_usage_in_batch_mode_exits_2_in_one_line(tmp_path, args, message):
    result = graphtool("check", zoo(tmp_path, names=COMPATIBLE, corrupt=False), *args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"graphtool: error: {message}") and result.stderr.count("\n") == 1


def test_a_missing_directory_among_models_exits_2(tmp_path):
    result = graphtool("inspect", TFLITE_FIXTURES / "float_cnn.tflite", tmp_path / "missing")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"graphtool: error: {tmp_path / 'missing'}: no such file or directory\n"


def test_inspect_a_directory_prints_a_row_per_model_and_exits_1_on_an_unreadable_one(tmp_path):
    root = zoo(tmp_path, names=("float_cnn.tflite", "sparse.tflite"))
    result = graphtool("inspect", root)
    assert result.returncode == 1 and result.stderr == ""
    rows = result.stdout.splitlines()
    assert rows[0].split() == ["model", "format", "size", "nodes", "parameters", "op", "types"]
    assert rows[1].startswith(str(root / "corrupt.tflite")) and "error: " in rows[1]
    assert rows[2].split()[:2] == [str(root / "float_cnn.tflite"), "tflite"]
    assert rows[-1] == "3 models: 2 read, 1 unreadable"
    fine = graphtool("inspect", root / "*n*.tflite", "--json")
    assert fine.returncode == 0, fine.stderr
    (line,) = lines(fine.stdout)
    alone = json.loads(graphtool("inspect", root / "float_cnn.tflite", "--json").stdout)
    assert line == {"path": alone["path"], "format": "tflite", "error": None, "warnings": [], **alone}


def test_one_model_keeps_its_one_object_output(tmp_path):
    model = TFLITE_FIXTURES / "control_flow.tflite"
    result = graphtool("check", model, "--target", "gpu", "--json")
    assert result.returncode == 1 and result.stdout.startswith("{\n")  # indented, as before
    assert set(json.loads(result.stdout)) == {"target", "compatible", "verdict", "partitions", "delegated_ops",
                                              "total_ops", "delegated_macs_share", "findings"}
    text = graphtool("check", model, "--target", "gpu").stdout
    assert text.startswith(f"{model}: partially delegated to gpu")
