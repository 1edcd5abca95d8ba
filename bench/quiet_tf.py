"""Import TensorFlow without its start-up log noise."""
from __future__ import annotations

import contextlib
import os
import sys
from types import ModuleType
from typing import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null (C++ logging bypasses sys.stderr)."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def import_tensorflow() -> ModuleType:
    """`import tensorflow`, silencing the absl lines TF_CPP_MIN_LOG_LEVEL no longer catches."""
    if "tensorflow" not in sys.modules:
        with _stderr_to_devnull():
            import tensorflow  # noqa: F401
    return sys.modules["tensorflow"]
