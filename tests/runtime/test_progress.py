"""The progress bar: counts in the caller's unit, and clears itself for a line printed under it."""
from __future__ import annotations

import io

from graphtool.runtime.progress import Progress


def test_the_bar_counts_in_its_unit_and_clears_before_a_printed_line():
    stream = io.StringIO()
    bar = Progress("checking", 4, enabled=True, stream=stream, unit="models")
    bar.clear()
    assert stream.getvalue() == ""  # nothing drawn, nothing to erase
    bar.update(1)
    assert stream.getvalue().startswith("\rchecking [######..................] 1/4 models")
    bar.clear()
    assert stream.getvalue().endswith("\r\x1b[K")
    bar.update(1)  # drawn again at once after a clear
    assert "2/4 models" in stream.getvalue().rsplit("\r\x1b[K", 1)[1]


def test_samples_stay_the_default_unit():
    bar = Progress("calibrating", 10, enabled=False)
    bar.done = 3
    assert "3/10 samples" in bar.line(bar.start)
