"""TFLite flatbuffers (`.tflite`) <-> IR: every schema field, offsets verified before use."""
from .reader import FORMAT, read
from .writer import write, write_parts

__all__ = ["FORMAT", "read", "write", "write_parts"]
