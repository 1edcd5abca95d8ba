"""Reports for people: charts and tables in one self-contained HTML file, a chart as PNG.

    from graphtool.analysis.report import Chart, Series, Table, render_html, render_png, write_report

    chart = Chart("line", "SQNR along the graph", x=["conv1", "conv2", "fc"],
                  series=[Series("accumulated", [41.0, 35.2, 30.1]), Series("this layer", [41.0, 44.9, 50.3])],
                  y_label="SQNR (dB)", highlight=1, highlight_label="first divergence")
    ranking = Chart("bar", "Sensitivity", x=["fc", "conv2"], series=[Series("SQNR drop (dB)", [9.1, 2.3])],
                    horizontal=True)
    table = Table(["layer", "SQNR (dB)"], [["conv1", 41.0], ["conv2", 35.2]], highlight=(1,))
    html = render_html("verify --layers", [chart, ranking], [table], notes=["A: float.tflite"])
    png = render_png(chart)                       # bytes of a PNG image
    write_report("out.html", html)                # atomically; .png files take the bytes

Charts are drawn by matplotlib (the `report` extra), imported on first use, with its Agg
renderer only: no display, no browser. The HTML embeds each chart as inline SVG and its style
as one <style> block: no script, no network, nothing beside the file. Output is deterministic
(no dates, fixed SVG ids), so the same report gives the same bytes.

In a series, None is a gap (a value that does not exist, e.g. an infinite SQNR the caller
chose not to cap). Cells of a table are printed as given: strings as they are, floats with 4
significant digits, None as "-".
"""
from __future__ import annotations

import html
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import GraphtoolError, install_hint
from ..formats import atomic_write

KINDS = ("line", "bar")
WIDTH, HEIGHT = 10.0, 4.5  # inches of a chart (100 dpi: 1000 x 450 pixels)
BAR_ROW = 0.28  # inches per bar of a horizontal bar chart
MAX_TICKS = 40  # x labels shown at most; the rest are thinned out evenly
MAX_LABEL = 28  # characters of an x label; longer ones keep their end ("...conv2/Relu")
HIGHLIGHT_COLOR = "#d62728"
EXTRA = "report"


@dataclass(frozen=True)
class Series:
    """One named sequence of values, one per x label (None: no value there)."""

    name: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class Chart:
    """A line or bar chart: x labels in order, one or more series over them.

    `highlight`: an index into `x` to mark (a dashed line on a line chart, a band behind the
    bars on a bar chart), with `highlight_label` as its legend text. `horizontal`: bars run along x
    (for rankings with long names)."""

    kind: str  # "line" | "bar"
    title: str
    x: Sequence[str]
    series: Sequence[Series]
    y_label: str = ""
    x_label: str = ""
    highlight: int | None = None
    highlight_label: str = ""
    horizontal: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GraphtoolError(f"chart {self.title!r}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        for series in self.series:
            if len(series.values) != len(self.x):
                raise GraphtoolError(f"chart {self.title!r}: series {series.name!r} has {len(series.values)} "
                                     f"values for {len(self.x)} x labels")
        if self.highlight is not None and not 0 <= self.highlight < len(self.x):
            raise GraphtoolError(f"chart {self.title!r}: highlight {self.highlight} is not an index of x")


@dataclass(frozen=True)
class Table:
    """Rows under named columns; `highlight` holds indices of rows to set apart."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    title: str = ""
    highlight: Sequence[int] = field(default_factory=tuple)


# -- drawing -------------------------------------------------------------------------------

def _matplotlib() -> Any:
    """matplotlib, or one line naming the extra that installs it."""
    try:
        import matplotlib
    except ImportError:
        raise GraphtoolError(f"charts need matplotlib: {install_hint(EXTRA)}") from None
    return matplotlib


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else "..." + label[-(MAX_LABEL - 3):]


def _values(series: Series) -> list[float]:
    return [math.nan if v is None else float(v) for v in series.values]


def _figure(chart: Chart) -> Any:
    """The chart drawn on a matplotlib Figure (no pyplot: no global figure state)."""
    from matplotlib.figure import Figure

    count = len(chart.x)
    height = max(HEIGHT, 1.2 + BAR_ROW * count) if chart.kind == "bar" and chart.horizontal else HEIGHT
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = figure.add_subplot()
    positions = list(range(count))
    if chart.kind == "line":
        _draw_lines(axes, chart, positions)
    else:
        _draw_bars(axes, chart, positions)
    axes.set_title(chart.title)
    value_axis, label_axis = (axes.xaxis, axes.yaxis) if chart.kind == "bar" and chart.horizontal \
        else (axes.yaxis, axes.xaxis)
    value_axis.set_label_text(chart.y_label)
    label_axis.set_label_text(chart.x_label)
    _label_ticks(label_axis, chart.x, vertical_labels=not (chart.kind == "bar" and chart.horizontal))
    axes.grid(True, axis="x" if chart.kind == "bar" and chart.horizontal else "y", alpha=0.3)
    if len(chart.series) > 1 or chart.highlight is not None:
        axes.legend(loc="best", fontsize="small")
    return figure


def _draw_lines(axes: Any, chart: Chart, positions: list[int]) -> None:
    for series in chart.series:
        axes.plot(positions, _values(series), marker="o", markersize=3, linewidth=1.5, label=series.name)
    if chart.highlight is not None:
        axes.axvline(chart.highlight, color=HIGHLIGHT_COLOR, linestyle="--", linewidth=1.2,
                     label=chart.highlight_label or chart.x[chart.highlight])
    axes.set_xlim(-0.5, max(len(positions) - 0.5, 0.5))


def _draw_bars(axes: Any, chart: Chart, positions: list[int]) -> None:
    count = max(len(chart.series), 1)
    width = 0.8 / count
    for i, series in enumerate(chart.series):
        offsets = [p - 0.4 + width * (i + 0.5) for p in positions]
        draw = axes.barh if chart.horizontal else axes.bar
        draw(offsets, _values(series), width, label=series.name)
    if chart.highlight is not None:  # a band behind the marked group of bars
        span = axes.axhspan if chart.horizontal else axes.axvspan
        span(chart.highlight - 0.5, chart.highlight + 0.5, color=HIGHLIGHT_COLOR, alpha=0.15, zorder=0,
             label=chart.highlight_label or chart.x[chart.highlight])
    if chart.horizontal:
        axes.invert_yaxis()  # the first label on top, as a ranking reads


def _label_ticks(axis: Any, labels: Sequence[str], vertical_labels: bool) -> None:
    """Every label across (bars grow the chart), along x at most MAX_TICKS, evenly thinned;
    long ones shortened."""
    step = max(1, math.ceil(len(labels) / MAX_TICKS)) if vertical_labels else 1
    shown = list(range(0, len(labels), step))
    axis.set_ticks(shown, [_short(labels[i]) for i in shown], fontsize="x-small" if vertical_labels else "small",
                   rotation=90 if vertical_labels else 0)


def _saved(chart: Chart, fmt: str) -> bytes:
    matplotlib = _matplotlib()
    settings = {"svg.hashsalt": "graphtool", "svg.fonttype": "none"}
    with matplotlib.rc_context(settings):
        buffer = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        _figure(chart).savefig(buffer, format=fmt, dpi=100, metadata=metadata)
    return buffer.getvalue()


def render_svg(chart: Chart) -> str:
    """The chart as an SVG element (no XML declaration: ready to inline in HTML)."""
    text = _saved(chart, "svg").decode("utf-8")
    return text[text.index("<svg"):]


def render_png(chart: Chart) -> bytes:
    """The chart as a PNG image (100 dpi)."""
    return _saved(chart, "png")


# -- the page ------------------------------------------------------------------------------

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
.chart svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child, td.text { text-align: left; }
td.text { overflow-wrap: anywhere; }
tr.highlight td { background: #fde0e0; font-weight: bold; }
ul.notes { color: #444; }
"""


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table_html(table: Table) -> str:
    marked = set(table.highlight)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = []
    for i, row in enumerate(table.rows):
        cells = "".join(f'<td class="text">{html.escape(v)}</td>' if isinstance(v, str)
                        else f"<td>{html.escape(_cell(v))}</td>" for v in row)
        rows.append(f'<tr class="highlight">{cells}</tr>' if i in marked else f"<tr>{cells}</tr>")
    title = f"<h2>{html.escape(table.title)}</h2>\n" if table.title else ""
    return f"{title}<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def render_html(title: str, charts: Sequence[Chart] = (), tables: Sequence[Table] = (),
                notes: Sequence[str] = ()) -> str:
    """One self-contained HTML page: the title, the notes as a list, each chart as inline
    SVG, then each table."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts += [f'<div class="chart">{render_svg(chart)}</div>' for chart in charts]
    parts += [_table_html(table) for table in tables]
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def write_report(path: str | os.PathLike, content: str | bytes) -> None:
    """Write a rendered page (str) or image (bytes) to `path`, atomically."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    atomic_write(os.fspath(path), [data])
