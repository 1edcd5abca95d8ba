"""Multiply-accumulates per TFLite operator, from tensor shapes: what weighs an operator
when `check` says how much of a model's arithmetic a delegate runs. Only the operators
that do the bulk of a network's arithmetic count (convolutions, fully connected layers,
batch matmuls); every other operator counts 0. Unknown dimensions count as 1."""
from __future__ import annotations

from .signature import OpSignature, TensorSpec


def macs(sig: OpSignature) -> int:
    """The operator's multiply-accumulates (0 when it is not one that counts)."""
    out = sig.outputs[0] if sig.outputs else None
    weights = sig.input(1)
    if out is None or weights is None or out.shape is None or weights.shape is None:
        return 0
    w = _dims(weights)
    if sig.op in ("CONV_2D", "CONV_3D") and len(w) >= 2:  # OHWI / DHWIO: one output needs prod(w)/O
        per_output = _size(w[1:]) if sig.op == "CONV_2D" else _size(w[:-1])
        return _size(_dims(out)) * per_output
    if sig.op == "DEPTHWISE_CONV_2D" and len(w) == 4:  # 1HW(C*M)
        return _size(_dims(out)) * w[1] * w[2]
    if sig.op == "FULLY_CONNECTED" and len(w) == 2:  # [units, depth]
        return _size(_dims(out)) * w[1]
    if sig.op == "TRANSPOSE_CONV":  # inputs: output shape, weights OHWI, input
        source = sig.input(2)
        return 0 if source is None or source.shape is None else _size(_dims(source)) * _size(w[:3])
    if sig.op == "BATCH_MATMUL":
        a = sig.input(0)
        if a is None or a.shape is None or not a.shape:
            return 0
        adj_x = bool(sig.option("adj_x", False))
        depth = _dims(a)[-2] if adj_x else _dims(a)[-1]
        return _size(_dims(out)) * depth
    return 0


def _dims(spec: TensorSpec) -> list[int]:
    return [1 if d is None or d < 0 else int(d) for d in spec.shape or ()]


def _size(dims: list[int]) -> int:
    total = 1
    for d in dims:
        total *= d
    return total
