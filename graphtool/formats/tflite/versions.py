"""TFLite operator versions and the minimum runtime each needs, as data.

Facts transcribed from tensorflow/tensorflow (no code taken):

- `tensorflow/compiler/mlir/lite/tools/versioning/runtime_version.cc`
  (`FindMinimumRuntimeVersionForOp`; the converter's copy of
  `tensorflow/lite/tools/versioning/runtime_version.cc`, which adds TILE v4):
  RUNTIME_VERSIONS, the rule table graphtool/rules/runtime_versions.json.
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

from ... import rules
from ...ir import DType, Graph, Node, Ref, Tensor
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

VERSIONED_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV",
                           "EMBEDDING_LOOKUP", "DEQUANTIZE"})

F32, I4, I8, I16, F16 = DType.FLOAT32, DType.INT4, DType.INT8, DType.INT16, DType.FLOAT16


def required_version(graph: Graph, node: Node) -> int | None:
    """The version op_version.cc gives `node` from its signature (input and output types,
    weight quantization, options); None for ops outside VERSIONED_OPS."""
    rule = _RULES.get(node.op)
    if rule is None or keys.is_custom(node):
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


_RULES = {"CONV_2D": _conv_2d, "DEPTHWISE_CONV_2D": _depthwise_conv_2d, "FULLY_CONNECTED": _fully_connected,
          "BATCH_MATMUL": _batch_matmul, "TRANSPOSE_CONV": _transpose_conv, "EMBEDDING_LOOKUP": _embedding_lookup,
          "DEQUANTIZE": _dequantize}


def _tensor(graph: Graph, ref: Ref) -> Tensor | None:
    node = graph.node(ref.node)
    return node.outputs[ref.port] if ref.port < len(node.outputs) else None
