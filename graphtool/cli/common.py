"""What several commands share: errors that name the file they are about, and loading a
model the way a command that runs once does."""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from ..errors import GraphtoolError

if TYPE_CHECKING:
    from ..ir import Graph


class UsageError(GraphtoolError):
    """The command line itself is wrong."""


def about(path: str, exc: GraphtoolError) -> GraphtoolError:
    """`exc` as an error that starts with the file it is about (unchanged if it already does)."""
    if str(exc).startswith(f"{path}:"):
        return exc
    return GraphtoolError(f"{path}: {exc}")


@contextmanager
def errors_about(path: str) -> Iterator[None]:
    """Make every GraphtoolError raised inside name `path` first."""
    try:
        yield
    except GraphtoolError as exc:
        named = about(path, exc)
        if named is exc:
            raise
        raise named from exc


def load_model(path: str) -> Graph:
    """formats.load for a command. A command runs once and exits, so what its imports made
    lives until then: gc.freeze() first tells the collector to leave those objects alone. That
    spares a full collection rescanning every imported module while the model's objects are
    made (~15 ms, half of reading a few-MB .tflite), and another as the interpreter exits
    (~30 ms). Only the first call freezes: a process that runs many commands (tests, the fuzz
    workers) must have the garbage of each one collected, and freezing again would move the
    last command's uncollected cycles out of the collector's reach for good."""
    from .. import formats

    if not gc.get_freeze_count():
        gc.freeze()
    return formats.load(path)
