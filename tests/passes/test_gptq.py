"""Error-feedback (GPTQ) weight rounding: the input correlations it accumulates, checked against
windows cut out one by one, and the rounding itself, checked by the output error it leaves."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from graphtool.ir.quantization import symmetric
from graphtool.passes.helpers.gptq import SAME, Layer

VALID = 1


def explicit_windows(batch: np.ndarray, kernel, stride, dilation, padding) -> np.ndarray:
    """[positions, kh, kw, C], one output position at a time, as the kernels read them."""
    n, height, width, channels = batch.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    spans = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    if padding == SAME:
        out = (-(-height // sh), -(-width // sw))
        before = [max((o - 1) * s + span - size, 0) // 2
                  for o, s, span, size in zip(out, (sh, sw), spans, (height, width))]
    else:
        out = ((height - spans[0]) // sh + 1, (width - spans[1]) // sw + 1)
        before = [0, 0]
    windows = []
    for sample, y, x in itertools.product(range(n), range(out[0]), range(out[1])):
        window = np.zeros((kh, kw, channels))
        for i, j in itertools.product(range(kh), range(kw)):
            row, col = y * sh + i * dh - before[0], x * sw + j * dw - before[1]
            if 0 <= row < height and 0 <= col < width:
                window[i, j] = batch[sample, row, col]
        windows.append(window)
    return np.array(windows)


@pytest.mark.parametrize("kernel, stride, dilation, padding", [
    ((3, 3), (1, 1), (1, 1), SAME), ((3, 3), (2, 2), (1, 1), SAME), ((3, 2), (2, 1), (1, 2), SAME),
    ((3, 3), (1, 2), (1, 1), VALID), ((1, 1), (1, 1), (1, 1), SAME), ((2, 3), (3, 2), (2, 1), VALID)])
def test_convolution_correlation_matches_windows_cut_one_by_one(kernel, stride, dilation, padding):
    batch = np.random.default_rng(0).normal(size=(2, 7, 9, 3)).astype(np.float32)
    layer = Layer("CONV_2D", kernel=kernel, stride=stride, dilation=dilation, padding=padding, channels=3)
    layer.update(batch[:1])
    layer.update(batch[1:])
    flat = explicit_windows(batch, kernel, stride, dilation, padding).reshape(-1, kernel[0] * kernel[1] * 3)
    np.testing.assert_allclose(layer.hessian, flat.T @ flat, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("stride, padding", [((1, 1), SAME), ((2, 2), SAME), ((1, 1), VALID)])
def test_depthwise_correlation_is_one_per_channel(stride, padding):
    batch = np.random.default_rng(1).normal(size=(3, 6, 5, 4)).astype(np.float32)
    layer = Layer("DEPTHWISE_CONV_2D", kernel=(3, 3), stride=stride, padding=padding, channels=4, multiplier=2)
    layer.update(batch)
    windows = explicit_windows(batch, (3, 3), stride, (1, 1), padding).reshape(-1, 9, 4)
    for channel in range(4):
        np.testing.assert_allclose(layer.hessian[channel], windows[:, :, channel].T @ windows[:, :, channel],
                                   rtol=1e-5, atol=1e-4)


MIXING = np.random.default_rng(7).normal(size=(8, 64))


def correlated_inputs(rng: np.random.Generator, count: int) -> np.ndarray:
    """Inputs that move together, as a layer's inputs do: 8 hidden factors, a little noise."""
    return rng.normal(size=(count, 8)) @ MIXING + 0.1 * rng.normal(size=(count, MIXING.shape[1]))


def output_error(inputs: np.ndarray, weights: np.ndarray, integers: np.ndarray, scales: np.ndarray) -> float:
    return float(((inputs @ (integers * scales[:, None] - weights).T) ** 2).sum())


@pytest.mark.parametrize("axis", [0, None])
def test_error_feedback_lowers_the_output_error_on_the_same_grid(axis):
    """Fully connected, 16 outputs x 64 correlated inputs: the same scales as nearest rounding,
    integers in [-127, 127], and a lower output error on inputs it never saw (measured: 2.5% of
    nearest rounding's)."""
    rng = np.random.default_rng(2)
    weights = rng.normal(size=(16, 64)).astype(np.float32)
    layer = Layer("FULLY_CONNECTED", channels=64)
    layer.update(correlated_inputs(np.random.default_rng(3), 512).reshape(8, 64, 64).astype(np.float32))
    rounded, scales = layer.round(weights, axis, 127)
    nearest, nearest_scales = symmetric(weights, axis, 127)
    np.testing.assert_array_equal(scales, nearest_scales)
    assert rounded.dtype == np.int8 and np.abs(rounded.astype(int)).max() <= 127
    assert (rounded != nearest).any()
    held_out = correlated_inputs(np.random.default_rng(4), 512)
    per_row = np.broadcast_to(scales.astype(np.float64), (16,))
    ours, theirs = (output_error(held_out, weights, q, per_row) for q in (rounded, nearest))
    assert ours < 0.2 * theirs, (ours, theirs)


def test_depthwise_rounding_lowers_each_channels_error():
    rng = np.random.default_rng(5)
    batch = np.cumsum(rng.normal(size=(16, 8, 8, 4)), axis=2).astype(np.float32)  # neighbours correlate
    weights = rng.normal(size=(1, 3, 3, 4)).astype(np.float32)
    layer = Layer("DEPTHWISE_CONV_2D", kernel=(3, 3), channels=4)
    layer.update(batch)
    rounded, scales = layer.round(weights, 3, 127)
    nearest, _ = symmetric(weights, 3, 127)
    windows = explicit_windows(batch, (3, 3), (1, 1), (1, 1), SAME).reshape(-1, 9, 4)
    for channel in range(4):
        w = weights[0, :, :, channel].reshape(9)
        errors = [float(((windows[:, :, channel] @ (q[0, :, :, channel].reshape(9) * scales[channel] - w)) ** 2).sum())
                  for q in (rounded, nearest)]
        assert errors[0] <= errors[1] * 1.0001, (channel, errors)


def test_no_calibration_rounds_to_nearest():
    weights = np.random.default_rng(6).normal(size=(4, 8)).astype(np.float32)
    rounded, scales = Layer("FULLY_CONNECTED", channels=8).round(weights, 0, 127)
    nearest, nearest_scales = symmetric(weights, 0, 127)
    np.testing.assert_array_equal(rounded, nearest)
    np.testing.assert_array_equal(scales, nearest_scales)
