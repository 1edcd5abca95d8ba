"""One TFLite read + write in a fresh process, timed and measured from inside it
(for bench_tflite_io.py).

    python bench/tflite_io_child.py {graphtool,flatbuffer_utils} MODEL OUT [--profile N]

The tool is imported first; then the RSS after imports is recorded as the baseline and
the kernel's high-water mark reset (/proc/self/clear_refs); then read and write are timed
separately. Prints one JSON object: read_s, write_s, baseline_rss_mb, peak_rss_mb (the
whole process, imports included) and work_peak_rss_mb (the peak from the baseline on).
With --profile N the read + write runs under cProfile and the top N entries by cumulative
time go to stderr (the timings then include the profiler's overhead).
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any, Callable

Reader = Callable[[Path], Any]
Writer = Callable[[Any, Path], None]


def graphtool_tool() -> tuple[Reader, Writer]:
    """graphtool.load, then graphtool.save (serialize, then an atomic write to the file)."""
    import graphtool

    return graphtool.load, graphtool.save


def flatbuffer_utils_tool() -> tuple[Reader, Writer]:
    """flatbuffer_utils.read_model, then write_model (imports TensorFlow)."""
    import tflite_anchor

    return tflite_anchor.read_model, tflite_anchor.write_model


TOOLS: dict[str, Callable[[], tuple[Reader, Writer]]] = {
    "graphtool": graphtool_tool,
    "flatbuffer_utils": flatbuffer_utils_tool,
}


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _reset_peak() -> None:
    """Make VmHWM start again from the current RSS (Linux: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # VmHWM then still covers the imports: work_peak_rss_mb overstates


def read_write(read: Reader, write: Writer, model: Path, out: Path) -> tuple[float, float]:
    """Seconds to read `model` and to write what was read to `out`."""
    start = time.perf_counter()
    loaded = read(model)
    middle = time.perf_counter()
    write(loaded, out)
    return middle - start, time.perf_counter() - middle


def profiled(fn: Callable[[], Any], top: int) -> Any:
    """Run `fn` under cProfile; print the `top` entries by cumulative time to stderr."""
    profile = cProfile.Profile()
    result = profile.runcall(fn)
    pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(top)
    return result


def measure(tool: str, model: Path, out: Path, profile_top: int = 0) -> dict[str, float]:
    """Import `tool`, then time one read + write and report the memory around it."""
    read, write = TOOLS[tool]()
    gc.collect()
    import_peak, baseline = _status_mb("VmHWM"), _status_mb("VmRSS")
    _reset_peak()
    run = lambda: read_write(read, write, model, out)  # noqa: E731
    read_s, write_s = profiled(run, profile_top) if profile_top else run()
    work_peak = _status_mb("VmHWM")
    return {"read_s": read_s, "write_s": write_s, "baseline_rss_mb": baseline,
            "peak_rss_mb": max(import_peak, work_peak), "work_peak_rss_mb": work_peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool", choices=TOOLS)
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="cProfile the read + write; print the top N cumulative entries")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.tool, args.model, args.out, args.profile)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
