"""graphtool: the Graph Transform Tool for the TFLite era.

    import graphtool
    graph = graphtool.load("model.pb")
    print(graphtool.inspect(graph).ops)
    graphtool.transform(graph, "remove_nodes(op=Identity) fold_batch_norms")
    graphtool.save(graph, "model.pbtxt")

The public names are imported on first use (PEP 562, the table below): `import graphtool`
and the command line import only what they run, so a command starts in little more time
than numpy and networkx take to import.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import FormatError, GraphError, GraphtoolError, UnknownFormatError

if TYPE_CHECKING:  # what type checkers and editors see; _PUBLIC says the same for run time
    from .analysis.check import CheckReport, check
    from .analysis.diff import DiffReport, diff
    from .analysis.inspect import Summary, inspect
    from .analysis.layers import LayersReport, verify_layers
    from .analysis.sensitivity import SensitivityReport, sensitivity
    from .analysis.split import SplitReport, split
    from .analysis.verify import VerifyReport, verify
    from .formats import load, save
    from .ir import DType, Graph, Node, Ref, Tensor
    from .passes import TransformReport, transform
    from .passes.convert import ConversionResult, convert_to_tflite
    from .runtime.calibrate import Calibration, calibrate

__version__ = "0.1.0"

# public name -> the module it comes from, imported when the name is first used
_PUBLIC = {
    "Summary": "analysis.inspect", "inspect": "analysis.inspect",
    "CheckReport": "analysis.check", "check": "analysis.check",
    "DiffReport": "analysis.diff", "diff": "analysis.diff",
    "VerifyReport": "analysis.verify", "verify": "analysis.verify",
    "LayersReport": "analysis.layers", "verify_layers": "analysis.layers",
    "SensitivityReport": "analysis.sensitivity", "sensitivity": "analysis.sensitivity",
    "SplitReport": "analysis.split", "split": "analysis.split",
    "load": "formats", "save": "formats",
    "DType": "ir", "Graph": "ir", "Node": "ir", "Ref": "ir", "Tensor": "ir",
    "TransformReport": "passes", "transform": "passes",
    "ConversionResult": "passes.convert", "convert_to_tflite": "passes.convert",
    "Calibration": "runtime.calibrate", "calibrate": "runtime.calibrate",
}
# the layers, as attributes too (`graphtool.formats.dumps` after `import graphtool`)
_LAYERS = ("analysis", "cli", "formats", "ir", "logs", "passes", "pattern", "rules", "runtime")

__all__ = ["Calibration", "CheckReport", "ConversionResult", "DType", "DiffReport", "VerifyReport", "FormatError", "Graph", "GraphError", "GraphtoolError", "LayersReport", "Node", "Ref", "SensitivityReport", "SplitReport", "Summary",
           "Tensor", "TransformReport", "UnknownFormatError", "__version__", "calibrate", "check", "convert_to_tflite", "diff", "inspect", "load", "save", "sensitivity", "split",
           "transform", "verify", "verify_layers"]


def __getattr__(name: str) -> Any:
    """A public name or a layer, imported on first use and kept (the next lookup is direct)."""
    if name in _LAYERS:
        return importlib.import_module(f"{__name__}.{name}")
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC, *_LAYERS})
