"""Build the benchmark models into bench/models/ (gitignored; rebuilt on demand).

    python bench/make_models.py            # build the missing ones
    python bench/make_models.py --force    # rebuild all of them

Each model is a frozen GraphDef or a float TFLite flatbuffer made with TensorFlow from
random (seeded) weights, or trained (seeded) on scikit-learn's bundled digits: nothing is
downloaded. Add a model by adding a builder to MODELS. A frozen GraphDef `NAME.pb` comes
with `NAME.json`, its input and output tensor names; a builder may return further files
beside its model (a `WithFiles`), such as the digits CNN's test split.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable, NamedTuple

from quiet_tf import import_tensorflow  # sets TF_CPP_MIN_LOG_LEVEL=3 before TensorFlow loads

MODELS_DIR = Path(__file__).resolve().parent / "models"
SEED = 0


class Frozen(NamedTuple):
    """A frozen GraphDef's bytes and the names of its input and output tensors."""
    data: bytes
    inputs: list[str]
    outputs: list[str]


class WithFiles(NamedTuple):
    """A model's bytes and further files written beside it in MODELS_DIR (name -> bytes)."""
    data: bytes
    files: dict[str, bytes]


def _freeze(model, input_shape: tuple[int | None, ...]) -> Frozen:
    """A Keras model as a frozen GraphDef: inference mode, variables as constants."""
    tf = import_tensorflow()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec(input_shape, tf.float32, name="input")
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete)
    return Frozen(frozen.graph.as_graph_def().SerializeToString(deterministic=True),
                  [t.name for t in frozen.inputs], [t.name for t in frozen.outputs])


def _fresh_keras() -> ModuleType:
    """tf_keras with a cleared session (layer names restart, whatever was built before)
    and seeded random weights, so each builder's bytes do not depend on build order."""
    import_tensorflow()
    import tf_keras

    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(SEED)
    return tf_keras


def build_resnet50() -> Frozen:
    """tf_keras ResNet50 with random weights (~100 MB of float32 constants)."""
    tf_keras = _fresh_keras()
    model = tf_keras.applications.ResNet50(weights=None)
    return _freeze(model, (None, 224, 224, 3))


def _fresh_keras3() -> ModuleType:
    """Keras 3 (`import keras`, not tf_keras) with a cleared session and seeded weights."""
    import_tensorflow()
    import keras

    if not keras.__version__.startswith("3."):
        raise RuntimeError(f"`import keras` gave Keras {keras.__version__}, not Keras 3 "
                           "(is TF_USE_LEGACY_KERAS set?)")
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    return keras


def _randomise_batch_norms(model) -> None:
    """Seeded non-trivial batch-norm parameters, so that folding them changes the weights:
    gamma and variance uniform(0.5, 1.5), beta and mean normal(0, 0.1)."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    for layer in model.layers:
        if type(layer).__name__ != "BatchNormalization":
            continue
        gamma, beta, mean, variance = (w.shape for w in layer.get_weights())
        layer.set_weights([rng.uniform(0.5, 1.5, gamma).astype(np.float32),
                           rng.normal(0.0, 0.1, beta).astype(np.float32),
                           rng.normal(0.0, 0.1, mean).astype(np.float32),
                           rng.uniform(0.5, 1.5, variance).astype(np.float32)])


def build_mobilenetv2() -> Frozen:
    """Keras 3 MobileNetV2 (224x224, alpha 1.0), random weights and batch-norm statistics."""
    keras = _fresh_keras3()
    model = keras.applications.MobileNetV2(weights=None)
    _randomise_batch_norms(model)
    return _freeze(model, (None, 224, 224, 3))


def _to_tflite(model, input_shape: tuple[int | None, ...], freeze: bool = False, int8_weights: bool = False) -> bytes:
    """A Keras model as float TFLite flatbuffer bytes (TFLiteConverter, no optimizations).
    With `freeze`, variables become constants first (Keras 3: the converter would otherwise
    keep them as resource variables, VAR_HANDLE + READ_VARIABLE, with no weights in the file).
    With `int8_weights`, the converter's dynamic-range quantization (Optimize.DEFAULT, no
    representative data): int8 weights, float activations."""
    tf = import_tensorflow()
    spec = tf.TensorSpec(input_shape, tf.float32, name="input")
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    if freeze:
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        concrete = convert_variables_to_constants_v2(concrete)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if int8_weights:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def build_dense_200mb() -> bytes:
    """tf_keras MLP 2048 -> 4096 -> 4096 -> 4096 -> 2048: ~201 MB of float32 kernels."""
    tf_keras = _fresh_keras()
    widths = (4096, 4096, 4096, 2048)
    inputs = tf_keras.Input((2048,))
    x = inputs
    for i, width in enumerate(widths):
        x = tf_keras.layers.Dense(width, activation="relu" if i < len(widths) - 1 else None)(x)
    return _to_tflite(tf_keras.Model(inputs, x), (1, 2048))


def build_mobilenetv2_tflite() -> bytes:
    """Keras 3 MobileNetV2 (224x224, alpha 1.0) as float TFLite: random weights and batch-norm
    statistics (as for the frozen one), logits out (classifier_activation=None), so output
    error is measured before a softmax flattens it."""
    keras = _fresh_keras3()
    model = keras.applications.MobileNetV2(weights=None, classifier_activation=None)
    _randomise_batch_norms(model)
    return _to_tflite(model, (1, 224, 224, 3), freeze=True)


IMAGE_SIZE = 224
NATURAL_SOFTMAX = "mobilenetv2_natural_softmax.tflite"  # written beside mobilenetv2_natural.tflite
BN_STATISTICS_SAMPLES = 32


def natural_images(rng, count: int, size: int = IMAGE_SIZE):
    """`count` seeded images with natural images' statistics, as MobileNetV2 takes them: a
    1/f amplitude spectrum (power falling as 1/f², as photographs' does) per channel, the
    channels mixed so they correlate as colour channels do, each image scaled to [-1, 1] (the
    range of MobileNetV2's preprocessing). float32 NHWC [count, size, size, 3]."""
    import numpy as np

    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :]
    frequency = np.hypot(fx, fy)
    frequency[0, 0] = 1.0 / size
    images = []
    for _ in range(count):
        spectrum = (rng.standard_normal((3, *frequency.shape))
                    + 1j * rng.standard_normal((3, *frequency.shape))) / frequency
        mix = np.eye(3) + 0.3 * rng.standard_normal((3, 3))
        image = np.einsum("ij,jhw->hwi", mix, np.fft.irfft2(spectrum, s=(size, size)))
        images.append((image - image.min()) / (image.max() - image.min()) * 2 - 1)
    return np.stack(images).astype(np.float32)


def _data_batch_norms(model, images) -> None:
    """Batch-norm moving statistics set to the batch statistics of `images` flowing through
    the model (one training-mode pass with momentum 0), so each layer's activations are
    normalised as after real training; without it, random weights and statistics shrink the
    signal layer by layer until the output no longer depends on the input."""
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            layer.momentum = 0.0
    model(images, training=True)


def build_mobilenetv2_natural_tflite() -> WithFiles:
    """Keras 3 MobileNetV2 (224x224, alpha 1.0) as float TFLite with activations that carry
    the input: random weights, random batch-norm scales and offsets, batch-norm statistics
    from BN_STATISTICS_SAMPLES natural_images (seed SEED). Logits out; the same model with a
    softmax after the logits goes to NATURAL_SOFTMAX."""
    import numpy as np

    keras = _fresh_keras3()
    model = keras.applications.MobileNetV2(weights=None, classifier_activation=None)
    _randomise_batch_norms(model)
    _data_batch_norms(model, natural_images(np.random.default_rng(SEED), BN_STATISTICS_SAMPLES))
    softmax = keras.Model(model.input, keras.layers.Softmax()(model.output))
    shape = (1, IMAGE_SIZE, IMAGE_SIZE, 3)
    return WithFiles(_to_tflite(model, shape, freeze=True), {NATURAL_SOFTMAX: _to_tflite(softmax, shape, freeze=True)})


def build_efficientnetb0_tflite() -> bytes:
    """Keras 3 EfficientNetB0 (224x224) with random weights and batch-norm statistics, int8
    weights by the converter's dynamic-range quantization: a deployed-size model (~6 MB, a few
    hundred operators) for the cold-start benchmark."""
    keras = _fresh_keras3()
    model = keras.applications.EfficientNetB0(weights=None)
    _randomise_batch_norms(model)
    return _to_tflite(model, (1, 224, 224, 3), freeze=True, int8_weights=True)


DIGITS_TEST = "digits_test.npz"  # the digits CNN's held-out split: x [N, 8, 8, 1] in [0, 1], y [N]
DIGITS_TEST_FRACTION = 0.2
DIGITS_EPOCHS = 30


def digits_split():
    """scikit-learn's bundled 8x8 digits scaled to [0, 1], as NHWC float32, split seeded and
    stratified: (x_train, x_test, y_train, y_test)."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=DIGITS_TEST_FRACTION, random_state=SEED, stratify=y)


def build_digits_cnn() -> WithFiles:
    """tf_keras CNN trained DIGITS_EPOCHS epochs on the digits (deterministic ops, seeded), as
    float TFLite, logits out; its test split goes to DIGITS_TEST. Conv 3x3x1x16 (144 weights,
    under the usual 1024-element quantization threshold), conv 3x3x16x32 (4,608), conv
    3x3x32x64 (18,432), dense 256x64 (16,384), dense 64x10 (640)."""
    import io

    import numpy as np

    tf = import_tensorflow()
    tf.config.experimental.enable_op_determinism()
    tf_keras = _fresh_keras()
    layers = tf_keras.layers
    model = tf_keras.Sequential([
        tf_keras.Input((8, 8, 1)),
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(10),
    ])
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3), metrics=["accuracy"],
                  loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x_train, x_test, y_train, y_test = digits_split()
    model.fit(x_train, y_train, batch_size=32, epochs=DIGITS_EPOCHS, shuffle=True, verbose=0)
    split = io.BytesIO()
    np.savez(split, x=x_test, y=y_test)
    return WithFiles(_to_tflite(model, (1, 8, 8, 1)), {DIGITS_TEST: split.getvalue()})


MOBILENET_DIGITS_DATA = "mobilenetv2_digits_data.npz"  # calibration (training) images; the test split, labels
MOBILENET_DIGITS_SIZE = 64
MOBILENET_DIGITS_EPOCHS = 5
MOBILENET_DIGITS_CALIBRATION = 256


def build_mobilenetv2_digits_tflite() -> WithFiles:
    """Keras 3 MobileNetV2 (alpha 1.0, 10 classes, logits out) trained MOBILENET_DIGITS_EPOCHS
    epochs on the digits (digits_split) resized to 64x64 (bilinear), in [-1, 1] on three
    channels: a trained MobileNetV2, whose layers' inputs correlate as a trained network's do
    (~96 % test accuracy). Batch-norm statistics are then set from 512 training images
    (_data_batch_norms), as a few epochs leave the moving averages behind. Its first
    MOBILENET_DIGITS_CALIBRATION training images and the test split with labels go to
    MOBILENET_DIGITS_DATA."""
    import io

    import numpy as np

    tf = import_tensorflow()
    keras = _fresh_keras3()
    x_train, x_test, y_train, y_test = digits_split()

    def prepare(images):
        size = (MOBILENET_DIGITS_SIZE, MOBILENET_DIGITS_SIZE)
        resized = tf.image.resize(images, size, method="bilinear").numpy()
        return np.repeat(resized * 2 - 1, 3, axis=-1).astype(np.float32)

    train, test = prepare(x_train), prepare(x_test)
    model = keras.applications.MobileNetV2(input_shape=train.shape[1:], weights=None, classes=10,
                                           classifier_activation=None)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train, y_train, epochs=MOBILENET_DIGITS_EPOCHS, batch_size=32, verbose=0)
    _data_batch_norms(model, train[:512])
    data = io.BytesIO()
    np.savez(data, calibration=train[:MOBILENET_DIGITS_CALIBRATION], test=test, labels=y_test)
    return WithFiles(_to_tflite(model, (1, *train.shape[1:]), freeze=True), {MOBILENET_DIGITS_DATA: data.getvalue()})


OPS_BLOCKS = 233  # 3 operators each (FULLY_CONNECTED, ADD, TANH): 699 in all


def build_ops_700() -> bytes:
    """tf_keras residual chain on a [1, 16] input: OPS_BLOCKS x (Dense 16 + add + tanh)."""
    tf, tf_keras = import_tensorflow(), _fresh_keras()
    inputs = tf_keras.Input((16,))
    x = inputs
    for _ in range(OPS_BLOCKS):
        h = tf_keras.layers.Dense(16, activation="relu")(x)
        x = tf_keras.layers.Activation(tf.tanh)(tf_keras.layers.Add()([x, h]))
    return _to_tflite(tf_keras.Model(inputs, x), (1, 16))


# file name in MODELS_DIR -> builder returning the file's bytes (with names, for a GraphDef)
MODELS: dict[str, Callable[[], bytes | Frozen | WithFiles]] = {
    "resnet50_frozen.pb": build_resnet50,
    "mobilenetv2_frozen.pb": build_mobilenetv2,
    "dense_200mb.tflite": build_dense_200mb,
    "ops_700.tflite": build_ops_700,
    "digits_cnn.tflite": build_digits_cnn,
    "mobilenetv2.tflite": build_mobilenetv2_tflite,
    "efficientnetb0_int8w.tflite": build_efficientnetb0_tflite,
    "mobilenetv2_natural.tflite": build_mobilenetv2_natural_tflite,
    "mobilenetv2_digits.tflite": build_mobilenetv2_digits_tflite,
}

# the further files a model's builder writes (WithFiles), which must exist for it to be built
MODEL_FILES: dict[str, tuple[str, ...]] = {"digits_cnn.tflite": (DIGITS_TEST,),
                                           "mobilenetv2_natural.tflite": (NATURAL_SOFTMAX,),
                                           "mobilenetv2_digits.tflite": (MOBILENET_DIGITS_DATA,)}


def model_path(name: str) -> Path:
    """Where the model `name` lives (built or not)."""
    return MODELS_DIR / name


def names_path(name: str) -> Path:
    """Where a frozen GraphDef's input and output names live: NAME.json beside NAME.pb."""
    return model_path(name).with_suffix(".json")


def tensor_names(name: str) -> dict[str, list[str]]:
    """{"inputs": [...], "outputs": [...]}: the tensor names of the built GraphDef `name`."""
    return json.loads(names_path(name).read_text())


def _write(path: Path, data: bytes) -> None:
    """Write atomically, so an interrupted build never leaves a truncated model."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _is_built(name: str) -> bool:
    """The model exists, and so do its tensor names if it is a GraphDef and its further files."""
    return (model_path(name).exists() and (not name.endswith(".pb") or names_path(name).exists())
            and all(model_path(extra).exists() for extra in MODEL_FILES.get(name, ())))


def build(name: str) -> None:
    """Build the model `name`, and write its tensor names if it is a frozen GraphDef, or its
    further files."""
    built = MODELS[name]()
    if isinstance(built, Frozen):
        names = {"inputs": built.inputs, "outputs": built.outputs}
        _write(names_path(name), (json.dumps(names, indent=2) + "\n").encode())
        built = built.data
    elif isinstance(built, WithFiles):
        for extra, data in built.files.items():
            _write(model_path(extra), data)
        built = built.data
    _write(model_path(name), built)


def ensure_models(force: bool = False, names: list[str] | None = None) -> list[Path]:
    """Build every model in `names` (default: all) that is missing, or all with `force`."""
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names or list(MODELS):
        path = model_path(name)
        if force or not _is_built(name):
            print(f"building {path} ...", file=sys.stderr, flush=True)
            build(name)
        print(f"{path}: {path.stat().st_size:,} bytes", file=sys.stderr)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild models that already exist")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"models to build (default: all of {', '.join(MODELS)})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    ensure_models(force=args.force, names=args.names or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
