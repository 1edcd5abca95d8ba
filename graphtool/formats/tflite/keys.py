"""The meta keys the TFLite reader sets and the writer reads: what a .tflite file has that
the IR does not model, kept so that read -> write loses nothing.

Keys with a "tflite." prefix hold the tables as read (records of the file, shared between
Graph copies: replace them, never change them in place); the others hold values passes
may read and set.
"""
from __future__ import annotations

from ...ir import Node, Tensor

# -- on the main Graph (the model) ------------------------------------------------------------
HEADER = "tflite.header"                 # the Model table's other fields (version, description, metadata...)
BUFFERS = "tflite.buffers"               # list of Buffer tables as read; a tensor's table names its index
OPERATOR_CODES = "tflite.operator_codes"  # list of OperatorCode tables as read
OPCODES_IN_USE = "tflite.opcodes_in_use"  # indices of operator codes some operator used when read
UNKNOWN = "tflite.unknown"               # fields the schema does not know (writing would drop them)
PROBLEMS = "tflite.problems"             # schema rules the file breaks that LiteRT does not check (kept as read)
EXTERNAL = "tflite.external"             # True when buffers were stored after the flatbuffer (> 2 GB)
SIGNATURE_DEFS = "signature_defs"        # [{"key", "subgraph": Graph, "inputs"/"outputs": [(name, Tensor)]}] or None
DANGLING_SIGNATURES = "tflite.dangling_signatures"  # [(position, SignatureDef table)] naming no subgraph
DANGLING_ENTRIES = "tflite.dangling"     # in a signature: {"inputs"/"outputs": [(position, TensorMap table)]} naming no tensor
METADATA = "metadata"                    # name -> bytes of each metadata entry
SUPPORT_METADATA = "TFLITE_METADATA"     # the entry of METADATA holding TFLite Support metadata (support_metadata.py)
DESCRIPTION = "description"              # the model's description string
ASSOCIATED_FILES = "associated_files"    # the zip archive after the flatbuffer (TFLite Support metadata's
                                         # associated files) as a standalone archive's bytes; absent when none

# -- on every subgraph's Graph ------------------------------------------------------------------
SUBGRAPH = "tflite.subgraph"  # SubGraph table fields besides tensors, operators, inputs, outputs
ABSENT_LISTS = "graphtool.absent"  # in SUBGRAPH: which of tensors/operators/inputs/outputs the file left out
RAW_IO = "graphtool.raw_io"  # in SUBGRAPH: {"inputs"/"outputs": (list as read, IR list as read)} when the
                             # file's lists name tensors it does not have; written back while the IR list is unchanged

# -- on an operator's Node -----------------------------------------------------------------------
VERSION = "version"                              # the operator code's version (int)
CUSTOM = "custom"                                # True for a custom operator (op is its custom code)
OPCODE_INDEX = "tflite.opcode_index"             # the operator code it was read with
OPERATOR = "tflite.operator"                     # its Operator table as read
RAW_INDICES = "tflite.raw_indices"               # set when its tensor indices name tensors the subgraph lacks:
                                                 # (inputs, outputs) in the IR as read; while equal, written as read
OPTIONS_TYPE = "tflite.options_type"             # the BuiltinOptions union member of its attrs
OPTIONS_2_TYPE = "tflite.options_2_type"         # the BuiltinOptions2 union member of attrs["options_2"]
INTERMEDIATES = "intermediates"                  # list of intermediate Tensors (LSTM kernels)
LARGE_CUSTOM_OPTIONS = "tflite.large_custom_options"  # custom options stored after the flatbuffer
OPERATOR_KEYS = (VERSION, CUSTOM, OPCODE_INDEX, OPERATOR, OPTIONS_TYPE, OPTIONS_2_TYPE, INTERMEDIATES,
                 LARGE_CUSTOM_OPTIONS)

# -- on a Tensor (and a signature def: TABLE) -----------------------------------------------------
TABLE = "tflite.table"        # its Tensor table as read (type, shape, buffer index, quantization, ...)
INDEX = "tflite.index"        # its index in its subgraph's tensor list when read (the writer keeps the order)
READ = "tflite.read"          # (name, dtype, shape, quantization) as read: the writer re-describes it when they differ
SPARSITY = "sparsity"         # its SparsityParameters table, for sparse constants

# -- inside a Buffer table ------------------------------------------------------------------------
EXTERNAL_DATA = "graphtool.external"  # the data of a buffer stored after the flatbuffer
UNREADABLE_DATA = "graphtool.unreadable"  # why a buffer's offset and size point outside the file (kept as read)


def is_custom(node: Node) -> bool:
    """True for a custom operator."""
    return bool(node.meta.get(CUSTOM))


def op_version(node: Node) -> int:
    """The version an operator is (or will be) written with; 1 when not set."""
    return int(node.meta.get(VERSION, 1))


def table_of(tensor: Tensor) -> dict:
    """The tensor's table as read ({} for a tensor graphtool made)."""
    return tensor.meta.get(TABLE, {})


def described_as_read(tensor: Tensor) -> bool:
    """True while the tensor's name, type, shape and quantization are what its table says."""
    return tensor.meta.get(READ) == _description(tensor)


def mark_described(tensor: Tensor) -> None:
    """Record the tensor's current name, type, shape and quantization as what its table says
    (after a pass has written them into a new table itself)."""
    tensor.meta[READ] = _description(tensor)


def _description(tensor: Tensor) -> tuple:
    return tensor.name, tensor.dtype, tensor.shape, tensor.quantization
