"""Full-integer post-training quantization, graphtool's `quantize_nodes` against
ai-edge-quantizer (AEQ): activations=int8 against AEQ's `static_wi8_ai8` and activations=int16
(16x8) against `static_wi8_ai16`, both tools calibrating on the same samples, on the digits CNN
(the demo's trained model), Keras 3 MobileNetV2s (trained on the digits at 64x64; random
weights at 224x224, logits, and the same model with a softmax) and a ~200 MB MLP — output SQNR,
accuracy, file size, time and peak memory, all measured in one run. Two graphtool rows per
model and mode: its default, `quantize_nodes(calibration=SAMPLES,
activations=M)` (float inputs and outputs, a QUANTIZE and a DEQUANTIZE at the boundary, as the
TFLite converter writes them), and like-for-like, the same followed by
`set_io_types(inputs=M,outputs=M) dedupe_buffers` in one pipeline (integer inputs and outputs,
and the activations sharing one empty buffer, as AEQ's static recipes write them); the criteria
are judged on the like-for-like rows. On the MobileNetV2s a third row, like-for-like with
`rounding=gptq` (error-feedback weight rounding), judged on the 16x8 criterion.

Samples: the digits CNN calibrates on the first CALIBRATION["digits"] images of the demo's
training split (demo/digits.py) and is evaluated on the committed 360-image test split
(fixtures/tflite/digits_test.npz), with top-1 accuracy. The trained MobileNetV2
(make_models.build_mobilenetv2_digits_tflite: the same digits split, resized to 64x64)
calibrates on CALIBRATION["mobilenetv2_digits"] of its training images and is evaluated on its
360-image test split, with top-1 accuracy. The other MobileNetV2 has random weights (nothing
is downloaded) with batch-norm statistics taken from images with natural images' statistics
(make_models.natural_images: a 1/f spectrum, correlated channels, in [-1, 1]), so its
activations and logits follow the input; it calibrates and is evaluated on further such images
(other seeds). The MLP takes standard normal inputs. Calibration and evaluation samples never
overlap; both tools get the same ones.

Time and memory: each run is a fresh `python bench/quantize_child.py TOOL MODE MODEL OUT
--samples NPZ`, which imports the tool and reads the samples into memory, records its RSS (the
post-import baseline), then times the load and the calibrate + quantize + write (to a file)
from inside; graphtool's and AEQ's runs of a model and mode alternate, median of REPEATS runs
for the times, the largest peak of them. Before each run the previous output is deleted and
dirty pages are flushed. AEQ runs with its progress report and bar off.

Quality, in this process: the float model and both outputs run in LiteRT's interpreter
(`ai_edge_litert`, one sample at a time) on the evaluation samples; where a model's input or
output is integer (AEQ's static recipes make them so) the input is quantized with its scale and
zero point and the output dequantized, so all are compared in real values. SQNR = 10·log10(Σ y²
/ Σ (y − ŷ)²) over all outputs, y the float model's.

    python bench/bench_quantize_nodes.py              # the rows, as a plain-text table, and the notes
    python bench/bench_quantize_nodes.py --profile    # cProfile of graphtool's children
"""
from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench_quantize import (AEQ_OPTIONS, Flatbuffer, Job, _db, _met, _op_version, accuracy, child_runs, command_line,
                            criteria_sections, outputs, run_child, sqnr_db, summarise, with_aeq_fields)
from bench_tflite_io import _model, describe
from make_models import MOBILENET_DIGITS_DATA, NATURAL_SOFTMAX, model_path, natural_images

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # demo/
from demo.digits import TEST_SPLIT, digits_split  # noqa: E402

MODES = {"int8": "static_wi8_ai8", "int16": "static_wi8_ai16"}  # graphtool activations -> AEQ recipe
TOOLS = ("graphtool", "aeq")
REPEATS = 5  # the machine may be busy: medians of 5
CALIBRATION_SEED, EVALUATION_SEED = 1, 2  # make_models seeds MobileNetV2's batch-norm statistics with 0
CALIBRATION = {"digits": 256, "mobilenetv2": 64, "mobilenetv2_digits": 256, "mlp": 64}  # samples both tools calibrate on
EVALUATION = {"mobilenetv2": 32, "mlp": 32}  # the digits CNN: its 360-image test split
SQNR_MARGIN_DB = 0.5  # graphtool's SQNR at least AEQ's minus this
TIME_RATIO = 0.5  # graphtool's time at most this times AEQ's
INT16_GAIN_DB = 10.0  # 16x8 over int8, on MobileNetV2
INT16_JUDGED = "mobilenetv2_digits.tflite"  # the trained MobileNetV2: the 16x8 criterion is judged on it
PROFILE_TOP = 20
BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"  # gitignored
TITLE = "TFLite full-integer quantization against ai-edge-quantizer"
# graphtool's rows: variant -> (quantize_nodes options, passes after it in the same pipeline; {mode}: int8 or int16)
DEFAULT, LIKE_FOR_LIKE, GPTQ = "default", "like-for-like", "like-for-like, gptq"
VARIANTS: dict[str, tuple[str, str]] = {
    DEFAULT: ("", ""),  # float inputs and outputs, as the TFLite converter writes them by default
    # integer inputs and outputs, and activations sharing one empty buffer, as AEQ's static recipes write them
    LIKE_FOR_LIKE: ("", "set_io_types(inputs={mode},outputs={mode}) dedupe_buffers"),
    # the same with error-feedback weight rounding (on the MobileNetV2s only: Case.gptq)
    GPTQ: ("rounding=gptq", "set_io_types(inputs={mode},outputs={mode}) dedupe_buffers"),
}
JUDGED = LIKE_FOR_LIKE  # the rows the criteria are judged on
FLOOR_SPEC = "quantize_weights(mode=weight_only,minimum_size=0)"  # the same int8 weights, float activations

Row = dict[str, Any]


# -- models and samples ----------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """A model, the samples both tools calibrate on and those both outputs are evaluated on
    (labels, when the model has them), and whether its SQNR is judged."""
    path: Path
    calibration: np.ndarray
    evaluation: np.ndarray
    labels: np.ndarray | None = None
    judge_sqnr: bool = True
    why_not: str = ""
    gptq: bool = False  # also the GPTQ variant

    def variants(self) -> list[str]:
        return [v for v in VARIANTS if v != GPTQ or self.gptq]


def digits_case() -> Case:
    """The demo's trained digits CNN (softmax out): demo training images, the committed test split."""
    (train, _), _ = digits_split()
    with np.load(TEST_SPLIT) as split:
        images, labels = split["images"], split["labels"]
    return Case(ROOT / "fixtures" / "demo" / "float_cnn.tflite", train[:CALIBRATION["digits"]], images, labels)


def mobilenetv2_cases() -> list[Case]:
    """MobileNetV2 with logits out, and with a softmax after them (its SQNR not judged: 1000
    near-equal probabilities of ~1e-3 lie under int8's fixed 1/256 softmax step)."""
    calibration = natural_images(np.random.default_rng(CALIBRATION_SEED), CALIBRATION["mobilenetv2"])
    evaluation = natural_images(np.random.default_rng(EVALUATION_SEED), EVALUATION["mobilenetv2"])
    logits = Case(_model("mobilenetv2_natural.tflite"), calibration, evaluation, gptq=True)
    softmax = Case(_model(NATURAL_SOFTMAX), calibration, evaluation, judge_sqnr=False,
                   why_not="softmax over 1000 classes of random weights: probabilities near 1e-3, under int8's "
                           "fixed 1/256 output step, so the int8 SQNR measures that step; judged on the logits")
    return [trained_mobilenetv2_case(), logits, softmax]


def trained_mobilenetv2_case() -> Case:
    """The MobileNetV2 trained on the digits at 64x64 (logits out): its training images, its test split."""
    path = _model("mobilenetv2_digits.tflite")
    with np.load(model_path(MOBILENET_DIGITS_DATA)) as data:
        return Case(path, data["calibration"][:CALIBRATION["mobilenetv2_digits"]], data["test"], data["labels"],
                    gptq=True)


def mlp_case() -> Case:
    """The ~200 MB MLP on standard normal inputs."""
    path = _model("dense_200mb.tflite")
    shape = _input_shape(path)

    def draw(seed: int, count: int) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal((count, *shape)).astype(np.float32)

    return Case(path, draw(CALIBRATION_SEED, CALIBRATION["mlp"]), draw(EVALUATION_SEED, EVALUATION["mlp"]))


def cases() -> list[Case]:
    return [digits_case(), *mobilenetv2_cases(), mlp_case()]


def _input_shape(path: Path) -> tuple[int, ...]:
    """The model's (single) input shape without the batch axis."""
    from ai_edge_litert.interpreter import Interpreter

    (source,) = Interpreter(model_path=str(path)).get_input_details()
    return tuple(int(d) for d in source["shape"][1:])


def signature_input(path: Path) -> tuple[str, str]:
    """(signature key, input key) of the model's single signature with a single input."""
    from ai_edge_litert.interpreter import Interpreter

    ((key, signature),) = Interpreter(model_path=str(path)).get_signature_list().items()
    (name,) = signature["inputs"]
    return key, name


def write_samples(case: Case, tmp: Path) -> tuple[Path, str]:
    """The calibration samples as an .npz keyed by the signature's input key (both tools take
    that key), and the signature key."""
    key, name = signature_input(case.path)
    path = tmp / f"calibration-{case.path.stem}.npz"
    np.savez(path, **{name: case.calibration})
    return path, key


# -- quality ---------------------------------------------------------------------------------

class Reference:
    """The float model's outputs on the evaluation samples, compared against each quantized model."""

    def __init__(self, case: Case):
        self.case = case
        self.outputs = outputs(case.path, case.evaluation)
        self.accuracy = accuracy(self.outputs, case.labels) if case.labels is not None else None

    def quality(self, quantized: Path) -> dict[str, float]:
        """SQNR against the float outputs; accuracy where there are labels."""
        actual = outputs(quantized, self.case.evaluation)
        result = {"sqnr": sqnr_db(self.outputs, actual)}
        if self.case.labels is not None:
            result["accuracy"] = accuracy(actual, self.case.labels)
        return result

    def weights_floor(self, tmp: Path) -> float:
        """SQNR of the model with int8 weights (per channel, symmetric, as quantize_nodes
        stores them) and float activations: the most any 16x8 model with those weights can reach."""
        import graphtool

        graph = graphtool.load(self.case.path)
        graphtool.transform(graph, FLOOR_SPEC)
        out = tmp / f"weights-{self.case.path.name}"
        graphtool.save(graph, out)
        return self.quality(out)["sqnr"]


def layout(path: Path) -> dict[str, Any]:
    """What a written model holds: operators, tensors, buffers, the highest op version, the
    input and output types."""
    stored = Flatbuffer(path)
    graph = stored.model.subgraphs[0]
    types = {0: "float32", 9: "int8", 7: "int16"}
    return {"operators": sum(len(sg.operators or []) for sg in stored.model.subgraphs),
            "tensors": sum(len(sg.tensors or []) for sg in stored.model.subgraphs),
            "buffers": stored.buffers, "op_version": _op_version(stored), "min_runtime": stored.min_runtime,
            "io": "/".join(types.get(graph.tensors[i].type, str(graph.tensors[i].type))
                           for i in (graph.inputs[0], graph.outputs[0]))}


# -- rows ------------------------------------------------------------------------------------

def make_row(case: Case, mode: str, variant: str, gt_runs: list[dict], aeq_runs: list[dict],
             outs: dict[str, Path], reference: Reference, floor: float) -> Row:
    """One row: graphtool's runs (of one variant) against AEQ's for a model and mode."""
    gt, aeq = summarise(gt_runs), summarise(aeq_runs)
    spec = gt_runs[-1]["spec"]
    row = {"benchmark": TITLE,
           "mode": f"{describe(case.path)}: `{spec}` ({variant}, {len(case.calibration)} samples, median of "
                   f"{len(gt_runs)})",
           "graphtool_s": gt["seconds"], "anchor": f"AEQ `{MODES[mode]}`, fresh process", "anchor_s": aeq["seconds"],
           "ratio": aeq["seconds"] / gt["seconds"],
           "graphtool_peak_rss_mb": gt["peak_mb"], "anchor_peak_rss_mb": aeq["peak_mb"],
           "graphtool_rss_over_baseline_mb": gt["over_baseline_mb"],
           "anchor_rss_over_baseline_mb": aeq["over_baseline_mb"],
           "model": case.path.name, "quant_mode": mode, "variant": variant, "spec": spec, "gt": gt, "aeq": aeq,
           "judge_sqnr": case.judge_sqnr, "why_not": case.why_not, "weights_floor": floor,
           "bytes": {"float": case.path.stat().st_size, **{tool: outs[tool].stat().st_size for tool in TOOLS},
                     "graphtool_aeq_fields": with_aeq_fields(outs["graphtool"], outs["aeq"])},
           "layout": {tool: layout(outs[tool]) for tool in TOOLS},
           "quality": {tool: reference.quality(outs[tool]) for tool in TOOLS}}
    if reference.accuracy is not None:
        row["float_accuracy"] = reference.accuracy
    row["columns"] = columns(row)
    return row


def columns(row: Row) -> dict[str, str]:
    """The extra table columns of a row."""
    gt, aeq, size, quality = row["gt"], row["aeq"], row["bytes"], row["quality"]
    cells = {"Load + calibrate/quantize/write s (graphtool; AEQ)":
                 f"{gt['load_s']:.3f} + {gt['quantize_s']:.3f}; {aeq['load_s']:.3f} + {aeq['quantize_s']:.3f}",
             "File bytes (float / graphtool / AEQ)": f"{size['float']:,} / {size['graphtool']:,} / {size['aeq']:,}",
             "SQNR dB (graphtool / AEQ)": f"{_db(quality['graphtool']['sqnr'])} / {_db(quality['aeq']['sqnr'])}"
                                          + ("" if row["judge_sqnr"] else " (not judged)")}
    if "float_accuracy" in row:
        cells["Test accuracy (float / graphtool / AEQ)"] = (
            f"{row['float_accuracy']:.2%} / {quality['graphtool']['accuracy']:.2%} / "
            f"{quality['aeq']['accuracy']:.2%}").replace("%", " %")
    if row["quant_mode"] == "int16":
        cells["SQNR dB, int8 weights and float activations"] = _db(row["weights_floor"])
    cells["Input/output types (graphtool; AEQ)"] = "; ".join(row["layout"][tool]["io"] for tool in TOOLS)
    return cells


def measure_case(case: Case, tmp: Path) -> list[Row]:
    """The rows of one model: per mode, each graphtool variant against the same AEQ runs (all alternating)."""
    reference = Reference(case)
    floor = reference.weights_floor(tmp)
    samples, signature = write_samples(case, tmp)
    rows = []
    for mode in MODES:
        outs = {variant: tmp / f"graphtool-{mode}-{variant}-{case.path.name}" for variant in case.variants()}
        outs["aeq"] = tmp / f"aeq-{mode}-{case.path.name}"
        jobs = {variant: Job("graphtool", mode, case.path, outs[variant], VARIANTS[variant][0],
                             VARIANTS[variant][1].format(mode=mode), samples) for variant in case.variants()}
        jobs["aeq"] = Job("aeq", mode, case.path, outs["aeq"], samples=samples, signature=signature)
        runs = child_runs(jobs, REPEATS)
        for variant in case.variants():
            pair = {"graphtool": outs[variant], "aeq": outs["aeq"]}
            rows.append(make_row(case, mode, variant, runs[variant], runs["aeq"], pair, reference, floor))
    return rows


def run() -> list[Row]:
    """Rows: per model, per mode, graphtool's variants against AEQ."""
    build_models()
    OUT_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT_DIR) as tmp:
        return [row for case in cases() for row in measure_case(case, Path(tmp))]


# -- criteria --------------------------------------------------------------------------------

def _sqnr_ok(row: Row) -> bool:
    """graphtool's SQNR at least AEQ's minus SQNR_MARGIN_DB."""
    return row["quality"]["graphtool"]["sqnr"] >= row["quality"]["aeq"]["sqnr"] - SQNR_MARGIN_DB


def _size_ok(row: Row) -> bool:
    return row["bytes"]["graphtool"] <= row["bytes"]["aeq"]


def _time_ok(row: Row) -> bool:
    return row["graphtool_s"] <= TIME_RATIO * row["anchor_s"]


def _memory_ok(row: Row) -> bool:
    return row["graphtool_rss_over_baseline_mb"] <= row["anchor_rss_over_baseline_mb"]


def _sqnr_detail(row: Row) -> str:
    gt, aeq = row["quality"]["graphtool"], row["quality"]["aeq"]
    text = f"{_db(gt['sqnr'])} vs {_db(aeq['sqnr'])} dB, {gt['sqnr'] - aeq['sqnr']:+.2f} dB"
    if "accuracy" in gt:
        text += f"; accuracy {gt['accuracy']:.2%} vs {aeq['accuracy']:.2%} (float {row['float_accuracy']:.2%})"
    return text


def _size_detail(row: Row) -> str:
    gt, aeq, same = row["bytes"]["graphtool"], row["bytes"]["aeq"], row["bytes"]["graphtool_aeq_fields"]
    ours, theirs = row["layout"]["graphtool"], row["layout"]["aeq"]
    text = f"{gt:,} vs {aeq:,} bytes, ratio {gt / aeq:.5f} ({gt - aeq:+,})"
    if same != gt:
        text += (f"; with AEQ's operator versions, {', '.join(AEQ_OPTIONS)} and min_runtime_version graphtool's "
                 f"file is {same:,} bytes ({same - aeq:+,})")
    text += (f"; operators {ours['operators']} vs {theirs['operators']}, tensors {ours['tensors']} vs "
             f"{theirs['tensors']}, buffers {ours['buffers']} vs {theirs['buffers']}, input/output "
             f"{ours['io']} vs {theirs['io']}, highest op version {ours['op_version']} vs {theirs['op_version']}")
    return text


def _time_detail(row: Row) -> str:
    gt, aeq = row["gt"], row["aeq"]
    return (f"{gt['seconds']:.3f} s vs {aeq['seconds']:.3f} s, ratio {gt['seconds'] / aeq['seconds']:.2f} "
            f"(need ≤ {TIME_RATIO}); calibrate + quantize + write alone {gt['quantize_s']:.3f} s vs "
            f"{aeq['quantize_s']:.3f} s")


def _memory_detail(row: Row) -> str:
    gt, aeq = row["graphtool_rss_over_baseline_mb"], row["anchor_rss_over_baseline_mb"]
    return (f"{gt:,.1f} vs {aeq:,.1f} MiB over the post-import baseline, ratio {gt / aeq:.2f}; raw peaks "
            f"{row['graphtool_peak_rss_mb']:,.0f} vs {row['anchor_peak_rss_mb']:,.0f} MiB")


Criterion = tuple[Callable[[Row], bool], Callable[[Row], str]]
CRITERIA: dict[str, Criterion] = {
    f"SQNR ≥ AEQ's − {SQNR_MARGIN_DB} dB": (_sqnr_ok, _sqnr_detail),
    "file ≤ AEQ's": (_size_ok, _size_detail),
    f"time ≤ {TIME_RATIO}× AEQ's": (_time_ok, _time_detail),
    "peak memory ≤ AEQ's": (_memory_ok, _memory_detail)}


def _judged(row: Row, criterion: str) -> bool:
    """Whether `criterion` is judged on `row` (SQNR is not on a degenerate output)."""
    return row["judge_sqnr"] or not criterion.startswith("SQNR")


def row_criteria(row: Row, judged: bool = True) -> str:
    """One row's criteria, met or not (judged) or yes / no (for information), with the figures."""
    parts = []
    for criterion, (check, detail) in CRITERIA.items():
        verdict = _met(check(row), judged) if _judged(row, criterion) else f"not judged, {row['why_not']}"
        parts.append(f"{criterion} — {verdict} ({detail(row)})")
    return f"- `{row['model']}`, {row['quant_mode']}, {row['variant']} (`{row['spec']}`): " + "; ".join(parts)


def tally(rows: list[Row]) -> str:
    """'N of M' per criterion, over the rows where it is judged."""
    counts = []
    for criterion, (check, _) in CRITERIA.items():
        judged = [r for r in rows if _judged(r, criterion)]
        counts.append(f"{criterion} {sum(map(check, judged))} of {len(judged)}")
    return "; ".join(counts)


def int16_gain(rows: list[Row]) -> list[str]:
    """16x8 on each MobileNetV2 and variant: it runs in LiteRT (it was evaluated there) and its
    SQNR over int8 mode's (the same variant: the same rounding in both modes), against the
    int8-weights floor; judged on the trained MobileNetV2's GPTQ rows."""
    lines = []
    for row16 in rows:
        if row16["quant_mode"] != "int16" or not row16["model"].startswith("mobilenetv2"):
            continue
        judged = row16["model"] == INT16_JUDGED and row16["variant"] == GPTQ
        row8 = next(r for r in rows if r["quant_mode"] == "int8" and r["model"] == row16["model"]
                    and r["variant"] == row16["variant"])
        sqnr = {mode: {tool: row["quality"][tool]["sqnr"] for tool in TOOLS}
                for mode, row in (("int8", row8), ("int16", row16))}
        gain = {tool: sqnr["int16"][tool] - sqnr["int8"][tool] for tool in TOOLS}
        verdict = _met(gain["graphtool"] >= INT16_GAIN_DB, judged)
        lines.append(
            f"- 16x8 on `{row16['model']}` ({row16['variant']}){'' if judged else ', not judged'}: runs "
            f"in LiteRT — {_met(True, judged)} (every evaluation sample ran in `ai_edge_litert`); "
            f"SQNR ≥ int8 mode + {INT16_GAIN_DB:.0f} dB — {verdict} (graphtool "
            f"{_db(sqnr['int16']['graphtool'])} vs {_db(sqnr['int8']['graphtool'])} dB, {gain['graphtool']:+.2f} dB; "
            f"AEQ {_db(sqnr['int16']['aeq'])} vs {_db(sqnr['int8']['aeq'])} dB, {gain['aeq']:+.2f} dB; the same "
            f"model with int8 weights rounded to nearest and float activations, `{FLOOR_SPEC}`, "
            f"{_db(row16['weights_floor'])} dB: the most 16x8 with nearest rounding can reach; graphtool's 16x8 is "
            f"{_above_or_under(sqnr['int16']['graphtool'] - row16['weights_floor'])} it)")
    return lines


def _above_or_under(difference: float) -> str:
    return f"{difference:.2f} dB above" if difference > 0 else f"{-difference:.2f} dB under"


def notes(rows: list[Row]) -> str:
    """The issue's criteria, judged on this run's like-for-like rows (markdown); the default
    rows' figures for information."""
    judged = [r for r in rows if r["variant"] == JUDGED]
    other = [r for r in rows if r["variant"] == DEFAULT]
    gptq = [r for r in rows if r["variant"] == GPTQ]
    int16_rows = [r for r in rows if r["variant"] in (JUDGED, GPTQ)]
    lines = [f"Criteria, graphtool against AEQ on the same model, mode and samples (time is load + calibrate "
             f"+ quantize + write, file to file, medians of {REPEATS}; memory is peak − post-import RSS, the largest "
             f"of the runs; RSS \"MB\" are MiB). Calibration samples: digits {CALIBRATION['digits']} training images, "
             f"the trained MobileNetV2 {CALIBRATION['mobilenetv2_digits']} of its training images, the other "
             f"MobileNetV2 {CALIBRATION['mobilenetv2']} natural-statistics images, MLP {CALIBRATION['mlp']} normal "
             f"vectors; evaluation: the 360-image digits test split (at 64x64 for the trained MobileNetV2), "
             f"{EVALUATION['mobilenetv2']} further images, {EVALUATION['mlp']} further vectors.", ""]
    lines += criteria_sections(
        judged, other, f"Judged on the like-for-like rows, `quantize_nodes(...) "
                       f"{VARIANTS[JUDGED][1].format(mode='M')}` (one pipeline, timed as one step): integer "
                       f"inputs and outputs, as AEQ's static recipes write them (quantize_nodes alone keeps them "
                       f"float, with a QUANTIZE after the input and a DEQUANTIZE before the output, as the TFLite "
                       f"converter does; set_io_types removes those two, as the "
                       f"converter's inference_input_type and inference_output_type do), and the activations sharing "
                       f"one empty buffer, as AEQ writes them (graphtool keeps the float model's one per tensor)",
        "For information, not judged: graphtool's defaults, `quantize_nodes(calibration=SAMPLES,activations=M)` "
        "(float inputs and outputs: two operators and two tensors more than AEQ's files; one empty buffer per "
        "activation tensor)", row_criteria, tally)
    if gptq:
        lines += ["", f"For information, not judged on these criteria: the MobileNetV2s with `rounding=gptq` "
                      f"(like-for-like otherwise; error feedback costs a pass over each layer's inputs while "
                      f"calibrating) — the same comparisons hold in: {tally(gptq)}.", "",
                  *[row_criteria(r, False) for r in gptq]]
    lines += ["", f"16x8 mode on MobileNetV2 (judged on the trained MobileNetV2, `{INT16_JUDGED}`, with "
                  f"`rounding=gptq` in both modes; the random-weight model and nearest rounding for information):",
              "", *int16_gain(int16_rows)]
    return "\n".join(lines)


# -- profiling -------------------------------------------------------------------------------

def profile(top: int = PROFILE_TOP, variant: str = JUDGED) -> str:
    """cProfile of graphtool's child (one variant) for each model and mode, top entries by cumulative time."""
    parts = []
    options, then = VARIANTS[variant]
    build_models()
    OUT_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT_DIR) as tmp:
        for case in cases():
            samples, _ = write_samples(case, Path(tmp))
            for mode in MODES:
                job = Job("graphtool", mode, case.path, Path(tmp) / case.path.name, options, then.format(mode=mode),
                          samples)
                result = run_child(job, top)
                parts.append(f"== graphtool {case.path.name} `{result['spec']}`: load {result['load_s']:.3f} s, "
                             f"calibrate + quantize + write {result['quantize_s']:.3f} s (under cProfile)\n"
                             f"{result['stderr']}")
    return "\n".join(parts)


def build_models() -> None:
    """Build the models this benchmark needs, and no others (run alone by run.py)."""
    from make_models import ensure_models

    ensure_models(names=["mobilenetv2_natural.tflite", "mobilenetv2_digits.tflite", "dense_200mb.tflite"])


def main(argv: list[str] | None = None) -> int:
    return command_line(argv, sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
