"""The errors graphtool raises. Everything derives from GraphtoolError."""
from __future__ import annotations

# The distribution on PyPI ("graphtool" there is an unrelated project): what install hints name.
DISTRIBUTION = "graph-transform-tool"


def install_hint(extra: str) -> str:
    """The command that installs an extra: pip install 'graph-transform-tool[tf]'."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


class GraphtoolError(Exception):
    """Base of every error graphtool raises on purpose."""


class FormatError(GraphtoolError):
    """A model file (or bytes) is not a valid model of its format.

    `source` names the file, `where` says where in it (a node, a table, an offset).
    """

    def __init__(self, message: str, source: str | None = None, where: str | None = None):
        self.message = message
        self.source = source
        self.where = where
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [p for p in (self.source, self.where) if p]
        return ": ".join(parts + [self.message])

    def with_source(self, source: str) -> "FormatError":
        """The same error, naming `source` as the file it came from."""
        return type(self)(self.message, source, self.where)


class UnknownFormatError(FormatError):
    """The input is not recognisably any model format graphtool reads."""


class GraphtoolWarning(UserWarning):
    """Something graphtool did that the user may not expect (the command line prints it as
    one line, `graphtool: warning: ...`)."""


class GraphError(GraphtoolError):
    """An IR operation would make the graph inconsistent, or the graph is invalid."""


def one_line(text: str) -> str:
    """`text` as one line: each run of whitespace, line breaks included, one space."""
    return " ".join(text.split())


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a
    one-line error quotes of a runtime's long messages."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
