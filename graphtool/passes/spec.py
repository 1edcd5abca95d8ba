"""The Graph Transform Tool's transform strings, parsed exactly as transform_graph does.

    strip_unused_nodes(type=float, shape="1,224,224,3") remove_nodes(op=Identity, op=CheckNumerics)

Names are [A-Za-z0-9_]+, separated by whitespace, each with an optional parameter list.
A value is quoted with double quotes (and may then hold commas and spaces) or bare
([A-Za-z0-9-./_]). A repeated key appends: foo(a=1, a=3, b="1,2,3") gives
{"a": ["1", "3"], "b": ["1,2,3"]}. Nothing is evaluated.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import GraphtoolError

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_BARE_CHARS = _NAME_CHARS | frozenset("-./")


class SpecError(GraphtoolError):
    """A transform string that does not parse."""


@dataclass
class TransformCall:
    """One transform and its parameters, every value a list of strings (keys may repeat)."""

    name: str
    params: dict[str, list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" if v and set(v) <= _BARE_CHARS else f'{k}="{v}"'
                         for k, values in self.params.items() for v in values)
        return f"{self.name}({args})" if args else self.name


def parse(text: str) -> list[TransformCall]:
    """Parse a transform string into calls; SpecError says where it went wrong."""
    return _Parser(text).calls()


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> SpecError:
        return SpecError(f"transforms: {message} at character {self.pos + 1}: "
                         f"{self.text[max(0, self.pos - 20):self.pos + 20]!r}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def word(self, chars: frozenset[str], what: str) -> str:
        start = self.pos
        while self.peek() and self.peek() in chars:
            self.pos += 1
        if self.pos == start:
            raise self.fail(f"expected {what}")
        return self.text[start:self.pos]

    def calls(self) -> list[TransformCall]:
        calls = []
        self.skip_space()
        while self.peek():
            call = TransformCall(self.word(_NAME_CHARS, "a transform name"))
            if self.peek() == "(":
                self.pos += 1
                self.params(call)
            calls.append(call)
            if self.peek() and not self.peek().isspace():
                raise self.fail("expected whitespace between transforms")
            self.skip_space()
        return calls

    def params(self, call: TransformCall) -> None:
        self.skip_space()
        if self.peek() == ")":
            self.pos += 1
            return
        while True:
            self.skip_space()
            key = self.word(_NAME_CHARS, "a parameter name")
            self.skip_space()
            if self.peek() != "=":
                raise self.fail(f"expected '=' after {key!r}")
            self.pos += 1
            self.skip_space()
            call.params.setdefault(key, []).append(self.value())
            self.skip_space()
            if self.peek() == ",":
                self.pos += 1
                continue
            if self.peek() == ")":
                self.pos += 1
                return
            raise self.fail("expected ',' or ')'")

    def value(self) -> str:
        if self.peek() != '"':
            return self.word(_BARE_CHARS, "a value")
        end = self.text.find('"', self.pos + 1)
        if end < 0:
            raise self.fail("unterminated quoted value")
        value = self.text[self.pos + 1:end]
        self.pos = end + 1
        return value
