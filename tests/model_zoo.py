"""Frozen Keras application graphs for the slow tests, built once with TensorFlow and
cached under build/test-models/ (no downloads: weights=None, seeded initialisers)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

CACHE = ROOT / "build" / "test-models"

_BUILD = r'''
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
kind, out = sys.argv[1], sys.argv[2]
if kind == "resnet50":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
if kind == "resnet50":
    import tf_keras as keras
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None)
else:
    import keras
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), alpha=0.35)
rng = np.random.default_rng(0)
for layer in model.layers:  # give every batch norm statistics worth folding
    if "BatchNormalization" in type(layer).__name__:
        weights = layer.get_weights()
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if i in (0, 3)
                           else rng.normal(0, 0.1, w.shape).astype(np.float32) for i, w in enumerate(weights)])
spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="input")
function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
frozen = convert_variables_to_constants_v2(function)
with open(out, "wb") as handle:
    handle.write(frozen.graph.as_graph_def().SerializeToString(deterministic=True))
print(frozen.inputs[0].name, frozen.outputs[0].name)
'''


def frozen_model(kind: str) -> tuple[Path, str, str]:
    """(path, input tensor name, output tensor name) of a frozen resnet50 / mobilenetv2."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{kind}.pb"
    names = CACHE / f"{kind}.names"
    if not path.exists() or not names.exists():
        result = subprocess.run([sys.executable, "-c", _BUILD, kind, str(path)], capture_output=True, text=True,
                                env=dict(os.environ, PYTHONHASHSEED="0"))
        if result.returncode:
            raise RuntimeError(result.stderr[-2000:])
        names.write_text(result.stdout.strip().splitlines()[-1])
    inputs, outputs = names.read_text().split()
    return path, inputs, outputs
