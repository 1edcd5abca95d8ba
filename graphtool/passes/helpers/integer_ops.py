"""Which TFLite operators run in integers, and how their tensors are quantized: the rule
table quantize_nodes plans with, as data.

Facts (no code) from tensorflow/tensorflow:

- `tensorflow/lite/tools/optimize/operator_property.cc`: which inputs and outputs an
  integer kernel reads quantized, which must share one scale and zero point
  (`restrict_same_input_output_scale`), the fixed output parameters (`restricted_value_int8`,
  `restricted_value_int16`), weight axes (`per_axis_index`) and bias inputs, and which
  operators have no 16x8 form (`quantizable_int16 = false`);
- the quantization spec (tensorflow.org/lite/performance/quantization_spec): int8 weights
  symmetric per output channel, int8 activations asymmetric per tensor, int32 biases with
  scale input scale x weight scale; 16x8: int16 activations symmetric, int64 biases;
- what TensorFlow 2.21's converter writes in full-integer and 16x8 mode (measured on one
  model per operator, tests/passes/tflite/test_quantize_nodes.py): the operators it
  quantizes beyond operator_property.cc (GELU, RSQRT, SQUARED_DIFFERENCE, EXP, ABS, SQRT,
  DIV, SUM, ...) and the ones it keeps float (NEG, SQUARE);
- LiteRT's kernels, run by those tests: every int8 and int16 entry here runs in LiteRT
  within the error its test allows.

An operator missing from RULES has no integer kernel (or none graphtool knows of) and stays
float. So do comparisons (GREATER, LESS, ...), which the converter quantizes: LiteRT 2.3 aborts
on an int8 GREATER of a tensor and a constant (measured), and a quantized comparison flips at
every near-tie. SQUARED_DIFFERENCE has no int16 kernel in LiteRT ("SquaredDifference only
supports FLOAT32 and INT32", measured) although the converter writes one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ...ir import DType

ALL = -1  # in `inputs` / `outputs`: every input (every output) of the operator
INT64 = 4  # TensorType INT64: the quantized_bias_type 16x8 convolutions are written with


@dataclass(frozen=True)
class Weight:
    """A constant weight input: int8, symmetric, one scale per output channel along `axis`."""

    slot: int
    axis: int


@dataclass(frozen=True)
class OpRule:
    """How one operator's integer kernel reads and writes its tensors."""

    inputs: tuple[int, ...] = (0,)  # activation inputs, quantized per tensor (a constant there too)
    outputs: tuple[int, ...] = (0,)  # quantized outputs; others keep their type (indices, bools)
    weight: Weight | None = None
    bias: int | None = None  # int32 (int64 in 16x8), scale = input scale x weight scale, zero point 0
    same_scale: bool = False  # the quantized inputs and outputs share one scale and zero point
    fixed: Mapping[DType, tuple[float, int]] = field(default_factory=dict)  # fixed output (scale, zero point)
    int16: bool = True  # has a 16x8 kernel (int16 activations)
    int16_attrs: Mapping[str, Any] = field(default_factory=dict)  # options its 16x8 kernel is written with

    def input_slots(self, count: int) -> list[int]:
        """The quantized input slots of an operator with `count` inputs."""
        return list(range(count)) if ALL in self.inputs else [s for s in self.inputs if s < count]

    def output_ports(self, count: int) -> list[int]:
        return list(range(count)) if ALL in self.outputs else [p for p in self.outputs if p < count]

    def supports(self, dtype: DType) -> bool:
        return dtype is DType.INT8 or dtype is DType.INT16 and self.int16


I8, I16 = DType.INT8, DType.INT16
PROBABILITY = {I8: (1 / 256, -128), I16: (1 / 32768, 0)}  # SOFTMAX, LOGISTIC: [0, 1)
UNIT = {I8: (1 / 128, 0), I16: (1 / 32768, 0)}  # TANH: [-1, 1)
NOT_POT = {"pot_scale_int16": False}  # 16x8 ADD/SUB with any scales (the default, true, wants powers of two)
INT64_BIAS = {"quantized_bias_type": INT64}

_CONV = OpRule(weight=Weight(1, 0), bias=2, int16_attrs=INT64_BIAS)
_SAME = OpRule(same_scale=True)  # moves values without computing new ones
_SAME_INT8 = OpRule(same_scale=True, int16=False)
_OWN = OpRule()  # computes: its output gets its own calibrated scale
_OWN_INT8 = OpRule(int16=False)
_BINARY = OpRule(inputs=(0, 1))
_VARIADIC_SAME = OpRule(inputs=(ALL,), same_scale=True)

RULES: dict[str, OpRule] = {
    # weights and biases (operator_property.cc: per_axis_index, biases)
    "CONV_2D": _CONV,
    "DEPTHWISE_CONV_2D": OpRule(weight=Weight(1, 3), bias=2),
    "FULLY_CONNECTED": _CONV,
    "TRANSPOSE_CONV": OpRule(inputs=(2,), weight=Weight(1, 0), bias=3, int16_attrs=INT64_BIAS),
    # two activations, each with its own scale
    "BATCH_MATMUL": _BINARY,
    "ADD": OpRule(inputs=(0, 1), int16_attrs=NOT_POT),
    "SUB": OpRule(inputs=(0, 1), int16_attrs=NOT_POT),
    "MUL": _BINARY,
    "SQUARED_DIFFERENCE": OpRule(inputs=(0, 1), int16=False),
    "DIV": OpRule(inputs=(0, 1), int16=False),
    "PRELU": OpRule(inputs=(0, 1), int16=False),  # the alpha too
    # inputs and output share one scale (restrict_same_input_output_scale)
    **{op: _VARIADIC_SAME for op in ("CONCATENATION", "PACK", "MAXIMUM", "MINIMUM")},
    **{op: _SAME for op in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "SLICE", "STRIDED_SLICE", "GATHER",
                            "GATHER_ND", "PAD", "MIRROR_PAD", "MAX_POOL_2D", "AVERAGE_POOL_2D", "RESIZE_BILINEAR",
                            "RESIZE_NEAREST_NEIGHBOR", "REDUCE_MAX", "REDUCE_MIN", "BATCH_TO_SPACE_ND",
                            "SPACE_TO_BATCH_ND", "BROADCAST_TO", "TILE")},
    **{op: _SAME_INT8 for op in ("SPACE_TO_DEPTH", "DEPTH_TO_SPACE")},
    "PADV2": OpRule(inputs=(0, 2), same_scale=True),  # the constant value too
    "FILL": OpRule(inputs=(1,), same_scale=True),  # its value
    "SELECT": OpRule(inputs=(1, 2), same_scale=True, int16=False),  # input 0 is the bool condition
    "SELECT_V2": OpRule(inputs=(1, 2), same_scale=True, int16=False),
    "SPLIT": OpRule(inputs=(1,), outputs=(ALL,), same_scale=True),  # input 0 is the axis
    "SPLIT_V": OpRule(outputs=(ALL,), same_scale=True),
    "UNPACK": OpRule(outputs=(ALL,), same_scale=True),
    # fixed output parameters (restricted_value_int8 / restricted_value_int16)
    "SOFTMAX": OpRule(fixed=PROBABILITY),
    "LOGISTIC": OpRule(fixed=PROBABILITY),
    "TANH": OpRule(fixed=UNIT),
    "LOG_SOFTMAX": OpRule(fixed={I8: (16 / 256, 127)}, int16=False),
    "L2_NORMALIZATION": OpRule(fixed={I8: (1 / 128, 0)}, int16=False),
    # one activation in, a new scale out
    **{op: _OWN for op in ("MEAN", "SUM", "RELU", "RELU6", "LEAKY_RELU", "GELU", "EXP", "RSQRT", "ABS")},
    **{op: _OWN_INT8 for op in ("HARD_SWISH", "SQRT", "LOG", "RELU_N1_TO_1", "RELU_0_TO_1", "REDUCE_PROD")},
    # quantized inputs, outputs of other types
    "ARG_MAX": OpRule(outputs=(), int16=False),
    "ARG_MIN": OpRule(outputs=(), int16=False),
    "SHAPE": OpRule(outputs=()),
}


def rule_for(op: str) -> OpRule | None:
    """The operator's rule; None when it has no integer kernel."""
    return RULES.get(op)
