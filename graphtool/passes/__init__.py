"""Composable transforms over the IR, registered by their Graph Transform Tool names."""
from .pipeline import PassReport, TransformReport, calls_of, transform
from .registry import Context, NoParams, Pass, PassError, PassResult, all_passes, get, register
from .spec import SpecError, TransformCall, parse

__all__ = ["Context", "NoParams", "Pass", "PassError", "PassReport", "PassResult", "SpecError", "TransformCall",
           "TransformReport", "all_passes", "calls_of", "get", "parse", "register", "transform"]
