"""The TensorFlow anchors for TFLite models: `tensorflow.lite.tools.flatbuffer_utils`
(read_model + write_model) and `tf.lite.experimental.Analyzer`.

    python bench/tflite_anchor.py MODEL.tflite     # prints the Analyzer report (the cold run)
"""
from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

from quiet_tf import import_tensorflow

tf = import_tensorflow()
from tensorflow.lite.tools import flatbuffer_utils  # noqa: E402  (after the quiet import)

OP_LINE = re.compile(r"^\s+Op#\d+ ", re.MULTILINE)


def read_model(path: str | Path) -> object:
    """flatbuffer_utils.read_model: the file as a ModelT object tree."""
    return flatbuffer_utils.read_model(str(path))


def write_model(model: object, out: str | Path) -> None:
    """flatbuffer_utils.write_model: pack the object tree and write it to `out`."""
    flatbuffer_utils.write_model(model, str(out))


def analyze(path: str | Path) -> str:
    """The Analyzer's report for the model at `path` (it prints; this captures it)."""
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        tf.lite.experimental.Analyzer.analyze(model_path=str(path), gpu_compatibility=False)
    return report.getvalue()


def count_ops(report: str) -> int:
    """Operators listed in an Analyzer report (one `Op#N` line each, over all subgraphs)."""
    return len(OP_LINE.findall(report))


if __name__ == "__main__":
    sys.stdout.write(analyze(sys.argv[1]))
