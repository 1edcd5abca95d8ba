"""A one-line progress bar on stderr for long runs (no dependency).

Silent for runs shorter than `delay` seconds, and when stderr is not a terminal, unless
asked for explicitly."""
from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 24
REDRAW_SECONDS = 0.1


class Progress:
    """`update(n)` after each step; `close()` ends the line. enabled=None: only on a terminal."""

    def __init__(self, label: str, total: int | None, enabled: bool | None = None,
                 stream: TextIO | None = None, delay: float = 1.0, unit: str = "samples"):
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.delay = delay if enabled is None else 0.0
        self.done = 0
        self.start = time.perf_counter()
        self._drawn_at: float | None = None

    def update(self, count: int) -> None:
        self.done += count
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.start < self.delay:
            return
        if self._drawn_at is not None and now - self._drawn_at < REDRAW_SECONDS:
            return
        self._draw(now)

    def close(self) -> None:
        """Draw the final state (if anything was drawn, or drawing is forced) and end the line."""
        if self.enabled and (self._drawn_at is not None or self.delay == 0.0):
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()

    def clear(self) -> None:
        """Erase the bar, if drawn, so a line printed next starts clean (the next update redraws it)."""
        if self._drawn_at is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn_at = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def line(self, now: float) -> str:
        """The text of the bar at time `now`."""
        elapsed = now - self.start
        if self.total:
            filled = min(WIDTH, WIDTH * self.done // self.total)
            bar = "#" * filled + "." * (WIDTH - filled)
            return f"{self.label} [{bar}] {self.done}/{self.total} {self.unit} {elapsed:.1f} s"
        return f"{self.label} {self.done} {self.unit} {elapsed:.1f} s"

    def _draw(self, now: float) -> None:
        self.stream.write("\r" + self.line(now))
        self.stream.flush()
        self._drawn_at = now


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
