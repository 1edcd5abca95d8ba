"""TFLite operator versions and the minimum runtime each needs, as data.

Facts transcribed from tensorflow/tensorflow (no code taken):

- `tensorflow/compiler/mlir/lite/tools/versioning/runtime_version.cc`
  (`FindMinimumRuntimeVersionForOp`; the converter's copy of
  `tensorflow/lite/tools/versioning/runtime_version.cc`, which adds TILE v4):
  RUNTIME_VERSIONS below.
- `tensorflow/compiler/mlir/lite/tools/versioning/op_version.cc`
  (`GetBuiltinOperatorVersion`, same rules as `tensorflow/lite/tools/versioning/op_version.cc`)
  and `op_signature.cc` (what counts as per-channel): `required_version`, for the operators
  quantize_weights rewrites only.

The converter gives every operator of one builtin the same OperatorCode, whose version is
the largest any of them needs (`UpdateOpVersion` never lowers it), and writes the largest
minimum runtime over all operators into the `min_runtime_version` metadata (16 bytes,
NUL-padded; operators missing from the table are left out of the comparison).
"""
from __future__ import annotations

from typing import Any

from ...ir import DType, Graph, Node, Ref, Tensor

_ = None  # a version the table has no entry for

# op -> minimum runtime of version 1, 2, 3, ... (runtime_version.cc).
RUNTIME_VERSIONS: dict[str, tuple[str | None, ...]] = {
    "ABS": ("1.13.0", "2.4.0", "2.5.0", "2.6.0", "2.12.0"),
    "ADD": ("1.5.0", "1.14.0", "2.4.0", "2.6.0", "2.13.0"),
    "ADD_N": ("1.14.0",),
    "ARG_MAX": ("1.9.0", "1.14.0", "2.9.0"),
    "ARG_MIN": ("1.9.0", "1.14.0", "2.9.0"),
    "ASSIGN_VARIABLE": ("2.6.0",),
    "ATAN2": ("2.10.0",),
    "AVERAGE_POOL_2D": ("1.5.0", "1.14.0", "2.3.0"),
    "BATCH_MATMUL": ("2.3.0", "2.3.0", "2.4.0", "2.5.0"),
    "BATCH_TO_SPACE_ND": ("1.6.0", "1.14.0", "2.3.0", "2.12.0"),
    "BIDIRECTIONAL_SEQUENCE_LSTM": ("1.14.0", "1.14.0", "1.14.0"),
    "BIDIRECTIONAL_SEQUENCE_RNN": ("1.14.0", "1.14.0", "2.3.0"),
    "BITCAST": ("2.13.0",),
    "BITWISE_XOR": ("2.13.0",),
    "BROADCAST_ARGS": ("2.6.0",),
    "BROADCAST_TO": (_, "2.5.0", "2.5.0"),  # version 1 was rolled back
    "BUCKETIZE": ("2.8.0",),
    "CALL_ONCE": ("2.5.0",),
    "CAST": ("1.5.0", "2.7.0", "2.8.0", "2.9.0", "2.12.0", "2.15.0"),
    "CEIL": ("1.14.0",),
    "COMPLEX_ABS": ("2.5.0",),
    "CONCATENATION": ("1.5.0", "1.14.0", "2.3.0", "2.14.0"),
    "CONV_2D": ("1.5.0", "1.14.0", "1.14.0", "2.3.0", "2.4.0", "2.9.0", "2.11.0", "2.15.0"),
    "CONV_3D": ("2.5.0",),
    "CONV_3D_TRANSPOSE": ("2.6.0",),
    "COS": ("1.14.0",),
    "CUMSUM": ("2.4.0",),
    "DENSIFY": ("2.2.0",),
    "DEPTH_TO_SPACE": ("2.1.0", "2.5.0"),
    "DEPTHWISE_CONV_2D": ("1.5.0", "1.12.0", "1.14.0", "2.2.0", "2.3.0", "2.3.0", "2.11.0"),
    "DEQUANTIZE": ("1.13.1", "1.14.0", "1.15.0", "2.2.0", "2.7.0", "2.18.0"),
    "DILATE": ("2.15.0",),
    "DIV": ("1.6.0", "2.3.0"),
    "DYNAMIC_UPDATE_SLICE": ("2.9.0", "2.17.0"),
    "ELU": ("1.14.0",),
    "EMBEDDING_LOOKUP": ("1.13.0", "1.14.0", "1.14.0", "2.18.0"),
    "EMBEDDING_LOOKUP_SPARSE": ("1.5.0",),
    "EQUAL": ("1.14.0", "1.14.0", "2.3.0", "2.13.0"),
    "EXP": ("1.7.0", "2.12.0"),
    "EXPAND_DIMS": ("1.10.0",),
    "FAKE_QUANT": ("1.5.0", "1.10.0"),
    "FILL": ("1.13.0", "2.3.0", "2.5.0", "2.12.0"),
    "FLOOR": ("1.9.0",),
    "FLOOR_DIV": ("1.14.0", "1.14.0", "2.13.0"),
    "FLOOR_MOD": ("1.13.0", "2.13.0"),
    "FULLY_CONNECTED": ("1.5.0", "1.10.0", "1.14.0", "1.14.0", "2.0.0", "2.1.0", "2.3.0", "2.3.0", "2.3.0",
                        "2.11.0", "2.15.0", "2.17.0", "2.18.0"),
    "GATHER": ("1.6.0", "1.14.0", "1.15.0", "2.4.0", "2.5.0", "2.13.0", "2.15.0"),
    "GATHER_ND": ("1.14.0", "2.3.0", "2.5.0", "2.13.0", "2.16.0"),
    "GELU": ("2.9.0", "2.9.0"),
    "GREATER": ("1.14.0", "1.14.0"),
    "GREATER_EQUAL": ("1.14.0", "1.14.0", "2.13.0"),
    "HARD_SWISH": ("1.15.0",),
    "HASHTABLE": ("2.5.0",),
    "HASHTABLE_FIND": ("2.5.0",),
    "HASHTABLE_IMPORT": ("2.5.0",),
    "HASHTABLE_LOOKUP": ("1.5.0",),
    "HASHTABLE_SIZE": ("2.5.0",),
    "IF": ("1.15.0",),
    "IMAG": ("2.5.0",),
    "L2_NORMALIZATION": ("1.5.0", "1.14.0"),
    "L2_POOL_2D": ("1.5.0",),
    "LEAKY_RELU": ("1.13.1", "2.3.0"),
    "LESS": ("1.14.0", "1.14.0", "2.13.0"),
    "LESS_EQUAL": ("1.14.0", "1.14.0"),
    "LOCAL_RESPONSE_NORMALIZATION": ("1.5.0",),
    "LOG": ("1.14.0", "2.15.0"),
    "LOG_SOFTMAX": ("1.14.0", "1.14.0"),
    "LOGICAL_AND": ("1.11.0",),
    "LOGICAL_NOT": ("1.11.0",),
    "LOGICAL_OR": ("1.11.0",),
    "LOGISTIC": ("1.14.0", "1.14.0", "2.3.0"),
    "LSH_PROJECTION": ("1.5.0",),
    "LSTM": ("1.7.0", "1.10.0", "1.14.0", "2.3.0"),
    "MATRIX_DIAG": ("1.14.0",),
    "MATRIX_SET_DIAG": ("1.14.0",),
    "MAX_POOL_2D": ("1.5.0", "1.14.0", "2.3.0"),
    "MAXIMUM": ("1.14.0", "1.14.0", "2.3.0", "2.3.0"),
    "MEAN": ("1.6.0", "1.14.0", "2.4.0"),
    "MINIMUM": ("1.14.0", "1.14.0", "2.3.0", "2.3.0"),
    "MIRROR_PAD": ("1.13.1", "2.3.0", "2.12.0"),
    "MUL": ("1.5.0", "1.14.0", "1.15.0", "2.3.0", "2.6.0", "2.11.0", "2.13.0"),
    "MULTINOMIAL": ("2.8.0",),
    "NEG": ("1.9.0",),
    "NON_MAX_SUPPRESSION_V4": ("2.1.0",),
    "NON_MAX_SUPPRESSION_V5": ("2.1.0",),
    "NOT_EQUAL": ("1.14.0", "1.14.0", "2.3.0"),
    "ONE_HOT": ("1.11.0",),
    "PACK": ("1.11.0", "1.14.0", "2.3.0", "2.13.0"),
    "PAD": ("1.5.0", "1.14.0", "2.4.0", "2.6.0"),
    "PADV2": ("1.9.0", "1.14.0", "2.4.0", "2.6.0"),
    "POW": ("1.10.0",),
    "PRELU": ("1.8.0",),
    "QUANTIZE": ("1.14.0", "1.15.0", "2.7.0"),
    "RANDOM_STANDARD_NORMAL": ("2.8.0",),
    "RANDOM_UNIFORM": ("2.8.0",),
    "RANGE": ("1.13.0", "2.14.0"),
    "RANK": ("1.14.0",),
    "READ_VARIABLE": ("2.6.0",),
    "REAL": ("2.5.0",),
    "REDUCE_ALL": ("2.6.0",),
    "REDUCE_ANY": ("1.11.0",),
    "REDUCE_MAX": ("1.11.0", "1.14.0", "2.5.0"),
    "REDUCE_MIN": ("1.11.0", "1.14.0", "2.5.0"),
    "REDUCE_PROD": ("1.11.0", "2.6.0"),
    "REDUCE_WINDOW": ("2.15.0",),
    "RELU": ("1.5.0", "2.1.0", "2.5.0"),
    "RELU6": ("1.5.0", "1.14.0", "2.5.0"),
    "RELU_0_TO_1": ("2.10.0",),
    "RELU_N1_TO_1": ("1.5.0",),
    "RESHAPE": ("1.5.0",),
    "RESIZE_BILINEAR": ("1.7.0", "1.14.0", "2.2.0", "2.5.0"),
    "RESIZE_NEAREST_NEIGHBOR": ("1.13.1", "1.14.0", "2.3.0", "2.4.0"),
    "REVERSE_SEQUENCE": ("1.14.0",),
    "REVERSE_V2": ("1.14.0", "2.2.0", "2.5.0"),
    "RFFT2D": ("2.5.0",),
    "RIGHT_SHIFT": ("2.13.0",),
    "RNN": ("1.5.0", "1.14.0", "2.3.0"),
    "ROUND": ("1.14.0",),
    "RSQRT": ("1.10.0", "2.5.0", "2.15.0"),
    "SCATTER_ND": ("2.1.0",),
    "SEGMENT_SUM": ("2.2.0",),
    "SELECT": ("1.14.0", "1.14.0", "2.12.0", "2.12.0"),
    "SELECT_V2": ("2.2.0", "2.12.0"),
    "SHAPE": ("1.10.0",),
    "SIGN": ("2.11.0", "2.12.0"),
    "SIN": ("1.9.0",),
    "SKIP_GRAM": ("1.5.0",),
    "SLICE": ("1.14.0", "1.14.0", "1.14.0", "2.4.0", "2.5.0", "2.14.0"),
    "SOFTMAX": ("1.5.0", "1.14.0", "2.3.0"),
    "SPACE_TO_BATCH_ND": ("1.6.0", "1.14.0", "2.3.0", "2.12.0"),
    "SPACE_TO_DEPTH": ("1.5.0", "1.14.0"),
    "SPARSE_TO_DENSE": ("1.9.0", "1.14.0", "1.15.0"),
    "SPLIT": ("1.5.0", "1.14.0", "1.14.0", "2.3.0"),
    "SPLIT_V": ("1.13.1", "2.3.0"),
    "SQRT": ("1.10.0",),
    "SQUARE": ("1.12.0",),
    "SQUARED_DIFFERENCE": ("1.13.1", "2.5.0"),
    "SQUEEZE": ("1.6.0", "2.5.0"),
    "STABLEHLO_ADD": ("2.16.0",),
    "STABLEHLO_AND": ("2.17.0",),
    "STABLEHLO_CASE": ("2.17.0",),
    "STABLEHLO_CBRT": ("2.17.0",),
    "STABLEHLO_COMPOSITE": ("2.17.0",),
    "STABLEHLO_GATHER": ("2.16.0",),
    "STABLEHLO_MAXIMUM": ("2.16.0",),
    "STABLEHLO_MINIMUM": ("2.16.0",),
    "STABLEHLO_MULTIPLY": ("2.16.0",),
    "STABLEHLO_PAD": ("2.16.0",),
    "STABLEHLO_REDUCE_WINDOW": ("2.16.0",),
    "STABLEHLO_RNG_BIT_GENERATOR": ("2.15.0",),
    "STABLEHLO_SCATTER": ("2.15.0",),
    "STABLEHLO_SHIFT_LEFT": ("2.17.0",),
    "STRIDED_SLICE": ("1.6.0", "1.14.0", "2.1.0", "2.2.0", "2.5.0", "2.6.0", "2.14.0", "2.14.0"),
    "SUB": ("1.6.0", "1.14.0", "2.3.0", "2.4.0", "2.4.0"),
    "SUM": ("1.10.0", "1.15.0"),
    "SVDF": ("1.5.0", "1.14.0", "2.2.0", "2.3.0"),
    "TANH": ("1.14.0", "1.14.0", "2.3.0"),
    "TILE": ("1.10.1", "2.2.0", "2.8.0", "2.12.0"),
    "TOPK_V2": ("1.7.0", "1.14.0", "2.13.0"),
    "TRANSPOSE": ("1.6.0", "1.14.0", "1.15.0", "2.3.0", "2.4.0", "2.12.0"),
    "TRANSPOSE_CONV": ("1.9.0", "2.2.0", "2.3.0", "2.13.0", "2.15.0"),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("1.13.1", "1.14.0", "2.3.0", "2.12.0"),
    "UNIDIRECTIONAL_SEQUENCE_RNN": ("1.14.0", "1.14.0", "2.3.0"),
    "UNIQUE": ("1.14.0",),
    "UNPACK": ("1.11.0", "1.14.0", "2.2.0", "2.3.0"),
    "UNSORTED_SEGMENT_MAX": ("2.10.0",),
    "UNSORTED_SEGMENT_MIN": ("2.11.0",),
    "UNSORTED_SEGMENT_PROD": ("2.10.0",),
    "UNSORTED_SEGMENT_SUM": ("2.10.0",),
    "VAR_HANDLE": ("2.6.0",),
    "WHERE": ("1.14.0", "2.8.0"),
    "ZEROS_LIKE": ("1.12.0",),
}

METADATA_KEY = "min_runtime_version"
METADATA_BYTES = 16
FULLY_CONNECTED_SHUFFLED4X16INT8 = 1  # FullyConnectedOptionsWeightsFormat


def min_runtime(op: str, version: int) -> str | None:
    """The minimum runtime for builtin `op` at `version`; None when the table has no entry."""
    versions = RUNTIME_VERSIONS.get(op, ())
    return versions[version - 1] if 1 <= version <= len(versions) else None


def runtime_key(version: str) -> tuple[int, ...]:
    """"2.17.0" -> (2, 17, 0), for numeric comparison ("2.9.0" < "2.17.0")."""
    return tuple(int(part) for part in version.split("."))


def model_min_runtime(graphs: list[Graph]) -> str | None:
    """The largest minimum runtime over every builtin operator of `graphs` (custom ops and
    (op, version) pairs missing from the table are left out, as the converter does)."""
    best: str | None = None
    for graph in graphs:
        for node in graph:
            if node.op in RUNTIME_VERSIONS and not node.meta.get("custom"):
                found = min_runtime(node.op, int(node.meta.get("version", 1)))
                if found is not None and (best is None or runtime_key(found) > runtime_key(best)):
                    best = found
    return best


def encode_runtime(version: str) -> bytes:
    """The metadata buffer: the version string NUL-padded to 16 bytes."""
    raw = version.encode("ascii")
    if len(raw) >= METADATA_BYTES:
        raise ValueError(f"runtime version {version!r} does not fit in {METADATA_BYTES} bytes")
    return raw.ljust(METADATA_BYTES, b"\0")


def decode_runtime(raw: bytes) -> str | None:
    """The version string a metadata buffer holds; None unless it reads as digits and dots."""
    text = bytes(raw).split(b"\0", 1)[0].decode("ascii", "replace")
    parts = text.split(".")
    return text if text and all(p.isdigit() for p in parts) else None


# -- operator versions (op_version.cc) ------------------------------------------------------

VERSIONED_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV",
                           "EMBEDDING_LOOKUP", "DEQUANTIZE"})

F32, I4, I8, I16, F16 = DType.FLOAT32, DType.INT4, DType.INT8, DType.INT16, DType.FLOAT16


def required_version(graph: Graph, node: Node) -> int | None:
    """The version op_version.cc gives `node` from its signature (input and output types,
    weight quantization, options); None for ops outside VERSIONED_OPS."""
    rule = _RULES.get(node.op)
    if rule is None or node.meta.get("custom"):
        return None
    inputs = [None if ref is None else _tensor(graph, ref) for ref in graph.inputs_of(node.name)]
    return rule(_Signature(inputs, node.outputs, node.attrs))


class _Signature:
    """Types by position (None for an absent input, like TFLite's kTfLiteNoType)."""

    def __init__(self, inputs: list[Tensor | None], outputs: list[Tensor], attrs: dict[str, Any]):
        self.inputs, self.outputs, self.attrs = inputs, outputs, attrs

    def t(self, slot: int) -> DType | None:
        tensor = self.inputs[slot] if slot < len(self.inputs) else None
        return None if tensor is None else tensor.dtype

    def out(self, slot: int = 0) -> DType | None:
        return self.outputs[slot].dtype if slot < len(self.outputs) else None

    def types(self, *expected: DType) -> bool:
        """Input 0, input 1 and output 0 have these types."""
        return (self.t(0), self.t(1), self.out()) == expected

    def opt(self, name: str) -> Any:
        return self.attrs.get(name) or 0


def _scales(tensor: Tensor | None) -> int:
    q = None if tensor is None else tensor.quantization
    return 0 if q is None else int(q.scale.size)


def _dim(tensor: Tensor | None, axis: int) -> int | None:
    if tensor is None or tensor.shape is None or not -len(tensor.shape) <= axis < len(tensor.shape):
        return None
    dim = tensor.shape[axis]
    return 1 if dim is None else dim  # the flatbuffer `shape` field holds 1 for unknown dims


def _conv_2d(s: _Signature) -> int:
    if s.types(I16, I8, I16) and s.opt("quantized_bias_type"):
        return 8
    filter_, input_ = s.inputs[1], s.inputs[0]
    if input_ is not None and input_.shape and _dim(input_, 3) != _dim(filter_, 3):
        return 6  # grouped convolution
    if s.types(I16, I16, I16):
        return 4
    if s.types(I8, I8, I8):
        return 3
    if s.types(I8, I4, I8):
        return 7
    if s.types(F32, I8, F32):
        filters = _dim(filter_, 0)
        return 5 if filters and _scales(filter_) == filters else 2
    return 1


def _depthwise_conv_2d(s: _Signature) -> int:
    if s.types(I16, I16, I16):
        return 5
    if s.types(F32, I8, F32):
        channels = _dim(s.inputs[1], 3)
        return 6 if channels and _scales(s.inputs[1]) == channels else 4
    if s.types(I8, I8, I8):
        return 3
    if s.types(I8, I4, I8):
        return 7
    if s.opt("dilation_w_factor") not in (0, 1) or s.opt("dilation_h_factor") not in (0, 1):
        return 2
    return 1


def _fully_connected(s: _Signature) -> int:
    weights = s.inputs[1]
    if s.types(I16, I4, I16):
        return 13
    if s.types(F32, I8, F32) and _scales(weights) and _scales(weights) == _dim(weights, 0):
        return 12  # per-channel hybrid
    if s.types(I16, I8, I16) and s.opt("quantized_bias_type"):
        return 11
    if weights is not None and "sparsity" in weights.meta:
        return 8
    if s.types(I16, I16, I16):
        return 7
    if len(s.inputs) == 2:
        return 6
    if s.opt("keep_num_dims"):
        return 5
    if s.types(I8, I8, I8):
        return 4
    if s.types(I8, I4, I8):
        return 10
    if s.types(F32, I8, F32):
        return 9 if s.opt("asymmetric_quantize_inputs") else 3
    if s.opt("weights_format") == FULLY_CONNECTED_SHUFFLED4X16INT8:
        return 2
    return 1


def _batch_matmul(s: _Signature) -> int:
    if s.t(0) is I16:
        return 3
    if s.t(0) is I8:
        return 2
    if s.types(F32, I8, F32) and s.opt("asymmetric_quantize_inputs"):
        return 4
    return 1


def _transpose_conv(s: _Signature) -> int:
    # Input 0 is the output shape; op_version.cc tests its type as written.
    if s.types(I16, I8, I16) and s.opt("quantized_bias_type"):
        return 5
    if s.opt("fused_activation_function"):
        return 4
    if len(s.inputs) == 4 and s.inputs[3] is not None:
        return 3
    if s.t(1) is I8:
        return 2
    return 1


def _embedding_lookup(s: _Signature) -> int:
    table = s.inputs[1] if len(s.inputs) > 1 else None
    if s.t(1) is I4 or (_scales(table) > 1 and _scales(table) == _dim(table, 0)):
        return 4
    return 1


def _dequantize(s: _Signature) -> int:
    source = s.inputs[0] if s.inputs else None
    if s.t(0) is I4:
        return 6
    if s.t(0) in (I16, F16):
        return 3
    if s.t(0) is I8:
        q = source.quantization if source is not None else None
        per_channel = q is not None and q.scale.size > 1 and q.scale.size == _dim(source, q.axis or 0)
        return 5 if per_channel else 2
    return 1


_RULES = {"CONV_2D": _conv_2d, "DEPTHWISE_CONV_2D": _depthwise_conv_2d, "FULLY_CONNECTED": _fully_connected,
          "BATCH_MATMUL": _batch_matmul, "TRANSPOSE_CONV": _transpose_conv, "EMBEDDING_LOOKUP": _embedding_lookup,
          "DEQUANTIZE": _dequantize}


def _tensor(graph: Graph, ref: Ref) -> Tensor | None:
    node = graph.node(ref.node)
    return node.outputs[ref.port] if ref.port < len(node.outputs) else None
