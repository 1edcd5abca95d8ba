"""inline_partitionedcall: replace function calls by the called function's body."""
from __future__ import annotations

from typing import Any

from ...formats import graphdef
from ...formats.graphdef import keys
from ...ir import Graph, Node, Ref
from ...ir.attrs import AttrPlaceholder, FuncAttr
from ..helpers.graphdef_nodes import protected
from ..registry import Context, NoParams, PassError, PassResult, register

CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
MAX_DEPTH = 32  # rounds of nested inlining before a call chain is taken as recursion

# A FunctionDef names node outputs "node:output_arg:index"; turning that into a port needs
# the op's output args in order. For ops with a single output arg the port is the index
# (GTT's rule). These are the common ops with several single-tensor output args (checked
# against TF's op registry by the tests).
OUTPUT_ARGS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("FusedBatchNorm", "FusedBatchNormV2"),
                    ("y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2")),
    **dict.fromkeys(("FusedBatchNormV3", "_FusedBatchNormEx"),
                    ("y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2", "reserve_space_3")),
    **dict.fromkeys(("Unique", "UniqueV2"), ("y", "idx")),
    **dict.fromkeys(("UniqueWithCounts", "UniqueWithCountsV2"), ("y", "idx", "count")),
    **dict.fromkeys(("TopK", "TopKV2"), ("values", "indices")),
    **dict.fromkeys(("Switch", "RefSwitch"), ("output_false", "output_true")),
    **dict.fromkeys(("Merge", "RefMerge"), ("output", "value_index")),
    **dict.fromkeys(("QuantizeV2", "QuantizedConcat", "QuantizedReshape", "Requantize"),
                    ("output", "output_min", "output_max")),
    **dict.fromkeys(("QuantizedConv2D", "QuantizedAvgPool", "QuantizedMaxPool", "QuantizedDepthwiseConv2D"),
                    ("output", "min_output", "max_output")),
    "QuantizedMatMul": ("out", "min_out", "max_out"),
    "QuantizedBiasAdd": ("output", "min_out", "max_out"),
    **dict.fromkeys(("QuantizedRelu", "QuantizedRelu6"), ("activations", "min_activations", "max_activations")),
    **dict.fromkeys(("QuantizedAdd", "QuantizedMul"), ("z", "min_z", "max_z")),
    "RequantizationRange": ("output_min", "output_max"),
    "MaxPoolWithArgmax": ("output", "argmax"),
    "Svd": ("s", "u", "v"),
    "Qr": ("q", "r"),
    **dict.fromkeys(("SelfAdjointEigV2", "Eig"), ("e", "v")),
    "NonMaxSuppressionV4": ("selected_indices", "valid_outputs"),
    "NonMaxSuppressionV5": ("selected_indices", "selected_scores", "valid_outputs"),
    "CombinedNonMaxSuppression": ("nmsed_boxes", "nmsed_scores", "nmsed_classes", "valid_detections"),
    "ListDiff": ("out", "idx"),
    "BroadcastGradientArgs": ("r0", "r1"),
}


@register("inline_partitionedcall", NoParams, formats=("graphdef",), guarantee="exact")
def inline_partitionedcall(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Inline PartitionedCall and StatefulPartitionedCall nodes (GTT: PartitionedCall only).

    Each call whose `f` names a function in the graph's library is replaced by copies of the
    function body's nodes, named `<call>/<node>`; the function's input args read the call's
    inputs, and consumers of `<call>:i` read the body's i-th return value. Control inputs of
    the call go to the body's entry nodes; control consumers of the call wait for the
    return values and the function's control outputs. Calls inside inlined bodies are
    inlined too. A declared input/output call keeps its name as an Identity (IdentityN for
    several outputs) of the return values. The function library is left as it is (other
    nodes such as StatelessIf/While still refer to it). Fails with PassError on a missing
    function, an input count mismatch, list-typed arguments, attr placeholders the call
    does not set, and outputs of unknown multi-output ops it cannot number. Exact, except
    that stateful body nodes nothing depends on no longer run as part of the call."""
    calls_exist = any(node.op in CALL_OPS for node in graph)
    if not calls_exist:
        return PassResult(False, {"inlined": 0})
    keep = protected(graph, context.inputs + context.outputs)
    header = graph.meta.get(keys.HEADER)
    functions = {f.signature.name: f for f in header.library.function} if header is not None else {}
    inlined: list[str] = []
    for depth in range(MAX_DEPTH + 1):
        calls = [node for node in graph if node.op in CALL_OPS]
        if not calls:
            break
        if depth == MAX_DEPTH:
            raise PassError(f"inline_partitionedcall: calls still left after {MAX_DEPTH} rounds of inlining "
                            f"(recursive function?): {', '.join(n.name for n in calls[:5])}")
        for call in calls:
            inlined.append(_inline(graph, call, functions, keep))
    graph.toposort()
    return PassResult(True, {"inlined": len(inlined), "functions": sorted(set(inlined))})


def _inline(graph: Graph, call: Node, functions: dict[str, graphdef.FunctionDef], keep: set[str]) -> str:
    where = f"inline_partitionedcall: {call.name!r}"
    func = call.attrs.get("f")
    if not isinstance(func, FuncAttr):
        raise PassError(f"{where} has no function attr 'f'")
    fdef = functions.get(func.name)
    if fdef is None:
        raise PassError(f"{where} calls {func.name!r}, which is not in the graph's function library")
    signature = fdef.signature
    for arg in list(signature.input_arg) + list(signature.output_arg):
        if arg.number_attr or arg.type_list_attr:
            raise PassError(f"{where}: function {func.name!r} arg {arg.name!r} is a list; not supported")
    inputs = graph.inputs_of(call.name)
    if len(inputs) != len(signature.input_arg) or None in inputs:
        raise PassError(f"{where} has {len(inputs)} inputs; function {func.name!r} takes "
                        f"{len(signature.input_arg)}")
    body = _Body(call.name, func, fdef, {arg.name: ref for arg, ref in zip(signature.input_arg, inputs)})
    for node_def in fdef.node_def:
        graph.add_node(body.node(node_def, graph))
    call_controls = graph.control_inputs_of(call.name)
    for node_def in fdef.node_def:
        data, controls, internal = body.inputs(node_def)
        name = body.name(node_def.name)
        graph.set_inputs(name, data)
        graph.set_control_inputs(name, controls + ([] if internal else call_controls))

    missing = [arg.name for arg in signature.output_arg if arg.name not in fdef.ret]
    if missing:
        raise PassError(f"{where}: function {func.name!r} returns nothing for {', '.join(missing)}")
    rets = [body.tensor(fdef.ret[arg.name]) for arg in signature.output_arg]
    control_rets = [body.name(n) for _, n in sorted(fdef.control_ret.items())]
    used_ports = graph.used_ports(call.name)
    if any(port >= len(rets) for port in used_ports):
        raise PassError(f"{where}: an output port is used that function {func.name!r} does not return")
    for port, ret in enumerate(rets):
        graph.replace_uses(Ref(call.name, port), ret)
    waits = list(dict.fromkeys([r.node for r in rets] + control_rets))
    for consumer in graph.control_consumers(call.name):
        controls = [c for c in graph.control_inputs_of(consumer) if c != call.name]
        graph.set_control_inputs(consumer, controls + [w for w in waits if w != consumer])
    graph.set_inputs(call.name, [])
    graph.set_control_inputs(call.name, [])
    graph.remove_node(call.name)
    if call.name in keep:
        graph.add_node(_stand_in(call, rets), rets, control_rets)
    return func.name


def _stand_in(call: Node, rets: list[Ref]) -> Node:
    """A node with the call's name and outputs, for a call that is a declared input/output."""
    types = tuple(call.attrs.get("Tout", ()))
    device = {"device": call.meta.get(keys.DEVICE, "")}
    if len(rets) == 1:
        return Node(call.name, "Identity", {"T": types[0]} if types else {}, meta=device)
    if not rets:
        return Node(call.name, "NoOp", {}, meta=device)
    return Node(call.name, "IdentityN", {"T": types}, meta=device)


class _Body:
    """Translates one function body's names into the graph's: `<call>/<node>` for body nodes,
    the call's input for an arg, and "node:output_arg:index" into a port."""

    def __init__(self, prefix: str, func: FuncAttr, fdef: graphdef.FunctionDef, args: dict[str, Ref]):
        self.prefix, self.func, self.args = prefix, func, args
        self.ops = {n.name: n.op for n in fdef.node_def}
        self.out_args: dict[str, set[str]] = {}  # node -> output arg names the body refers to
        texts = [t for n in fdef.node_def for t in n.input] + list(fdef.ret.values())
        for text in texts:
            parts = text.lstrip("^").split(":")
            if len(parts) == 3:
                self.out_args.setdefault(parts[0], set()).add(parts[1])

    def name(self, body_name: str) -> str:
        return f"{self.prefix}/{body_name}"

    def node(self, node_def: graphdef.NodeDef, graph: Graph) -> Node:
        name = self.name(node_def.name)
        if name in graph:
            raise PassError(f"inline_partitionedcall: inlining {self.prefix!r} would add {name!r}, "
                            "which already exists")
        node = graphdef.detached_copy(node_def, name, f"function {self.func.name!r} node {node_def.name!r}")
        node.attrs = {key: self._attr(value, key, name) for key, value in node.attrs.items()}
        return node

    def _attr(self, value: Any, key: str, node: str) -> Any:
        if not isinstance(value, AttrPlaceholder):
            return value
        if value.name not in self.func.attrs:
            raise PassError(f"inline_partitionedcall: {node!r} attr {key!r} refers to function attr "
                            f"{value.name!r}, which {self.prefix!r} does not set")
        return self.func.attrs[value.name]

    def inputs(self, node_def: graphdef.NodeDef) -> tuple[list[Ref], list[str], bool]:
        """Data inputs, control inputs, and whether any input comes from another body node."""
        data: list[Ref] = []
        controls: list[str] = []
        internal = False
        for text in node_def.input:
            if text.startswith("^"):
                source = text[1:]
                if source in self.args:
                    controls.append(self.args[source].node)
                elif source in self.ops:
                    controls.append(self.name(source))
                    internal = True
                else:
                    raise PassError(f"inline_partitionedcall: function {self.func.name!r} node "
                                    f"{node_def.name!r} waits for unknown {source!r}")
            else:
                ref = self.tensor(text)
                internal |= len(text.split(":")) == 3
                data.append(ref)
        return data, list(dict.fromkeys(controls)), internal

    def tensor(self, text: str) -> Ref:
        parts = text.split(":")
        if parts[0] in self.args and (len(parts) == 1 or parts[1:] == ["0"]):
            return self.args[parts[0]]
        if len(parts) == 3 and parts[0] in self.ops and parts[2].isdigit():
            return Ref(self.name(parts[0]), self._port(parts[0], parts[1], int(parts[2])))
        raise PassError(f"inline_partitionedcall: function {self.func.name!r} refers to {text!r}, "
                        "which is neither an argument nor 'node:output:index' of its body")

    def _port(self, node: str, out_arg: str, index: int) -> int:
        op = self.ops[node]
        known = OUTPUT_ARGS.get(op)
        if known is not None:
            if out_arg not in known or index != 0:
                raise PassError(f"inline_partitionedcall: {op} has no output {out_arg}:{index} "
                                f"(function {self.func.name!r} node {node!r})")
            return known.index(out_arg)
        if len(self.out_args.get(node, ())) > 1:
            raise PassError(f"inline_partitionedcall: function {self.func.name!r} uses outputs "
                            f"{', '.join(sorted(self.out_args[node]))} of {node!r} ({op}); graphtool does not "
                            "know their order for this op")
        return index
