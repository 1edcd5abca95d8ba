"""sensitivity: a transform restricted to one layer (only=) and to all layers but one (keep=),
every variant run in LiteRT (TensorFlow for a GraphDef), layers ranked by the output error each
causes. A layer broken on purpose (weights int8 cannot hold: a few large values among small ones) ranks first; the
SQNRs agree with ones computed here from LiteRT's own outputs; the same inputs give the same
bytes (JSON, HTML); bad requests exit 2 with one line."""
from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

import graphtool
from graphtool.analysis.sensitivity import SensitivityReport, sensitivity
from graphtool.cli import sensitivity_cmd
from graphtool.errors import GraphtoolError
from graphtool.formats import tflite

from ..conftest import GRAPHDEF_FIXTURES, TFLITE_FIXTURES, run_litert
from ..passes.tflite.mixed_models import fc_stack, samples

pytestmark = pytest.mark.litert

FLOAT_CNN = TFLITE_FIXTURES / "float_cnn.tflite"
DIGITS = TFLITE_FIXTURES / "digits_test.npz"
BROKEN_LAYER = "fc2"
PER_TENSOR = "quantize_weights(minimum_size=0, per_channel=false)"
SQNR_AGREEMENT = 1e-3  # dB: the report (rounded to 4 decimals) against SQNR computed here
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLI = importlib.import_module("graphtool.cli.main")


def run_cli(monkeypatch, capsys, *argv) -> tuple[int, str, str]:
    if sensitivity_cmd not in CLI.COMMANDS:
        monkeypatch.setattr(CLI, "COMMANDS", (*CLI.COMMANDS, sensitivity_cmd))
    code = CLI.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sqnr_db(reference: np.ndarray, actual: np.ndarray) -> float:
    reference = reference.astype(np.float64)
    return float(10 * np.log10((reference ** 2).sum() / ((reference - actual) ** 2).sum()))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """fc_stack with fc2's weights broken (a few columns 50x the rest, the channels they read
    scaled down to match), and 24 samples."""
    root = tmp_path_factory.mktemp("sensitivity")
    (root / "broken.tflite").write_bytes(fc_stack(depth=5, width=64, scales={2: 1 / 50}))
    np.savez(root / "samples.npz", **samples(24, 0))
    return root


def test_the_broken_layer_ranks_first(files):
    report = sensitivity(files / "broken.tflite", data=files / "samples.npz", transforms=PER_TENSOR)
    assert isinstance(report, SensitivityReport)
    assert [layer.name for layer in report.layers][0] == BROKEN_LAYER
    assert sorted(layer.name for layer in report.layers) == [f"fc{i}" for i in range(5)]  # what the transform changes
    assert [layer.rank for layer in report.layers] == [1, 2, 3, 4, 5]
    top, rest = report.layers[0], report.layers[1:]
    assert top.only_sqnr_db < min(layer.only_sqnr_db for layer in rest) - 10
    assert top.loss_db > max(layer.loss_db for layer in rest) + 10
    assert report.samples == 24 and report.runtime == "LiteRT" and report.transform == PER_TENSOR


def test_sqnrs_agree_with_litert_run_here(files):
    model = (files / "broken.tflite").read_bytes()
    report = sensitivity(model, data=samples(24, 0), transforms=PER_TENSOR)
    inputs = [samples(24, 0)["x"]]
    reference = run_litert(model, inputs)[0]
    for spec, expected in ((f"{PER_TENSOR[:-1]}, only={BROKEN_LAYER})", report.layers[0].only_sqnr_db),
                           (f"{PER_TENSOR[:-1]}, keep={BROKEN_LAYER})", report.layers[0].all_but_sqnr_db),
                           (PER_TENSOR, report.all_sqnr_db)):
        graph = graphtool.load(model)
        graphtool.transform(graph, spec)
        assert abs(sqnr_db(reference, run_litert(tflite.write(graph), inputs)[0]) - expected) < SQNR_AGREEMENT


def test_a_deliberately_broken_conv_of_the_digits_cnn_ranks_first(tmp_path):
    """float_cnn with one weight of its first CONV_2D 500x: per tensor, that layer's small weights round to 0."""
    graph = graphtool.load(FLOAT_CNN)
    conv = next(n for n in graph if n.op == "CONV_2D")
    weights = graph.node(graph.inputs_of(conv.name)[1].node).outputs[0]
    broken = np.array(weights.data, np.float32)
    broken.flat[0] = np.abs(broken).max() * 500
    weights.data = broken
    images = np.load(DIGITS)["images"][:16].astype(np.float32)
    report = sensitivity(tflite.write(graph), data={"image": images}, transforms=PER_TENSOR)
    assert report.layers[0].name == conv.name


def test_quantize_nodes_layers_include_activations(files):
    report = sensitivity(files / "broken.tflite", data=files / "samples.npz",
                         transforms=f"quantize_nodes(calibration={files / 'samples.npz'})")
    names = {layer.name for layer in report.layers}
    assert {f"fc{i}" for i in range(5)} | {"mul2"} <= names
    assert report.layers[0].name in (BROKEN_LAYER, "mul2")  # fc2 or the MUL whose output it reads


def test_cli_json_is_the_api_and_reports_are_byte_identical(files, monkeypatch, capsys, tmp_path):
    outputs = []
    for run in range(2):
        html, png = tmp_path / f"r{run}.html", tmp_path / f"r{run}.png"
        code, out, err = run_cli(monkeypatch, capsys, "sensitivity", files / "broken.tflite", "--data",
                                 files / "samples.npz", "--transforms", PER_TENSOR, "--json", "--html", html,
                                 "--png", png)
        assert code == 0, err
        outputs.append((out, html.read_bytes(), png.read_bytes()))
    assert outputs[0] == outputs[1]
    out, page, image = outputs[0]
    report = sensitivity(files / "broken.tflite", data=files / "samples.npz", transforms=PER_TENSOR)
    assert json.loads(out) == report.to_dict()
    assert page.startswith(b"<!DOCTYPE html>") and page.count(b"<svg") == 2 and BROKEN_LAYER.encode() in page
    assert b"<script" not in page and b"<link" not in page and b" src=" not in page  # nothing fetched
    assert image.startswith(PNG_MAGIC) and image[12:16] == b"IHDR"


def test_cli_text(files, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "sensitivity", files / "broken.tflite", "--data",
                           files / "samples.npz", "--transforms", PER_TENSOR)
    assert code == 0
    lines = out.splitlines()
    assert "sensitivity to quantize_weights" in lines[0] and "24 samples" in lines[0]
    assert lines[3].split()[0] == "1" and lines[3].endswith(f"{BROKEN_LAYER} (FULLY_CONNECTED)")
    assert lines[-1].startswith(f"most sensitive: {BROKEN_LAYER} ")


@pytest.mark.parametrize("model, spec, message", [
    ("broken.tflite", "fold_constants", "fold_constants has no only="),
    ("broken.tflite", "quantize_weights(only=fc1)", "sets only= itself"),
    ("broken.tflite", "quantize_weights quantize_weights", "takes one transform, got 2"),
    ("broken.tflite", "quantize_weights(minimum_size=100000)", "changes no operator of the model"),
    ("missing.tflite", "quantize_weights", "missing.tflite"),
    (GRAPHDEF_FIXTURES / "keras2_cnn.pb", "quantize_weights", "quantize_weights has no only="),
])
def test_bad_requests_exit_2_with_one_line(files, monkeypatch, capsys, model, spec, message):
    html = files / "never.html"
    code, out, err = run_cli(monkeypatch, capsys, "sensitivity", files / model, "--data", files / "samples.npz",
                             "--transforms", spec, "--html", html)
    assert code == 2 and out == ""
    assert err.startswith("graphtool: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not html.exists()


@pytest.mark.tf
def test_a_graphdef_runs_in_tensorflow(tmp_path):
    """prune_channels on the frozen Keras CNN: the layers are the convs and what reads their
    channels (looked through the ReadVariableOp Identities); the first conv's group ranks first
    (pruning the depthwise conv alone is nothing: only= names a group by its first layer)."""
    np.savez(tmp_path / "inputs.npz", input=np.random.default_rng(0).standard_normal((16, 8, 8, 1)).astype(np.float32))
    report = sensitivity(GRAPHDEF_FIXTURES / "keras2_cnn.pb", data=tmp_path / "inputs.npz",
                         transforms="prune_channels(sparsity=0.5)")
    assert report.runtime == "TensorFlow"
    assert report.layers[0].name == "keras2_cnn/conv/Conv2D" and report.layers[0].only_sqnr_db is not None
    assert "keras2_cnn/dwconv/depthwise" in {layer.name for layer in report.layers}
    assert not any(layer.op == "Identity" for layer in report.layers)
    assert report.layers[0].only_sqnr_db == report.all_sqnr_db  # one group: alone is all of it


def test_api_errors_are_graphtool_errors(files):
    with pytest.raises(GraphtoolError, match="no such file"):
        sensitivity(files / "broken.tflite", data=files / "nothing.npz", transforms="quantize_weights")


def test_the_html_report_renders_in_chromium(files, tmp_path):
    """Headless Chromium draws the ranking's bars (both series' colours) from the page alone."""
    from graphtool.analysis.sensitivity import render_html

    from .test_report import MIN_PIXELS, SERIES_COLOURS, colour_pixels, screenshot

    report = sensitivity(files / "broken.tflite", data=files / "samples.npz", transforms=PER_TENSOR)
    image = screenshot(render_html(report), tmp_path)
    for colour in SERIES_COLOURS.values():
        assert colour_pixels(image, colour) >= MIN_PIXELS
