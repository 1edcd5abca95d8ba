"""The models the quantize_nodes tests quantize, made in the test run by TensorFlow's converter
from Keras models (tf_keras) and tf.functions: each float .tflite, and the converter's own
full-integer conversions of the same model with the same calibration samples, to compare
with. Frozen concrete functions convert in a second where from_keras_model takes twenty."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

CALIBRATION_SAMPLES = 200  # digits training images both tools calibrate on
DIGITS_EPOCHS = 10
OPS_SHAPE = (1, 4, 4, 8)


@dataclass
class Models:
    float: bytes
    samples: dict[str, np.ndarray]  # calibration samples by input name, samples on the first axis
    int8: bytes | None = None  # the converter's full-integer model (float inputs and outputs)
    int16: bytes | None = None  # the converter's 16x8 model


def freeze(tf, function: Callable, specs: list) -> Any:
    """A frozen concrete function of `function` (variables as constants)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(tf.function(function, input_signature=specs).get_concrete_function())


def convert(tf, frozen, mode: str | None = None, samples: list[np.ndarray] | None = None) -> bytes:
    """The converter's float model (mode None), or its full-integer (int8) or 16x8 (int16) one,
    calibrated on `samples` (arrays in input order) one sample at a time; inputs and outputs
    stay float, as quantize_nodes leaves them."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if mode is not None:
        count = len(samples[0])

        def representative_dataset():
            for index in range(count):
                yield [array[index:index + 1] for array in samples]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = (
            [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] if mode == "int8" else
            [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8])
    return bytes(converter.convert())


def _input_names(data: bytes) -> list[str]:
    import graphtool

    return graphtool.load(data).inputs


def digits(tf) -> Models:
    """The demo's digits CNN (conv, depthwise, 1x1 conv, dense; each with batch norm and ReLU6;
    softmax), trained DIGITS_EPOCHS epochs, seeded; the converter's int8 and 16x8 models of it
    calibrated on the first CALIBRATION_SAMPLES training images."""
    import tf_keras

    from demo.digits import IMAGE_SHAPE, SEED, digits_split
    from demo.train import build_cnn

    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(SEED)
    (x_train, y_train), _ = digits_split()
    model = build_cnn(tf_keras)
    model.compile(tf_keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=DIGITS_EPOCHS, batch_size=64, shuffle=False, verbose=0)
    frozen = freeze(tf, lambda image: model(image, training=False),
                    [tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32, name="image")])
    calibration = x_train[:CALIBRATION_SAMPLES]
    data = convert(tf, frozen)
    return Models(data, dict(zip(_input_names(data), [calibration])),
                  convert(tf, frozen, "int8", [calibration]), convert(tf, frozen, "int16", [calibration]))


def mobilenet(tf, batch_statistics: bool = False) -> Models:
    """tf_keras's MobileNetV2 (alpha 0.35, 96x96 RGB, weights=None: seeded random weights,
    batch norms at their initial statistics; with batch_statistics they take those of one
    random batch instead, so activations keep their size through the network), softmax over
    1000 classes; calibration samples uniform in [-1, 1], the input range it expects."""
    import tf_keras

    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None)
    rng = np.random.default_rng(0)
    if batch_statistics:
        for layer in model.layers:
            if isinstance(layer, tf_keras.layers.BatchNormalization):
                layer.momentum = 0.0
        model(rng.uniform(-1, 1, (16, 96, 96, 3)).astype(np.float32), training=True)
    frozen = freeze(tf, lambda x: model(x, training=False), [tf.TensorSpec([None, 96, 96, 3], tf.float32, name="x")])
    data = convert(tf, frozen)
    return Models(data, dict(zip(_input_names(data), [rng.uniform(-1, 1, (32, 96, 96, 3)).astype(np.float32)])))


def attention(tf) -> Models:
    """A transformer block in tf_keras: LayerNormalization, MultiHeadAttention (2 heads of 8),
    residual Add, LayerNormalization, Dense(32, gelu), Dense(16), residual Add, on 8 tokens of
    16; the converter's int8 model of it."""
    import tf_keras

    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(0)
    layers = tf_keras.layers
    tokens = tf_keras.Input((8, 16), batch_size=1)
    h = layers.LayerNormalization()(tokens)
    h = layers.Add()([tokens, layers.MultiHeadAttention(2, 8)(h, h)])
    mlp = layers.Dense(16)(layers.Dense(32, activation="gelu")(layers.LayerNormalization()(h)))
    model = tf_keras.Model(tokens, layers.Add()([h, mlp]))
    frozen = freeze(tf, lambda x: model(x, training=False), [tf.TensorSpec([1, 8, 16], tf.float32, name="tokens")])
    samples = np.random.default_rng(0).standard_normal((64, 8, 16)).astype(np.float32)
    data = convert(tf, frozen)
    return Models(data, dict(zip(_input_names(data), [samples])), convert(tf, frozen, "int8", [samples]))


def ops(tf) -> Models:
    """One model with a branch per operator of quantize_nodes' rule table (and a few without an
    integer kernel), each output its own: a and b are first multiplied by a constant, so that
    every branch starts at an integer operator. The converter's int8 model of it, allowed to
    keep float what it cannot quantize."""
    rng = np.random.default_rng(0)
    c1, c2 = (rng.uniform(0.5, 1.5, (1, 1, 8)).astype(np.float32) for _ in range(2))
    constant = rng.standard_normal((1, 1, 8)).astype(np.float32)
    weights = (rng.standard_normal((8, 8)) * 0.3).astype(np.float32)
    kernel = (rng.standard_normal((3, 3, 8, 4)) * 0.3).astype(np.float32)
    transposed = (rng.standard_normal((3, 3, 8, 4)) * 0.3).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    alpha = rng.uniform(0.05, 0.3, (1, 1, 8)).astype(np.float32)

    def branches(a, b):
        a, b = a * c1, b * c2
        positive = tf.abs(a) + 0.5
        pad = [[0, 0], [1, 1], [1, 1], [0, 0]]
        return {
            "add": a + b, "sub": a - b, "mul": a * b, "add_const": a + constant, "mul_const": a * constant,
            "squared_difference": tf.math.squared_difference(a, b), "div": a / (tf.abs(b) + 1.0),
            "maximum": tf.maximum(a, b), "minimum": tf.minimum(a, b * 0.5), "concatenation": tf.concat([a, b * 2], -1),
            "pack": tf.stack([a, b], 1), "unpack": tf.unstack(b, axis=1)[2] * 1.0,
            "split": tf.split(a, 2, -1)[1] + 0.0, "reshape": tf.reshape(a * 1.5, (1, 16, 8)),
            "transpose": tf.transpose(a, [0, 2, 1, 3]), "strided_slice": a[:, 1:3],
            "slice": tf.slice(b, [0, 0, 0, 0], [1, 2, 2, 8]), "pad": tf.pad(a, pad),
            "padv2": tf.pad(a, pad, constant_values=0.5), "mirror_pad": tf.pad(a, pad, mode="REFLECT"),
            "max_pool": tf.nn.max_pool2d(a, 2, 2, "VALID"), "average_pool": tf.nn.avg_pool2d(b, 2, 2, "VALID"),
            "resize_bilinear": tf.image.resize(a, (8, 8)), "resize_nearest": tf.image.resize(b, (8, 8), "nearest"),
            "space_to_depth": tf.nn.space_to_depth(a, 2), "depth_to_space": tf.nn.depth_to_space(b, 2),
            "batch_to_space": tf.compat.v1.batch_to_space(tf.concat([a, a, b, b], 0), [[0, 0], [0, 0]], 2),
            "gather": tf.gather(a, [2, 0, 1], axis=2), "tile": tf.tile(b, [1, 2, 1, 1]),
            "expand_dims": tf.expand_dims(a, 1) * 1.0, "squeeze": tf.squeeze(tf.reduce_mean(a, 1, keepdims=True), 1),
            "mean": tf.reduce_mean(a, [1, 2]), "sum": tf.reduce_sum(b, [1, 2]), "reduce_max": tf.reduce_max(a, [1, 2]),
            "reduce_min": tf.reduce_min(b, [1, 2]), "relu": tf.nn.relu(a), "relu6": tf.nn.relu6(b * 4),
            "relu_n1_to_1": tf.clip_by_value(a, -1.0, 1.0), "leaky_relu": tf.nn.leaky_relu(a, 0.2),
            "prelu": tf.maximum(a, 0.0) + alpha * tf.minimum(a, 0.0), "hard_swish": a * tf.nn.relu6(a + 3) / 6,
            "gelu": tf.nn.gelu(b, approximate=True), "logistic": tf.sigmoid(a), "tanh": tf.tanh(b),
            "softmax": tf.nn.softmax(a), "log_softmax": tf.nn.log_softmax(b), "l2_normalization": tf.math.l2_normalize(a, -1),
            "exp": tf.exp(a * 0.5), "log": tf.math.log(positive), "sqrt": tf.sqrt(positive),
            "rsqrt": tf.math.rsqrt(positive), "abs": tf.abs(b), "neg": -a, "square": tf.square(b),
            "conv": tf.nn.conv2d(a, kernel, 1, "SAME") + bias,
            "depthwise": tf.nn.depthwise_conv2d(b, kernel[..., :1], [1, 1, 1, 1], "SAME"),
            "transpose_conv": tf.nn.conv2d_transpose(tf.nn.conv2d(a, kernel, 1, "SAME"), transposed, (1, 8, 8, 8), 2,
                                                     "SAME"),
            "fully_connected": tf.matmul(tf.reshape(a, (16, 8)), weights) + 0.1,
            "batch_matmul": tf.matmul(a, b, transpose_b=True),
            "argmax": tf.cast(tf.argmax(a, -1), tf.float32), "argmin": tf.cast(tf.argmin(b, -1), tf.float32),
            "select": tf.where(a > 0, a, b), "select_v2": tf.where(a[..., :1] > 0, a, b * 0.5),
            "broadcast_to": tf.broadcast_to(tf.reduce_mean(a, -1, keepdims=True), OPS_SHAPE),
            "gather_nd": tf.gather_nd(b, [[0, 1], [0, 3]]), "reduce_prod": tf.reduce_prod(b * 0.1 + 1.0, [1]),
            "split_v": tf.split(b, [3, 5], -1)[1] * 1.0, "relu_0_to_1": tf.clip_by_value(b, 0.0, 1.0),
        }

    specs = [tf.TensorSpec(OPS_SHAPE, tf.float32, name="a"), tf.TensorSpec(OPS_SHAPE, tf.float32, name="b")]
    module = tf.Module()
    module.branches = tf.function(branches, input_signature=specs)
    function = module.branches.get_concrete_function()
    samples = {name: rng.standard_normal((64, *OPS_SHAPE[1:])).astype(np.float32) for name in ("a", "b")}

    def converted(mode: str | None) -> bytes:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
        if mode is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ({k: v[i:i + 1] for k, v in samples.items()} for i in range(16))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        return bytes(converter.convert())

    return Models(converted(None), samples, converted("int8"))
