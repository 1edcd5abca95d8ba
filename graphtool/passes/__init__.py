"""Composable transforms over the IR, registered by their Graph Transform Tool names.

Where a transform lives says which models it runs on:

    passes/graphdef/<name>.py   a transform on GraphDefs
    passes/tflite/<name>.py     a transform on TFLite models
    passes/common/<name>.py     one function that serves both formats
    passes/helpers/             what several transforms share (matchers, folding kernels,
                                batch-norm arithmetic, skip bookkeeping); registers nothing

One transform, one file, named as users type it: `fold_batch_norms` on a .pb is
passes/graphdef/fold_batch_norms.py, on a .tflite passes/tflite/fold_batch_norms.py.
Importing a transform module registers it (see registry.register). The registry's index
(index.json, written by `make docs`) says which module registers each transform: running
one imports its module only, listing them (`catalog`) imports none.
"""
from .pipeline import PassReport, TransformReport, calls_of, transform
from .registry import Context, NoParams, Pass, PassError, PassInfo, PassResult, all_passes, catalog, get, register
from .spec import SpecError, TransformCall, parse

__all__ = ["Context", "NoParams", "Pass", "PassError", "PassInfo", "PassReport", "PassResult", "SpecError",
           "TransformCall", "TransformReport", "all_passes", "calls_of", "catalog", "get", "parse", "register",
           "transform"]
