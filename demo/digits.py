"""scikit-learn's bundled digits, split as the committed fixtures split them (no download)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 20240  # the split every digits model here is trained and tested on (fixtures, demo, tests)
TEST_SAMPLES = 360
IMAGE_SHAPE = (8, 8, 1)
ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "demo"
TEST_SPLIT = ROOT / "fixtures" / "tflite" / "digits_test.npz"


def digits() -> tuple[np.ndarray, np.ndarray]:
    """Every image, in [0, 1] as float32 NHWC, and its int32 label."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.data / 16.0).astype(np.float32).reshape(-1, *IMAGE_SHAPE)
    return images, bunch.target.astype(np.int32)


def digits_split() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train, test) of digits(); the test split is the last TEST_SAMPLES of a seeded
    shuffle (fixtures/tflite/digits_test.npz)."""
    images, labels = digits()
    order = np.random.default_rng(SEED).permutation(len(labels))
    train, test = order[:-TEST_SAMPLES], order[-TEST_SAMPLES:]
    return (images[train], labels[train]), (images[test], labels[test])


def frozen_bn_relu6_cnn(epochs: int) -> tuple[bytes, str, str]:
    """(frozen GraphDef bytes, input node, output node) of a tf_keras CNN with batch norm and
    ReLU6 after every conv and the hidden Dense, trained `epochs` epochs (seeded) on the train
    split — the model the insert_fake_quant test and benchmark quantize."""
    import tensorflow as tf
    import tf_keras
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    (images, labels), _ = digits_split()
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(SEED)
    layers = tf_keras.layers
    inputs = tf_keras.Input(IMAGE_SHAPE, name="image")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    x = layers.ReLU(6.0)(layers.BatchNormalization(momentum=0.9)(x))
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = layers.ReLU(6.0)(layers.BatchNormalization(momentum=0.9)(x))
    x = layers.Conv2D(32, 1, use_bias=False)(x)
    x = layers.ReLU(6.0)(layers.BatchNormalization(momentum=0.9)(x))
    x = layers.Flatten()(layers.MaxPooling2D(2)(x))
    x = layers.ReLU(6.0)(layers.BatchNormalization(momentum=0.9)(layers.Dense(32)(x)))
    model = tf_keras.Model(inputs, layers.Dense(10, activation="softmax")(x))
    model.compile(tf_keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=epochs, batch_size=64, verbose=0)
    spec = tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32, name="image")
    frozen = convert_variables_to_constants_v2(
        tf.function(lambda v: model(v, training=False)).get_concrete_function(spec))
    return (frozen.graph.as_graph_def().SerializeToString(deterministic=True),
            frozen.inputs[0].name.split(":")[0], frozen.outputs[0].name.split(":")[0])
