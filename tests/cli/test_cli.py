"""The command line: output, --json, exit statuses, one-line errors, atomic outputs."""
import json
import os
import subprocess
import sys

import pytest

from ..conftest import GRAPHDEF_FIXTURES, TFLITE_FIXTURES

CNN = GRAPHDEF_FIXTURES / "keras2_cnn.pb"


def graphtool(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "graphtool", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def test_inspect_text_names_inputs_outputs_and_ops():
    result = graphtool("inspect", CNN)
    assert result.returncode == 0, result.stderr
    assert "Inputs (1):" in result.stdout
    assert "Conv2D" in result.stdout and "FusedBatchNormV3" in result.stdout
    assert "Parameters in constants:" in result.stdout


def test_inspect_json_has_the_contract_keys():
    result = graphtool("inspect", CNN, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("format", "inputs", "outputs", "ops", "num_nodes", "parameters", "file_size"):
        assert key in data
    assert data["format"] == "graphdef"
    assert set(data["inputs"][0]) >= {"name", "dtype", "shape"}
    assert set(data["outputs"][0]) >= {"name", "op"}
    assert data["parameters"]["count"] > 0 and data["parameters"]["bytes"] > 0
    assert data["file_size"] == CNN.stat().st_size
    assert sum(data["ops"].values()) == data["num_nodes"]


def test_inspect_structure_lists_every_node():
    data = json.loads(graphtool("inspect", CNN, "--json", "--structure").stdout)
    assert len(data["structure"]) == data["num_nodes"]
    assert all({"name", "op", "inputs"} <= set(n) for n in data["structure"])


def _bad_inputs(tmp_path):
    good = CNN.read_bytes()
    cases = {
        "not_a_model.pb": b"hello, I am a text file\n",
        "truncated.pb": good[: len(good) // 2 + 7],
        "garbage.pb": bytes(range(256)) * 4,
        "empty.pb": b"",
        "model.onnx": b"\x08\x07\x12\x04onnx" + good[:40],  # what is not a GraphDef nor TFLite, whatever its name
        "broken.pbtxt": b"node { name: 'a' op: \n",
    }
    paths = {}
    for name, data in cases.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    paths["missing.pb"] = tmp_path / "missing.pb"
    return paths


@pytest.mark.parametrize("case", ["not_a_model.pb", "truncated.pb", "garbage.pb", "empty.pb",
                                  "model.onnx", "broken.pbtxt", "missing.pb"])
def test_bad_input_exits_2_with_one_line_naming_the_file(tmp_path, case):
    path = _bad_inputs(tmp_path)[case]
    result = graphtool("inspect", path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"graphtool: error: {path}: ")
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_debug_shows_the_traceback(tmp_path):
    path = _bad_inputs(tmp_path)["garbage.pb"]
    result = graphtool("--debug", "inspect", path)
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_bad_usage_exits_2_in_one_line():
    result = graphtool("inspect")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("graphtool: error: ")
    assert graphtool("frobnicate").returncode == 2


def test_convert_round_trips_and_refuses_to_overwrite_its_input(tmp_path):
    text = tmp_path / "cnn.pbtxt"
    back = tmp_path / "cnn.pb"
    assert graphtool("convert", CNN, text).returncode == 0
    assert text.read_bytes().startswith(b"node {")
    assert graphtool("convert", text, back).returncode == 0
    assert back.read_bytes() == CNN.read_bytes()
    same = graphtool("convert", back, back)
    assert same.returncode == 2 and "--in-place" in same.stderr
    assert graphtool("convert", back, back, "--in-place").returncode == 0
    assert back.read_bytes() == CNN.read_bytes()


def test_failed_convert_leaves_no_output_and_input_untouched(tmp_path):
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\xff" * 100)
    out = tmp_path / "out.pbtxt"
    result = graphtool("convert", bad, out)
    assert result.returncode == 2
    assert not out.exists()
    assert bad.read_bytes() == b"\xff" * 100
    assert [p.name for p in tmp_path.iterdir()] == ["bad.pb"]  # no temporary left behind
    unknown = graphtool("convert", CNN, tmp_path / "out.xyz")
    assert unknown.returncode == 2 and "unknown model suffix" in unknown.stderr
    assert not (tmp_path / "out.xyz").exists()


def test_console_script_and_module_agree():
    script = os.path.join(os.path.dirname(sys.executable), "graphtool")
    result = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("graphtool ")
    assert graphtool("--version").stdout == result.stdout


TFLITE = GRAPHDEF_FIXTURES.parent / "tflite" / "full_int8.tflite"


def test_inspect_tflite_json_has_the_graphdef_keys_and_the_tflite_ones():
    result = graphtool("inspect", TFLITE, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("format", "inputs", "outputs", "ops", "num_nodes", "parameters", "subgraphs", "signature_defs",
                "op_versions", "quantized_weights", "sparsity", "metadata", "min_runtime_version", "custom_ops",
                "select_tf_ops", "weights"):
        assert key in data, key
    assert data["format"] == "tflite"
    assert data["inputs"][0]["dtype"] == "int8" and data["inputs"][0]["quantization"]["scheme"] == "per-tensor"
    assert data["quantized_weights"] == {"per-channel": 5}
    assert data["min_runtime_version"] == "1.14.0"
    text = graphtool("inspect", TFLITE).stdout
    assert "CONV_2D  v3" in text and "Minimum runtime: 1.14.0" in text


def test_convert_tflite_is_lossless(tmp_path):
    out = tmp_path / "copy.tflite"
    assert graphtool("convert", TFLITE, out).returncode == 0
    assert out.read_bytes() == TFLITE.read_bytes()


def test_transform_with_gtt_flags_writes_text_and_reports(tmp_path):
    out = tmp_path / "out.pb"
    result = graphtool("transform", f"--in_graph={CNN}", f"--out_graph={out}", "--outputs=Identity",
                       "--transforms=remove_nodes(op=Identity) sort_by_execution_order", "--output_as_text=true")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"node {")
    assert "remove_nodes: changed; nodes 44 -> 30" in result.stderr


def test_bare_output_as_text_means_true(tmp_path):
    out = tmp_path / "out.pb"
    result = graphtool("transform", f"--in_graph={CNN}", f"--out_graph={out}", "--transforms=remove_device",
                       "--output_as_text")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"node {")
    misplaced = graphtool("transform", "--transforms=remove_device", "--output_as_text", CNN, out)
    assert misplaced.returncode == 2 and "--output_as_text=true" in misplaced.stderr


def test_failed_transform_writes_nothing(tmp_path):
    out = tmp_path / "out.pb"
    for spec in ("remove_nodes(op=Identity) bogus", "rename_node(old_node_name=nope, new_node_name=x)",
                 "remove_nodes(op=Identity"):
        result = graphtool("transform", CNN, out, "--transforms", spec)
        assert result.returncode == 2, spec
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("graphtool: error: ")
        assert not out.exists() and list(tmp_path.iterdir()) == []


def test_transforms_lists_every_transform():
    result = graphtool("transforms", "--json")
    data = json.loads(result.stdout)
    names = {t["name"] for t in data}
    assert {"remove_nodes", "strip_unused_nodes", "sort_by_execution_order"} <= names
    remove = next(t for t in data if t["name"] == "remove_nodes")
    assert [p["name"] for p in remove["parameters"]] == ["op", "max_inputs"]
    assert "ignore_errors" in graphtool("transforms").stdout


def test_bad_constant_found_when_decoded_still_names_the_file(tmp_path):
    from graphtool.formats.graphdef import messages as pb

    message = pb.GraphDef()
    node = message.node.add(name="w", op="Const")
    node.attr["dtype"].type = 1
    tensor = node.attr["value"].tensor
    tensor.dtype = 1
    tensor.tensor_shape.dim.add().size = 3
    tensor.tensor_shape.dim.add().size = 1  # a weight: inspect reads its values for sparsity
    tensor.tensor_content = b"\0" * 11  # 3 floats need 12 bytes
    path = tmp_path / "bad_const.pb"
    path.write_bytes(message.SerializeToString())
    result = graphtool("inspect", path)  # TensorFlow imports it: read, summarised without it, warned about
    assert result.returncode == 0, result.stderr
    assert f"Warning: {path}: node 0 ('w') attr 'value': tensor_content has 11 bytes" in result.stdout
    result = graphtool("transform", path, tmp_path / "out.pb", "--transforms", "quantize_weights(minimum_size=0)")
    assert result.returncode == 2  # what needs its values refuses it, naming the file
    assert result.stderr.startswith(f"graphtool: error: {path}: ") and result.stderr.count("\n") == 1
    assert "node 0 ('w') attr 'value': tensor_content has 11 bytes" in result.stderr
    assert not (tmp_path / "out.pb").exists()


def test_commands_run_in_one_process_leave_their_models_collectable(monkeypatch, capsys):
    """The CLI freezes what its imports made so the collector skips it (a fast cold start);
    a process that runs many commands (tests, the fuzz workers) must still get each
    command's model back, or it grows by a model per command until it runs out of memory."""
    import gc
    import weakref

    from graphtool import formats
    from graphtool.cli.main import main

    loaded, real_load = [], formats.load

    def load(path, *args, **kwargs):
        graph = real_load(path, *args, **kwargs)
        graph.test_cycle = graph  # a cycle, as an exception's traceback makes: only the collector frees it
        gc.collect()  # the graph now lives in the oldest generation, as a model that took a while to use does
        loaded.append(weakref.ref(graph))
        return graph

    monkeypatch.setattr(formats, "load", load)
    model = str(TFLITE_FIXTURES / "float_cnn.tflite")
    for _ in range(3):
        assert main(["inspect", model, "--json"]) == 0
    capsys.readouterr()
    gc.collect()
    assert len(loaded) == 3
    assert [ref() is None for ref in loaded] == [True] * 3
