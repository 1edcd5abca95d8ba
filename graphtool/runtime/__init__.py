"""Thin adapters to the real runtimes, imported lazily: TensorFlow runs GraphDefs
(`graphtool.runtime.tensorflow`), LiteRT runs TFLite models (`graphtool.runtime.litert`).
Importing this package imports neither runtime."""
from ..errors import GraphtoolError

DEFAULT_SAMPLES = 8  # random examples a model runs on when no data are given (verify)


class RuntimeUnavailableError(GraphtoolError):
    """The runtime a command needs is not installed."""


class ModelRunError(GraphtoolError):
    """The runtime refused to load or run a model."""


__all__ = ["DEFAULT_SAMPLES", "ModelRunError", "RuntimeUnavailableError"]
