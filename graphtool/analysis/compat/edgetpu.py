"""`edgetpu`: what the Coral Edge TPU compiler maps to the TPU (rules: edgetpu.json, after
coral.ai's "TensorFlow models on the Edge TPU"). Every tensor must be 8-bit quantized with a
static size and at most 3 non-unit innermost dimensions, parameters constant, operators
from the supported list; the compiler stops at the first unsupported operator and leaves
it and everything after it to the CPU."""
from __future__ import annotations

from ... import rules
from ...formats.tflite import versions
from ...ir import Graph
from .report import ERROR, WARNING, CheckReport, Finding
from .runtime import version_key
from .signature import OpSignature, TensorSpec, operators, primary_operators

WEIGHT_SLOTS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1}
BIAS_SLOTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}


def check(graph: Graph, report: CheckReport) -> None:
    table = rules.table("edgetpu")
    report.sources += [rules.source(table, key) for key in table["sources"]]
    inputs = {name for name in graph.inputs}
    outputs = {ref.node for ref in graph.outputs}
    first_unsupported: str | None = None
    for sig in operators(graph):
        report.operators += 1
        errors = _tensor_problems(sig, table)
        warnings: list[str] = []
        entry = None if sig.custom else table["ops"].get(sig.op)
        if entry is None:
            if _at_edge(sig, table, inputs, outputs):
                warnings.append(f"{sig.op} at the model's {table['edge_ops'][sig.op]} runs on the CPU")
                errors = [e for e in errors if "float32" not in e]  # float on the outside is its job
            else:
                errors.insert(0, f"{sig.op} is not supported by the Edge TPU" +
                              ("" if first_unsupported else "; the compiler stops here: it and every operator "
                                                            "after it run on the CPU"))
                first_unsupported = first_unsupported or sig.name
        else:
            errors += _op_limits(sig, entry)
            if first_unsupported is not None:
                warnings.append(f"runs on the CPU: it comes after {first_unsupported!r}, where the compiler stopped")
        warnings += _version_warning(sig, table) + _batch_warning(sig)
        if errors:
            fix = table["dynamic_fix"]["advice"] if all("dynamic" in e for e in errors) else table["fix"]["advice"]
            report.findings.append(Finding(sig.name, sig.op, sig.subgraph, sig.index, ERROR, "; ".join(errors), fix))
        elif warnings:
            report.findings.append(Finding(sig.name, sig.op, sig.subgraph, sig.index, WARNING, "; ".join(warnings)))


def _role(sig: OpSignature, slot: int | None) -> str:
    if slot is None:
        return "output"
    if WEIGHT_SLOTS.get(sig.op) == slot:
        return "weights"
    if BIAS_SLOTS.get(sig.op) == slot:
        return "bias"
    return "input" if slot == 0 else f"input {slot}"


def _tensor_problems(sig: OpSignature, table: dict) -> list[str]:
    quantized, parameters = set(table["quantized_types"]), set(table["parameter_types"])
    tensors: list[tuple[int | None, TensorSpec]] = [(slot, spec) for slot, spec in enumerate(sig.inputs)
                                                     if spec is not None]
    tensors += [(None, spec) for spec in sig.outputs]
    by_type: dict[str, list[str]] = {}
    unquantized: list[str] = []
    problems: list[str] = []
    for slot, spec in tensors:
        role = _role(sig, slot)
        dtype = None if spec.dtype is None else spec.dtype.value
        if dtype in parameters and (spec.is_const or role == "bias"):
            if role == "bias" and not spec.is_const:
                problems.append(f"{sig.op} bias is computed at run time; the Edge TPU needs constant parameters")
        elif dtype not in quantized:
            by_type.setdefault(str(dtype), []).append(role)
        elif spec.tensor.quantization is None:
            unquantized.append(role)
        if spec.shape is not None and any(d is None for d in spec.shape[1:]):
            problems.append(f"{sig.op} {role} has a dynamic size {_shape(spec)}; the Edge TPU needs static sizes")
        elif not spec.is_const and spec.shape is not None and len(spec.shape) > table["max_non_unit_dims"] \
                and any(d not in (1, None) for d in spec.shape[:-table["max_non_unit_dims"]]):
            problems.append(f"{sig.op} {role} {_shape(spec)} has more than {table['max_non_unit_dims']} non-unit "
                            f"innermost dimensions")
    typed = [f"{sig.op} {_roles(roles)} {_be(roles)} {dtype}; the Edge TPU needs int8 (or uint8) quantized tensors"
             for dtype, roles in by_type.items()]
    if unquantized:
        typed.append(f"{sig.op} {_roles(unquantized)} {_be(unquantized)} 8-bit without quantization parameters")
    return list(dict.fromkeys(typed + problems))


def _roles(roles: list[str]) -> str:
    roles = list(dict.fromkeys(roles))
    return roles[0] if len(roles) == 1 else ", ".join(roles[:-1]) + " and " + roles[-1]


def _be(roles: list[str]) -> str:
    return "are" if len(set(roles)) > 1 or roles[0] == "weights" else "is"


def _op_limits(sig: OpSignature, entry: dict) -> list[str]:
    problems = []
    if entry.get("no_fused_activation") and sig.option("fused_activation_function", 0):
        problems.append(f"{sig.op} with a fused activation is not supported")
    if entry.get("default_weights_format") and sig.option("weights_format", 0):
        problems.append(f"{sig.op} supports the default weights format only")
    if entry.get("unit_strides"):
        strides = sig.input(3)
        data = None if strides is None or not strides.is_const else strides.tensor.data
        if data is None or any(int(s) != 1 for s in data.flat):
            problems.append(f"{sig.op} needs constant strides of 1")
        if sig.option("ellipsis_mask", 0) or sig.option("new_axis_mask", 0):
            problems.append(f"{sig.op} needs ellipsis_mask and new_axis_mask 0")
    return problems


def edge_operators(graph: Graph, table: dict, sigs: list[OpSignature] | None = None) -> set[int]:
    """Indices of the primary subgraph's operators (`sigs`, if already made) that run on the
    CPU at the model's input or output edge (edge_ops) without stopping the compiler."""
    inputs = set(graph.inputs)
    outputs = {ref.node for ref in graph.outputs}
    return {sig.index for sig in (primary_operators(graph) if sigs is None else sigs) if sig.op in table["edge_ops"] and not sig.custom
            and sig.op not in table["ops"] and _at_edge(sig, table, inputs, outputs)}


def _at_edge(sig: OpSignature, table: dict, inputs: set[str], outputs: set[str]) -> bool:
    side = table["edge_ops"].get(sig.op) if not sig.custom else None
    if side == "input":
        refs = sig.graph.inputs_of(sig.name)
        return bool(refs) and refs[0] is not None and refs[0].node in inputs
    if side == "output":
        return sig.name in outputs
    return False


def _version_warning(sig: OpSignature, table: dict) -> list[str]:
    if sig.custom:
        return []
    needed = versions.min_runtime(sig.op, sig.version)
    if needed is not None and version_key(needed) > version_key(table["runtime_version"]):
        return [f"{sig.op} version {sig.version} needs TFLite runtime {needed}; the Edge TPU runtime is built on "
                f"{table['runtime_version']} and may not know it"]
    return []


def _batch_warning(sig: OpSignature) -> list[str]:
    dynamic = [spec for spec in [*sig.present_inputs(), *sig.outputs] if spec.shape and spec.shape[0] is None]
    if not dynamic or sig.index != 0 or sig.subgraph != 0:
        return []
    return ["the batch size is dynamic (shape_signature -1); the Edge TPU compiles the stored size 1"]


def _shape(spec: TensorSpec) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in spec.shape or ()) + "]"
