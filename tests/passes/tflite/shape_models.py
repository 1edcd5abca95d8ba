"""Converter-made .tflite models for the set_input_shape tests, each built by TensorFlow's
converter in a child process (one per model: converting two tf.functions with loops in one
process clashes on function names) and cached under build/test-models/ with a digest of the
recipe, so a change here rebuilds it. Seeded; nothing is downloaded (weights=None).

`_b1` models are converted at batch 1 (the converter bakes that batch into constant shapes),
`_dyn` ones with a dynamic batch (shapes computed from SHAPE at run time)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from ...conftest import ROOT

CACHE = ROOT / "build" / "test-models"

_COMMON = r'''
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tensorflow as tf
import tf_keras
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
kind, out = sys.argv[1], sys.argv[2]
batch = 1 if kind.endswith("_b1") else None
tf_keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
L = tf_keras.layers


def save(function):
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    with open(out, "wb") as handle:
        handle.write(converter.convert())


def save_keras(model, shape):
    spec = tf.TensorSpec([batch, *shape], tf.float32, name="x")
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    save(convert_variables_to_constants_v2(function))


def weight(*shape):
    return tf.constant(rng.normal(0, 0.3, shape).astype(np.float32))
'''

# kind prefix -> the code that builds it (after _COMMON)
RECIPES: dict[str, str] = {
    # tf_keras MobileNetV2, 96x96, alpha 0.35, random weights, logits out
    "mobilenetv2": r'''
model = tf_keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None,
                                          classifier_activation=None)
save_keras(model, (96, 96, 3))
''',
    # conv, max pool, Reshape, dense, a softmax over rows of a Reshape, Flatten, the classifier
    "classifier": r'''
inputs = tf_keras.Input((8, 8, 1))
h = L.MaxPooling2D()(L.Conv2D(4, 3, activation="relu")(inputs))
h = L.Dense(16, activation="relu")(L.Reshape((36,))(h))
h = L.Flatten()(L.Softmax()(L.Reshape((4, 4))(h)))
save_keras(tf_keras.Model(inputs, L.Dense(10)(h)), (8, 8, 1))
''',
    # a transformer block: LayerNormalization, MultiHeadAttention (BATCH_MATMUL), dense GELU
    "attention": r'''
tokens = tf_keras.Input((8, 16))
h = L.LayerNormalization()(tokens)
h = L.Add()([tokens, L.MultiHeadAttention(2, 8)(h, h)])
mlp = L.Dense(16)(L.Dense(32, activation="gelu")(L.LayerNormalization()(h)))
save_keras(tf_keras.Model(tokens, L.Add()([h, mlp])), (8, 16))
''',
    # tf_keras LSTM: a WHILE loop whose initial state is a constant of the converted batch
    "lstm": r'''
inputs = tf_keras.Input((5, 3))
save_keras(tf_keras.Model(inputs, L.Dense(2)(L.LSTM(6)(inputs))), (5, 3))
''',
    # a WHILE loop whose body reshapes the batched state and runs an IF
    "loop": r'''
W, b = weight(4, 4), weight(4)


@tf.function(input_signature=[tf.TensorSpec([batch, 4], tf.float32, name="x"),
                              tf.TensorSpec([], tf.int32, name="steps")])
def loop(x, steps):
    def body(i, h):
        pairs = tf.reshape(h, [-1 if batch is None else batch, 2, 2])
        h = tf.reshape(tf.reduce_max(pairs, axis=2, keepdims=True) + pairs, tf.shape(h))
        h = tf.cond(i % 2 == 0, lambda: tf.tanh(tf.matmul(h, W)), lambda: h * 0.5 + b)
        return i + 1, h
    _, h = tf.while_loop(lambda i, h: i < steps, body, [tf.constant(0), x])
    return tf.nn.softmax(h)


save(loop.get_concrete_function())
''',
    # one of most ops the shape rules cover, each an output, on x [batch, 8, 8, 4]
    "zoo": r'''
W1, Wd, Wt, Wfc = weight(3, 3, 4, 6), weight(3, 3, 4, 2), weight(3, 3, 4, 6), weight(256, 5)


@tf.function(input_signature=[tf.TensorSpec([batch, 8, 8, 4], tf.float32, name="x")])
def zoo(x):
    a = tf.nn.relu(tf.nn.conv2d(x, W1, strides=2, padding="SAME"))
    t = tf.transpose(x, [0, 3, 1, 2])
    out = {
        "conv": a, "dw": tf.nn.depthwise_conv2d(x, Wd, [1, 1, 1, 1], "VALID", dilations=[2, 2]),
        "tconv": tf.nn.conv2d_transpose(a, Wt, tf.stack([tf.shape(x)[0], 8, 8, 4]), strides=2, padding="SAME"),
        "avg": tf.nn.avg_pool2d(x, 3, 2, "SAME"), "max": tf.nn.max_pool2d(x, 2, 2, "VALID"),
        "d2s": tf.nn.depth_to_space(x, 2), "s2d": tf.nn.space_to_depth(x, 2),
        "bilinear": tf.image.resize(x, [5, 7], "bilinear"), "nearest": tf.image.resize(x, [16, 16], "nearest"),
        "pad": tf.pad(x, [[0, 0], [1, 2], [3, 0], [0, 0]]),
        "mirror": tf.pad(x, [[0, 0], [1, 1], [2, 2], [0, 0]], "REFLECT"),
        "padv2": tf.pad(x, [[0, 0], [1, 1], [0, 0], [0, 0]], constant_values=2.0),
        "slice_masks": x[:, 1:7:2, ::-1, 2], "slice_new_axis": x[..., tf.newaxis, 1:3],
        "concat": tf.concat([x, x * 2.0], axis=-1), "pack": tf.stack([x, x + 1.0], axis=1),
        "argmax": tf.argmax(x, axis=2), "max_keep": tf.reduce_max(x, axis=[1, 2], keepdims=True),
        "mean": tf.reduce_mean(x, axis=-1), "sum": tf.reduce_sum(x, axis=1),
        "gather": tf.gather(x, [0, 2, 2], axis=2), "tile": tf.tile(x, [1, 2, 1, 1]),
        "squeeze": tf.squeeze(tf.expand_dims(x, 1) * 3.0, 1), "slice": tf.slice(x, [0, 1, 1, 0], [-1, 3, 4, 2]),
        "softmax": tf.nn.softmax(x), "log_softmax": tf.nn.log_softmax(x), "dense": tf.reshape(x, [-1, 256]) @ Wfc,
        "activations": tf.sigmoid(x) * tf.tanh(x) - tf.nn.relu6(x), "hard_swish": x * tf.nn.relu6(x + 3.0) / 6.0,
        "leaky": tf.nn.leaky_relu(x), "cast": tf.cast(x > 0.0, tf.int32),
        "batch_matmul": tf.matmul(t, t, transpose_b=True),
        "broadcast_to": tf.broadcast_to(tf.reduce_sum(x, [1, 2, 3], keepdims=True), tf.shape(x)),
    }
    halves = tf.split(x, 2, axis=3)
    parts = tf.split(x, [1, -1, 2], axis=1)
    out.update(split0=halves[0], split1=halves[1] * 2.0, split_v0=parts[0], split_v1=parts[1] * 2.0,
               split_v2=parts[2] - 1.0)
    for i, row in enumerate(tf.unstack(x, axis=2)[:2]):
        out[f"unstack{i}"] = row + 1.0
    return out


save(zoo.get_concrete_function())
''',
}


def model(kind: str) -> bytes:
    """The .tflite of `kind` (RECIPES' key + "_b1" or "_dyn"), built once."""
    recipe = _COMMON + RECIPES[kind.rsplit("_", 1)[0]]
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"shape-{kind}-{digest}.tflite"
    if not path.exists():
        partial = path.with_suffix(".partial")
        result = subprocess.run([sys.executable, "-c", recipe, kind, str(partial)], capture_output=True, text=True,
                                env=dict(os.environ, PYTHONHASHSEED="0"))
        if result.returncode:
            raise RuntimeError(result.stderr[-2000:])
        partial.replace(path)
    return path.read_bytes()
