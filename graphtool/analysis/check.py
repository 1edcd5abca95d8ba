"""check: will this model run on a runtime or accelerator? Operator by operator, with the
reason and, where graphtool has one, the transform that fixes it.

Targets:
  tflite         GraphDef: would TFLITE_BUILTINS alone convert it; .tflite: only builtins
  tflite+select  builtins plus the Select TF ops allowlist (Flex delegate)
  gpu            the TFLite GPU delegate (gpu_compatibility.cc)             .tflite
  edgetpu        the Coral Edge TPU compiler's requirements                 .tflite
  micro          TFLite Micro's kernels (the tflite-micro Python resolver)  .tflite
  xnnpack        the XNNPACK delegate                                       .tflite
  runtime        the minimum TFLite runtime (runtime_version.cc)            .tflite
  runtime:X.Y.Z  ... and every operator checked against runtime X.Y.Z

The rules are data (graphtool/rules/*.json, the one copy), each
naming the file or document and TensorFlow version it comes from.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import GraphtoolError
from ..rules import TARGETS
from .compat.report import (
    COMPATIBLE,
    ERROR,
    INCOMPATIBLE,
    INFO,
    NONE,
    PARTIAL,
    SEVERITIES,
    WARNING,
    CheckReport,
    Finding,
)

if TYPE_CHECKING:
    from ..ir import Graph

__all__ = ["COMPATIBLE", "DELEGATES", "ERROR", "INCOMPATIBLE", "INFO", "NONE", "PARTIAL", "SEVERITIES", "TARGETS",
           "WARNING", "CheckError", "CheckReport", "Finding", "check", "parse_target"]

DELEGATES = frozenset({"gpu", "edgetpu", "xnnpack"})  # run what they take; the CPU runs the rest
RUNTIME_PREFIX = "runtime:"


class CheckError(GraphtoolError):
    """The target is unknown, or does not apply to the model's format."""


def check(graph: Graph, target: str, outputs: Iterable[str] | None = None) -> CheckReport:
    """Check `graph` against `target` (see TARGETS; also "runtime:2.10.0").

    `outputs` (GraphDef only) limits the check to what those nodes need, as the converter
    does with its output arrays; by default every node is checked."""
    name, version = parse_target(target)
    fmt = graph.format
    if fmt not in ("graphdef", "tflite"):
        raise CheckError(f"cannot check a {fmt!r} graph; load a .pb, .pbtxt or .tflite model")
    if fmt == "graphdef" and name not in ("tflite", "tflite+select"):
        raise CheckError(f"target {target!r} checks TFLite models; convert the GraphDef to .tflite first "
                         f"(or check it with --target tflite)")
    if outputs and fmt != "graphdef":
        raise CheckError("outputs apply to GraphDefs only (a .tflite model declares its outputs)")
    report = CheckReport(target=target, format=fmt, is_runtime_target=name == "runtime",
                         is_delegate=name in DELEGATES)
    if fmt == "graphdef":
        _checker("graphdef_ops").check(graph, report, select=name == "tflite+select", outputs=outputs)
    elif name == "runtime":
        _checker("runtime").check(graph, report, version)
    else:
        module, options = _TFLITE_CHECKERS[name]
        _checker(module).check(graph, report, **options)
        if name in DELEGATES:
            _checker("delegation").apply(graph, report, name)
    return report


def parse_target(target: str) -> tuple[str, str | None]:
    """("runtime", "2.10.0") for "runtime:2.10.0"; (target, None) otherwise."""
    if target.startswith(RUNTIME_PREFIX):
        version = target[len(RUNTIME_PREFIX):]
        _checker("runtime").version_key(version)  # raises on a malformed version
        return "runtime", version
    if target not in TARGETS:
        raise CheckError(f"unknown target {target!r}; targets: {', '.join(TARGETS)}, runtime:<version>")
    return target, None


# a .tflite target -> the module of .compat that checks it, and the keywords its check takes
_TFLITE_CHECKERS: dict[str, tuple[str, dict[str, Any]]] = {
    "tflite": ("tflite_ops", {"select": False}),
    "tflite+select": ("tflite_ops", {"select": True}),
    "gpu": ("gpu", {}),
    "edgetpu": ("edgetpu", {}),
    "micro": ("micro", {}),
    "xnnpack": ("xnnpack", {}),
}


def _checker(module: str) -> ModuleType:
    """The checker module `module` of .compat, imported when a check needs it: checking
    against one target imports that target's checker (and reads its rules) only."""
    return importlib.import_module(f"{__package__}.compat.{module}")
