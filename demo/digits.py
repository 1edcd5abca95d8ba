"""scikit-learn's bundled digits, split as the committed fixtures split them (no download)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 20240  # the split of fixtures/make_tflite_fixtures.py and fixtures/make_pruned_fixtures.py
TEST_SAMPLES = 360
IMAGE_SHAPE = (8, 8, 1)
ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "fixtures" / "demo"
TEST_SPLIT = ROOT / "fixtures" / "tflite" / "digits_test.npz"


def digits_split() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Images in [0, 1] as float32 NHWC and int32 labels: (train, test); the test split is
    the last TEST_SAMPLES of a seeded shuffle (fixtures/tflite/digits_test.npz)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.data / 16.0).astype(np.float32).reshape(-1, *IMAGE_SHAPE)
    labels = bunch.target.astype(np.int32)
    order = np.random.default_rng(SEED).permutation(len(labels))
    train, test = order[:-TEST_SAMPLES], order[-TEST_SAMPLES:]
    return (images[train], labels[train]), (images[test], labels[test])
