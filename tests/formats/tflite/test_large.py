"""Past 2 GB the writer stores buffer data after the flatbuffer (offset/size), and LiteRT
loads and runs the result."""
import numpy as np
import pytest

import graphtool
from graphtool.formats import tflite
from graphtool.formats.tflite.writer import EXTERNAL_ALIGN

from ...conftest import run_litert
from .test_edits import fully_connected_model

K = 256
M = 2**31 // (4 * K) + 4096  # just over 2 GB


@pytest.mark.litert
@pytest.mark.slow
def test_model_over_2gb_uses_external_buffers_and_runs(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    row_value = (np.arange(M) % 7).astype(np.float32)
    weights = np.broadcast_to(row_value[:, None], (M, K)).copy()
    path = tmp_path / "large.tflite"
    graphtool.save(fully_connected_model(weights), path)
    del weights
    assert path.stat().st_size > 2**31

    reread = graphtool.load(path)
    assert reread.meta["tflite.external"]
    buffer = reread.meta["tflite.buffers"][reread.node("w").outputs[0].meta["tflite.table"]["buffer"]]
    assert buffer["offset"] > 1 and buffer["offset"] % EXTERNAL_ALIGN == 0 and buffer["size"] == M * K * 4
    w = reread.node("w").outputs[0].data
    np.testing.assert_array_equal(w[[0, 1, 6, M - 1], :3], row_value[[0, 1, 6, M - 1], None].repeat(3, 1))

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    x = np.linspace(-1, 1, K, dtype=np.float32)[None, :]
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(y[0], row_value * x.sum(), rtol=1e-4, atol=1e-4)


def test_small_models_keep_the_ordinary_layout():
    model = tflite.write(fully_connected_model(np.ones((4, 3), np.float32)))
    reread = graphtool.load(model)
    assert not reread.meta["tflite.external"]
    assert all(int(b.get("offset", 0)) == 0 for b in reread.meta["tflite.buffers"])


FORCED_EXTERNAL_WEIGHTS = np.random.default_rng(4).standard_normal((6, 3)).astype(np.float32)


def test_forced_external_layout_round_trips():
    external = tflite.write(fully_connected_model(FORCED_EXTERNAL_WEIGHTS), external=True)
    reread = graphtool.load(external)
    assert reread.meta["tflite.external"]
    assert tflite.write(reread) == external  # stays external, same bytes


@pytest.mark.litert
def test_forced_external_layout_runs():
    external = tflite.write(fully_connected_model(FORCED_EXTERNAL_WEIGHTS), external=True)
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(run_litert(external, [x])[0], x @ FORCED_EXTERNAL_WEIGHTS.T, rtol=1e-5)
