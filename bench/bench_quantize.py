"""TFLite weight quantization, graphtool's `quantize_weights` against ai-edge-quantizer (AEQ):
mode=dynamic against AEQ's `dynamic_wi8_afp32` and mode=weight_only against
`weight_only_wi8_afp32`, on a small CNN trained on scikit-learn's digits, a Keras 3
MobileNetV2 and a ~200 MB MLP — output SQNR, file size, time and peak memory, all measured
in one run. Two graphtool rows per model and mode: its defaults, `quantize_weights(mode=M)`
(per-channel, minimum_size=1024: small weights stay float, as the TFLite converter leaves
them; one empty buffer per activation tensor, as the input has them), and like-for-like,
`quantize_weights(mode=M,minimum_size=0,rounding=even) dedupe_buffers` (every weight
quantized, as AEQ does; exact halves rounded to even, as AEQ rounds them; the activations
sharing one empty buffer, as AEQ writes them), one pipeline timed as one step; the criteria
are judged on the like-for-like rows.

File size, like for like: graphtool raises operator versions and min_runtime_version to what
the int8 and hybrid kernels need and sets asymmetric_quantize_inputs on hybrid
FULLY_CONNECTED, as the TFLite converter does; AEQ keeps the float model's values. Those
fields cost bytes (an operator code at version 1, or a false flag, is not stored at all), so
each graphtool output is also written again, by graphtool, with AEQ's values of those fields
only. "file no larger" is judged on the file as written; the rewrite's size is reported
beside it, to show which part of a difference those fields are.

Time and memory: each run is a fresh `python bench/quantize_child.py TOOL MODE MODEL OUT`,
which imports the tool, records its RSS (the post-import baseline), then times the load and
the quantize + write (to a file) from inside; the three runs of a model and mode (graphtool
default, graphtool like-for-like, AEQ) alternate, median of REPEATS runs for the times, the
largest peak of them; both graphtool rows are compared with the same AEQ runs. Before each
run the previous output is deleted and dirty pages are flushed. AEQ runs with its progress
report and bar off (the report runs the quantization under `tracemalloc`).

Quality, in this process: the float model and every output run in LiteRT's interpreter
(`ai_edge_litert`, one sample at a time) on SAMPLES seeded random inputs; SQNR = 10·log10(Σ
y² / Σ (y − ŷ)²) over all of their outputs, y the float model's. The digits CNN also runs
its held-out test split (written by make_models.py): SQNR over it and top-1 accuracy. Where
both tools store a weight in int8 with the same scales, the values that differ are counted,
and those lying at an exact half of a step (w / scale = k + ½, computed in float32 as AEQ
does; graphtool's default divides in float64, as the converter does) told apart.

    python bench/bench_quantize.py              # the rows, as a plain-text table, and the notes
    python bench/bench_quantize.py --profile    # cProfile of graphtool's like-for-like child
    python bench/bench_quantize.py --profile --variant default    # ... of its defaults
"""
from __future__ import annotations

import argparse
import functools
import math
import statistics
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, NamedTuple

import numpy as np

from bench_inspect import format_rows
from bench_tflite_io import _model, alternating, child_json, describe, rss_summary
from make_models import DIGITS_TEST, model_path

QUANT_MODELS = ("digits_cnn.tflite", "mobilenetv2.tflite", "dense_200mb.tflite")
RECIPES = {"dynamic": "dynamic_wi8_afp32", "weight_only": "weight_only_wi8_afp32"}
TOOLS = ("graphtool", "aeq")
REPEATS = 5  # the machine may be busy: medians of 5
SAMPLES = 10
SEED = 0
PROFILE_TOP = 15
# graphtool's two rows: (quantize_weights options, passes after it in the same pipeline)
DEFAULT, LIKE_FOR_LIKE = "default", "like-for-like"
VARIANTS: dict[str, tuple[str, str]] = {
    DEFAULT: ("", ""),
    # AEQ's coverage (every weight), rounding (half to even) and layout (one empty buffer
    # for all activations)
    LIKE_FOR_LIKE: ("minimum_size=0,rounding=even", "dedupe_buffers"),
}
JUDGED = LIKE_FOR_LIKE  # the rows the criteria are judged on
TEST_SPLIT_MODEL = "digits_cnn.tflite"  # the model with a real test split (DIGITS_TEST)
BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"  # gitignored
CHILD = BENCH_DIR / "quantize_child.py"
TITLE = "TFLite weight quantization against ai-edge-quantizer"

Row = dict[str, Any]
Draw = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]

# the seeded random inputs of each model: what they are, and how they are drawn
INPUTS: dict[str, tuple[str, Draw]] = {
    "digits_cnn.tflite": ("uniform in [0, 1), the training range", lambda rng, shape: rng.uniform(0, 1, shape)),
    "mobilenetv2.tflite": ("uniform in [−1, 1), MobileNetV2's preprocessed range",
                           lambda rng, shape: rng.uniform(-1, 1, shape)),
    "dense_200mb.tflite": ("standard normal", lambda rng, shape: rng.standard_normal(shape)),
}


# -- fresh-process runs ----------------------------------------------------------------------

class Job(NamedTuple):
    """One child run's arguments: tool, mode, model, output, and optionally graphtool's
    options and further passes, calibration samples (an .npz) and the signature AEQ calibrates."""
    tool: str
    mode: str
    model: Path
    out: Path
    options: str = ""
    then: str = ""
    samples: Path | None = None
    signature: str = ""


def run_child(job: Job, profile_top: int = 0) -> dict[str, Any]:
    """One `quantize_child.py` run: its JSON measurements (its stderr, with --profile)."""
    argv = [sys.executable, str(CHILD), job.tool, job.mode, str(job.model), str(job.out)]
    argv += ["--options", job.options] if job.options else []
    argv += ["--then", job.then] if job.then else []
    argv += ["--samples", str(job.samples)] if job.samples else []
    argv += ["--signature", job.signature] if job.signature else []
    argv += ["--profile", str(profile_top)] if profile_top else []
    return child_json(argv)


def child_runs(jobs: dict[str, Job], repeats: int = REPEATS) -> dict[str, list[dict]]:
    """`repeats` runs of each job, alternating."""
    return alternating({key: (job.out, functools.partial(run_child, job)) for key, job in jobs.items()}, repeats)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the times; the memory of rss_summary; the last run's pass stats."""
    return {"seconds": statistics.median(r["load_s"] + r["quantize_s"] for r in runs),
            "load_s": statistics.median(r["load_s"] for r in runs),
            "quantize_s": statistics.median(r["quantize_s"] for r in runs), **rss_summary(runs),
            "stats": runs[-1].get("stats", {}), "pass_stats": runs[-1].get("pass_stats", [])}


# -- quality ---------------------------------------------------------------------------------

def outputs(path: Path, samples: np.ndarray) -> np.ndarray:
    """The model's (single) output for each sample, run one at a time in LiteRT's interpreter;
    a quantized (integer) input is fed the sample quantized with its scale and zero point,
    and a quantized output read dequantized, so every model is compared in real values."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    results = []
    for sample in samples:
        interpreter.set_tensor(source["index"], _to_input(source, sample[np.newaxis]))
        interpreter.invoke()
        results.append(_from_output(sink, interpreter.get_tensor(sink["index"])[0]))
    return np.stack(results)


def _to_input(detail: dict[str, Any], values: np.ndarray) -> np.ndarray:
    """Real values as the input takes them: round(x / scale) + zero point, clipped, for an
    integer input with a scale; else cast."""
    scale, zero = detail["quantization"]
    dtype = np.dtype(detail["dtype"])
    if dtype.kind not in "iu" or not scale:
        return values.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(values.astype(np.float64) / scale) + zero, info.min, info.max).astype(dtype)


def _from_output(detail: dict[str, Any], values: np.ndarray) -> np.ndarray:
    """An output as real values: (q - zero point) * scale for an integer output with a scale."""
    scale, zero = detail["quantization"]
    if np.dtype(detail["dtype"]).kind not in "iu" or not scale:
        return values.copy()
    return ((values.astype(np.float64) - zero) * scale).astype(np.float32)


def random_samples(model: Path) -> np.ndarray:
    """SAMPLES seeded random inputs for `model`, shaped like its input without the batch."""
    from ai_edge_litert.interpreter import Interpreter

    (source,) = Interpreter(model_path=str(model)).get_input_details()
    _, draw = INPUTS[model.name]
    return draw(np.random.default_rng(SEED), (SAMPLES, *source["shape"][1:])).astype(np.float32)


def sqnr_db(reference: np.ndarray, actual: np.ndarray) -> float:
    """10·log10(signal power / noise power), the reference being the signal (inf if equal)."""
    reference, actual = reference.astype(np.float64), actual.astype(np.float64)
    noise = float(np.sum((reference - actual) ** 2))
    return math.inf if noise == 0 else 10 * math.log10(float(np.sum(reference ** 2)) / noise)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


class Reference:
    """A float model's outputs on its random samples (and on the test split, if it has one),
    computed once and compared against each quantized model."""

    def __init__(self, model: Path):
        self.flatbuffer = Flatbuffer(model)
        self.samples = random_samples(model)
        self.outputs = outputs(model, self.samples)
        self.test = None
        if model.name == TEST_SPLIT_MODEL:
            with np.load(model_path(DIGITS_TEST)) as split:
                self.test = (split["x"], split["y"])
            self.test_outputs = outputs(model, self.test[0])
            self.accuracy = accuracy(self.test_outputs, self.test[1])

    def quality(self, quantized: Path) -> dict[str, float]:
        """SQNR on the random samples; on the test split, SQNR and accuracy too."""
        result = {"sqnr": sqnr_db(self.outputs, outputs(quantized, self.samples))}
        if self.test is not None:
            test_outputs = outputs(quantized, self.test[0])
            result |= {"test_sqnr": sqnr_db(self.test_outputs, test_outputs),
                       "accuracy": accuracy(test_outputs, self.test[1])}
        return result


class Flatbuffer:
    """A .tflite file read with LiteRT's own schema (not graphtool's reader): its constant
    tensors by name, buffer and operator-code counts and min_runtime_version."""

    def __init__(self, path: Path):
        from ai_edge_litert import schema_py_generated as schema

        self.raw = path.read_bytes()
        model = schema.ModelT.InitFromPackedBuf(self.raw, 0)
        self.model = model
        self.tensors = {t.name.decode(): t for sg in model.subgraphs for t in sg.tensors or []}
        self.buffers = len(model.buffers)
        self.empty_buffers = sum(1 for b in model.buffers if self._bytes(b) is None)
        used = {op.opcodeIndex for sg in model.subgraphs for op in sg.operators or []}
        self.operator_codes = len(model.operatorCodes)
        self.unused_operator_codes = self.operator_codes - len(used)
        runtime = [bytes(model.buffers[m.buffer].data).rstrip(b"\0").decode()
                   for m in model.metadata or [] if m.name == b"min_runtime_version"]
        self.min_runtime = runtime[0] if runtime else "–"

    def _bytes(self, buffer: Any) -> bytes | None:
        """A buffer's data, inside the flatbuffer or after it (offset > 1, as AEQ writes
        some), or None when empty."""
        if buffer.offset > 1:
            return self.raw[buffer.offset:buffer.offset + buffer.size]
        return bytes(buffer.data) if buffer.data is not None and len(buffer.data) else None

    def data(self, name: str) -> np.ndarray | None:
        """The constant `name` as stored (None when it is not a constant)."""
        tensor = self.tensors[name]
        raw = self._bytes(self.model.buffers[tensor.buffer])
        if raw is None:
            return None
        dtypes = {0: np.float32, 1: np.float16, 9: np.int8}
        return np.frombuffer(raw, dtypes[tensor.type]).reshape(tensor.shape)

    def weights(self) -> list[str]:
        """Names of the float32 constants of rank ≥ 2 (the weights)."""
        return [name for name, t in self.tensors.items()
                if t.type == 0 and len(t.shape) >= 2 and self.data(name) is not None]

    def dequantized(self, name: str) -> np.ndarray:
        """The constant `name` as float: int8 times its scales (per channel along its axis)."""
        tensor, values = self.tensors[name], self.data(name)
        if tensor.type != 9:
            return values.astype(np.float32)
        q = tensor.quantization
        scale, zero = np.asarray(q.scale, np.float32), np.asarray(q.zeroPoint, np.float32)
        shape = [1] * values.ndim
        if scale.size > 1:
            shape[q.quantizedDimension] = -1
        return (values.astype(np.float32) - zero.reshape(shape)) * scale.reshape(shape)


def _op_version(model: Flatbuffer) -> int:
    """The highest version of any operator code the model's operators use."""
    used = {op.opcodeIndex for sg in model.model.subgraphs for op in sg.operators or []}
    return max(model.model.operatorCodes[i].version for i in used)


def weight_report(float_model: Flatbuffer, quantized: Flatbuffer) -> dict[str, Any]:
    """How many of the float model's weights `quantized` stores in int8, their SQNR as stored
    (all weights together, a float one counting as exact), and its layout figures."""
    signal = noise = 0.0
    count = 0
    for name in float_model.weights():
        reference = float_model.data(name).astype(np.float64)
        actual = quantized.dequantized(name).astype(np.float64)
        count += quantized.tensors[name].type == 9
        signal += float(np.sum(reference ** 2))
        noise += float(np.sum((reference - actual) ** 2))
    return {"weights": len(float_model.weights()), "quantized": count,
            "sqnr": math.inf if noise == 0 else 10 * math.log10(signal / noise),
            "buffers": quantized.buffers, "empty_buffers": quantized.empty_buffers,
            "operator_codes": quantized.operator_codes, "unused_operator_codes": quantized.unused_operator_codes,
            "min_runtime": quantized.min_runtime, "op_version": _op_version(quantized)}


def _ratios(float_model: Flatbuffer, stored: Flatbuffer, name: str) -> np.ndarray:
    """w / scale in float32 (as AEQ divides), the scale broadcast along its axis."""
    q = stored.tensors[name].quantization
    weights = float_model.data(name).astype(np.float32)
    scale = np.asarray(q.scale, np.float32)
    shape = [1] * weights.ndim
    if scale.size > 1:
        shape[q.quantizedDimension] = -1
    return weights / scale.reshape(shape)


def int8_differences(float_model: Flatbuffer, gt: Flatbuffer, aeq: Flatbuffer) -> dict[str, int]:
    """Over the weights both tools store in int8 with the same scales: how many int8 values
    differ, of how many, by at most how much, and how many of those differing lie at an
    exact half of a step (w / scale = k + ½) where graphtool rounded half away from zero and
    AEQ half to even; and how many weights are not compared (not int8 in both, or with
    other scales)."""
    differing = compared = largest = ties = uncompared = 0
    for name in float_model.weights():
        a, b = gt.tensors[name], aeq.tensors[name]
        if a.type != 9 or b.type != 9 or not np.array_equal(a.quantization.scale, b.quantization.scale):
            uncompared += 1
            continue
        ours, theirs = gt.data(name).astype(np.int16), aeq.data(name).astype(np.int16)
        diff = np.abs(ours - theirs)
        differing += int(np.count_nonzero(diff))
        compared += diff.size
        largest = max(largest, int(diff.max(initial=0)))
        where = diff != 0
        if where.any():
            ratio = _ratios(float_model, gt, name)[where]
            away = np.trunc(ratio + np.copysign(np.float32(0.5), ratio))
            at_half = np.abs(ratio) - np.floor(np.abs(ratio)) == 0.5
            ties += int(np.count_nonzero(at_half & (ours[where] == away) & (theirs[where] == np.rint(ratio))))
    return {"differing": differing, "compared": compared, "largest": largest, "ties": ties,
            "uncompared": uncompared}


# -- rows ------------------------------------------------------------------------------------

def _row(mode: str, graphtool_s: float, anchor: str, anchor_s: float, **extra: Any) -> Row:
    return {"benchmark": TITLE, "mode": mode, "graphtool_s": graphtool_s, "anchor": anchor,
            "anchor_s": anchor_s, "ratio": anchor_s / graphtool_s, **extra}


def _db(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:.2f}"


def columns(row: Row) -> dict[str, str]:
    """The extra table columns of a row."""
    gt, aeq, size = row["gt"], row["aeq"], row["bytes"]
    cells = {"Load + quantize + write s (graphtool; AEQ)":
                 f"{gt['load_s']:.3f} + {gt['quantize_s']:.3f}; {aeq['load_s']:.3f} + {aeq['quantize_s']:.3f}",
             "File bytes (float / graphtool / AEQ)": f"{size['float']:,} / {size['graphtool']:,} / {size['aeq']:,}",
             "Weights quantized (graphtool / AEQ, of all)":
                 f"{row['weights']['graphtool']['quantized']} / {row['weights']['aeq']['quantized']} "
                 f"of {row['weights']['aeq']['weights']}",
             "Weight SQNR dB (graphtool / AEQ)":
                 f"{_db(row['weights']['graphtool']['sqnr'])} / {_db(row['weights']['aeq']['sqnr'])}",
             f"SQNR dB, {SAMPLES} random inputs (graphtool / AEQ)":
                 f"{_db(row['quality']['graphtool']['sqnr'])} / {_db(row['quality']['aeq']['sqnr'])}"}
    if "test_sqnr" in row["quality"]["graphtool"]:
        quality = row["quality"]
        cells["SQNR dB, digits test split (graphtool / AEQ)"] = \
            f"{_db(quality['graphtool']['test_sqnr'])} / {_db(quality['aeq']['test_sqnr'])}"
        cells["Test accuracy (float / graphtool / AEQ)"] = \
            (f"{row['float_accuracy']:.2%} / {quality['graphtool']['accuracy']:.2%} / "
             f"{quality['aeq']['accuracy']:.2%}").replace("%", " %")
    cells["min_runtime_version, highest op version (graphtool / AEQ)"] = " / ".join(
        f"{row['weights'][tool]['min_runtime']}, v{row['weights'][tool]['op_version']}" for tool in TOOLS)
    return cells


def make_row(model: Path, mode: str, variant: str, gt_runs: list[dict], aeq_runs: list[dict],
             outs: dict[str, Path], reference: Reference) -> Row:
    """One row: graphtool's runs (of one variant) against AEQ's for a model and mode."""
    gt, aeq = summarise(gt_runs), summarise(aeq_runs)
    spec = gt_runs[-1]["spec"]
    row = _row(f"{describe(model)}: `{spec}` ({variant}, median of {len(gt_runs)})", gt["seconds"],
               f"AEQ `{RECIPES[mode]}`, fresh process", aeq["seconds"],
               graphtool_peak_rss_mb=gt["peak_mb"], anchor_peak_rss_mb=aeq["peak_mb"],
               graphtool_rss_over_baseline_mb=gt["over_baseline_mb"],
               anchor_rss_over_baseline_mb=aeq["over_baseline_mb"],
               model=model.name, quant_mode=mode, variant=variant, spec=spec, gt=gt, aeq=aeq,
               bytes={"float": model.stat().st_size, **{tool: outs[tool].stat().st_size for tool in TOOLS},
                      "graphtool_aeq_fields": with_aeq_fields(outs["graphtool"], outs["aeq"])},
               quality={tool: reference.quality(outs[tool]) for tool in TOOLS})
    stored = {tool: Flatbuffer(outs[tool]) for tool in TOOLS}
    row["weights"] = {tool: weight_report(reference.flatbuffer, stored[tool]) for tool in TOOLS}
    row["int8_differences"] = int8_differences(reference.flatbuffer, stored["graphtool"], stored["aeq"])
    row["float_versions"] = (reference.flatbuffer.min_runtime, _op_version(reference.flatbuffer))
    if reference.test is not None:
        row["float_accuracy"] = reference.accuracy
    row["columns"] = columns(row)
    return row


def _too_small(runs: list[dict]) -> int:
    """Weights graphtool left float for being under minimum_size (its pass's stats)."""
    return int(runs[-1].get("stats", {}).get("skipped", {}).get("too small", 0))


def measure_model(name: str, tmp: Path) -> list[Row]:
    """The rows of one model: per mode, each graphtool variant against the same AEQ runs (the
    three alternating)."""
    model = _model(name)
    reference = Reference(model)
    rows = []
    for mode in RECIPES:
        outs = {variant: tmp / f"graphtool-{mode}-{variant}-{name}" for variant in VARIANTS}
        outs["aeq"] = tmp / f"aeq-{mode}-{name}"
        jobs = {variant: Job("graphtool", mode, model, outs[variant], options, then)
                for variant, (options, then) in VARIANTS.items()}
        jobs["aeq"] = Job("aeq", mode, model, outs["aeq"])
        runs = child_runs(jobs)
        for variant in VARIANTS:
            pair = {"graphtool": outs[variant], "aeq": outs["aeq"]}
            rows.append(make_row(model, mode, variant, runs[variant], runs["aeq"], pair, reference))
    return rows


def run() -> list[Row]:
    """Rows: per model, per mode, graphtool's default and like-for-like runs against AEQ."""
    OUT_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT_DIR) as tmp:
        return [row for name in QUANT_MODELS for row in measure_model(name, Path(tmp))]


# -- criteria --------------------------------------------------------------------------------

def _met(ok: bool, judged: bool = True) -> str:
    if judged:
        return "**met**" if ok else "**not met**"
    return "yes" if ok else "no"


def _sqnr_keys(row: Row) -> list[str]:
    return [k for k in ("sqnr", "test_sqnr") if k in row["quality"]["graphtool"]]


def _sqnr_ok(row: Row) -> bool:
    """graphtool's SQNR at least AEQ's on every input set, as rounded in the table."""
    gt, aeq = row["quality"]["graphtool"], row["quality"]["aeq"]
    return all(round(gt[k], 2) >= round(aeq[k], 2) for k in _sqnr_keys(row))


def _size_ok(row: Row) -> bool:
    return row["bytes"]["graphtool"] <= row["bytes"]["aeq"]


def _size_alike_ok(row: Row) -> bool:
    """No larger once graphtool's file carries AEQ's operator versions and flags (with_aeq_fields)."""
    return row["bytes"]["graphtool_aeq_fields"] <= row["bytes"]["aeq"]


def _time_ok(row: Row) -> bool:
    return row["graphtool_s"] <= row["anchor_s"]


def _memory_ok(row: Row) -> bool:
    return row["graphtool_rss_over_baseline_mb"] <= row["anchor_rss_over_baseline_mb"]


CRITERIA: dict[str, Callable[[Row], bool]] = {
    "SQNR at least as good": _sqnr_ok, "file no larger": _size_ok,
    "time no worse": _time_ok, "peak memory no worse": _memory_ok}


def _all_ties(row: Row) -> bool:
    """Every int8 value that differs from AEQ's lies at an exact half of a step (and there are some)."""
    diff = row["int8_differences"]
    return 0 < diff["differing"] == diff["ties"]


def _sqnr_detail(row: Row) -> str:
    gt, aeq = row["quality"]["graphtool"], row["quality"]["aeq"]
    text = f"{_db(gt['sqnr'])} vs {_db(aeq['sqnr'])} dB"
    if "test_sqnr" in gt:
        text += (f"; test split {_db(gt['test_sqnr'])} vs {_db(aeq['test_sqnr'])} dB, accuracy "
                 f"{gt['accuracy']:.2%} vs {aeq['accuracy']:.2%}")
    gt_w, aeq_w = row["weights"]["graphtool"]["sqnr"], row["weights"]["aeq"]["sqnr"]
    text += f"; weights {_db(gt_w)} vs {_db(aeq_w)} dB"
    diff = row["int8_differences"]
    if diff["compared"]:
        text += (f"; where both store int8 with the same scales, {diff['differing']:,} of "
                 f"{diff['compared']:,} values differ"
                 + (f", by at most {diff['largest']}" if diff["differing"] else ""))
        if diff["differing"]:
            text += (", all at exact halves of a step" if _all_ties(row)
                     else f", {diff['ties']:,} of them at exact halves of a step")
    if not _sqnr_ok(row) and round(gt_w, 2) >= round(aeq_w, 2):
        text += (": graphtool's stored weights are at least as close to the float ones (to 0.01 dB), "
                 "so the output gap comes at run time, from how LiteRT's kernels respond to the "
                 "weights that differ")
    return text


def _size_detail(row: Row) -> str:
    gt, aeq, same = row["bytes"]["graphtool"], row["bytes"]["aeq"], row["bytes"]["graphtool_aeq_fields"]
    text = f"{gt:,} vs {aeq:,} bytes, {gt - aeq:+,}"
    if same != gt:
        text += (f"; with AEQ's operator versions, {', '.join(AEQ_OPTIONS)} and min_runtime_version "
                 f"graphtool's file is {same:,} bytes, {same - aeq:+,}")
    small = _too_small([{"stats": row["gt"]["stats"]}])
    if small:
        text += f"; graphtool left {small} weight{'s' if small > 1 else ''} under minimum_size float"
    layout = {tool: row["weights"][tool] for tool in TOOLS}
    text += (f"; buffers {layout['graphtool']['buffers']} vs {layout['aeq']['buffers']} "
             f"({layout['graphtool']['empty_buffers']} vs {layout['aeq']['empty_buffers']} empty)")
    if layout["graphtool"]["unused_operator_codes"] or layout["aeq"]["unused_operator_codes"]:
        text += (f"; unused operator codes {layout['graphtool']['unused_operator_codes']} vs "
                 f"{layout['aeq']['unused_operator_codes']}")
    return text


def _time_detail(row: Row) -> str:
    gt, aeq = row["gt"], row["aeq"]
    return (f"{gt['seconds']:.3f} s vs {aeq['seconds']:.3f} s; quantize + write alone "
            f"{gt['quantize_s']:.3f} s vs {aeq['quantize_s']:.3f} s")


def _memory_detail(row: Row) -> str:
    return (f"{row['graphtool_rss_over_baseline_mb']:,.1f} vs {row['anchor_rss_over_baseline_mb']:,.1f} MiB "
            f"over the post-import baseline; raw peaks {row['graphtool_peak_rss_mb']:,.0f} vs "
            f"{row['anchor_peak_rss_mb']:,.0f} MiB")


DETAILS: dict[str, Callable[[Row], str]] = {
    "SQNR at least as good": _sqnr_detail, "file no larger": _size_detail,
    "time no worse": _time_detail, "peak memory no worse": _memory_detail}


def _label(row: Row) -> str:
    return f"`{row['model']}`, {row['quant_mode']}, {row['variant']} (`{row['spec']}`)"


def row_criteria(row: Row, judged: bool = True) -> str:
    """One row's four criteria, met or not (judged) or yes / no (for information), with the figures."""
    parts = [f"{criterion} — {_met(check(row), judged)} ({DETAILS[criterion](row)})"
             for criterion, check in CRITERIA.items()]
    return f"- {_label(row)}: " + "; ".join(parts)


def tally(rows: list[Row]) -> str:
    """'met in N of M' per criterion, over the rows given (file size also with the version
    fields counted alike)."""
    counts = {criterion: f"{sum(map(check, rows))} of {len(rows)}" for criterion, check in CRITERIA.items()}
    counts["file no larger"] += (f" as written, {sum(map(_size_alike_ok, rows))} of {len(rows)} with AEQ's "
                                 f"operator versions and flags")
    return "; ".join(f"{criterion} {count}" for criterion, count in counts.items())


def notes(rows: list[Row]) -> str:
    """The requirement's criteria, judged on this run's like-for-like rows (markdown); the
    default rows' figures for information."""
    judged = [r for r in rows if r["variant"] == JUDGED]
    other = [r for r in rows if r["variant"] != JUDGED]
    options, then = VARIANTS[JUDGED]
    lines = ["Criteria, graphtool against AEQ on the same model and mode (SQNR compared as rounded in "
             "the table, on every input set the model has; time is load + quantize + write, file to "
             "file, medians; memory is peak − post-import RSS, the largest of the runs; RSS \"MB\" are "
             "MiB). Random inputs: " + "; ".join(f"`{name}` {what}" for name, (what, _) in INPUTS.items()) + ".",
             ""]
    lines += criteria_sections(
        judged, other, f"Judged on the like-for-like rows, `quantize_weights(mode=M,{options}) {then}` (every weight "
                       f"quantized, as AEQ does; exact halves rounded to even, as AEQ rounds them; activations "
                       f"sharing one empty buffer, as AEQ writes them)",
        "For information, not judged: graphtool's defaults, `quantize_weights(mode=M)` (minimum_size=1024 leaves "
        "small weights float, as the TFLite converter does; one empty buffer per activation tensor, as the input "
        "has)", row_criteria, tally)
    lines += ["", versions_note(rows), "", FIELDS_NOTE]
    return "\n".join(lines)


def criteria_sections(judged: list[Row], other: list[Row], judged_intro: str, other_intro: str,
                      row_criteria: Callable[[Row, bool], str], tally: Callable[[list[Row]], str]) -> list[str]:
    """Markdown lines: `judged_intro` with the tally of the judged rows, each judged row's
    criteria; then, if there are other rows, the same for information under `other_intro`."""
    lines = [f"{judged_intro} — met in: {tally(judged)}.", "", *[row_criteria(r, True) for r in judged]]
    if other:
        lines += ["", f"{other_intro} — the same comparisons hold in: {tally(other)}.", "",
                  *[row_criteria(r, False) for r in other]]
    return lines


FIELDS_NOTE = (
    "File sizes with AEQ's fields: each graphtool output read by graphtool, its operators given the "
    "versions and the options AEQ_OPTIONS of AEQ's output for the same operator and its "
    "min_runtime_version metadata AEQ's, and written again (bench_quantize.with_aeq_fields). Those are "
    "the only fields changed; the weights, scales and layout are graphtool's.")
# operator options graphtool sets as the TFLite converter does, where AEQ leaves the float model's (or the default)
AEQ_OPTIONS = ("asymmetric_quantize_inputs", "quantized_bias_type")


def with_aeq_fields(graphtool_out: Path, aeq_out: Path) -> int:
    """Size of graphtool's output written again with AEQ's operator versions, options
    AEQ_OPTIONS and min_runtime_version (everything else graphtool's)."""
    import graphtool

    ours, theirs = graphtool.load(graphtool_out.read_bytes()), graphtool.load(aeq_out.read_bytes())
    their_nodes = [n for g in [theirs, *theirs.subgraphs] for n in g if "version" in n.meta]
    version = {n.op: n.meta["version"] for n in their_nodes}  # one operator code per op in AEQ's output
    options = {(n.op, name): n.attrs[name] for n in their_nodes for name in AEQ_OPTIONS if name in n.attrs}
    for graph in [ours, *ours.subgraphs]:
        for node in graph:
            if node.op in version and "version" in node.meta:
                node.meta["version"] = version[node.op]
            for name in AEQ_OPTIONS:
                if (node.op, name) in options and name in node.attrs:
                    node.attrs[name] = options[node.op, name]
    runtime = (theirs.meta.get("metadata") or {}).get("min_runtime_version")
    if runtime is not None and "min_runtime_version" in (ours.meta.get("metadata") or {}):
        ours.meta["metadata"]["min_runtime_version"] = runtime
    return len(graphtool.formats.tflite.write(ours))


def versions_note(rows: list[Row]) -> str:
    """Which outputs keep the float model's min_runtime_version and operator versions."""
    def kept(row: Row, tool: str) -> bool:
        stored = row["weights"][tool]
        return (stored["min_runtime"], stored["op_version"]) == row["float_versions"]

    counts = {tool: sum(kept(r, tool) for r in rows) for tool in TOOLS}
    return (f"min_runtime_version metadata and operator versions: AEQ's output keeps the float "
            f"model's in {counts['aeq']} of {len(rows)} rows, graphtool's in {counts['graphtool']} "
            f"(graphtool raises them to what the int8 and hybrid kernels need, after TensorFlow's "
            f"op_version.cc and runtime_version.cc, so a runtime too old for those kernels refuses the "
            f"model when it loads it).")


# -- profiling -------------------------------------------------------------------------------

def profile(top: int = PROFILE_TOP, variant: str = JUDGED) -> str:
    """cProfile of graphtool's child (one variant) for each model and mode, top entries by
    cumulative time."""
    parts = []
    options, then = VARIANTS[variant]
    OUT_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT_DIR) as tmp:
        for name in QUANT_MODELS:
            for mode in RECIPES:
                result = run_child(Job("graphtool", mode, _model(name), Path(tmp) / name, options, then), top)
                parts.append(f"== graphtool {name} `{result['spec']}`: load {result['load_s']:.3f} s, quantize + "
                             f"write {result['quantize_s']:.3f} s (under cProfile)\n{result['stderr']}")
    return "\n".join(parts)


def command_line(argv: list[str] | None, module: ModuleType) -> int:
    """A quantization benchmark's command line (this module's, bench_quantize_nodes'): run it
    and print its rows, their columns and its notes, or with --profile cProfile graphtool's
    children (one of its VARIANTS)."""
    parser = argparse.ArgumentParser(description=module.TITLE)
    parser.add_argument("--profile", action="store_true", help="cProfile graphtool's children instead")
    parser.add_argument("--variant", choices=module.VARIANTS, default=module.JUDGED,
                        help="which graphtool run to profile")
    args = parser.parse_args(argv)
    if args.profile:
        print(module.profile(variant=args.variant))
        return 0
    rows = module.run()
    print(format_rows(rows), end="\n\n")
    print("\n".join(f"{r['mode']}: {r['columns']}" for r in rows), end="\n\n")
    print(module.notes(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    return command_line(argv, sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
