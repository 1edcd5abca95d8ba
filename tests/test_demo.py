"""`make demo` (demo/run.py): the seed workflow on the committed digits models prints its
table, and the table shows the issue's Done-means (full int8 within 2 points of float
accuracy, gzip size at most a quarter of the float model's)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.tf, pytest.mark.tfmot, pytest.mark.litert, pytest.mark.sklearn]  # demo/run.py's needs
ROOT = Path(__file__).resolve().parent.parent
ROWS = ("float", "pruned", "pruned + stripped", "+ int8 weights", "full int8")
ACCURACY_POINTS = 0.02   # full int8 within 2 points of the float model's test accuracy
GZIP_SHARE = 0.25        # full int8's gzip size at most a quarter of the float model's
SPARSITY = (0.70, 0.80)  # TF-MOT pruned to 75%; weights below 16 elements are not counted
EXACT = 1e-5             # strip_pruning + folding + float conversion keep the pruned model's outputs


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[str, dict[str, dict]]:
    out = tmp_path_factory.mktemp("demo")
    done = subprocess.run([sys.executable, str(ROOT / "demo" / "run.py"), "--out", str(out), "--details", "--json"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == "", f"the demo printed runtime logs or warnings:\n{done.stderr[-3000:]}"
    *text, last = done.stdout.strip().splitlines()
    return "\n".join(text), {row["model"]: row for row in json.loads(last)}


def test_the_table_has_every_row_and_column(demo):
    text, rows = demo
    assert tuple(rows) == ROWS
    header = text.splitlines()[0]
    for column in ("model", "file size", "gzip size", "weight sparsity", "test accuracy", "max diff from float"):
        assert column in header
    for name in ROWS:
        assert any(line.startswith(name + " ") for line in text.splitlines()), name


def test_full_int8_is_within_two_points_of_float_accuracy(demo):
    _, rows = demo
    assert rows["full int8"]["accuracy"] >= rows["float"]["accuracy"] - ACCURACY_POINTS


def test_full_int8_gzip_is_at_most_a_quarter_of_float(demo):
    _, rows = demo
    assert rows["full int8"]["gzip_bytes"] <= GZIP_SHARE * rows["float"]["gzip_bytes"]


def test_pruning_survives_every_step_and_stripping_is_exact(demo):
    _, rows = demo
    assert rows["float"]["sparsity"] < 0.01
    for name in ROWS[1:]:
        assert SPARSITY[0] <= rows[name]["sparsity"] <= SPARSITY[1], name
    assert rows["pruned + stripped"]["accuracy"] == rows["pruned"]["accuracy"]
    assert abs(rows["pruned + stripped"]["max_diff"] - rows["pruned"]["max_diff"]) <= EXACT
    assert rows["pruned + stripped"]["file_bytes"] < rows["pruned"]["file_bytes"] / 4


def test_check_and_verify_report_on_the_int8_models(demo):
    text, _ = demo
    assert "check edgetpu, full int8: compatible" in text
    assert "check gpu, full int8: compatible" in text
    for name in ("pruned_stripped.tflite", "pruned_int8_weights.tflite", "pruned_full_int8.tflite"):
        assert f"verify float vs {name}:" in text
