"""`make bench`: build the missing benchmark models, run every benchmark, write BENCHMARKS.md.

Each benchmark is a module in BENCHMARKS with `run() -> list[dict]`; a row holds
benchmark, mode, graphtool_s, anchor, anchor_s and ratio (anchor_s / graphtool_s), and
optionally graphtool_peak_rss_mb / anchor_peak_rss_mb, graphtool_rss_over_baseline_mb /
anchor_rss_over_baseline_mb (peak minus the RSS after imports; a column when any row of the
table has them) and `columns`, further {header: formatted value} cells in order. A module
may also define `notes(rows) -> str`, markdown printed after its tables. The first paragraph
of its docstring is printed under its first heading. Add a benchmark by appending its module.

    python bench/run.py                # every benchmark; rewrites BENCHMARKS.md
    python bench/run.py bench_batch    # only these; rewrites only their sections of it

Each module's section sits between `<!-- bench: NAME -->` and `<!-- end bench: NAME -->`
lines, which is how a partial run finds it (a section not there yet is appended). Run alone,
a module that defines `build_models()` builds its own models, and no others are built.
"""
from __future__ import annotations

import argparse
import compileall
import datetime
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import bench_batch
import bench_check
import bench_cold_start
import bench_fake_quant
import bench_fold
import bench_inspect
import bench_quantize
import bench_quantize_nodes
import bench_sensitivity
import bench_set_input_shape
import bench_split
import bench_thin_channels
import bench_tflite_io
import bench_verify_layers

import graphtool

BENCHMARKS: list[ModuleType] = [bench_inspect, bench_tflite_io, bench_fold, bench_quantize, bench_quantize_nodes,
                                bench_check, bench_fake_quant, bench_batch, bench_cold_start, bench_split,
                                bench_set_input_shape, bench_verify_layers, bench_thin_channels,
                                bench_sensitivity]
BENCH_DIR = Path(__file__).resolve().parent
OUTPUT = BENCH_DIR.parent / "BENCHMARKS.md"

Row = dict[str, Any]


def ensure_models() -> None:
    """Build missing models in a child process, so this one starts the same either way."""
    subprocess.run([sys.executable, str(BENCH_DIR / "make_models.py")], check=True)


def byte_compile() -> None:
    """Byte-compile graphtool as `pip install` does, so fresh processes measure the installed
    tool, not Python compiling its source (an editable install never writes .pyc files where
    PYTHONDONTWRITEBYTECODE is set; TensorFlow's come compiled from its wheel)."""
    compileall.compile_dir(str(Path(graphtool.__file__).parent), quiet=1)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"Date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "CPU": f"{_cpu_model()} (nproc {cpus})",
            "OS": platform.platform(),
            "Python": platform.python_version(),
            "TensorFlow": _version("tensorflow"),
            "protobuf": _version("protobuf"),
            "graphtool": graphtool.__version__,
            "ai-edge-litert / ai-edge-quantizer": f"{_version('ai-edge-litert')} / {_version('ai-edge-quantizer')}",
            "Load average at start (1/5/15 min)": "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())}


def speedup(ratio: float) -> str:
    """'graphtool is N.N× faster' (or slower, when the ratio is below 1)."""
    if ratio >= 1:
        return f"graphtool is {ratio:.1f}× faster"
    return f"graphtool is {1 / ratio:.1f}× slower"


def seconds(value: float) -> str:
    """Seconds to 3 decimals, or 2 significant digits when that would round to 0.000."""
    return f"{value:.3f}" if value >= 0.0005 else f"{value:.2g}"


def _pair(row: Row, graphtool_key: str, anchor_key: str) -> str:
    """'graphtool / anchor' megabytes, or '–' when the row lacks them."""
    gt, anchor = row.get(graphtool_key), row.get(anchor_key)
    return f"{gt:,.0f} / {anchor:,.0f}" if gt and anchor else "–"


def _rss(row: Row) -> str:
    return _pair(row, "graphtool_peak_rss_mb", "anchor_peak_rss_mb")


def _rss_over_baseline(row: Row) -> str:
    return _pair(row, "graphtool_rss_over_baseline_mb", "anchor_rss_over_baseline_mb")


def _extra_headers(rows: list[Row]) -> list[str]:
    """The headers of the rows' `columns`, in order of first appearance."""
    return list(dict.fromkeys(h for r in rows for h in r.get("columns", {})))


Column = tuple[str, str, Callable[[Row], str]]  # header, markdown alignment, cell


def _columns(rows: list[Row]) -> list[Column]:
    """Every column of a table of `rows`: the fixed ones, then the optional ones they use."""
    columns: list[Column] = [
        ("Mode", "---", lambda r: r["mode"]),
        ("graphtool (s)", "--:", lambda r: seconds(r["graphtool_s"])),
        ("Anchor", "---", lambda r: r["anchor"]),
        ("Anchor (s)", "--:", lambda r: seconds(r["anchor_s"])),
        ("Ratio", "---", lambda r: f"**{speedup(r['ratio'])}**"),
        ("Peak RSS MB (graphtool / anchor)", "--:", _rss)]
    if any("graphtool_rss_over_baseline_mb" in r for r in rows):
        columns.append(("Peak − post-import RSS MB (graphtool / anchor)", "--:", _rss_over_baseline))
    columns += [(header, "---", lambda r, h=header: r.get("columns", {}).get(h, "–"))
                for header in _extra_headers(rows)]
    return columns


def markdown_table(rows: list[Row]) -> str:
    """One benchmark's rows as a markdown table."""
    columns = _columns(rows)
    lines = [[c[0] for c in columns], [c[1] for c in columns]]
    lines += [[cell(row) for _, _, cell in columns] for row in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _by_benchmark(rows: list[Row]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row["benchmark"], []).append(row)
    return groups


def _description(module: ModuleType) -> str:
    """The first paragraph of a benchmark module's docstring."""
    return " ".join((module.__doc__ or "").strip().split("\n\n")[0].split())


def section(module: ModuleType, rows: list[Row], measured: str = "") -> str:
    """The markdown for one benchmark module: a heading and table per benchmark it ran,
    under the first heading `measured` (when it was, if not with the others) and its
    description, and its notes, if any, after the tables."""
    parts = []
    for index, (title, group) in enumerate(_by_benchmark(rows).items()):
        parts += [f"## {title}", ""]
        parts += [measured, ""] if index == 0 and measured else []
        parts += [_description(module), ""] if index == 0 else []
        parts += [markdown_table(group), ""]
    notes = getattr(module, "notes", None)
    if notes is not None:
        parts += [notes(rows), ""]
    start, end = _markers(module)
    return "\n".join([start, *parts, end, ""])


def _markers(module: ModuleType) -> tuple[str, str]:
    """The comment lines around a module's section of BENCHMARKS.md."""
    return f"<!-- bench: {module.__name__} -->", f"<!-- end bench: {module.__name__} -->"


def replace_section(text: str, module: ModuleType, new: str) -> str:
    """`text` (BENCHMARKS.md) with the module's section replaced by `new`, or `new` appended."""
    start, end = (re.escape(marker) for marker in _markers(module))
    pattern = re.compile(rf"^{start}\n.*?^{end}\n\n?", re.S | re.M)
    if pattern.search(text):
        return pattern.sub(lambda _: new, text, count=1)
    return text.rstrip("\n") + "\n\n" + new


def render(results: list[tuple[ModuleType, list[Row]]], host: dict[str, str] | None = None) -> str:
    """The whole BENCHMARKS.md; `host` is machine() as taken before the runs (default: now)."""
    head = ["# Benchmarks", "",
            "Generated by `make bench` (`bench/run.py`); do not edit by hand. Every ratio is "
            "anchor seconds / graphtool seconds, both measured in the same run; models are "
            "built by `bench/make_models.py` into `bench/models/` (not committed); graphtool is "
            "byte-compiled first, as `pip install` leaves it.", "",
            *[f"- **{key}**: {value}" for key, value in (host or machine()).items()], ""]
    return "\n".join(head + [section(module, rows) for module, rows in results])


def main(argv: list[str] | None = None) -> int:
    by_name = {module.__name__: module for module in BENCHMARKS}
    parser = argparse.ArgumentParser(description="Run the benchmarks and write BENCHMARKS.md.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"run only these and rewrite only their sections ({', '.join(by_name)})")
    names = parser.parse_args(argv).names
    unknown = [name for name in names if name not in by_name]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    selected = [by_name[name] for name in names] or BENCHMARKS
    if not names or not all(hasattr(module, "build_models") for module in selected):
        ensure_models()
    byte_compile()
    host = machine()
    results = []
    for module in selected:
        print(f"running {module.__name__} ...", file=sys.stderr, flush=True)
        results.append((module, module.run()))
    text = render(results, host) if not names else _update(results, host)
    OUTPUT.write_text(text)
    print(text)
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


def _update(results: list[tuple[ModuleType, list[Row]]], host: dict[str, str]) -> str:
    """BENCHMARKS.md with only these modules' sections rewritten, each saying when it ran."""
    text = OUTPUT.read_text() if OUTPUT.exists() else render([], host)
    for module, rows in results:
        when = (f"_Run alone (`python bench/run.py {module.__name__}`) on {host['Date']}, load average at "
                f"start {host['Load average at start (1/5/15 min)']}; the machine as above._")
        text = replace_section(text, module, section(module, rows, when))
    return text


if __name__ == "__main__":
    sys.exit(main())
