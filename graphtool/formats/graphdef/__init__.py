"""Frozen TensorFlow GraphDefs (`.pb` binary, `.pbtxt` text) <-> IR, without TensorFlow."""
from .reader import FORMAT, parse, read
from .writer import to_message, write

__all__ = ["FORMAT", "parse", "read", "to_message", "write"]
