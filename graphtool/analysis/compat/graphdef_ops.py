"""`tflite` and `tflite+select` for a GraphDef: would the TFLite converter turn every node
into TFLite builtins (or, with Select TF ops, into builtins and allowlisted Flex ops)?

What the converter does, and this check models (rules: tflite_graphdef.json):
- it converts only what the output arrays need (`outputs`; default: every node);
- it removes identity-like nodes, no-ops and asserts, functionalizes TF1 control flow,
  and converts If/While/PartitionedCall with the functions they call;
- it evaluates a stateless op whose inputs are all constant (or static shapes) with
  TensorFlow's kernels, so such an op needs no TFLite kernel;
- every other op must be legalized to a TFLite op, with an element type TFLite computes
  in (no float64/float16 arithmetic, for instance).
"""
from __future__ import annotations

from functools import cache
from typing import Any, Iterable

from ... import rules
from ...errors import GraphError
from ...formats.graphdef import keys as graphdef_keys
from ...ir import MISSING_OP, DType, Graph, Node
from ...ir.attrs import FuncAttr, TensorShape
from .report import ERROR, INFO, WARNING, CheckReport, Finding, transform_fix

NOINLINE = " noinline"  # key of the functions marked _noinline (not a function name: it has a space)
SELECT_ADVICE = "convert with SELECT_TF_OPS (graphtool check --target tflite+select) and link the Flex delegate"


def check(graph: Graph, report: CheckReport, select: bool, outputs: Iterable[str] | None = None) -> None:
    table = rules.table("tflite_graphdef")
    allow = _allowlist() if select else frozenset()
    report.sources += [rules.source(table, key) for key in table["sources"] if key != "verified"]
    if select:
        report.sources.append(rules.source(rules.table("select_tf_ops"), "allowlist"))
    wanted = _needed(graph, outputs)
    constant = _constant_nodes(graph, table)
    functions = _functions(graph)
    for node in graph:
        if wanted is not None and node.name not in wanted:
            continue
        report.operators += 1
        finding = _check_node(graph, node, table, allow, select, constant, functions)
        if finding is not None:
            report.findings.append(finding)


def _check_node(graph: Graph, node: Node, table: dict, allow: frozenset[str], select: bool,
                constant: set[str], functions: dict[str, list[str]]) -> Finding | None:
    op = node.op
    if op == MISSING_OP:
        return _finding(node, ERROR, f"{node.name!r} is an input of other nodes but no node has that name")
    if op in table["removed"]["names"] or op in table["control_flow"]["names"]:
        return None
    if op in table["function_calls"]["names"]:
        return _check_call(node, table, allow, select, functions)
    if _fused(graph, node, table):
        return None
    entry = table["ops"].get(op)
    problem = _unsupported(node, entry, table)
    if problem is None:
        return None
    if node.name in constant:
        return _finding(node, INFO, f"{problem}, but all its inputs are constant: the converter evaluates it "
                                    f"at conversion time", transform_fix("fold_constants"))
    if op in allow:
        return _finding(node, WARNING, f"{problem}; it runs as the Select TF op Flex{op}, which needs the Flex "
                                       f"delegate linked into the app (adds several MB)")
    if select:
        return _finding(node, ERROR, f"{problem}, and {op} is not on the Select TF ops allowlist")
    advice = SELECT_ADVICE if op in _allowlist() else None
    return _finding(node, ERROR, problem + ("" if advice else f"; {op} is not on the Select TF ops allowlist either"),
                    advice)


def _fused(graph: Graph, node: Node, table: dict) -> bool:
    """Whether the converter fuses `node` with its neighbours into one builtin (table
    "fusions": the op reading it and the ops reading it, e.g. tf.nn.gelu's Erfc into GELU)."""
    pattern = table.get("fusions", {}).get(node.op)
    if pattern is None:
        return False
    refs = [ref for ref in graph.inputs_of(node.name) if ref is not None]
    readers = graph.consumers(node)
    return bool(refs) and graph.node(refs[0].node).op == pattern["input_op"] and bool(readers) and \
        all(graph.node(name).op == pattern["consumer_op"] for name, _ in readers)


def _unsupported(node: Node, entry: dict[str, Any] | None, table: dict) -> str | None:
    """Why `node` has no TFLite builtin, or None when it has one."""
    if entry is None:
        return f"{node.op} has no TFLite builtin (the converter does not legalize it)"
    missing = [op for op in entry.get("lowers_to", ()) if op not in table["ops"]]
    if missing:
        return (f"{node.op} is lowered to {', '.join(entry['lowers_to'])} before legalization, and "
                f"{', '.join(missing)} has no TFLite builtin")
    allowed = table["type_sets"][entry["types"]]
    dtype = node.attrs.get(table["type_attr"])
    if allowed is not None and isinstance(dtype, DType) and dtype.value not in allowed:
        return f"{node.op} on {dtype} has no TFLite builtin kernel (TFLite computes {node.op} in {', '.join(allowed)})"
    return None


def _check_call(node: Node, table: dict, allow: frozenset[str], select: bool,
                functions: dict[str, list[str]]) -> Finding | None:
    """If/While/PartitionedCall: supported when every op in the functions they reach is."""
    missing: set[str] = set()
    flex: set[str] = set()
    called = _called(node.attrs, table["function_calls"]["function_attrs"])
    kept = [name for name in called if name in functions.get(NOINLINE, ())]
    if kept and node.op in table["function_calls"]["inlined_calls"]:
        return _finding(node, ERROR, f"{node.op} calls {', '.join(kept)}, marked _noinline: the converter keeps the "
                                     f"call, and TFLite has no kernel for {node.op}",
                        transform_fix("inline_partitionedcall"))
    for name in called:
        for op in _ops_reached(name, functions, table):
            if op in table["ops"] or op in table["removed"]["names"] or op in table["control_flow"]["names"]:
                continue
            (flex if op in allow else missing).add(op)
    if missing:
        return _finding(node, ERROR, f"{node.op} calls functions that use {', '.join(sorted(missing))}, which have no "
                                     f"TFLite builtin" + ("" if select else " (type constraints not checked inside)"),
                        transform_fix("inline_partitionedcall") if node.op.endswith("PartitionedCall") else None)
    if flex:
        return _finding(node, WARNING, f"{node.op} calls functions that use {', '.join(sorted(flex))}, which run as "
                                       f"Select TF ops (Flex delegate)")
    return None


def _called(attrs: dict[str, Any], keys: list[str]) -> list[str]:
    names = []
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, FuncAttr):
            names.append(value.name)
    return names


def _ops_reached(name: str, functions: dict[str, list[str]], table: dict) -> set[str]:
    seen, ops, stack = set(), set(), [name]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        for op in functions.get(current, ()):
            if op in functions:  # a function called as an op
                stack.append(op)
            else:
                ops.add(op)
    return ops


def _functions(graph: Graph) -> dict[str, list[str]]:
    """Function name -> the ops of its nodes and the functions its nodes call (by attr)."""
    header = graph.meta.get(graphdef_keys.HEADER)
    library = getattr(header, "library", None)
    if library is None:
        return {}
    result: dict[str, list[str]] = {NOINLINE: []}
    for function in library.function:
        if function.attr["_noinline"].b if "_noinline" in function.attr else False:
            result[NOINLINE].append(function.signature.name)
        ops = []
        for node_def in function.node_def:
            ops.append(node_def.op)
            for value in node_def.attr.values():
                if value.HasField("func"):
                    ops.append(value.func.name)
        result[function.signature.name] = ops
    return result


def _needed(graph: Graph, outputs: Iterable[str] | None) -> set[str] | None:
    """The nodes the outputs depend on (data and control), or None for every node."""
    if not outputs:
        return None
    names = set()
    for output in outputs:
        name = output.split(":")[0].lstrip("^")
        if name not in graph:
            raise GraphError(f"output {output!r} names no node of the graph")
        names.add(name)
        names |= graph.ancestors(name)
    return names


def _constant_nodes(graph: Graph, table: dict) -> set[str]:
    """Nodes the converter evaluates at conversion time: constants, static shapes, and
    stateless ops whose data inputs are all such nodes."""
    folding = table["folding"]
    never = set(folding["never"]) | {op for op, entry in table["ops"].items() if entry.get("stateful")}
    static_shape_ops = set(folding["static_shape_ops"])
    constant: set[str] = set()
    for node in _topological(graph):
        if node.op == "Const":
            constant.add(node.name)
            continue
        if node.op in never or node.op == MISSING_OP:
            continue
        refs = [ref for ref in graph.inputs_of(node.name) if ref is not None]
        if not refs:
            continue
        if node.op in static_shape_ops and _static_shape(graph.node(refs[0].node)):
            constant.add(node.name)
        elif all(ref.node in constant for ref in refs):
            constant.add(node.name)
    return constant


def _static_shape(node: Node) -> bool:
    if node.op not in ("Placeholder", "PlaceholderV2"):
        return False
    shape = node.attrs.get("shape")
    return isinstance(shape, TensorShape) and shape.dims is not None and all(d is not None for d in shape.dims)


def _topological(graph: Graph) -> list[Node]:
    try:
        return [graph.node(name) for name in graph.topological_order(ignore_back_edges=False)]
    except GraphError:  # a cycle (TF1 loops): keep the file order
        return list(graph)


def _finding(node: Node, severity: str, reason: str, fix: str | None = None) -> Finding:
    return Finding(node.name, node.op, None, None, severity, reason, fix)


@cache
def _allowlist() -> frozenset[str]:
    table = rules.table("select_tf_ops")
    return frozenset(table["ops"]["names"]) | frozenset(table["library_ops"]["names"])
