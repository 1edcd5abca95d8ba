#!/usr/bin/env python
"""Retrain the demo's committed models (`make demo-train`); seeded, a minute or so.

Writes into fixtures/demo/ (or --out):
    float_cnn.tflite          the float tf_keras CNN (conv/depthwise/pointwise/dense, each with
                              batch norm and ReLU6) trained on digits, by the TFLite converter
    pruned_cnn_savedmodel/    the same model pruned by TF-MOT's prune_low_magnitude to 75% and
                              fine-tuned, saved WITHOUT strip_pruning (mask variables inside)
    MANIFEST.json             how they were made and their Keras test accuracies
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

# Before TensorFlow is imported: TF-MOT works on tf_keras (Keras 2) models.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_USE_LEGACY_KERAS"] = "1"

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402

from digits import IMAGE_SHAPE, MODELS, SEED, digits_split  # noqa: E402

TARGET_SPARSITY = 0.75
DENSE_EPOCHS = 30
PRUNE_EPOCHS = 10
FLOAT_TFLITE = "float_cnn.tflite"
SAVED_MODEL = "pruned_cnn_savedmodel"
MAX_BYTES = 2 * 1024 * 1024


def build_cnn(tf_keras):
    """Conv+BN+ReLU6, depthwise+BN+ReLU6, 1x1 conv+BN+ReLU6, max pool, Dense+BN+ReLU6, Dense+softmax."""
    layers = tf_keras.layers
    inputs = tf_keras.Input(IMAGE_SHAPE, name="image")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = layers.ReLU(6.0, name="relu6_conv")(layers.BatchNormalization(momentum=0.9, name="bn_conv")(x))
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = layers.ReLU(6.0, name="relu6_dw")(layers.BatchNormalization(momentum=0.9, name="bn_dw")(x))
    x = layers.Conv2D(32, 1, use_bias=False, name="pw")(x)
    x = layers.ReLU(6.0, name="relu6_pw")(layers.BatchNormalization(momentum=0.9, name="bn_pw")(x))
    x = layers.Flatten(name="flatten")(layers.MaxPooling2D(2, name="pool")(x))
    x = layers.Dense(64, use_bias=False, name="fc")(x)
    x = layers.ReLU(6.0, name="relu6_fc")(layers.BatchNormalization(momentum=0.9, name="bn_fc")(x))
    outputs = layers.Dense(10, activation="softmax", name="probs")(x)
    return tf_keras.Model(inputs, outputs, name="digits_cnn")


def pin_fingerprint_uuid(saved: Path) -> None:
    """fingerprint.pb holds a random uuid: derive it from the content so reruns match."""
    from tensorflow.core.protobuf import fingerprint_pb2

    path = saved / "fingerprint.pb"
    fingerprint = fingerprint_pb2.FingerprintDef.FromString(path.read_bytes())
    fingerprint.uuid = str(fingerprint.saved_model_checksum ^ fingerprint.checkpoint_hash)
    path.write_bytes(fingerprint.SerializeToString(deterministic=True))


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def train(out: Path) -> dict:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    tf.get_logger().setLevel("ERROR")
    tf.config.experimental.enable_op_determinism()
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(SEED)
    (x_train, y_train), (x_test, y_test) = digits_split()

    model = build_cnn(tf_keras)
    model.compile(tf_keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=DENSE_EPOCHS, batch_size=64, shuffle=False, verbose=0)
    float_accuracy = accuracy(model(x_test, training=False).numpy(), y_test)
    # convert now: prune_low_magnitude wraps (and so later prunes) the very same layer objects
    float_tflite = bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())

    schedule = tfmot.sparsity.keras.ConstantSparsity(TARGET_SPARSITY, begin_step=0, frequency=10)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    pruned.compile(tf_keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    pruned.fit(x_train, y_train, epochs=PRUNE_EPOCHS, batch_size=64, shuffle=False, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    pruned_accuracy = accuracy(pruned(x_test, training=False).numpy(), y_test)

    out.mkdir(parents=True, exist_ok=True)
    (out / FLOAT_TFLITE).write_bytes(float_tflite)
    saved = out / SAVED_MODEL
    if saved.exists():
        shutil.rmtree(saved)
    pruned.save(str(saved), save_format="tf", include_optimizer=False)
    pin_fingerprint_uuid(saved)
    if (saved / "assets").is_dir() and not any((saved / "assets").iterdir()):
        (saved / "assets").rmdir()  # git keeps no empty folders
    for path in [out / FLOAT_TFLITE, *saved.rglob("*")]:
        if path.is_file() and path.stat().st_size >= MAX_BYTES:
            raise RuntimeError(f"{path} is {path.stat().st_size} bytes (fixtures stay under 2 MB)")
    return {
        FLOAT_TFLITE: {"producer": f"tf.lite.TFLiteConverter.from_keras_model (tensorflow {tf.__version__})",
                       "keras_test_accuracy": float_accuracy},
        SAVED_MODEL: {"producer": "tfmot.sparsity.keras.prune_low_magnitude, Model.save(save_format='tf'), "
                                  f"no strip_pruning (tfmot {tfmot.__version__})",
                      "keras_test_accuracy": pruned_accuracy, "target_sparsity": TARGET_SPARSITY},
        "training": f"{DENSE_EPOCHS} epochs dense, {PRUNE_EPOCHS} epochs pruned, seed {SEED}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS, help="output folder (default fixtures/demo)")
    args = parser.parse_args(argv)
    manifest = train(args.out)
    (args.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
