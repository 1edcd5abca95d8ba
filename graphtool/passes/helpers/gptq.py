"""Weight rounding with error feedback (GPTQ: Frantar et al., "GPTQ: Accurate Post-Training
Quantization for Generative Pre-trained Transformers", 2022, after Optimal Brain Quantization).

Rounding each weight to its nearest grid point ignores that a layer's inputs are correlated:
the error one weight leaves can be cancelled by nudging the weights beside it that have not
been rounded yet. With H = sum of x x^T over the layer's calibrated inputs (one x per output
position: a patch of the input for a convolution), the output error of one output channel's
weight error dw is dw^T H dw; rounding the weights one input at a time, each rounding error
is carried onto the rest through the Cholesky factor of H^-1. The grid (one scale per output
channel, max|w| / 127) is the nearest rounding's: only which grid point each weight takes
changes, so the model's format, scales and biases are those of the plain rounding.

Per layer, H costs d x d float64 (d: inputs per output, kh * kw * in_channels); layers whose
d passes MAX_INPUTS round to nearest. Depthwise convolutions get one kh*kw-sized H per channel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ...ir import Graph, Node, Ref
from ...ir.quantization import symmetric

OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
WEIGHT_SLOT = 1
MAX_INPUTS = 4096  # d above this rounds to nearest: H would take more than 128 MB
DAMPING = 0.01  # added to H's diagonal, times its mean, so H is well conditioned (as GPTQ does)
BLOCK = 128  # columns rounded together before the rest is updated (the lazy batch update)
PATCH_ELEMENTS = 1 << 22  # patch values made at once while accumulating a convolution's H
SAME = 0  # the schema's Padding enum (VALID = 1)


@dataclass
class Layer:
    """One operator's input correlation H, accumulated over calibration batches."""

    op: str
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: int = SAME
    channels: int = 0  # input channels the weights read
    multiplier: int = 1  # DEPTHWISE_CONV_2D's depth multiplier
    hessian: np.ndarray | None = None
    rounded: dict[tuple, np.ndarray] = field(default_factory=dict)  # (scales, axis) -> int8 weights

    def update(self, values: np.ndarray) -> None:
        """Add one batch of the layer's input (NHWC for a convolution, [..., d] for FULLY_CONNECTED);
        a batch of another width than the weights read (a dynamic shape) adds nothing."""
        if values.shape[-1] != self.channels or (self.op != "FULLY_CONNECTED" and values.ndim != 4):
            return
        if self.op == "FULLY_CONNECTED":
            rows = np.asarray(values, np.float32).reshape(-1, self.channels)
            self._add(rows.T @ rows)
            return
        batch = np.asarray(values, np.float32)
        per_sample = math.prod(self._out_size(batch.shape[1:3])) * self.kernel[0] * self.kernel[1] * self.channels
        step = max(1, PATCH_ELEMENTS // max(per_sample, 1))
        for start in range(0, batch.shape[0], step):
            patches = self._patches(batch[start:start + step])  # [positions, kh*kw, C]
            if self.op == "DEPTHWISE_CONV_2D":
                by_channel = np.ascontiguousarray(patches.transpose(2, 1, 0))  # [C, kk, P]
                self._add(by_channel @ by_channel.transpose(0, 2, 1))
            else:
                flat = patches.reshape(patches.shape[0], -1)
                self._add(flat.T @ flat)

    def round(self, weights: np.ndarray, axis: int | None, qmax: int) -> tuple[np.ndarray, np.ndarray]:
        """(int8 weights, scales) on symmetric()'s grid, each weight's rounding chosen with
        error feedback. The scales are symmetric()'s, so only which grid point differs."""
        nearest, scales = symmetric(weights, axis, qmax)
        if self.hessian is None:
            return nearest, scales
        key = (scales.tobytes(), axis)
        if key not in self.rounded:
            self.rounded[key] = self._round(np.asarray(weights, np.float64), scales, axis, qmax)
        return self.rounded[key], scales

    # -- accumulating H ----------------------------------------------------------------------
    def _add(self, hessian: np.ndarray) -> None:
        """Sum one chunk's products (float32, as the values come) in float64."""
        if self.hessian is None:
            self.hessian = hessian.astype(np.float64)
        else:
            self.hessian += hessian

    def _out_size(self, size: tuple[int, int]) -> tuple[int, int]:
        out = []
        for n, k, s, d in zip(size, self.kernel, self.stride, self.dilation):
            span = (k - 1) * d + 1
            out.append(-(-n // s) if self.padding == SAME else max((n - span) // s + 1, 0))
        return out[0], out[1]

    def _patches(self, batch: np.ndarray) -> np.ndarray:
        """[samples * out positions, kh * kw, C]: each output position's input window, in the
        weights' (kh, kw, C) order; SAME padding pads with zeros as the kernels do."""
        (oh, ow), (kh, kw), (sh, sw), (dh, dw) = self._out_size(batch.shape[1:3]), self.kernel, self.stride, \
            self.dilation
        if self.padding == SAME:
            pads = [max((o - 1) * s + (k - 1) * d + 1 - n, 0)
                    for o, s, k, d, n in zip((oh, ow), (sh, sw), (kh, kw), (dh, dw), batch.shape[1:3])]
            batch = np.pad(batch, ((0, 0), (pads[0] // 2, pads[0] - pads[0] // 2),
                                   (pads[1] // 2, pads[1] - pads[1] // 2), (0, 0)))
        windows = [batch[:, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw, :]
                   for i in range(kh) for j in range(kw)]
        return np.stack(windows, axis=3).reshape(-1, kh * kw, batch.shape[3])

    # -- rounding ----------------------------------------------------------------------------
    def _round(self, weights: np.ndarray, scales: np.ndarray, axis: int | None, qmax: int) -> np.ndarray:
        if self.op == "DEPTHWISE_CONV_2D":  # [1, kh, kw, C*m]: channel o reads input channel o // m
            outputs = weights.shape[3]
            rows = weights.reshape(-1, outputs).T[:, None, :]  # [O, 1, kk]
            hessians = self.hessian[np.arange(outputs) // self.multiplier]
            grid = _per_row(scales, outputs)[:, None, None]
            rounded = _feedback(rows, _inverse_factor(hessians), grid, qmax)
            return rounded[:, 0, :].T.reshape(weights.shape).astype(np.int8)
        outputs = weights.shape[0]
        rows = weights.reshape(outputs, -1)
        order = np.argsort(-np.diag(self.hessian), kind="stable")  # largest inputs first (GPTQ's act order)
        hessian = self.hessian[np.ix_(order, order)]
        rounded = _feedback(rows[None, :, order], _inverse_factor(hessian[None]),
                            _per_row(scales, outputs)[None, :, None], qmax)[0]
        result = np.empty_like(rounded)
        result[:, order] = rounded
        return result.reshape(weights.shape).astype(np.int8)


def layers(graph: Graph) -> dict[str, tuple[Ref, Layer]]:
    """operator name -> (its input, an empty Layer) for every operator whose weights error
    feedback can round: CONV_2D (not grouped), DEPTHWISE_CONV_2D and FULLY_CONNECTED reading
    a constant float weight and a float input of the shape the weight expects."""
    found = {}
    for node in graph:
        if node.op not in OPS:
            continue
        inputs = graph.inputs_of(node.name)
        if len(inputs) <= WEIGHT_SLOT or inputs[0] is None or inputs[WEIGHT_SLOT] is None:
            continue
        weight, source = graph.tensor(inputs[WEIGHT_SLOT]), graph.tensor(inputs[0])
        if weight is None or source is None or weight.data is None or weight.shape is None or not source.shape:
            continue
        layer = _layer(node, tuple(weight.shape), tuple(source.shape))
        if layer is not None:
            found[node.name] = (inputs[0], layer)
    return found


def _layer(node: Node, weight: tuple, source: tuple) -> Layer | None:
    attrs = node.attrs
    if node.op == "FULLY_CONNECTED":
        if len(weight) != 2 or source[-1] != weight[1] or weight[1] > MAX_INPUTS:
            return None
        return Layer(node.op, channels=weight[1])
    if len(weight) != 4 or len(source) != 4:
        return None
    geometry = dict(kernel=(weight[1], weight[2]), stride=(attrs.get("stride_h", 1), attrs.get("stride_w", 1)),
                    dilation=(attrs.get("dilation_h_factor", 1), attrs.get("dilation_w_factor", 1)),
                    padding=attrs.get("padding", SAME), channels=source[3])
    if min(*geometry["stride"], *geometry["dilation"]) < 1:
        return None
    if node.op == "DEPTHWISE_CONV_2D":
        multiplier = weight[3] // source[3] if source[3] else 0
        if multiplier < 1 or weight[3] != source[3] * multiplier:
            return None
        return Layer(node.op, multiplier=multiplier, **geometry)
    if weight[3] != source[3] or weight[1] * weight[2] * weight[3] > MAX_INPUTS:
        return None  # grouped convolutions read a slice of the input per group
    return Layer(node.op, **geometry)


def _per_row(scales: np.ndarray, rows: int) -> np.ndarray:
    scales = np.asarray(scales, np.float64).reshape(-1)
    return scales if scales.size == rows else np.full(rows, scales[0])


def _inverse_factor(hessians: np.ndarray) -> np.ndarray:
    """[B, d, d] -> the upper Cholesky factors of the damped H^-1 (inputs never seen get
    H[i, i] = 1, so their errors stay theirs). Damping grows until the factor exists."""
    hessians = np.array(hessians, np.float64)
    size = hessians.shape[-1]
    index = np.arange(size)
    diagonal = hessians[:, index, index]
    diagonal[diagonal <= 0] = 1.0
    hessians[:, index, index] = diagonal
    mean = diagonal.mean(axis=1)[:, None]
    for damping in (DAMPING, 0.1, 1.0, 10.0):
        damped = hessians + (damping * mean)[:, :, None] * np.eye(size)[None]
        try:
            return np.linalg.cholesky(np.linalg.inv(damped)).transpose(0, 2, 1)
        except np.linalg.LinAlgError:
            continue
    return np.broadcast_to(np.eye(size), hessians.shape).copy()  # no usable H: nearest rounding


def _feedback(rows: np.ndarray, factor: np.ndarray, scales: np.ndarray, qmax: int) -> np.ndarray:
    """Round rows [B, R, d] onto scales [B, R, 1] column by column, each column's error carried
    onto the columns after it through factor [B, d, d] (upper Cholesky of H^-1)."""
    work = rows.copy()
    rounded = np.empty(rows.shape)
    size = rows.shape[2]
    grid = scales[:, :, 0]
    for start in range(0, size, BLOCK):
        stop = min(start + BLOCK, size)
        errors = np.empty(rows.shape[:2] + (stop - start,))
        for i in range(start, stop):
            q = np.clip(np.round(work[:, :, i] / grid), -qmax, qmax)
            rounded[:, :, i] = q
            error = (work[:, :, i] - q * grid) / factor[:, i, i][:, None]
            work[:, :, i:stop] -= error[:, :, None] * factor[:, None, i, i:stop]
            errors[:, :, i - start] = error
        if stop < size:
            work[:, :, stop:] -= errors @ factor[:, start:stop, stop:]
    return rounded
