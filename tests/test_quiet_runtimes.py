"""The runtimes' own log lines (oneDNN, CUDA stubs, absl, XNNPACK) are not graphtool's output:
commands that load TensorFlow or LiteRT print none by default, and show them with -v."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from graphtool import logs

from .conftest import FIXTURES, GRAPHDEF_FIXTURES, TFLITE_FIXTURES

NOISE = ("I0000", "W0000", "E0000", "oneDNN", "cudart", "absl::", "XNNPACK delegate", "cpu_feature_guard")


def graphtool(*args: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GRAPHTOOL_RUNTIME_LOGS")}
    return subprocess.run([sys.executable, "-m", "graphtool", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def noise(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(word in line for word in NOISE)]


CNN_PB = GRAPHDEF_FIXTURES / "keras2_cnn.pb"
CNN_TFLITE = TFLITE_FIXTURES / "float_cnn.tflite"

COMMANDS = {
    "verify GraphDefs (TensorFlow)": (pytest.mark.tf, ("verify", CNN_PB, CNN_PB)),
    "verify TFLite (LiteRT)": (pytest.mark.litert, ("verify", CNN_TFLITE, CNN_TFLITE)),
    "inspect a SavedModel": (pytest.mark.tf, ("inspect", FIXTURES / "demo" / "pruned_cnn_savedmodel")),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(case, marks=mark) for case, (mark, _) in COMMANDS.items()])
def test_runtime_commands_print_no_runtime_logs(case):
    result = graphtool(*COMMANDS[case][1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert noise(result.stderr) == [], result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(case, marks=mark) for case, (mark, _) in COMMANDS.items()])
def test_minus_v_shows_them(case):
    """The logs exist and are held back, not lost: -v lets them through."""
    result = graphtool("-v", *COMMANDS[case][1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert noise(result.stderr), "no runtime log line with -v: nothing to hide, and this test proves nothing"


@pytest.mark.slow
@pytest.mark.tf
def test_transform_with_tensorflow_is_quiet(tmp_path):
    result = graphtool("transform", CNN_PB, tmp_path / "out.pb", "--transforms", "add_default_attributes")
    assert result.returncode == 0, result.stderr[-2000:]
    assert noise(result.stderr) == [], result.stderr


def test_quiet_runtime_drops_log_lines_and_passes_on_the_rest(capfd, monkeypatch):
    monkeypatch.setattr(logs, "_show", False)
    with logs.quiet_runtime():
        os.write(2, b"I0000 00:00:1796603149.695911   18510 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"a Python warning the user should see\n")
    assert capfd.readouterr().err == "a Python warning the user should see\n"


def test_showing_lets_everything_through(capfd, monkeypatch):
    monkeypatch.setattr(logs, "_show", True)
    with logs.quiet_runtime():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert capfd.readouterr().err == "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
