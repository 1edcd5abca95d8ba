"""graphtool.runtime.tensorflow's converter adapters: a frozen GraphDef to a float TFLite
model that LiteRT runs to TensorFlow's outputs; bad graphs are ModelRunErrors naming the source."""
from __future__ import annotations

import numpy as np
import pytest

from graphtool.runtime import ModelRunError
from graphtool.runtime.tensorflow import convert_graphdef, run_graphdef

from ..conftest import GRAPHDEF_FIXTURES, run_litert

pytestmark = pytest.mark.tf
ATOL = 1e-5  # float32 TFLite kernels against TensorFlow's, same weights


@pytest.mark.litert
def test_float_conversion_runs_like_tensorflow():
    data = (GRAPHDEF_FIXTURES / "keras2_cnn.pb").read_bytes()
    model = convert_graphdef(data, ["input"], ["Identity"], input_shapes={"input": [1, 8, 8, 1]})
    assert model[4:8] == b"TFL3"
    image = np.random.default_rng(0).standard_normal((1, 8, 8, 1)).astype(np.float32)
    (expected,) = run_graphdef(data, {"input": image}, ["Identity"])
    (actual,) = run_litert(model, [image])
    np.testing.assert_allclose(actual, expected, atol=ATOL)


def test_unknown_tensor_is_a_model_run_error():
    data = (GRAPHDEF_FIXTURES / "keras2_cnn.pb").read_bytes()
    with pytest.raises(ModelRunError, match="model.pb: TensorFlow cannot import"):
        convert_graphdef(data, ["no_such_input"], ["Identity"], source="model.pb")
