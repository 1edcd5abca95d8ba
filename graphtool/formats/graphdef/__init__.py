"""Frozen TensorFlow GraphDefs (`.pb` binary, `.pbtxt` text) <-> IR, without TensorFlow.

The public surface: read/parse/write, the meta keys (`keys`), and what passes need to make
nodes from a function library (`node_from_proto`, `detached_copy`, `attr_from_bytes`, the
message types), and `messages`, the generated protobuf module itself."""
from . import keys
from ._proto import graphtool_graphdef_pb2 as messages
from ._proto.graphtool_graphdef_pb2 import AttrValue, FunctionDef, GraphDef, NodeDef
from .attr_value import attr_from_bytes
from .reader import FORMAT, detached_copy, node_from_proto, parse, read
from .writer import to_message, write

__all__ = ["FORMAT", "AttrValue", "FunctionDef", "GraphDef", "NodeDef", "attr_from_bytes", "detached_copy", "keys",
           "messages", "node_from_proto", "parse", "read", "to_message", "write"]
