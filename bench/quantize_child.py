"""One TFLite weight quantization in a fresh process, timed and measured from inside it
(for bench_quantize.py).

    python bench/quantize_child.py {graphtool,aeq} {dynamic,weight_only} MODEL OUT
                                   [--options K=V,...] [--then PASSES] [--profile N]

graphtool: `graphtool.load`, then `graphtool.transform(graph, "quantize_weights(mode=MODE,
OPTIONS) PASSES")` (one pipeline string, PASSES being further passes such as
`dedupe_buffers`, timed with the quantization as one step) + `graphtool.save`. aeq
(ai-edge-quantizer): `quantizer.Quantizer(MODEL)`, then
`load_quantization_recipe(recipe.dynamic_wi8_afp32())` (or `weight_only_wi8_afp32()`) +
`quantize()` + `export_model`; its progress report (which runs the whole quantization under
`tracemalloc`) and progress bar are turned off, so it is timed doing the work only.

The tool is imported first (for graphtool with its pass registry, which would otherwise
import every transform module inside the first `transform` call); then the RSS after imports
is recorded as the baseline and the kernel's high-water mark reset (as in
tflite_io_child.py); then the load and the quantize + write are timed separately. Prints one
JSON object: load_s, quantize_s, baseline_rss_mb, peak_rss_mb (the whole process, imports
included), work_peak_rss_mb (the peak from the baseline on) and, for graphtool, the pipeline
string (spec), quantize_weights's stats (stats) and every pass's (pass_stats). With
--profile N the load + quantize + write runs under cProfile and the top N entries by
cumulative time go to stderr.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from tflite_io_child import _reset_peak, _status_mb, profiled

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODES = ("dynamic", "weight_only")
AEQ_RECIPES = {"dynamic": "dynamic_wi8_afp32", "weight_only": "weight_only_wi8_afp32"}

Loader = Callable[[Path], Any]
Quantize = Callable[[Any, Path], dict[str, Any]]  # (loaded, out) -> stats


def pipeline(mode: str, options: str = "", then: str = "") -> str:
    """The graphtool pipeline string: quantize_weights(mode=MODE,OPTIONS), then THEN."""
    call = f"quantize_weights({','.join(['mode=' + mode, *filter(None, [options])])})"
    return " ".join(filter(None, [call, then.strip()]))


def graphtool_tool(mode: str, options: str, then: str = "") -> tuple[Loader, Quantize]:
    """graphtool.load; then the pipeline (quantize_weights, then `then`) and graphtool.save
    (an atomic write to the file). The pass registry, which imports every transform module
    on first use, is loaded here with the imports, not in the timed part; so are the TFLite
    schema and operator tables graphtool reads from JSON on first use (AEQ's flatbuffer
    classes are Python modules, loaded by its imports)."""
    import graphtool
    from graphtool.formats.tflite import ops, schema

    graphtool.passes.get("quantize_weights", "tflite")
    schema.load_schema()
    ops.builtin_names()

    spec = pipeline(mode, options, then)

    def quantize(graph: Any, out: Path) -> dict[str, Any]:
        report = graphtool.transform(graph, spec)
        graphtool.save(graph, out)
        return {"spec": spec, "stats": report.passes[0].stats,
                "pass_stats": [{"pass": p.name, "seconds": p.seconds, **p.stats} for p in report.passes]}

    return graphtool.load, quantize


def aeq_tool(mode: str, options: str, then: str = "") -> tuple[Loader, Quantize]:
    """Quantizer(MODEL) reads and parses the model; then recipe + quantize + export_model."""
    if options or then:
        raise ValueError("aeq takes no --options or --then")
    from ai_edge_quantizer import quantizer, recipe

    make_recipe = getattr(recipe, AEQ_RECIPES[mode])

    def quantize(qt: Any, out: Path) -> dict[str, Any]:
        qt.load_quantization_recipe(make_recipe())
        result = qt.quantize(enable_progress_bar=False, enable_progress_report=False)
        result.export_model(str(out), overwrite=True)
        return {"recipe": AEQ_RECIPES[mode]}

    return lambda path: quantizer.Quantizer(str(path)), quantize


TOOLS: dict[str, Callable[[str, str, str], tuple[Loader, Quantize]]] = {
    "graphtool": graphtool_tool,
    "aeq": aeq_tool,
}


def load_quantize(load: Loader, quantize: Quantize, model: Path, out: Path) -> tuple[float, float, dict]:
    """Seconds to load `model` and to quantize it and write it to `out`; the tool's stats."""
    start = time.perf_counter()
    loaded = load(model)
    middle = time.perf_counter()
    stats = quantize(loaded, out)
    return middle - start, time.perf_counter() - middle, stats


def measure(tool: str, mode: str, model: Path, out: Path, options: str = "", then: str = "",
            profile_top: int = 0) -> dict[str, Any]:
    """Import `tool`, then time one load + quantize + write and report the memory around it."""
    load, quantize = TOOLS[tool](mode, options, then)
    gc.collect()
    import_peak, baseline = _status_mb("VmHWM"), _status_mb("VmRSS")
    _reset_peak()
    run = lambda: load_quantize(load, quantize, model, out)  # noqa: E731
    load_s, quantize_s, stats = profiled(run, profile_top) if profile_top else run()
    work_peak = _status_mb("VmHWM")
    return {"load_s": load_s, "quantize_s": quantize_s, "baseline_rss_mb": baseline,
            "peak_rss_mb": max(import_peak, work_peak), "work_peak_rss_mb": work_peak, **stats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool", choices=TOOLS)
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--options", default="", help="more quantize_weights parameters (graphtool only)")
    parser.add_argument("--then", default="", metavar="PASSES",
                        help="passes to run after quantize_weights in the same pipeline (graphtool only)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="cProfile the load + quantize + write; print the top N cumulative entries")
    args = parser.parse_args(argv)
    result = measure(args.tool, args.mode, args.model, args.out, args.options, args.then, args.profile)
    sys.stdout.flush()
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
