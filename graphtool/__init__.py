"""graphtool: the Graph Transform Tool for the TFLite era.

    import graphtool
    graph = graphtool.load("model.pb")
    print(graphtool.inspect(graph).ops)
    graphtool.transform(graph, "remove_nodes(op=Identity) fold_batch_norms")
    graphtool.save(graph, "model.pbtxt")
"""
from .analysis import Summary, inspect
from .analysis.check import CheckReport, check
from .analysis.diff import DiffReport, diff
from .analysis.verify import VerifyReport, verify
from .errors import FormatError, GraphError, GraphtoolError, UnknownFormatError
from .formats import load, save
from .ir import DType, Graph, Node, Ref, Tensor
from .passes import TransformReport, transform
from .runtime.calibrate import Calibration, calibrate

__version__ = "0.1.0"

__all__ = ["Calibration", "CheckReport", "DType", "DiffReport", "VerifyReport", "FormatError", "Graph", "GraphError", "GraphtoolError", "Node", "Ref", "Summary",
           "Tensor", "TransformReport", "UnknownFormatError", "__version__", "calibrate", "check", "diff", "inspect", "load", "save",
           "transform", "verify"]
