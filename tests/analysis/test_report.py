"""Reports for people: charts drawn by matplotlib as PNG and as inline SVG in one self-contained
HTML page. The page is rendered by headless Chromium (a real browser) and the screenshot is
checked for the drawn series; the PNG is decoded as an image."""
from __future__ import annotations

import importlib.util
import io
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from graphtool.analysis.report import (
    Chart,
    Series,
    Table,
    render_html,
    render_png,
    write_report,
)
from graphtool.errors import GraphtoolError

needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="charts need matplotlib (pip install -e '.[test]')")

SERIES_COLOURS = {"accumulated": (0x1F, 0x77, 0xB4), "alone": (0xFF, 0x7F, 0x0E)}  # matplotlib's C0 and C1
COLOUR_TOLERANCE = 40  # per channel: anti-aliasing blends line pixels with the background
MIN_PIXELS = 200  # of a series' colour in the screenshot: a line across the chart, not a stray pixel
WINDOW = (1100, 900)
BROWSER_TIMEOUT = 120  # seconds


def line_chart(**changes) -> Chart:
    fields = {"kind": "line", "title": "SQNR along the graph", "x": [f"layer{i}" for i in range(12)],
              "series": [Series("accumulated", [45.0 - 3 * i for i in range(12)]),
                         Series("this layer", [48.0 - (i % 3) for i in range(12)])],
              "y_label": "SQNR (dB)", "highlight": 4, "highlight_label": "first divergence"}
    fields.update(changes)
    return Chart(**fields)


def page() -> str:
    ranking = Chart("bar", "Sensitivity", x=["conv2", "fc"], series=[Series("SQNR drop (dB)", [9.1, 2.3])],
                    horizontal=True)
    table = Table(["layer", "SQNR (dB)"], [["layer0", 45.0], ["layer1", None]], highlight=(1,))
    return render_html("verify --layers", [line_chart(), ranking], [table], notes=["A: float.tflite"])


def decode(png: bytes) -> np.ndarray:
    from matplotlib.image import imread

    return imread(io.BytesIO(png), format="png")


@needs_matplotlib
def test_png_is_a_valid_image_of_the_chart_size():
    image = decode(render_png(line_chart()))
    assert image.shape[:2] == (450, 1000) and image.shape[2] in (3, 4)
    assert len(np.unique(image.reshape(-1, image.shape[2]), axis=0)) > 10  # something is drawn


@needs_matplotlib
def test_html_is_self_contained_and_deterministic():
    text = page()
    assert text.count("<svg") == 2 and "<table>" in text
    assert "<script" not in text and "<link" not in text and "<img" not in text
    assert re.findall(r"url\((?!#)", text) == []  # clip paths refer to the page itself
    references = re.findall(r'(?:href|src)\s*=\s*"([^"]*)"', text)
    assert all(ref.startswith("#") for ref in references), references  # only to the page itself
    assert text == page() and render_png(line_chart()) == render_png(line_chart())
    assert "<td>-</td>" in text and 'class="highlight"' in text  # None as "-", the marked row


def test_charts_refuse_what_does_not_fit():
    with pytest.raises(GraphtoolError, match="2 values for 12 x labels"):
        line_chart(series=[Series("short", [1.0, 2.0])])
    with pytest.raises(GraphtoolError, match="highlight 12 is not an index"):
        line_chart(highlight=12)
    with pytest.raises(GraphtoolError, match="kind must be one of"):
        line_chart(kind="pie")


def test_missing_matplotlib_is_one_line_saying_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(GraphtoolError, match=r"charts need matplotlib: pip install .*\[report\]"):
        render_png(line_chart())


def test_write_report_writes_text_and_bytes(tmp_path):
    write_report(tmp_path / "r.html", "<p>é</p>")
    write_report(tmp_path / "r.png", b"\x89PNG")
    assert (tmp_path / "r.html").read_bytes() == "<p>é</p>".encode() and (tmp_path / "r.png").read_bytes() == b"\x89PNG"


def screenshot(html: str, tmp_path) -> np.ndarray:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("needs Debian's chromium to render the HTML report (apt-get install chromium; .ci/run does)")
    source, shot = tmp_path / "report.html", tmp_path / "shot.png"
    source.write_text(html, encoding="utf-8")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                    f"--screenshot={shot}", source.as_uri()],
                   check=True, capture_output=True, timeout=BROWSER_TIMEOUT)
    return (decode(shot.read_bytes())[..., :3] * 255).round().astype(int)


def colour_pixels(image: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int(np.sum(np.all(np.abs(image - np.array(colour)) <= COLOUR_TOLERANCE, axis=-1)))


@needs_matplotlib
def test_chromium_draws_the_chart(tmp_path):
    image = screenshot(page(), tmp_path)
    assert image.shape[:2] == (WINDOW[1], WINDOW[0])
    for name, colour in SERIES_COLOURS.items():
        assert colour_pixels(image, colour) >= MIN_PIXELS, name
    blank = screenshot(render_html("verify --layers", [], [Table(["layer"], [["layer0"]])]), tmp_path)
    assert all(colour_pixels(blank, colour) == 0 for colour in SERIES_COLOURS.values())  # no chart, no series
