"""calibrate: per-tensor ranges from running the model — each statistic checked against the
tensors computed by the real runtime on all the data (TensorFlow for GraphDefs, LiteRT's own
interpreter for TFLite) — and the representative-data loader, which must turn every bad
file into a FormatError and never unpickle."""
from __future__ import annotations

import io
import json
import math
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphtool
from graphtool.runtime.progress import Progress
from graphtool.runtime.samples import InputSpec, check_samples, read_npz
from graphtool.runtime.calibrate import Calibration, CalibrationError, calibrate
from graphtool.errors import FormatError, GraphtoolError

from ..conftest import TFLITE_FIXTURES
from ..tf_runtime import build_graphdef, run_graphdef

TENSORS = ["x:0", "hidden:0", "out:0"]


def mlp(tf, batch=None) -> bytes:
    """x [batch, 4] -> MatMul + BiasAdd + Relu "hidden" [.., 16] -> MatMul "out" [.., 3]."""
    rng = np.random.default_rng(0)

    def body():
        x = tf.compat.v1.placeholder(tf.float32, (batch, 4), name="x")
        h = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, tf.constant(rng.standard_normal((4, 16)).astype(np.float32))),
                                      tf.constant(rng.standard_normal(16).astype(np.float32))), name="hidden")
        return tf.matmul(h, tf.constant(rng.standard_normal((16, 3)).astype(np.float32)), name="out")
    return build_graphdef(tf, body)[0]


def samples(count=64, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, 4)).astype(np.float32)


def npz(tmp_path: Path, name="samples.npz", **arrays) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def reference(tf, data: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    """Each tensor's values over all samples, computed by TensorFlow in one run."""
    return dict(zip(TENSORS, run_graphdef(tf, data, {"x:0": x}, TENSORS)))


# -- statistics, against TensorFlow --------------------------------------------------------------------

def test_minmax_is_the_range_over_all_samples(tf, tmp_path):
    data, x = mlp(tf), samples()
    result = calibrate(graphtool.load(data), npz(tmp_path, x=x), batch_size=10, tensors=TENSORS)
    assert (result.method, result.samples, result.batches) == ("minmax", 64, 7)
    for name, values in reference(tf, data, x).items():
        assert result.range_of(name) == pytest.approx((values.min(), values.max()), rel=1e-6)
    assert result.range_of("hidden") == result.range_of("hidden:0")  # port 0 may be left out
    assert result.range_of("hidden")[0] == 0.0  # after a Relu


def test_every_float_tensor_is_calibrated_by_default(tf, tmp_path):
    result = calibrate(graphtool.load(mlp(tf)), npz(tmp_path, x=samples()))
    graph_def = tf.compat.v1.GraphDef.FromString(mlp(tf))
    computed = {f"{n.name}:0" for n in graph_def.node if n.op != "Const"}
    assert set(result.ranges) == computed


def test_moving_average_averages_per_batch_ranges(tf, tmp_path):
    data, x = mlp(tf), samples()
    decay, batch = 0.8, 16
    result = calibrate(graphtool.load(data), npz(tmp_path, x=x), method="moving_average", decay=decay,
                       batch_size=batch, tensors=["hidden"])
    low = high = None
    for start in range(0, len(x), batch):
        values = reference(tf, data, x[start:start + batch])["hidden:0"]
        if low is None:
            low, high = values.min(), values.max()
        else:
            low, high = decay * low + (1 - decay) * values.min(), decay * high + (1 - decay) * values.max()
    assert result.range_of("hidden") == pytest.approx((low, high), rel=1e-6)
    assert result.options == {"decay": decay, "batch_size": batch}
    full = reference(tf, data, x)["hidden:0"].max()
    assert result.range_of("hidden")[1] < full  # averaging stays inside the extremes


def test_percentile_is_within_a_bin_of_numpys(tf, tmp_path):
    data, x = mlp(tf), samples(512)
    result = calibrate(graphtool.load(data), npz(tmp_path, x=x), method="percentile", percentile=99.0,
                       batch_size=7, tensors=["out"])  # many small batches: the histogram widens as it goes
    values = np.sort(reference(tf, data, x)["out:0"].reshape(-1))
    bin_width = (values[-1] - values[0]) / 2048
    for fraction, got in zip((0.01, 0.99), result.range_of("out")):
        rank = fraction * (len(values) - 1)  # numpy's percentile interpolates between these order statistics
        below, above = values[max(math.floor(rank) - 1, 0)], values[min(math.ceil(rank) + 1, len(values) - 1)]
        assert below - 2 * bin_width <= got <= above + 2 * bin_width, (fraction, got, below, above)
    low, high = result.range_of("out")
    assert values[0] < low < high < values[-1]


def test_percentile_100_is_minmax(tf, tmp_path):
    path = npz(tmp_path, x=samples())
    graph = graphtool.load(mlp(tf))
    assert calibrate(graph, path, method="percentile", percentile=100.0).ranges == calibrate(graph, path).ranges


def test_data_given_as_mapping_iterable_or_callable_agree(tf, tmp_path):
    graph, x = graphtool.load(mlp(tf)), samples(24)
    expected = calibrate(graph, npz(tmp_path, x=x)).ranges
    forms = {
        "mapping": {"x": x},
        "mapping with :0": {"x:0": x},
        "list of dicts": [{"x": x[:10]}, {"x": x[10:]}],
        "list of lists": [[x[:5]], [x[5:]]],
        "bare arrays": [x[i:i + 1] for i in range(len(x))],
        "callable": lambda: iter([[x[:12]], [x[12:]]]),  # like TFLite's representative_dataset
    }
    for form, data in forms.items():
        result = calibrate(graph, data)
        assert result.ranges.keys() == expected.keys(), form
        for name, value in expected.items():
            assert result.ranges[name] == pytest.approx(value, rel=1e-6), form
        assert result.samples == 24, form


def test_a_fixed_batch_size_is_honoured(tf, tmp_path):
    graph, x = graphtool.load(mlp(tf, batch=2)), samples(6)
    result = calibrate(graph, npz(tmp_path, x=x), batch_size=32)
    assert (result.samples, result.batches, result.options["batch_size"]) == (6, 3, 2)
    assert calibrate(graph, [[x[:4]], [x[4:]]]).batches == 3  # iterated batches are re-cut
    with pytest.raises(FormatError, match="exactly 2"):
        calibrate(graph, npz(tmp_path, x=samples(5)))


def test_nan_or_infinity_in_a_tensor_is_an_error(tf):
    def body():
        x = tf.compat.v1.placeholder(tf.float32, (None, 2), name="x")
        return tf.math.log(x, name="log")
    graph = graphtool.load(build_graphdef(tf, body)[0])
    with pytest.raises(CalibrationError, match="tensor log:0 holds NaN or infinity on batch 0"):
        calibrate(graph, {"x": np.zeros((3, 2), np.float32)})
    assert calibrate(graph, {"x": np.zeros((3, 2), np.float32)}, tensors=["x"]).range_of("x") == (0.0, 0.0)


@pytest.mark.parametrize("options, message", [
    ({"method": "median"}, "unknown method 'median'"),
    ({"decay": 1.0}, "decay must be in"),
    ({"percentile": 40.0}, "percentile must be in"),
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"inputs": ["hidden"]}, "input 'hidden' is not a Placeholder"),
])
def test_bad_options(tf, options, message):
    with pytest.raises(CalibrationError, match=message):
        calibrate(graphtool.load(mlp(tf)), {"x": samples()}, **options)


def test_an_unknown_tensor_is_a_graphtool_error(tf):
    with pytest.raises(GraphtoolError, match="nope"):
        calibrate(graphtool.load(mlp(tf)), {"x": samples()}, tensors=["nope"])


# -- TFLite, against LiteRT's interpreter -----------------------------------------------------------------

@pytest.mark.litert
def test_tflite_minmax_matches_litert_on_every_tensor():
    from ai_edge_litert.interpreter import Interpreter

    model = (TFLITE_FIXTURES / "float_cnn.tflite").read_bytes()
    images = np.load(TFLITE_FIXTURES / "digits_test.npz")["images"][:96]
    graph = graphtool.load(model)
    (name,) = graph.inputs
    result = calibrate(model, {name: images}, batch_size=32)
    assert (result.samples, result.batches) == (96, 3)

    interpreter = Interpreter(model_content=model, experimental_preserve_all_tensors=True)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], images)
    interpreter.invoke()
    computed = {n.name: n for n in graph if n.op not in ("Const", "Variable", "Tensor")}
    assert len(result.ranges) == len(computed)  # the input and every operator's float32 output
    for node in computed.values():
        values = interpreter.get_tensor(node.outputs[0].meta["tflite.index"])
        assert result.range_of(f"{node.name}:0") == pytest.approx((values.min(), values.max()), rel=1e-5), node.name
    assert result.range_of(f"{name}:0") == (0.0, 1.0)
    assert calibrate(graph, {name: images}, batch_size=32).ranges == result.ranges  # a loaded Graph runs alike


@pytest.mark.litert
def test_tflite_unknown_tensor_is_an_error():
    model = TFLITE_FIXTURES / "float_cnn.tflite"
    with pytest.raises(CalibrationError, match="no float32 tensor 'nope'"):
        calibrate(model, {"serving_default_image:0": np.zeros((1, 8, 8, 1), np.float32)}, tensors=["nope"])


# -- progress ------------------------------------------------------------------------------------------------

def test_progress_line_on_stderr_when_asked(tf, capsys):
    calibrate(graphtool.load(mlp(tf)), {"x": samples(40)}, batch_size=8, progress=True)
    err = capsys.readouterr().err
    assert err.startswith("\rcalibrating [") and "[########################] 40/40 samples" in err
    assert err.endswith(" s\n")
    calibrate(graphtool.load(mlp(tf)), {"x": samples(40)}, batch_size=8)  # default: only on a terminal
    assert capsys.readouterr().err == ""


def test_progress_waits_for_long_runs_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = Progress("calibrating", 10, None, stream, delay=3600)
    bar.update(5)
    bar.close()
    assert stream.getvalue() == ""  # shorter than the delay: silent
    bar = Progress("calibrating", 10, None, stream, delay=0.0)
    bar.update(5)
    bar.close()
    assert "[############............] 5/10 samples" in stream.getvalue() and stream.getvalue().endswith("\n")


# -- calibration files ---------------------------------------------------------------------------------------

def test_calibration_file_round_trip(tf, tmp_path):
    result = calibrate(graphtool.load(mlp(tf)), {"x": samples()}, method="percentile")
    result.save(tmp_path / "ranges.json")
    loaded = Calibration.load(tmp_path / "ranges.json")
    assert loaded == result


@pytest.mark.parametrize("text, message", [
    ("not json", "not a calibration file \\(JSON\\)"),
    ('{"format": "other"}', "not a calibration file"),
    ('{"format": "graphtool.calibration", "version": 9}', "version 9"),
    ('{"format": "graphtool.calibration", "version": 1, "method": "x", "ranges": {}}', "unknown method"),
    ('{"format": "graphtool.calibration", "version": 1, "method": "minmax", "ranges": {"a": [2, 1]}}',
     "min <= max"),
    ('{"format": "graphtool.calibration", "version": 1, "method": "minmax", "ranges": {"a": [0, NaN]}}',
     "finite numbers"),
    ('{"format": "graphtool.calibration", "version": 1, "method": "minmax", "ranges": {}, "samples": true}',
     "counts"),
])
def test_bad_calibration_files(tmp_path, text, message):
    path = tmp_path / "ranges.json"
    path.write_text(text)
    with pytest.raises(FormatError, match=message):
        Calibration.load(path)


# -- the .npz loader -----------------------------------------------------------------------------------------

SPEC = [InputSpec("x", np.dtype(np.float32), (None, 4))]


def test_npz_arrays_are_checked_against_the_inputs(tmp_path):
    good = check_samples(read_npz(npz(tmp_path, x=samples(3).astype(np.float64))), SPEC, "f")
    assert good["x"].dtype == np.float32 and good["x"].shape == (3, 4)
    fortran = np.asfortranarray(samples(5))
    np.testing.assert_array_equal(read_npz(npz(tmp_path, x=fortran))["x"], fortran)


@pytest.mark.parametrize("arrays, message", [
    ({"y": samples(3)}, "array 'y' names no input of the model \\(inputs: x\\)"),
    ({"x": samples(3), "y": samples(3)}, "array 'y' names no input"),
    ({"x": samples(3), "x:0": samples(3)}, "input 'x' given twice"),
    ({"x": samples(3)[:, :3]}, "has shape \\[3, 3\\]; input 'x' takes \\[N, 4\\]"),
    ({"x": samples(3)[None]}, "has shape \\[1, 3, 4\\]"),
    ({"x": np.float32(1.0)}, "is a scalar"),
    ({"x": np.ones((3, 4), np.int64)}, "is int64; input 'x' is float32"),
    ({"x": np.ones((3, 4), "U3")}, "has dtype <U3"),
    ({"x": np.ones((3, 4), np.complex64)}, "has dtype complex64"),
    ({"x": np.full((3, 4), np.nan, np.float32)}, "holds NaN or infinity"),
    ({"x": np.full((3, 4), 1e300)}, "holds NaN or infinity \\(as float32\\)"),
    ({"x": np.zeros((0, 4), np.float32)}, "holds no samples"),
    ({"x": np.zeros((3, 4), [("a", "f4")])}, "structured dtype"),
])
def test_bad_samples_are_format_errors(tmp_path, arrays, message):
    path = npz(tmp_path, **arrays)
    with pytest.raises(FormatError, match=message) as error:
        check_samples(read_npz(path), SPEC, str(path))
    assert str(path) in str(error.value)


def test_missing_input_and_unequal_counts():
    two = [InputSpec("a", np.dtype(np.float32), (None, 2)), InputSpec("b", np.dtype(np.int32), (None,))]
    with pytest.raises(FormatError, match="no array for input 'b'"):
        check_samples({"a": np.zeros((2, 2), np.float32)}, two, "f")
    with pytest.raises(FormatError, match="different numbers of samples: a 2, b 3"):
        check_samples({"a": np.zeros((2, 2), np.float32), "b": np.zeros(3, np.int32)}, two, "f")
    with pytest.raises(FormatError, match="outside int32's range"):
        check_samples({"a": np.zeros((1, 2), np.float32), "b": np.array([2**40])}, two, "f")


def test_pickled_objects_are_refused_and_never_loaded(tmp_path):
    class Bomb:
        def __reduce__(self):
            return (pytest.fail, ("unpickled!",))

    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([Bomb()], dtype=object))  # np.savez pickles object arrays
    with pytest.raises(FormatError, match="holds Python objects"):
        read_npz(path)


def stored_npz(header: dict, payload: bytes) -> bytes:
    """An .npz (stored, not compressed) whose x.npy has this header dict and payload."""
    text = repr(header).encode()
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("x.npy", member)
    return buffer.getvalue()


@pytest.mark.parametrize("content, message", [
    (b"plain text, not a zip", "not an .npz file"),
    (None, "no such file"),
    (stored_npz({"descr": "<f4", "fortran_order": False, "shape": (10**12,)}, b"\0" * 16),
     "header says \\[1000000000000\\] float32"),  # refused before allocating 4 TB
    (stored_npz({"descr": "<f4", "fortran_order": False, "shape": (2,)}, b"\0" * 12), "holds 12 bytes of data"),
    (stored_npz({"descr": "|O", "fortran_order": False, "shape": (1,)}, b"\0" * 8), "holds Python objects"),
    (stored_npz({"descr": "<M8[s]", "fortran_order": False, "shape": (1,)}, b"\0" * 8), "has dtype"),
    (stored_npz({"descr": "<f4"}, b""), "header must hold exactly descr, fortran_order and shape"),
    (stored_npz({"descr": "<f4", "fortran_order": False, "shape": (-1,)}, b""), "has shape \\(-1,\\)"),
])
def test_bad_npz_files_are_format_errors(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FormatError, match=message) as error:
        read_npz(path)
    assert str(error.value).startswith(str(path))


def test_npy_file_directory_and_empty_archive_are_format_errors(tmp_path):
    np.save(tmp_path / "x.npy", samples(2))
    with pytest.raises(FormatError, match="not an .npz file"):
        read_npz(tmp_path / "x.npy")
    with pytest.raises(FormatError, match="is a directory"):
        read_npz(tmp_path)
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(FormatError, match="holds no arrays"):
        read_npz(tmp_path / "empty.npz")
    with zipfile.ZipFile(tmp_path / "other.npz", "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(FormatError, match="member 'notes.txt': not a .npy array"):
        read_npz(tmp_path / "other.npz")


def _valid_npz(compressed: bool) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, x=samples(4), y=np.arange(6, dtype=np.int16))
    return buffer.getvalue()


VALID = {False: _valid_npz(False), True: _valid_npz(True)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(compressed=st.booleans(), edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                                                 min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_mutated_npz_files_load_or_raise_format_error(compressed, edits, cut):
    data = bytearray(VALID[compressed])
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        del data[int(cut * len(data)):]
    with tempfile.NamedTemporaryFile(suffix=".npz") as handle:
        handle.write(data)
        handle.flush()
        try:
            arrays = read_npz(handle.name)
        except FormatError:
            return
    for array in arrays.values():  # what loads is a plain numeric array of the size it claims
        assert isinstance(array, np.ndarray) and array.dtype.kind in "biuf"


def test_json_of_a_calibration_keeps_every_tensor(tf, tmp_path):
    result = calibrate(graphtool.load(mlp(tf)), {"x": samples()}, tensors=TENSORS)
    result.save(tmp_path / "r.json")
    stored = json.loads((tmp_path / "r.json").read_text())
    assert stored["format"] == "graphtool.calibration" and sorted(stored["ranges"]) == sorted(TENSORS)
    assert stored["samples"] == 64 and stored["method"] == "minmax"


def test_deflate_bombs_are_refused_before_reading(tmp_path):
    """80 MiB of zeros deflate to ~80 KB: refused from the zip directory, nothing allocated."""
    path = tmp_path / "bomb.npz"
    count = 80 << 20
    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (%d,), }" % count
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    info = zipfile.ZipInfo("x.npy")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
            for _ in range(count >> 20):
                member.write(bytes(1 << 20))
    assert path.stat().st_size < 200_000
    with pytest.raises(FormatError, match="more than 100x \\(a deflate bomb\\?\\)"):
        read_npz(path)
