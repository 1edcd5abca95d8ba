"""Frozen Keras application graphs for the slow tests, built once with TensorFlow and
cached under build/test-models/ (no downloads: weights=None, seeded initialisers). The cache
file names carry a digest of how each model is built, so a change here rebuilds it."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

CACHE = ROOT / "build" / "test-models"

# kind -> (the Keras that builds it, its keras.applications name, keyword arguments)
MODELS: dict[str, tuple[str, str, dict]] = {
    "resnet50": ("tf_keras", "ResNet50", {}),
    "mobilenetv2": ("keras", "MobileNetV2", {"input_shape": [96, 96, 3], "alpha": 0.35}),
    "mobilenetv3small": ("keras", "MobileNetV3Small", {"input_shape": [64, 64, 3]}),
    "efficientnetb0": ("keras", "EfficientNetB0", {"input_shape": [64, 64, 3]}),
}

_BUILD = r'''
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
package, application, kwargs = json.loads(sys.argv[1])
kwargs = {key: tuple(value) if isinstance(value, list) else value for key, value in kwargs.items()}
out = sys.argv[2]
if package == "tf_keras":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
if package == "tf_keras":
    import tf_keras as keras
else:
    import keras
keras.utils.set_random_seed(0)
model = getattr(keras.applications, application)(weights=None, **kwargs)
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
    """(path, input tensor name, output tensor name) of a frozen model of MODELS."""
    recipe = json.dumps(MODELS[kind])
    digest = hashlib.sha256((_BUILD + recipe).encode()).hexdigest()[:12]
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{kind}-{digest}.pb"
    names = path.with_suffix(".names")
    if not path.exists() or not names.exists():
        result = subprocess.run([sys.executable, "-c", _BUILD, recipe, str(path)], capture_output=True, text=True,
                                env=dict(os.environ, PYTHONHASHSEED="0"))
        if result.returncode:
            raise RuntimeError(result.stderr[-2000:])
        names.write_text(result.stdout.strip().splitlines()[-1])
    inputs, outputs = names.read_text().split()
    return path, inputs, outputs


def kinds() -> list:
    """The kinds of MODELS as pytest parameters, those Keras 2 builds marked `tf_keras`."""
    return [pytest.param(kind, marks=pytest.mark.tf_keras) if keras == "tf_keras" else kind
            for kind, (keras, _, _) in MODELS.items()]


def logits(graph) -> str:
    """The node whose output the model's one Softmax turns into probabilities."""
    (softmax,) = [node.name for node in graph if node.op == "Softmax"]
    return graph.inputs_of(softmax)[0].node
