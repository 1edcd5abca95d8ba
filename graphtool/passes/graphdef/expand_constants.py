"""expand_constants: write every constant in the one form all GraphDef consumers read."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ...formats.graphdef.tensor_proto import MAX_EXPANDED_BYTES, source_form, write_afresh
from ...ir import Graph, Tensor
from ..helpers.skips import Skips
from ..registry import Context, PassError, PassResult, register


@dataclass(frozen=True)
class Params:
    max_bytes: int = field(default=MAX_EXPANDED_BYTES, metadata={
        "doc": "leave a constant alone when its values would take more bytes than this"})


@register("expand_constants", Params, formats=("graphdef",), guarantee="exact")
def expand_constants(graph: Graph, params: Params, context: Context) -> PassResult:
    """Store every non-scalar constant's values in tensor_content, and every scalar's one value in its typed field.

    TensorFlow reads a TensorProto's values from tensor_content or from its typed field
    (float_val, int_val, ...), where fewer values than elements mean the last one repeats
    and none mean zeros. Other consumers read less: OpenCV's importer fails on a non-scalar
    constant stored without tensor_content (a Keras 3 EfficientNet's `normalization/Sub/y`
    holds no values at all, its `Sqrt/x` one `float_val` for three elements), and reads a
    scalar axis from `int_val`. This writes each tensor attribute (a Const's value) stored
    otherwise in graphtool's standard form, the one it writes new constants in: the values
    of a non-scalar tensor in full in tensor_content (strings: one string_val each), a
    scalar's one value in its typed field, as TensorFlow's make_tensor_proto does. Values
    are those TensorFlow reads, bit for bit (exact); constants already in that form keep
    their bytes.

    stats: "expanded" (constants rewritten), "forms" (how they were stored, by form: "no
    values", "broadcast", "typed field", "scalar in tensor_content") and "skipped" (larger
    than max_bytes)."""
    if params.max_bytes < 0:
        raise PassError(f"expand_constants: max_bytes must be >= 0, got {params.max_bytes}")
    forms: Counter[str] = Counter()
    skipped = Skips("expand_constants", context.log)
    for node in graph:
        for tensor in [value for value in node.attrs.values() if isinstance(value, Tensor)]:
            form = source_form(tensor)
            if form is None:
                continue
            if tensor.nbytes > params.max_bytes:
                skipped(node.name, "larger than max_bytes", f"{tensor.nbytes:,} bytes stored as {form}")
                continue
            write_afresh(tensor)
            forms[form] += 1
    stats = {"expanded": sum(forms.values()), "forms": dict(sorted(forms.items())), "skipped": skipped.stats()}
    return PassResult(bool(forms), stats)

