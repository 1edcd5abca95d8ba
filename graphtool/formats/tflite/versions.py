"""TFLite operator versions and the minimum runtime each needs, as data.

Facts transcribed from tensorflow/tensorflow (no code taken):

- `tensorflow/compiler/mlir/lite/tools/versioning/runtime_version.cc`
  (`FindMinimumRuntimeVersionForOp`; the converter's copy of
  `tensorflow/lite/tools/versioning/runtime_version.cc`, which adds TILE v4):
  RUNTIME_VERSIONS, the rule table graphtool/rules/runtime_versions.json.
- `tensorflow/compiler/mlir/lite/tools/versioning/op_version.cc`
  (`GetBuiltinOperatorVersion`, same rules as `tensorflow/lite/tools/versioning/op_version.cc`)
  and `op_signature.cc` (what counts as per-channel, quantized, broadcast): `required_version`,
  for the operators quantize_weights and quantize_nodes rewrite (the operators with an
  integer kernel), and CAST, which set_io_types adds for float16 outputs. Where
  op_version.cc has no rule for an operator (RESHAPE, PRELU, HARD_SWISH, EXPAND_DIMS, ...)
  every version is 1 and the version is left alone.

The converter gives every operator of one builtin the same OperatorCode, whose version is
the largest any of them needs (`UpdateOpVersion` never lowers it), and writes the largest
minimum runtime over all operators into the `min_runtime_version` metadata (16 bytes,
NUL-padded; operators missing from the table are left out of the comparison).
"""
from __future__ import annotations

from typing import Any

from ... import rules
from ...ir import DType, Graph, Node, Tensor
from . import keys, tables

# op -> minimum runtime of version 1, 2, 3, ... (runtime_version.cc; None: no entry). The
# table is data, graphtool/rules/runtime_versions.json, shared with `graphtool check`.
RUNTIME_VERSIONS: dict[str, tuple[str | None, ...]] = rules.runtime_versions()

METADATA_KEY = "min_runtime_version"
METADATA_BYTES = 16
FULLY_CONNECTED_SHUFFLED4X16INT8 = 1  # FullyConnectedOptionsWeightsFormat


def min_runtime(op: str, version: int) -> str | None:
    """The minimum runtime for builtin `op` at `version`; None when the table has no entry."""
    versions = RUNTIME_VERSIONS.get(op, ())
    return versions[version - 1] if 1 <= version <= len(versions) else None


def runtime_key(version: str) -> tuple[int, ...]:
    """"2.17.0" -> (2, 17, 0), for numeric comparison ("2.9.0" < "2.17.0"); "2.4" compares as
    (2, 4, 0). ValueError unless the version is MAJOR.MINOR[.PATCH]."""
    parts = version.split(".")
    if not version or not all(p.isdigit() for p in parts) or len(parts) > 3:
        raise ValueError(f"runtime version {version!r} is not of the form MAJOR.MINOR[.PATCH]")
    return tuple([int(p) for p in parts] + [0] * (3 - len(parts)))


def model_min_runtime(graphs: list[Graph]) -> str | None:
    """The largest minimum runtime over every builtin operator of `graphs` (custom ops and
    (op, version) pairs missing from the table are left out, as the converter does)."""
    best: str | None = None
    for graph in graphs:
        for node in graph:
            if node.op in RUNTIME_VERSIONS and not keys.is_custom(node):
                found = min_runtime(node.op, keys.op_version(node))
                if found is not None and (best is None or runtime_key(found) > runtime_key(best)):
                    best = found
    return best


def encode_runtime(version: str) -> bytes:
    """The metadata buffer: the version string NUL-padded to 16 bytes."""
    raw = version.encode("ascii")
    if len(raw) >= METADATA_BYTES:
        raise ValueError(f"runtime version {version!r} does not fit in {METADATA_BYTES} bytes")
    return raw.ljust(METADATA_BYTES, b"\0")


def raise_min_runtime(graph: Graph) -> str | None:
    """Raise the model's min_runtime_version metadata to what its operators need (it is
    never lowered, and left as it is unless raised). Returns the version it now says."""
    metadata = graph.meta.get(keys.METADATA)
    if metadata is None:
        metadata = graph.meta[keys.METADATA] = {}
    old = decode_runtime(metadata.get(METADATA_KEY, b""))
    new = model_min_runtime(tables.subgraphs(graph))
    if new is None or old is not None and runtime_key(old) >= runtime_key(new):
        return old
    metadata[METADATA_KEY] = encode_runtime(new)
    return new


def decode_runtime(raw: bytes) -> str | None:
    """The version string a metadata buffer holds; None unless it reads as digits and dots."""
    text = bytes(raw).split(b"\0", 1)[0].decode("ascii", "replace")
    parts = text.split(".")
    return text if text and all(p.isdigit() for p in parts) else None


# -- operator versions (op_version.cc) ------------------------------------------------------

F32, I4, I8, I16, F16 = DType.FLOAT32, DType.INT4, DType.INT8, DType.INT16, DType.FLOAT16
U8, U32, I32, I64, BOOL, STRING = DType.UINT8, DType.UINT32, DType.INT32, DType.INT64, DType.BOOL, DType.STRING


def required_version(graph: Graph, node: Node) -> int | None:
    """The version op_version.cc gives `node` from its signature (input and output types,
    weight quantization, options); None for ops outside VERSIONED_OPS."""
    rule = _RULES.get(node.op)
    if rule is None or keys.is_custom(node):
        return None
    inputs = [None if ref is None else graph.tensor(ref) for ref in graph.inputs_of(node.name)]
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

    def rank(self, slot: int = 0) -> int:
        tensor = self.inputs[slot] if slot < len(self.inputs) else None
        return 0 if tensor is None or tensor.shape is None else len(tensor.shape)

    def scale(self, tensor: Tensor | None) -> float:
        """The tensor's (first) scale; 0 when it is not quantized (op_signature.cc)."""
        q = None if tensor is None else tensor.quantization
        return 0.0 if q is None or not q.scale.size else float(q.scale.reshape(-1)[0])

    def quantized(self, slot: int) -> bool:
        tensor = self.inputs[slot] if slot < len(self.inputs) else None
        return tensor is not None and tensor.quantization is not None

    def broadcast_over_4d(self) -> bool:
        """NeedBroadcastForBinaryInputs and an input of rank over 4."""
        shapes = [t.shape for t in self.inputs[:2] if t is not None]
        return len(shapes) == 2 and shapes[0] != shapes[1] and max(self.rank(0), self.rank(1)) > 4


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
    if weights is not None and keys.SPARSITY in weights.meta:
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


def _first(*rules: tuple[bool, int]) -> int:
    """The version of the first rule whose condition holds (op_version.cc tests in this order), else 1."""
    return next((version for holds, version in rules if holds), 1)


def _quantize(s: _Signature) -> int:
    out = s.outputs[0] if s.outputs else None
    per_channel = out is not None and out.quantization is not None and out.quantization.scale.size > 1
    return _first((per_channel, 3), (s.out() is I16, 2))


def _add(s: _Signature) -> int:
    general_int16 = s.t(0) is I16 and s.out() is I16 and not s.attrs.get("pot_scale_int16", True)
    return _first((s.t(0) is F16, 6), (s.t(0) is I16 and not s.quantized(0), 5), (s.t(0) is I64, 4),
                  (general_int16, 3), (s.t(0) is I8, 2))


def _sub(s: _Signature) -> int:
    general_int16 = s.t(0) is I16 and s.out() is I16 and not s.attrs.get("pot_scale_int16", True)
    return _first((general_int16, 5), (s.t(0) is I64, 4), (s.broadcast_over_4d(), 3), (s.t(0) is I8, 2))


def _mul(s: _Signature) -> int:
    scales = [s.scale(s.inputs[0] if s.inputs else None), s.scale(s.inputs[1] if len(s.inputs) > 1 else None),
              s.scale(s.outputs[0] if s.outputs else None)]
    rescale_up = all(scales) and scales[0] * scales[1] / scales[2] >= 1.0
    return _first((s.t(0) is F16, 8), (s.t(0) is I16 and not s.quantized(0) or s.t(0) is U32, 7),
                  (s.t(0) is DType.COMPLEX64, 6), (s.t(0) is I64, 5), (s.t(0) is I16, 4), (rescale_up, 3),
                  (s.t(0) is I8, 2))


def _abs(s: _Signature) -> int:
    return _first((s.t(0) is I32, 5), (s.t(0) is I16, 3 if s.quantized(0) else 4), (s.t(0) in (I8, U8), 2))


def _transpose(s: _Signature) -> int:
    rank = s.rank(0)
    return _first((rank > 6 or s.t(0) is DType.BFLOAT16, 8), (s.t(0) is I4, 7), (rank > 5, 6), (s.t(0) is I16, 5),
                  (rank > 4, 4), (s.t(0) is BOOL, 3), (s.t(0) is I8, 2))


def _slice(s: _Signature) -> int:
    return _first((s.t(0) is I4, 7), (s.t(0) is U32, 6), (s.rank(0) > 4, 5), (s.t(0) is I16, 4),
                  (s.t(0) is STRING, 3), (s.t(0) is I8, 2))


def _strided_slice(s: _Signature) -> int:
    return _first((bool(s.opt("offset")), 8), (s.t(0) is U32, 7),
                  (bool(s.opt("ellipsis_mask") or s.opt("new_axis_mask")), 6), (s.t(0) is STRING, 5),
                  (s.rank(0) > 4, 4), (s.t(0) is BOOL, 3), (s.t(0) is I8, 2))


def _resize(s: _Signature, align_corners_counts: bool) -> int:
    corners = bool(s.opt("half_pixel_centers") or align_corners_counts and s.opt("align_corners"))
    return _first((s.t(0) is I16, 4), (corners, 3), (s.t(0) is I8, 2))


def _maximum(s: _Signature) -> int:
    return _first((s.t(0) is I16 and s.out() is I16, 4), (s.broadcast_over_4d(), 3), (s.t(0) is I8, 2))


def _pack(s: _Signature) -> int:
    return _first((s.t(0) is I8, 2), (s.t(0) is I16 and s.out() is I16, 3), (s.t(0) is U32, 4))


def _unpack(s: _Signature) -> int:
    return _first((s.t(0) in (I8, U8), 2), (s.t(0) is BOOL, 3), (s.t(0) is I16 and s.out() is I16, 4),
                  (s.t(0) in (F16, DType.BFLOAT16), 5))


def _batch_to_space(s: _Signature) -> int:
    return _first((s.t(0) is I16, 4), (s.rank(0) != 4, 3), (s.t(0) is I8, 2))


def _pad(s: _Signature) -> int:
    return _first((s.t(0) is BOOL, 5), (s.rank(0) > 4, 4), (s.t(0) is I16, 3), (s.t(0) is I8, 2))


def _gather(s: _Signature) -> int:
    return _first((s.t(0) is I4, 7), (s.t(1) is I16, 6), (bool(s.opt("batch_dims")), 5), (s.t(0) is I16, 4),
                  (s.t(0) is BOOL, 3), (s.t(0) is I8, 2))


def _fill(s: _Signature) -> int:
    return _first((s.t(1) is F16, 4), (s.t(1) in (I8, I16), 3), (s.t(1) in (BOOL, STRING), 2))


def _cast(s: _Signature) -> int:
    either = {s.t(0), s.out()}
    return _first((bool(either & {DType.INT2, DType.UINT4}), 8), (DType.BFLOAT16 in either, 7),
                  (s.t(0) is I4 and s.out() is F32, 6), (bool(either & {DType.FLOAT64, F16}), 5),
                  (DType.UINT16 in either, 4), (I8 in either, 3), (U32 in either, 2))


def _select(s: _Signature) -> int:
    return _first((s.t(0) is U32, 4), (5 in (s.rank(0), s.rank(1), s.rank(2)), 3), (s.t(0) is I8, 2))


def _by_type(slot: int, versions: dict[DType, int]) -> Any:
    """A rule that depends only on the type of input `slot`: the version of the first entry
    of `versions` (in order) that is that type, else 1."""
    def rule(s: _Signature) -> int:
        return next((version for dtype, version in versions.items() if s.t(slot) is dtype), 1)
    return rule


_INT16_INT8 = {I16: 3, I8: 2}  # SOFTMAX, MEAN, MIRROR_PAD, REDUCE_MAX, REDUCE_MIN, RELU6, RSQRT, CONCATENATION...

_RULES = {"CONV_2D": _conv_2d, "DEPTHWISE_CONV_2D": _depthwise_conv_2d, "FULLY_CONNECTED": _fully_connected,
          "BATCH_MATMUL": _batch_matmul, "TRANSPOSE_CONV": _transpose_conv, "EMBEDDING_LOOKUP": _embedding_lookup,
          "DEQUANTIZE": _dequantize, "QUANTIZE": _quantize, "ADD": _add, "SUB": _sub, "MUL": _mul, "ABS": _abs,
          "TRANSPOSE": _transpose, "SLICE": _slice, "STRIDED_SLICE": _strided_slice,
          "RESIZE_BILINEAR": lambda s: _resize(s, False), "RESIZE_NEAREST_NEIGHBOR": lambda s: _resize(s, True),
          "MAXIMUM": _maximum, "MINIMUM": _maximum, "PACK": _pack, "UNPACK": _unpack,
          "SPACE_TO_BATCH_ND": _batch_to_space, "BATCH_TO_SPACE_ND": _batch_to_space, "PAD": _pad, "PADV2": _pad,
          "GATHER": _gather, "FILL": _fill, "SELECT": _select, "CAST": _cast,
          "DIV": lambda s: 2 if s.broadcast_over_4d() else 1,
          **{op: _by_type(0, _INT16_INT8) for op in ("SOFTMAX", "MEAN", "MIRROR_PAD", "REDUCE_MAX", "REDUCE_MIN",
                                                      "RELU6", "RSQRT", "LESS", "GREATER_EQUAL")},
          "CONCATENATION": _by_type(0, {I4: 5, U32: 4, I16: 3, I8: 2}),
          **{op: _by_type(0, {I8: 2}) for op in ("SPACE_TO_DEPTH", "SPLIT_V", "SUM", "LOG_SOFTMAX", "GREATER",
                                                  "LESS_EQUAL", "SQUARED_DIFFERENCE", "DEPTH_TO_SPACE")},
          **{op: _by_type(0, {I8: 2, I16: 2}) for op in ("EXP", "LOG", "REDUCE_PROD", "SQRT")},
          "BROADCAST_TO": lambda s: 3 if s.t(0) in (I8, I16) else 2,
          "RELU": _by_type(0, {I16: 3, I8: 2, U8: 2}), "GELU": _by_type(0, {I8: 2, U8: 2}),
          "ARG_MAX": _by_type(0, {BOOL: 3, I8: 2}), "ARG_MIN": _by_type(0, {BOOL: 3, I8: 2}),
          "LEAKY_RELU": _by_type(0, {I16: 2}), "SPLIT": _by_type(1, {I16: 4, I32: 3, I8: 2}),
          "TILE": _by_type(0, {I8: 3, STRING: 2}), "SQUEEZE": _by_type(0, {STRING: 2}),
          "EQUAL": _by_type(0, {I16: 5, STRING: 3, I8: 2}), "NOT_EQUAL": _by_type(0, {I16: 4, STRING: 3, I8: 2}),
          "L2_NORMALIZATION": lambda s: 2 if s.out() is I8 else 1,
          **{op: lambda s: 3 if s.t(0) is I16 and s.out() is I16 else 2 if s.t(0) is I8 else 1
             for op in ("TANH", "LOGISTIC", "MAX_POOL_2D", "AVERAGE_POOL_2D")}}
VERSIONED_OPS = frozenset(_RULES)


def raise_versions(graphs: list[Graph], ops: set[str]) -> None:
    """Give every operator of each builtin in `ops` the largest version any of them needs
    (op_version.cc), never lowering one: the converter gives all operators of a builtin one
    operator code."""
    for op in sorted(ops):
        nodes = [(g, n) for g in graphs for n in g if n.op == op and not keys.is_custom(n)]
        if not nodes:
            continue
        target = max([keys.op_version(n) for _, n in nodes] + [required_version(g, n) or 1 for g, n in nodes])
        for _, node in nodes:
            node.meta[keys.VERSION] = target

