"""The named checks rule tables apply to an operator (gpu.json, xnnpack.json, micro.json).

Each check takes the operator's signature and the rule's parameters and returns None when
the operator passes, or the reason in words. The generic ones (counts, options, types,
ranks) serve every table; the op-specific ones follow gpu_compatibility.cc's helpers of the
same purpose (CheckDepthwiseConvGpuDelegateCompatibility, CheckAddMulBroadcastCompatibility, ...).
"""
from __future__ import annotations

from typing import Any, Callable

from .signature import OpSignature, TensorSpec

Check = Callable[[OpSignature, dict[str, Any]], "str | None"]
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
CHECKS: dict[str, Check] = {}


def run(sig: OpSignature, specs: list[dict[str, Any]]) -> str | None:
    """The first failing check's reason, or None."""
    for spec in specs:
        reason = CHECKS[spec["check"]](sig, spec)
        if reason is not None:
            return reason
    return None


def check(name: str) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        CHECKS[name] = function
        return function
    return register


def _type(spec: TensorSpec | None) -> str:
    return "absent" if spec is None or spec.dtype is None else spec.dtype.value


def _count(have: int, p: dict, what: str, at_least: bool = False) -> str | None:
    """None when the operator has the `what` (inputs, outputs) the rule asks for, else why not."""
    if have >= p["count"] if at_least else have == p["count"]:
        return None
    return f"{'needs at least' if at_least else 'expects'} {p['count']} {what}, the operator has {have}"


@check("input_count")
def _input_count(sig: OpSignature, p: dict) -> str | None:
    return _count(len(sig.inputs), p, "inputs")


@check("input_count_min")
def _input_count_min(sig: OpSignature, p: dict) -> str | None:
    return _count(len(sig.inputs), p, "inputs", at_least=True)


@check("output_count")
def _output_count(sig: OpSignature, p: dict) -> str | None:
    return _count(len(sig.outputs), p, "outputs")


@check("runtime_inputs")
def _runtime_inputs(sig: OpSignature, p: dict) -> str | None:
    if sig.runtime_inputs != p["count"]:
        return f"expects {p['count']} non-constant input(s), the operator has {sig.runtime_inputs}"
    if "outputs" in p and len(sig.outputs) != p["outputs"]:
        return f"expects {p['outputs']} output(s), the operator has {len(sig.outputs)}"
    return None


@check("runtime_inputs_max")
def _runtime_inputs_max(sig: OpSignature, p: dict) -> str | None:
    return None if sig.runtime_inputs <= p["count"] else \
        f"supports at most {p['count']} non-constant inputs, the operator has {sig.runtime_inputs}"


@check("runtime_const_inputs")
def _runtime_const_inputs(sig: OpSignature, p: dict) -> str | None:
    pair = [sig.runtime_inputs, sig.const_inputs]
    if pair not in [list(a) for a in p["allowed"]] or len(sig.outputs) != p.get("outputs", len(sig.outputs)):
        wanted = " or ".join(f"{r} non-constant + {c} constant" for r, c in p["allowed"])
        return f"expects {wanted} input(s), the operator has {pair[0]} non-constant + {pair[1]} constant"
    return None


@check("convolution_io")
def _convolution_io(sig: OpSignature, p: dict) -> str | None:
    if sig.runtime_inputs > 2:
        return f"expects 1 or 2 non-constant inputs, the operator has {sig.runtime_inputs}"
    if len(sig.outputs) != 1:
        return f"expects 1 output, the operator has {len(sig.outputs)}"
    if sig.runtime_inputs == 1 and len(sig.inputs) < 2:
        return "the filter input is missing"
    return None


@check("positive")
def _positive(sig: OpSignature, p: dict) -> str | None:
    bad = [f"{name} = {sig.option(name, 1)}" for name in p["options"] if sig.option(name, 1) <= 0]
    return f"needs positive {', '.join(bad)}" if bad else None


@check("activation")
def _activation(sig: OpSignature, p: dict) -> str | None:
    value = int(sig.option(p["option"], 0))
    if value in p["allowed"]:
        return None
    return f"fused activation {ACTIVATIONS.get(value, value)} is not supported"


@check("option_equals")
def _option_equals(sig: OpSignature, p: dict) -> str | None:
    return None if sig.option(p["option"], p["value"]) == p["value"] else \
        f"{p['reason']} ({p['option']} = {sig.option(p['option'])})"


@check("option_zero")
def _option_zero(sig: OpSignature, p: dict) -> str | None:
    set_ = [name for name in p["options"] if sig.option(name, 0)]
    return f"does not support {', '.join(set_)}" if set_ else None


@check("not_both")
def _not_both(sig: OpSignature, p: dict) -> str | None:
    a, b = p["options"]
    return f"{a} and {b} cannot both be set" if sig.option(a, 0) and sig.option(b, 0) else None


@check("input_type")
def _input_type(sig: OpSignature, p: dict) -> str | None:
    spec = sig.input(p["input"])
    return None if _type(spec) in p["types"] else \
        f"input {p['input']} must be {' or '.join(p['types'])}, it is {_type(spec)}"


@check("input_type_not")
def _input_type_not(sig: OpSignature, p: dict) -> str | None:
    spec = sig.input(p["input"])
    return f"input {p['input']} of type {_type(spec)} is not supported" if _type(spec) in p["types"] else None


@check("input_not_const")
def _input_not_const(sig: OpSignature, p: dict) -> str | None:
    spec = sig.input(p["input"])
    return f"input {p['input']} must not be a constant" if spec is not None and spec.is_const else None


@check("input_rank")
def _input_rank(sig: OpSignature, p: dict) -> str | None:
    spec = sig.input(p["input"])
    rank = None if spec is None else spec.rank
    return None if rank in p["ranks"] else \
        f"input {p['input']} must have rank {' or '.join(map(str, p['ranks']))}, it has {rank}"


@check("const_axes")
def _const_axes(sig: OpSignature, p: dict) -> str | None:
    spec = sig.input(p["input"])
    if spec is None or not spec.is_const:
        return "supports constant axes only"
    return None if _type(spec) == "int32" else f"supports int32 axes only, they are {_type(spec)}"


@check("cast_types")
def _cast_types(sig: OpSignature, p: dict) -> str | None:
    source, target = _type(sig.input(0)), _type(sig.outputs[0] if sig.outputs else None)
    if any(source in ins and target in outs for ins, outs in p["pairs"]):
        return None
    return f"cast from {source} to {target} is not supported"


@check("block_size")
def _block_size(sig: OpSignature, p: dict) -> str | None:
    size = sig.option("block_size", 0)
    return None if size > 1 else f"block_size {size} must be > 1"


@check("keep_num_dims")
def _keep_num_dims(sig: OpSignature, p: dict) -> str | None:
    if not sig.option("keep_num_dims", 0) or not sig.outputs:
        return None
    source = sig.input(0)
    if source is not None and source.rank != sig.outputs[0].rank:
        return "keep_num_dims with input and output of different ranks is not supported"
    return None


def _broadcastable(longer: tuple, shorter: tuple) -> bool:
    for a, b in zip(reversed(longer), reversed(shorter)):
        if a != b and a != 1 and b != 1:
            return False
    return True


@check("broadcast")
def _broadcast(sig: OpSignature, p: dict) -> str | None:
    a, b = sig.input(0), sig.input(1)
    if a is None or b is None:
        return "needs two input tensors"
    da, db = a.dims, b.dims
    if len(da) > 1 and len(db) > 1 and len(da) != len(db):
        longer, shorter = (da, db) if len(da) >= len(db) else (db, da)
        if not _broadcastable(longer, shorter):
            return f"cannot broadcast {list(da)} with {list(db)}"
    return None


@check("mul_dims")
def _mul_dims(sig: OpSignature, p: dict) -> str | None:
    a, b = sig.input(0), sig.input(1)
    if a is None or b is None:
        return "needs two input tensors"
    if len(a.dims) == len(b.dims):
        first_smaller = any(x < y for x, y in zip(a.dims, b.dims))
        second_smaller = any(y < x for x, y in zip(a.dims, b.dims))
        if first_smaller and second_smaller:
            return "needs one input at least as large as the other in every dimension"
        return None
    return _broadcast(sig, p)


@check("depthwise")
def _depthwise(sig: OpSignature, p: dict) -> str | None:
    source, weights = sig.input(0), sig.input(1)
    bias = sig.input(2)
    out = sig.outputs[0] if sig.outputs else None
    if source is None or weights is None or out is None:
        return "needs input, filter and output tensors"
    if len(source.dims) != 4 or len(weights.dims) != 4 or len(out.dims) != 4:
        return "input, filter and output must be 4-D"
    if source.dims[0] != out.dims[0]:
        return "input and output batch differ"
    multiplier = sig.option("depth_multiplier", 1)
    in_depth, out_depth = source.dims[3], out.dims[3]
    if weights.dims[3] != out_depth:
        return "filter channels differ from output channels"
    if out_depth != in_depth * multiplier:
        return "output channels != input channels * depth_multiplier"
    if bias is not None and _elements(bias.dims) != out_depth:
        return "bias size differs from output channels"
    if multiplier != 1 and in_depth != 1:
        return "depth_multiplier != 1 is supported only for 1 input channel"
    return None


@check("paddings")
def _paddings(sig: OpSignature, p: dict) -> str | None:
    spec = sig.input(1)
    if spec is None:
        return "the paddings input is missing"
    dims = spec.dims
    if len(dims) != 2 or dims[0] not in (3, 4) or dims[1] != 2:
        return f"paddings must be 3x2 or 4x2, they are {'x'.join(map(str, dims)) or 'scalar'}"
    return None


@check("cumsum")
def _cumsum(sig: OpSignature, p: dict) -> str | None:
    data, axis = sig.input(0), sig.input(1)
    out = sig.outputs[0] if sig.outputs else None
    if len(sig.inputs) != 2 or data is None or axis is None or out is None:
        return "expects 2 inputs and 1 output"
    if _type(data) not in ("float16", "float32") or _type(out) != _type(data) or _type(axis) != "int32" \
            or not axis.is_const:
        return "input and output must be float and the axis a constant int32"
    return None


@check("one_hot")
def _one_hot(sig: OpSignature, p: dict) -> str | None:
    reason = "indices must be int32, on/off values constant float scalars, axis -1 or last"
    if len(sig.inputs) != 4 or any(s is None for s in sig.inputs) or _type(sig.input(0)) != "int32":
        return reason
    indices = sig.input(0)
    axis = sig.option("axis", -1)
    if axis != -1 and (not indices.dims or axis != indices.dims[-1]):
        return reason
    for i, d in enumerate(indices.dims[:-1]):
        if len(indices.dims) > 3 and i == 0:
            continue
        if d != 1:
            return f"non-singleton index dimension {i} is not supported"
    for slot in (2, 3):
        value = sig.input(slot)
        if _type(value) != "float32" or not value.is_const or len(value.dims) > 1 or (value.dims and value.dims[0] > 1):
            return reason
    return None


@check("select_v2")
def _select_v2(sig: OpSignature, p: dict) -> str | None:
    reason = "condition must be bool or float, the two values float and the output's shape or constant scalars"
    if len(sig.inputs) != 3 or len(sig.outputs) != 1 or any(s is None for s in sig.inputs):
        return "expects 3 inputs and 1 output"
    cond, a, b = sig.inputs
    floats = ("float16", "float32")
    if _type(cond) not in ("bool", *floats) or _type(a) not in floats or _type(b) not in floats:
        return reason
    out = sig.outputs[0].dims
    for value in (a, b):
        dims = value.dims
        if dims and dims != out and (len(dims) > 1 or dims[0] > 1):
            return reason
        if value.is_const and len(dims) == 2:
            return "a 2-D value input is supported only when constant"
    return None


@check("embedding_lookup")
def _embedding_lookup(sig: OpSignature, p: dict) -> str | None:
    if len(sig.inputs) != 2 or len(sig.outputs) != 1 or sig.input(0) is None or sig.input(1) is None:
        return "expects 2 inputs and 1 output"
    ids, values, out = sig.input(0), sig.input(1), sig.outputs[0]
    if len(ids.dims) != 1:
        return "ids must be 1-D"
    if len(values.dims) < 2 or len(values.dims) != len(out.dims) or values.dims[1:] != out.dims[1:]:
        return "value and output shapes do not match"
    return None if _type(values) in ("int8", "int4", "float32") else "values must be int8, int4 or float32"


@check("dynamic_update_slice")
def _dynamic_update_slice(sig: OpSignature, p: dict) -> str | None:
    if len(sig.inputs) != 3 or any(s is None for s in sig.inputs):
        return "needs 3 inputs"
    operand, update, start = sig.inputs
    if len(operand.dims) == 4 and operand.dims[0] != 1:
        return "supports a 4-D operand with batch 1 only"
    if len(start.dims) != 1 or _type(start) != "int32":
        return "start indices must be 1-D int32"
    if _type(operand) != _type(update) or len(update.dims) != len(operand.dims):
        return "operand and update must have the same type and rank"
    return None


@check("lstm")
def _lstm(sig: OpSignature, p: dict) -> str | None:
    kernel = sig.option("kernel_type", 0)
    activation = sig.option("fused_activation_function", 0)
    if kernel == 0:  # FULL
        if len(sig.inputs) not in (20, 24):
            return f"expects 20 or 24 inputs, the operator has {len(sig.inputs)}"
        if len(sig.outputs) != 1:
            return "expects 1 output"
        return None if activation in (4, 6) else "supports sigmoid or tanh activation only"
    if sig.runtime_inputs != 3 or sig.const_inputs != 2 or len(sig.outputs) != 4:
        return "the basic LSTM kernel expects 3 non-constant + 2 constant inputs and 4 outputs"
    if activation != 4:
        return "the basic LSTM kernel supports TANH activation only"
    if sig.option("cell_clip", 0.0) or sig.option("proj_clip", 0.0):
        return "cell_clip / proj_clip are not supported"
    return None


def _elements(dims: tuple) -> int:
    count = 1
    for d in dims:
        count *= d
    return count
