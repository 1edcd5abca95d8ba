"""What several commands share: errors that name the file they are about."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ..errors import GraphtoolError


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
