"""One TFLite quantization in a fresh process, timed and measured from inside it (for
bench_quantize.py: weights; bench_quantize_nodes.py: weights and activations).

    python bench/quantize_child.py {graphtool,aeq} {dynamic,weight_only,int8,int16} MODEL OUT
                                   [--options K=V,...] [--then PASSES] [--profile N]
                                   [--samples NPZ [--signature KEY]]

graphtool: `graphtool.load`, then `graphtool.transform(graph, "quantize_weights(mode=MODE,
OPTIONS) PASSES")` (one pipeline string, PASSES being further passes such as
`dedupe_buffers`, timed with the quantization as one step) + `graphtool.save`. aeq
(ai-edge-quantizer): `quantizer.Quantizer(MODEL)`, then
`load_quantization_recipe(recipe.dynamic_wi8_afp32())` (or `weight_only_wi8_afp32()`) +
`quantize()` + `export_model`; its progress report (which runs the whole quantization under
`tracemalloc`) and progress bar are turned off, so it is timed doing the work only.

Modes int8 and int16 quantize weights and activations, calibrated on the samples of --samples
(an .npz keyed by the signature's input keys, samples on the first axis): graphtool runs
`quantize_nodes(calibration=SAMPLES,activations=MODE,OPTIONS)` (the samples as arrays, from
Python) then PASSES; aeq loads `static_wi8_ai8()` (`static_wi8_ai16()`), then `calibrate({KEY:
[one feed dict per sample]})` (KEY: --signature, default serving_default) + `quantize(result)`
+ `export_model`. The samples are read into memory before the baseline is taken, so they
weigh on neither tool's peak.

The tool is imported first (for graphtool with its pass registry, which would otherwise
import every transform module inside the first `transform` call); then the RSS after imports
is recorded as the baseline and the kernel's high-water mark reset (as in
tflite_io_child.py); then the load and the (calibrate +) quantize + write are timed
separately. Prints one JSON object: load_s, quantize_s, baseline_rss_mb, peak_rss_mb (the
whole process, imports included), work_peak_rss_mb (the peak from the baseline on) and, for
graphtool, the pipeline (spec), the first pass's stats (stats) and every pass's (pass_stats).
With --profile N the load + quantize + write runs under cProfile and the top N entries by
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

WEIGHT_MODES = ("dynamic", "weight_only")
STATIC_MODES = ("int8", "int16")  # activations too, calibrated on --samples
MODES = WEIGHT_MODES + STATIC_MODES
AEQ_RECIPES = {"dynamic": "dynamic_wi8_afp32", "weight_only": "weight_only_wi8_afp32",
               "int8": "static_wi8_ai8", "int16": "static_wi8_ai16"}
SIGNATURE = "serving_default"

Samples = dict[str, Any]  # calibration samples by signature input key, samples on the first axis
Loader = Callable[[Path], Any]
Quantize = Callable[[Any, Path], dict[str, Any]]  # (loaded, out) -> stats


def pipeline(mode: str, options: str = "", then: str = "") -> str:
    """The graphtool pipeline string: quantize_weights(mode=MODE,OPTIONS), then THEN; for a
    static mode quantize_nodes(calibration=SAMPLES,activations=MODE,OPTIONS), then THEN (the
    samples are given from Python: SAMPLES stands for them)."""
    if mode in STATIC_MODES:
        call = f"quantize_nodes({','.join(['calibration=SAMPLES', 'activations=' + mode, *filter(None, [options])])})"
    else:
        call = f"quantize_weights({','.join(['mode=' + mode, *filter(None, [options])])})"
    return " ".join(filter(None, [call, then.strip()]))


def _calls(mode: str, options: str, then: str, samples: Samples | None) -> str | list:
    """What graphtool.transform runs: the pipeline string, or for a static mode the list whose
    first call carries the samples (options parsed as the pipeline parser would)."""
    if mode not in STATIC_MODES:
        return pipeline(mode, options, then)
    from graphtool.passes import parse

    extra = parse(f"quantize_nodes({options})")[0].params if options else {}
    return [("quantize_nodes", {"calibration": samples, "activations": mode, **extra}), *filter(None, [then])]


def graphtool_tool(mode: str, options: str, then: str = "", samples: Samples | None = None,
                   signature: str = SIGNATURE) -> tuple[Loader, Quantize]:
    """graphtool.load; then the pipeline (quantize_weights or quantize_nodes, then `then`) and
    graphtool.save (an atomic write to the file). The modules of the pipeline's passes (which
    the registry imports on first use) are loaded here with the imports, not in the timed part;
    so are the TFLite schema and operator tables graphtool reads from JSON on first use and the
    flatbuffers library its writer imports on first use (AEQ's flatbuffer classes are Python
    modules, loaded with flatbuffers by its imports), and for a static mode LiteRT's
    interpreter module (AEQ imports it)."""
    import flatbuffers  # noqa: F401  (the library graphtool's writer imports on first use; AEQ's imports load it)

    import graphtool
    from graphtool.formats.tflite import ops, schema

    spec, calls = pipeline(mode, options, then), _calls(mode, options, then, samples)
    for call in graphtool.passes.calls_of(calls):
        graphtool.passes.get(call.name, "tflite")
    schema.load_schema()
    ops.builtin_names()
    if mode in STATIC_MODES:
        from graphtool.runtime import calibrate, litert  # noqa: F401  (imported with the tool, as AEQ's are)

        litert.import_interpreter()

    def quantize(graph: Any, out: Path) -> dict[str, Any]:
        report = graphtool.transform(graph, calls)
        graphtool.save(graph, out)
        return {"spec": spec, "stats": report.passes[0].stats,
                "pass_stats": [{"pass": p.name, "seconds": p.seconds, **p.stats} for p in report.passes]}

    return graphtool.load, quantize


def _feeds(samples: Samples) -> list[dict[str, Any]]:
    """One feed dict per sample (batch of one, views of the arrays), as AEQ's calibrate takes them."""
    count = len(next(iter(samples.values())))
    return [{key: array[index:index + 1] for key, array in samples.items()} for index in range(count)]


def aeq_tool(mode: str, options: str, then: str = "", samples: Samples | None = None,
             signature: str = SIGNATURE) -> tuple[Loader, Quantize]:
    """Quantizer(MODEL) reads and parses the model; then recipe (+ calibrate, for a static
    mode) + quantize + export_model."""
    if options or then:
        raise ValueError("aeq takes no --options or --then")
    from ai_edge_quantizer import quantizer, recipe

    make_recipe = getattr(recipe, AEQ_RECIPES[mode])
    feeds = {signature: _feeds(samples)} if mode in STATIC_MODES else None

    def quantize(qt: Any, out: Path) -> dict[str, Any]:
        qt.load_quantization_recipe(make_recipe())
        calibration = qt.calibrate(feeds) if feeds is not None else None
        result = qt.quantize(calibration, enable_progress_bar=False, enable_progress_report=False)
        result.export_model(str(out), overwrite=True)
        return {"recipe": AEQ_RECIPES[mode]}

    return lambda path: quantizer.Quantizer(str(path)), quantize


Tool = Callable[[str, str, str, "Samples | None", str], tuple[Loader, Quantize]]
TOOLS: dict[str, Tool] = {
    "graphtool": graphtool_tool,
    "aeq": aeq_tool,
}


def read_samples(path: Path | None) -> Samples | None:
    """The arrays of an .npz, read into memory (None without one)."""
    if path is None:
        return None
    import numpy as np

    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def load_quantize(load: Loader, quantize: Quantize, model: Path, out: Path) -> tuple[float, float, dict]:
    """Seconds to load `model` and to quantize it and write it to `out`; the tool's stats."""
    start = time.perf_counter()
    loaded = load(model)
    middle = time.perf_counter()
    stats = quantize(loaded, out)
    return middle - start, time.perf_counter() - middle, stats


def measure(tool: str, mode: str, model: Path, out: Path, options: str = "", then: str = "",
            profile_top: int = 0, samples: Path | None = None, signature: str = SIGNATURE) -> dict[str, Any]:
    """Import `tool` (and read the samples), then time one load + quantize + write and report
    the memory around it."""
    if (mode in STATIC_MODES) != (samples is not None):
        raise ValueError(f"mode {mode} {'needs' if mode in STATIC_MODES else 'takes no'} --samples")
    load, quantize = TOOLS[tool](mode, options, then, read_samples(samples), signature)
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
    parser.add_argument("--options", default="",
                        help="more quantize_weights (quantize_nodes) parameters (graphtool only)")
    parser.add_argument("--then", default="", metavar="PASSES",
                        help="passes to run after the quantization in the same pipeline (graphtool only)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="cProfile the load + quantize + write; print the top N cumulative entries")
    parser.add_argument("--samples", type=Path, metavar="NPZ",
                        help="calibration samples by signature input key (modes int8 and int16)")
    parser.add_argument("--signature", default=SIGNATURE, metavar="KEY", help="the signature AEQ calibrates")
    args = parser.parse_args(argv)
    result = measure(args.tool, args.mode, args.model, args.out, args.options, args.then, args.profile,
                     args.samples, args.signature)
    sys.stdout.flush()
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
