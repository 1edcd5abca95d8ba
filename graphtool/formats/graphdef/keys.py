"""The meta keys the GraphDef reader sets and the writer reads: what a GraphDef has that
the IR does not model, kept so that read -> write loses nothing.

Keys with a "graphdef." prefix hold the messages as read (records of the file, shared
between Graph copies: replace them, never change them in place); the others hold values
passes may read and set.
"""
from __future__ import annotations

from ...ir import Node

# -- on the Graph ----------------------------------------------------------------------------
HEADER = "graphdef.header"       # the GraphDef message without its nodes (versions, library, debug info...)
TEXT = "graphdef.text"           # True when read from text format (.pbtxt): the default when written
FUNCTION_NAMES = "function_names"  # names of the functions in the library
VERSIONS = "versions"            # {"producer", "min_consumer"} when the file states them
PROBLEMS = "graphdef.problems"   # what the file holds that TensorFlow imports but a GraphDef should not (kept as read)

# -- on a Node -------------------------------------------------------------------------------
NODE_DEF = "graphdef.node_def"    # the NodeDef as read (debug info, fields graphtool does not know)
ATTRS_READ = "graphdef.attrs_read"  # attrs as read: the writer re-encodes only what changed
DEVICE = "device"                 # the node's device string ("" for none)

# -- on a Tensor -----------------------------------------------------------------------------
TENSOR_PROTO = "graphdef.tensor_proto"  # the TensorProto a constant was read from
BROKEN = "broken"  # why a constant's TensorProto cannot be decoded (TensorFlow imports it; its data raises)

PREFIX = "graphdef."


def device_of(node: Node) -> str:
    """The node's device string ("" when it has none)."""
    return node.meta.get(DEVICE, "") or ""


def forget_source(node: Node) -> None:
    """Drop the records of the NodeDef `node` was read from: the node has become another op,
    and the writer must not reuse them."""
    for key in [k for k in node.meta if k.startswith(PREFIX)]:
        del node.meta[key]
