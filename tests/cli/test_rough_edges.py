"""What a newcomer ran into on the command line, each reproduced: conflicting GTT flags, an
empty spec, a model whose suffix lies, --debug after the command, errors that did not name
the file, unhelpful small messages, and a delegate that takes most of a model called
"NOT compatible"."""
from __future__ import annotations

import json
import shutil

import pytest

from graphtool.analysis import draw as draw_module
from graphtool.cli import main
from graphtool.passes import all_passes

from ..conftest import FIXTURES, GRAPHDEF_FIXTURES, TFLITE_FIXTURES

CNN_PB = GRAPHDEF_FIXTURES / "keras2_cnn.pb"
OTHER_PB = GRAPHDEF_FIXTURES / "keras3_cnn.pb"
CNN_TFLITE = TFLITE_FIXTURES / "float_cnn.tflite"


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphtool: error: "), err
    return lines[0]


# -- transform's two ways of naming IN and OUT ----------------------------------------------
def test_positional_paths_and_gtt_flags_that_disagree_are_refused(capsys, tmp_path):
    out, other = tmp_path / "out.pb", tmp_path / "other.pb"
    code, _, err = run(capsys, "transform", CNN_PB, out, f"--in_graph={OTHER_PB}", f"--out_graph={other}",
                       "--transforms", "fold_constants")
    assert code == 2 and "--in_graph" in one_error_line(err)
    assert not out.exists() and not other.exists()


def test_positional_paths_and_gtt_flags_that_agree_run(capsys, tmp_path):
    out = tmp_path / "out.pb"
    code, _, err = run(capsys, "transform", CNN_PB, out, f"--in_graph={CNN_PB}", f"--out_graph={out}",
                       "--transforms", "fold_constants")
    assert code == 0, err
    assert out.exists()


@pytest.mark.parametrize("spec", ["", "   "])
def test_an_empty_spec_is_a_usage_error(capsys, tmp_path, spec):
    out = tmp_path / "out.pb"
    code, _, err = run(capsys, "transform", CNN_PB, out, "--transforms", spec)
    assert code == 2 and "--transforms is empty" in one_error_line(err)
    assert not out.exists()


# -- content wins over the suffix ---------------------------------------------------------------
def test_a_tflite_model_named_pb_loads_with_a_warning(capsys, tmp_path):
    lying = tmp_path / "model.pb"
    shutil.copy(CNN_TFLITE, lying)
    code, out, err = run(capsys, "inspect", lying)
    assert code == 0, err
    assert out.startswith(f"{lying}: tflite")
    assert err.strip() == f"graphtool: warning: {lying}: the suffix says binary GraphDef, the bytes are TFLite; " \
                          "read as TFLite"


def test_a_graphdef_named_tflite_loads_with_a_warning(capsys, tmp_path):
    lying = tmp_path / "model.tflite"
    shutil.copy(CNN_PB, lying)
    code, out, err = run(capsys, "inspect", lying)
    assert code == 0, err
    assert out.startswith(f"{lying}: graphdef")
    assert "graphtool: warning:" in err and "the bytes are binary GraphDef" in err


def test_a_text_graphdef_named_pb_loads_without_a_warning(capsys, tmp_path):
    text = tmp_path / "model.pb"
    shutil.copy(GRAPHDEF_FIXTURES / "keras2_cnn.pbtxt", text)
    code, out, err = run(capsys, "inspect", text)
    assert code == 0 and err == "" and out.startswith(f"{text}: graphdef")


def test_an_unknown_suffix_does_not_stop_a_model_that_is_one(capsys, tmp_path):
    named = tmp_path / "model.onnx"
    shutil.copy(CNN_PB, named)
    code, out, err = run(capsys, "inspect", named)
    assert code == 0 and err == "" and out.startswith(f"{named}: graphdef")


def test_a_file_that_is_neither_says_which_formats_were_tried(capsys, tmp_path):
    junk = tmp_path / "model.tflite"
    junk.write_bytes(b"\x12\x34\xff\xff" * 64)
    code, _, err = run(capsys, "inspect", junk)
    line = one_error_line(err)
    assert code == 2 and line.startswith(f"graphtool: error: {junk}: not a model graphtool reads")
    assert "not binary GraphDef" in line and "not TFLite (file identifier" in line


# -- --debug anywhere -----------------------------------------------------------------------------
def test_debug_after_the_command_is_accepted(capsys):
    code, out, err = run(capsys, "inspect", CNN_PB, "--debug")
    assert code == 0 and err == "" and out.startswith(f"{CNN_PB}: graphdef")


def test_debug_after_the_command_shows_the_traceback(capsys, tmp_path):
    missing = tmp_path / "missing.pb"
    code, _, err = run(capsys, "inspect", missing, "--debug")
    assert code == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("graphtool: error:")


# -- errors name the file ---------------------------------------------------------------------------
@pytest.mark.parametrize("target, message", [("gpu", "checks TFLite models"), ("gpux", "unknown target 'gpux'")])
def test_check_errors_name_the_model(capsys, target, message):
    code, _, err = run(capsys, "check", CNN_PB, "--target", target)
    line = one_error_line(err)
    assert code == 2 and line.startswith(f"graphtool: error: {CNN_PB}: ") and message in line


def test_an_unknown_target_is_refused_before_the_model_is_read(capsys, tmp_path):
    missing = tmp_path / "missing.tflite"
    code, _, err = run(capsys, "check", missing, "--target", "gpux")
    assert code == 2 and "unknown target" in one_error_line(err)


# -- small ones -------------------------------------------------------------------------------------
def test_html_without_graphviz_says_html(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(draw_module, "dot_program", lambda: None)
    out = tmp_path / "graph.html"
    code, _, err = run(capsys, "draw", CNN_PB, "-o", out)
    line = one_error_line(err)
    assert code == 2 and line.startswith(f"graphtool: error: {out}: writing HTML needs Graphviz")
    assert not out.exists()


@pytest.mark.parametrize("command", ["transform", "convert"])
def test_a_folder_as_output_says_so(capsys, tmp_path, command):
    extra = ["--transforms", "fold_constants"] if command == "transform" else []
    code, _, err = run(capsys, command, CNN_PB, tmp_path, *extra)
    assert code == 2 and one_error_line(err) == f"graphtool: error: {tmp_path}: is a directory; give a file " \
                                                 "name for the output"


def test_a_pass_error_names_the_pass_once(capsys, tmp_path):
    code, _, err = run(capsys, "transform", CNN_PB, tmp_path / "out.pb",
                       "--transforms", "fold_constants(max_constant_size_in_bytes=-1)")
    line = one_error_line(err)
    assert code == 2 and line.count("fold_constants") == 1, line
    assert "fold_constants (transform 1 of 1): max_constant_size_in_bytes must be >= 0" in line


def test_an_unknown_transform_suggests_the_closest(capsys, tmp_path):
    code, _, err = run(capsys, "transform", CNN_PB, tmp_path / "out.pb", "--transforms", "fold_batchnorms")
    assert code == 2 and "did you mean 'fold_batch_norms'?" in one_error_line(err)


@pytest.mark.parametrize("command", ["check", "draw", "inspect", "convert"])
def test_model_help_mentions_savedmodel_directories(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "SavedModel directory" in " ".join(capsys.readouterr().out.split())


def test_convert_explains_in_and_out(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "IN model to read" in help_text and "OUT where to write it" in help_text


def test_transforms_prints_booleans_one_way(capsys):
    code, out, _ = run(capsys, "transforms")
    assert code == 0
    assert "= True" not in out and "= False" not in out
    assert "(bool = true)" in out and "(bool = false)" in out
    booleans = [name for p in all_passes() for name, kind, default, _ in p.parameters() if kind == "bool"]
    assert booleans  # the check above is about something


# -- delegates that take part of a model --------------------------------------------------------------
def test_a_delegate_that_takes_all_but_one_operator_is_partial(capsys):
    model = TFLITE_FIXTURES / "full_int8.tflite"
    code, out, _ = run(capsys, "check", model, "--target", "xnnpack")
    assert code == 1
    # LiteRT's XNNPACK leaves the int8 AVERAGE_POOL_2D and SOFTMAX on the CPU: two partitions
    assert out.splitlines()[0].startswith(f"{model}: partially delegated to xnnpack (7 of 9 operators in 2 partitions;")
    assert "NOT compatible" not in out
    code, out, _ = run(capsys, "check", model, "--target", "xnnpack", "--json")
    report = json.loads(out)
    assert code == 1 and report["verdict"] == "partial" and report["compatible"] is False


@pytest.mark.parametrize("model, target, verdict, status", [
    ("tflite/float_cnn.tflite", "gpu", "compatible", 0),
    ("tflite/float_cnn.tflite", "edgetpu", "none", 1),
    ("tflite/float16.tflite", "micro", "incompatible", 1),
])
def test_verdicts(capsys, model, target, verdict, status):
    code, out, _ = run(capsys, "check", FIXTURES / model, "--target", target, "--json")
    assert code == status and json.loads(out)["verdict"] == verdict


def test_check_help_documents_the_verdicts(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "partial" in help_text and "none" in help_text and "incompatible" in help_text
