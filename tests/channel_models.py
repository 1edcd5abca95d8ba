"""The CNN the thin_channels and prune_channels tests (and bench_thin_channels) thin: trained on
the digits, seeded, with a residual add, a depthwise convolution, batch norms and a
concatenation; `zero_half` then zeroes half the filters of several layers, as channel
pruning leaves them. Built once per session (functools.cache), as a frozen GraphDef and the
converter's float and full-integer .tflite."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

ZEROED = ("stem", "pw", "mid", "side", "hidden")  # layers whose even filters zero_half zeroes


@dataclass
class ChannelModels:
    graphdef: bytes
    input_name: str   # the GraphDef's placeholder
    output_name: str  # the GraphDef's output node
    float: bytes      # the converter's float .tflite
    int8: bytes | None  # its full-integer .tflite (float inputs and outputs)
    images: np.ndarray  # test images
    labels: np.ndarray


def build(tf_keras, width: int = 16, size: int = 8) -> Any:
    """stem 3x3 conv+BN+ReLU, depthwise 3x3+BN+ReLU6, pw 1x1 conv+BN+ReLU, residual add of
    stem and pw, then a 3x3 conv+BN+ReLU ("mid") and a 1x1 conv with bias ("side")
    concatenated, max pool, global average pool, Dense+ReLU ("hidden"), Dense softmax."""
    layers = tf_keras.layers
    inputs = tf_keras.Input((size, size, 1), name="image")

    def conv_bn(x, name, kernel, activation):
        x = layers.Conv2D(width, kernel, padding="same", use_bias=False, name=name)(x)
        return layers.Activation(activation)(layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x))

    stem = conv_bn(inputs, "stem", 3, "relu")
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(stem)
    x = layers.ReLU(6.0)(layers.BatchNormalization(momentum=0.9, name="dw_bn")(x))
    x = layers.Add()([stem, conv_bn(x, "pw", 1, "relu")])
    x = layers.Concatenate()([conv_bn(x, "mid", 3, "relu"), layers.Conv2D(width, 1, name="side")(x)])
    x = layers.GlobalAveragePooling2D()(layers.MaxPooling2D(2)(x))
    x = layers.Dense(2 * width, activation="relu", name="hidden")(x)
    return tf_keras.Model(inputs, layers.Dense(10, activation="softmax", name="probs")(x))


def zero_half(model) -> None:
    """Zero the even output channels of ZEROED. Of stem and pw the batch norm's gamma and beta
    too (the channel is then exactly zero, as network slimming leaves it); mid keeps its batch
    norm, so its channels become non-zero constants, and hidden keeps its bias."""
    for name in ZEROED:
        layer = model.get_layer(name)
        weights = layer.get_weights()
        weights[0] = weights[0].copy()
        weights[0][..., ::2] = 0
        layer.set_weights(weights)
        if name in ("stem", "pw"):
            bn = model.get_layer(f"{name}_bn")
            gamma, beta, mean, var = bn.get_weights()
            gamma, beta = gamma.copy(), beta.copy()
            gamma[::2] = beta[::2] = 0
            bn.set_weights([gamma, beta, mean, var])


def trained(tf_keras, width: int = 16, size: int = 8, epochs: int = 3, zeroed: bool = True):
    """The model trained `epochs` epochs on the digits train split (seeded), then zero_half;
    with the (train, test) split."""
    from demo.digits import SEED, digits_split

    (x_train, y_train), test = digits_split()
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(SEED)
    model = build(tf_keras, width, size)
    if size != 8:
        x_train = np.kron(x_train, np.ones((1, size // 8, size // 8, 1), np.float32))
    model.compile(tf_keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, shuffle=False, verbose=0)
    if zeroed:
        zero_half(model)
    return model, (x_train, y_train), test


def export(tf, model, size: int, samples: np.ndarray | None) -> tuple[bytes, str, str, bytes, bytes | None]:
    """(frozen GraphDef, input name, output name, float .tflite, int8 .tflite or None)."""
    from tests.passes.tflite.quantize_models import convert, freeze

    frozen = freeze(tf, lambda image: model(image, training=False),
                    [tf.TensorSpec([None, size, size, 1], tf.float32, name="image")])
    graphdef = frozen.graph.as_graph_def().SerializeToString(deterministic=True)
    input_name = frozen.inputs[0].name.split(":")[0]
    output_name = frozen.outputs[0].name.split(":")[0]
    int8 = convert(tf, frozen, "int8", [samples]) if samples is not None else None
    return graphdef, input_name, output_name, convert(tf, frozen), int8


@functools.cache
def channel_models() -> ChannelModels:
    """The digits CNN of `build` (width 16), trained 3 epochs, half its filters zeroed."""
    import tensorflow as tf
    import tf_keras

    model, (x_train, _), (images, labels) = trained(tf_keras)
    graphdef, input_name, output_name, float_model, int8 = export(tf, model, 8, x_train[:100])
    return ChannelModels(graphdef, input_name, output_name, float_model, int8, images, labels)
