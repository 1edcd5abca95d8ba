"""TFLite flatbuffers (`.tflite`) <-> IR: every schema field, offsets verified before use."""
from .reader import FORMAT, read
from .writer import write

__all__ = ["FORMAT", "read", "write"]
