"""`check --target micro` against the tflite-micro Python interpreter: every model graphtool
accepts loads (allocates) and runs there, every model it rejects fails to load."""
from __future__ import annotations

import numpy as np
import pytest

import graphtool
from graphtool.analysis.check import check
from graphtool.formats import tflite

from ..conftest import TFLITE_FIXTURES

ARENA_BYTES = 4 << 20  # generous: a too-small arena must not pass for an unsupported model
FIXTURES = ("control_flow", "custom_op", "dynamic_range", "flex_op", "float16", "float_cnn", "full_int8",
            "multi_signature", "resource_variables", "sparse", "strings")


def _tflm_runs(model: bytes) -> bool:
    """Load, allocate and invoke in TFLite Micro; False when any of it fails."""
    from tflite_micro.python.tflite_micro import runtime

    try:
        interpreter = runtime.Interpreter.from_bytes(model, arena_size=ARENA_BYTES)
    except RuntimeError:  # "TFLM failed to allocate tensors": a missing or refusing kernel
        return False
    for index in range(len(interpreter.get_input_details(0) and [0])):
        detail = interpreter.get_input_details(index)
        interpreter.set_input(np.zeros(detail["shape"], detail["dtype"]), index)
    interpreter.invoke()
    return True


def _generated_models(tf) -> dict[str, bytes]:
    """Small float models converted here: some ops TFLite Micro has kernels for, some not."""
    def convert(fn, shape=(1, 8)):
        concrete = tf.function(fn, input_signature=[tf.TensorSpec(shape, tf.float32)]).get_concrete_function()
        return tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert()

    weights = tf.constant(np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8))
    return {
        "log_softmax": convert(lambda v: tf.nn.log_softmax(tf.matmul(v, weights))),
        "gelu": convert(lambda v: tf.nn.gelu(tf.matmul(v, weights), approximate=False)),
        "reverse": convert(lambda v: tf.reverse(v, axis=[1]) + 1.0),
        "batch_matmul": convert(lambda v: tf.matmul(v, v, transpose_b=True), shape=(2, 3, 8)),
        "top_k": convert(lambda v: tf.math.top_k(v, 3)[0]),
        "reduce_min": convert(lambda v: tf.reduce_min(v, axis=1)),
        "cumprod_free_exp": convert(lambda v: tf.exp(v) - 1.0),
    }


@pytest.mark.micro
@pytest.mark.slow
def test_micro_verdicts_match_the_tflite_micro_interpreter(tf):
    models = {name: (TFLITE_FIXTURES / f"{name}.tflite").read_bytes() for name in FIXTURES}
    models.update(_generated_models(tf))
    verdicts = {name: check(graphtool.load(data), "micro").compatible for name, data in models.items()}
    assert len(models) >= 10
    assert sum(verdicts.values()) >= 4 and len(verdicts) - sum(verdicts.values()) >= 4
    disagreements = [f"{name}: graphtool {verdicts[name]}, tflite-micro {_tflm_runs(data)}"
                     for name, data in models.items() if verdicts[name] != _tflm_runs(data)]
    assert not disagreements, "\n".join(disagreements)


def test_fixture_verdicts_and_reasons():
    reasons = {name: [f.reason for f in check(graphtool.load(TFLITE_FIXTURES / f"{name}.tflite"), "micro").findings]
               for name in ("dynamic_range", "float16", "strings", "sparse", "flex_op")}
    assert any("hybrid" in r for r in reasons["dynamic_range"])
    assert all("DEQUANTIZE" in r and "float16" in r for r in reasons["float16"]) and reasons["float16"]
    assert any("string" in r for r in reasons["strings"])
    assert any("DENSIFY" in r for r in reasons["sparse"])
    assert any("FlexMatrixDeterminant" in r for r in reasons["flex_op"])


FLOAT16_FIX = "graphtool transform: fold_constants(fold_dequantize=true)"


def test_suggested_fix_makes_the_float16_model_pass_the_check():
    graph = graphtool.load(TFLITE_FIXTURES / "float16.tflite")
    assert {f.fix for f in check(graph, "micro").findings} == {FLOAT16_FIX}
    graphtool.transform(graph, FLOAT16_FIX.split(": ", 1)[1])
    assert check(graph, "micro").compatible


@pytest.mark.micro
def test_suggested_fix_makes_the_float16_model_run_in_tflite_micro():
    graph = graphtool.load(TFLITE_FIXTURES / "float16.tflite")
    assert not _tflm_runs(tflite.write(graph))
    graphtool.transform(graph, FLOAT16_FIX.split(": ", 1)[1])
    assert _tflm_runs(tflite.write(graph))
