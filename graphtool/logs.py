"""The runtimes' own log lines (TensorFlow's and LiteRT's C++ logging: oneDNN, CUDA stubs,
CPU features, XNNPACK...) are not graphtool's output: they are dropped unless asked for
(`graphtool -v`, or show_runtime_logs()).

Native code writes them to file descriptor 2 whatever Python does with sys.stderr, and
TensorFlow 2.21 writes some before its log level is read, so the code that imports or runs
a runtime does so inside `quiet_runtime()`: what reaches descriptor 2 meanwhile is held,
and only the lines that are not runtime log lines (a Python warning, say) are passed on.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from functools import wraps
from typing import Callable, Iterator, TypeVar

F = TypeVar("F", bound=Callable)

# absl's format (I1206 23:45:07.123 17025 port.cc:153] ...), TFLite's "INFO:"/"WARNING:" lines,
# and the second line of TensorFlow's CPU-feature notice.
RUNTIME_LINE = re.compile(rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] |INFO: |WARNING: |"
                          rb"To enable the following instructions: .* rebuild TensorFlow with)")
PYTHON_LOGGERS = ("tensorflow", "absl", "h5py")

_show = os.environ.get("GRAPHTOOL_RUNTIME_LOGS", "") not in ("", "0")


def show_runtime_logs(show: bool = True) -> None:
    """Let the runtimes' log lines through (or drop them again)."""
    global _show
    _show = show
    level = logging.NOTSET if show else logging.ERROR
    for name in PYTHON_LOGGERS:
        logging.getLogger(name).setLevel(level)


def showing() -> bool:
    return _show


def prepare_tensorflow() -> None:
    """Before TensorFlow is imported: its C++ log threshold (a user's own setting wins) and,
    unless shown, its Python loggers at ERROR."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if _show else "3")
    if not _show:
        for name in PYTHON_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def quiet_runtime() -> Iterator[None]:
    """Run native runtime code with its log lines on descriptor 2 dropped (unless shown)."""
    if _show or not _has_descriptor_2():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            passed_on = [line for line in held.read().splitlines(keepends=True) if not RUNTIME_LINE.match(line)]
            if passed_on:
                with os.fdopen(os.dup(2), "wb") as stream:
                    stream.write(b"".join(passed_on))


def quietly(function: F) -> F:
    """`function` run inside quiet_runtime()."""
    @wraps(function)
    def quiet(*args, **kwargs):
        with quiet_runtime():
            return function(*args, **kwargs)
    return quiet  # type: ignore[return-value]


def _has_descriptor_2() -> bool:
    try:
        os.fstat(2)
    except OSError:
        return False
    return True
