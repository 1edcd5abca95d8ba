"""thin_channels for GraphDefs: output channels that are the same for every input (all-zero
filters) leave their layer, and the layers that read them."""
from __future__ import annotations

import numpy as np

from ...ir import DType, Graph, Node, Ref, make_const
from ...pattern import constant_value
from ..helpers.channel_thinning import FUNCTIONS, ChannelGraph, Plan, binary, concat_offsets, take
from ..helpers.fusion import remove_dead
from ..helpers.graphdef_nodes import protected
from ..registry import Context, NoParams, PassResult, register

# Weights axes: Conv2D [h, w, in, out], DepthwiseConv2dNative [h, w, in, multiplier],
# MatMul [in, out] ([out, in] with transpose_b), Conv2DBackpropInput (a transpose conv) [h, w, out,
# in]; the weights are input 1 of each, the data input 0 (2 of Conv2DBackpropInput).
LINEAR_OPS = ("Conv2D", "DepthwiseConv2dNative", "MatMul", "Conv2DBackpropInput")
AXES = {"Conv2D": (2, 3), "DepthwiseConv2dNative": (2, 2), "MatMul": (0, 1), "Conv2DBackpropInput": (3, 2)}
INPUT_SLOT = {"Conv2DBackpropInput": 2}
UNARY = {"Relu": "relu", "Relu6": "relu6", "Sigmoid": "sigmoid", "Tanh": "tanh", "Elu": "elu",
         "LeakyRelu": "leaky_relu", "Abs": "abs", "Neg": "neg", "Identity": "identity", "Snapshot": "identity",
         "StopGradient": "identity"}
POOLS = ("MaxPool", "AvgPool")
REDUCES = {"Mean": True, "Max": True, "Min": True, "Sum": False}  # keeps a constant's value
BINARY = {"BiasAdd": "add", "Add": "add", "AddV2": "add", "Sub": "sub", "Mul": "mul"}
BATCH_NORMS = ("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")


class Analysis:
    """The graph described as channels (see helpers/channel_thinning.py). GraphDef tensors
    seldom carry shapes, so channel counts and ranks are worked out from the weights."""

    def __init__(self, graph: Graph, keep: set[str]):
        self.graph = graph
        self.keep = keep
        self.channels = ChannelGraph()
        self.rank: dict[Ref, int] = {}
        self.linears: list[Node] = []
        self.absorbing: set[str] = set()
        self.sliced: list[tuple[str, int, int]] = []  # (node, slot, axis) of per-channel constants
        self.reshapes: list[str] = []  # flattening Reshapes
        for name in graph.topological_order():
            self._visit(graph.node(name))
        for name in sorted(keep):
            if name in graph:
                self.channels.block(Ref(name, 0), "model_output")
        for node in graph:  # what nothing reads is an output too
            if not graph.consumers(Ref(node.name, 0)):
                self.channels.block(Ref(node.name, 0), "model_output")

    def _visit(self, node: Node) -> None:
        if node.op in ("Placeholder", "PlaceholderWithDefault"):
            shape = node.attrs.get("shape")
            dims = getattr(shape, "dims", None)
            if dims and dims[-1] is not None:
                self._add(Ref(node.name, 0), np.full(int(dims[-1]), np.nan), len(dims))
                self.channels.block(Ref(node.name, 0), "model_input")
            return
        if node.op in ("Const", "NoOp"):
            return
        refs = self.graph.inputs_of(node.name)
        handled: set[int] = set()
        rule = self._rule(node)
        if rule is not None and node.attrs.get("data_format", b"NHWC") in ("NHWC", b"NHWC"):
            handled = rule(node, refs)
        for slot, ref in enumerate(refs):
            if ref is not None and slot not in handled and ref in self.channels:
                self.channels.block(ref, f"read_by_{node.op}")

    def _rule(self, node: Node):
        op = node.op
        if op in LINEAR_OPS:
            return self._linear
        if op in UNARY:
            return self._unary
        if op in POOLS:
            return self._pool
        if op in ("Pad", "PadV2", "MirrorPad"):
            return self._pad
        if op in REDUCES:
            return self._reduce
        if op in BINARY:
            return self._binary
        if op in BATCH_NORMS:
            return self._batch_norm
        if op == "ConcatV2":
            return self._concat
        if op == "Reshape":
            return self._flatten
        return None

    def _add(self, ref: Ref, values: np.ndarray, rank: int) -> None:
        self.channels.add(ref, values)
        self.rank[ref] = rank

    def _const(self, ref: Ref | None) -> np.ndarray | None:
        found = constant_value(self.graph, ref) if ref is not None else None
        return None if found is None else found[1]

    def _through(self, x: Ref, out: Ref, values: np.ndarray) -> set[int]:
        self._add(out, values, self.rank[x])
        self.channels.link_all(x, out)
        return {0}

    def _linear(self, node: Node, refs: list[Ref | None]) -> set[int]:
        out = Ref(node.name, 0)
        x = refs[INPUT_SLOT.get(node.op, 0)] if len(refs) > INPUT_SLOT.get(node.op, 0) else None
        weights = self._const(refs[1]) if len(refs) > 1 else None
        if x is None or weights is None or weights.dtype != np.float32 or node.attrs.get("T") != DType.FLOAT32:
            return set()
        strided = [int(s) for s in node.attrs.get("strides", (1, 1, 1, 1))]
        if node.op == "MatMul":
            if weights.ndim != 2 or node.attrs.get("transpose_a"):
                return set()
            w = weights.T if node.attrs.get("transpose_b") else weights  # [in, out]
            zero = ~np.any(w != 0, axis=0)
            self._add(out, np.where(zero, 0.0, np.nan), 2)
            self.linears.append(node)
            return self._absorb(node, x, w.shape[0], unpadded=True)
        if weights.ndim != 4 or node.attrs.get("padding") in ("EXPLICIT", b"EXPLICIT") or len(strided) != 4:
            return set()
        unpadded = weights.shape[:2] == (1, 1) or node.attrs.get("padding") in ("VALID", b"VALID")
        if node.op == "Conv2DBackpropInput":
            sizes = self._const(refs[0])
            if sizes is None or sizes.shape != (4,):
                return set()
            zero = ~np.any(np.moveaxis(weights, 2, 0).reshape(weights.shape[2], -1) != 0, axis=1)
            self._add(out, np.where(zero, 0.0, np.nan), 4)
            self.linears.append(node)
            return {2} if self._absorb(node, x, weights.shape[3], unpadded=False) else set()
        if node.op == "Conv2D":
            zero = ~np.any(weights.reshape(-1, weights.shape[3]) != 0, axis=0)
            self._add(out, np.where(zero, 0.0, np.nan), 4)
            self.linears.append(node)
            return self._absorb(node, x, weights.shape[2], unpadded)
        if weights.shape[3] != 1 or x not in self.channels or self.channels.count(x) != weights.shape[2]:
            return set()
        columns = weights.reshape(-1, weights.shape[2])
        zero = ~np.any(columns != 0, axis=0)
        inputs = self.channels.values[x]
        known = ~np.isnan(inputs) & ((inputs == 0) | unpadded)
        values = np.where(zero, 0.0, np.where(known, np.nan_to_num(inputs) * columns.astype(np.float64).sum(0), np.nan))
        self.linears.append(node)
        return self._through(x, out, values)

    def _absorb(self, node: Node, x: Ref, count: int, unpadded: bool) -> set[int]:
        """`node` takes input channels out of its weights (constants into a bias after it)."""
        if x not in self.channels or self.channels.count(x) != count:
            return set()
        self.absorbing.add(node.name)
        if not unpadded:
            values = self.channels.values[x]
            self.channels.block(x, f"constant_into_padded_{node.op}",
                                np.flatnonzero(~np.isnan(values) & (values != 0)))
        return {0}

    def _unary(self, node: Node, refs: list[Ref | None]) -> set[int]:
        x = refs[0] if refs else None
        if x is None or x not in self.channels:
            return set()
        alpha = float(node.attrs.get("alpha", 0.2))
        return self._through(x, Ref(node.name, 0), FUNCTIONS[UNARY[node.op]](self.channels.values[x], alpha))

    def _pool(self, node: Node, refs: list[Ref | None]) -> set[int]:
        x = refs[0] if refs else None
        if x is None or x not in self.channels:
            return set()
        return self._through(x, Ref(node.name, 0), self.channels.values[x])

    def _pad(self, node: Node, refs: list[Ref | None]) -> set[int]:
        x = refs[0] if refs else None
        paddings = self._const(refs[1]) if len(refs) > 1 else None
        if x is None or x not in self.channels or paddings is None or paddings.ndim != 2 or np.any(paddings[-1] != 0):
            return set()
        values = self.channels.values[x]
        if node.op != "MirrorPad":
            fill = 0.0
            if node.op == "PadV2":
                constant = self._const(refs[2]) if len(refs) > 2 else None
                if constant is None or constant.size != 1:
                    return set()
                fill = float(constant.reshape(-1)[0])
            values = np.where(values == fill, values, np.nan)
        return self._through(x, Ref(node.name, 0), values)

    def _reduce(self, node: Node, refs: list[Ref | None]) -> set[int]:
        x = refs[0] if refs else None
        axes = self._const(refs[1]) if len(refs) > 1 else None
        if x is None or x not in self.channels or axes is None:
            return set()
        rank = self.rank[x]
        axes = {int(a) % rank for a in axes.reshape(-1)}
        if rank - 1 in axes:
            return set()
        values = self.channels.values[x]
        if not REDUCES[node.op]:
            values = np.where(values == 0, 0.0, np.nan)
        self._add(Ref(node.name, 0), values, rank if node.attrs.get("keep_dims") else rank - len(axes))
        self.channels.link_all(x, Ref(node.name, 0))
        return {0}

    def _binary(self, node: Node, refs: list[Ref | None]) -> set[int]:
        out, op = Ref(node.name, 0), BINARY[node.op]
        if len(refs) != 2 or None in refs:
            return set()
        a, b = refs
        if a in self.channels and b in self.channels and node.op != "BiasAdd":
            if self.channels.count(a) != self.channels.count(b):
                return set()
            self._add(out, binary(op, self.channels.values[a], self.channels.values[b]), max(self.rank[a], self.rank[b]))
            self.channels.link_all(a, out)
            self.channels.link_all(b, out)
            return {0, 1}
        for slot, ref in enumerate(refs):
            constant = self._const(refs[1 - slot])
            if ref not in self.channels or constant is None or (node.op == "BiasAdd" and slot != 0):
                continue
            count = self.channels.count(ref)
            if constant.ndim > self.rank[ref] or (constant.ndim and (any(d != 1 for d in constant.shape[:-1])
                                                                     or constant.shape[-1] not in (1, count))):
                return set()
            per_channel = np.broadcast_to(constant.reshape(-1).astype(np.float64), (count,))
            values = self.channels.values[ref]
            pair = (values, per_channel) if slot == 0 else (per_channel, values)
            self._through(ref, out, binary(op, *pair))
            if constant.ndim and constant.shape[-1] == count and count > 1:
                self.sliced.append((node.name, 1 - slot, -1))
            return {slot}
        return set()

    def _batch_norm(self, node: Node, refs: list[Ref | None]) -> set[int]:
        x = refs[0] if refs else None
        if x is None or x not in self.channels or node.attrs.get("is_training", True) or len(refs) < 5:
            return set()
        count = self.channels.count(x)
        params = [self._const(ref) for ref in refs[1:5]]
        if any(p is None or p.shape != (count,) for p in params):
            return set()
        scale, offset, mean, variance = (p.astype(np.float64) for p in params)
        epsilon = float(node.attrs.get("epsilon", 1e-4))
        values = (self.channels.values[x] - mean) * scale / np.sqrt(variance + epsilon) + offset
        self.sliced += [(node.name, slot, 0) for slot in range(1, 5)]
        return self._through(x, Ref(node.name, 0), values)

    def _flatten(self, node: Node, refs: list[Ref | None]) -> set[int]:
        """A Reshape of [batch, ..., C] to a constant [-1, positions * C]: channel c is every
        C-th element of the output, from c on."""
        x = refs[0] if refs else None
        shape = self._const(refs[1]) if len(refs) > 1 else None
        if x not in self.channels or shape is None or shape.shape != (2,) or int(shape[0]) != -1 \
                or self.rank[x] < 3:
            return set()
        count, size = self.channels.count(x), int(shape[1])
        if size <= 0 or size % count:
            return set()
        out = Ref(node.name, 0)
        self._add(out, np.tile(self.channels.values[x], size // count), 2)
        for position in range(size // count):
            self.channels.link_all(x, out, position * count)
        self.reshapes.append(node.name)
        return {0}

    def _concat(self, node: Node, refs: list[Ref | None]) -> set[int]:
        out = Ref(node.name, 0)
        axis = self._const(refs[-1]) if refs else None
        inputs = refs[:-1]
        if axis is None or axis.size != 1 or not inputs or any(r not in self.channels for r in inputs):
            return set()
        rank = self.rank[inputs[0]]
        if int(axis.reshape(-1)[0]) % rank != rank - 1:
            return set()
        counts = [self.channels.count(r) for r in inputs]
        self._add(out, np.concatenate([self.channels.values[r] for r in inputs]), rank)
        for ref, offset in zip(inputs, concat_offsets(counts)):
            self.channels.link_all(ref, out, offset)
        return set(range(len(inputs)))


def set_constant(graph: Graph, node: Node, slot: int, value: np.ndarray, keep: set[str], what: str) -> None:
    """Input `slot` of `node` becomes `value`: in place when the Const (through Identity)
    feeds nothing else, else a new Const (the old one goes if unused)."""
    old = graph.inputs_of(node.name)[slot]
    ref, user = old, (node.name, slot)
    chain = []
    while graph.consumers(ref) == [user] and ref.node not in keep:
        producer = graph.node(ref.node)
        chain.append(producer)
        if producer.op == "Const":
            tensor = producer.outputs[0]
            tensor.data, tensor.shape = np.ascontiguousarray(value, tensor.data.dtype), tuple(value.shape)
            for changed in chain:
                forget_shapes(changed)
            return
        if producer.op not in UNARY or UNARY[producer.op] != "identity":
            break
        ref, user = graph.inputs_of(producer.name)[0], (producer.name, 0)
    const = make_const(graph.unique_name(f"{node.name}/thinned_{what}"), np.ascontiguousarray(value))
    graph.add_node(const)
    graph.set_input(node.name, slot, Ref(const.name, 0))
    remove_dead(graph, [old.node], keep)


def forget_shapes(node: Node) -> None:
    """Drop the node's `_output_shapes` attr (TensorFlow refuses a stale one on import)."""
    if "_output_shapes" in node.attrs:
        node.attrs = {key: value for key, value in node.attrs.items() if key != "_output_shapes"}


def _add_bias(graph: Graph, node: Node, bias: np.ndarray, keep: set[str]) -> None:
    """A BiasAdd of `bias` after `node`: its readers read the sum instead. When `node` is
    an output (declared, or read by nothing), the BiasAdd takes its name, and `node` another."""
    name = node.name
    users = graph.consumers(Ref(name, 0))
    if name in keep or not users:
        graph.rename_node(name, graph.unique_name(f"{name}/thinned"))
    const = make_const(graph.unique_name(f"{name}/thinned_bias"), bias.astype(np.float32))
    graph.add_node(const)
    add = Node(name if name not in graph else graph.unique_name(f"{name}/thinned_bias_add"), "BiasAdd",
               {"T": DType.FLOAT32, "data_format": "NHWC"})
    graph.add_node(add, inputs=[Ref(node.name, 0), Ref(const.name, 0)])
    for user, slot in users:
        graph.set_input(user, slot, Ref(add.name, 0))


def rewrite(graph: Graph, analysis: Analysis, plan: Plan) -> dict[str, int]:
    """Cut the planned channels; returns channels removed per linear layer's output."""
    per_layer: dict[str, int] = {}
    for node in analysis.linears:
        refs = graph.inputs_of(node.name)
        out_mask = plan.mask(Ref(node.name, 0))
        x = refs[INPUT_SLOT.get(node.op, 0)]
        in_mask = plan.mask(x) if node.name in analysis.absorbing else None
        if out_mask is None and in_mask is None:
            continue
        weights = constant_value(graph, refs[1])[1]
        transposed = node.op == "MatMul" and bool(node.attrs.get("transpose_b"))
        in_axis, out_axis = AXES[node.op]
        if transposed:
            in_axis, out_axis = 1, 0
        bias = None
        if in_mask is not None:
            values = np.where(in_mask, np.nan_to_num(analysis.channels.values[x]), 0.0)
            if np.any(values):
                columns = np.moveaxis(weights.astype(np.float64), in_axis, -1)
                bias = np.moveaxis(columns * values, out_axis if out_axis < in_axis else out_axis - 1, 0)
                bias = bias.reshape(bias.shape[0], -1).sum(axis=1)
            weights = take(weights, in_mask, in_axis)
        if out_mask is not None:
            weights = take(weights, out_mask, out_axis)
            bias = take(bias, out_mask, 0) if bias is not None else None
            per_layer[node.name] = int(out_mask.sum())
            if node.op == "Conv2DBackpropInput":  # the output size it is given names the channels
                sizes = constant_value(graph, refs[0])[1]
                set_constant(graph, node, 0, np.array([*sizes[:-1], weights.shape[out_axis]], sizes.dtype),
                             analysis.keep, "input_sizes")
        set_constant(graph, node, 1, weights, analysis.keep, "weights")
        if bias is not None:
            _add_bias(graph, node, bias, analysis.keep)
    for name, slot, axis in analysis.sliced:
        mask = plan.mask(Ref(name, 0))
        if mask is not None:
            value = constant_value(graph, graph.inputs_of(name)[slot])[1]
            set_constant(graph, graph.node(name), slot, take(value, mask, axis), analysis.keep, "operand")
    for name in analysis.reshapes:  # the new shape names the new size
        mask = plan.mask(Ref(name, 0))
        if mask is not None:
            shape = constant_value(graph, graph.inputs_of(name)[1])[1]
            set_constant(graph, graph.node(name), 1, np.array([shape[0], (~mask).sum()], shape.dtype), analysis.keep,
                         "shape")
    for ref, mask in plan.removed.items():  # shapes, where the graph has them
        forget_shapes(graph.node(ref.node))
        tensor = graph.node(ref.node).output(ref.port)
        if tensor is not None and tensor.shape:
            tensor.shape = (*tensor.shape[:-1], int((~mask).sum()))
    return per_layer


def weight_count(graph: Graph) -> int:
    """Elements of the constant weights of the Conv2D, DepthwiseConv2dNative, MatMul and
    Conv2DBackpropInput ops."""
    total = 0
    for node in graph:
        refs = graph.inputs_of(node.name) if node.op in LINEAR_OPS else []
        found = constant_value(graph, refs[1]) if len(refs) > 1 else None
        total += 0 if found is None else int(found[1].size)
    return total


@register("thin_channels", NoParams, formats=("graphdef",), guarantee="float rounding")
def thin_channels(graph: Graph, params: NoParams, context: Context) -> PassResult:
    """Remove output channels that are the same for every input, and what reads them.

    A Conv2D, DepthwiseConv2dNative, MatMul or Conv2DBackpropInput (a transpose conv;
    float32, NHWC, constant weights through Identity) output channel whose filter is all
    zeros is a constant, and so is what its bias add and batch norm make of it. Such a
    channel goes from its layer and from every tensor it flows into, followed through
    BiasAdd and Add/AddV2/Sub/Mul by constants (per-channel constants are cut too),
    FusedBatchNorm/V2/V3 in inference mode (its scale, offset, mean and variance lose the
    channel), activations (Relu, Relu6, Sigmoid, Tanh, Elu, LeakyRelu, Identity, ...),
    MaxPool/AvgPool, Pad (when it pads zeros onto a zero), Mean and other reductions over
    other axes, residual Add/AddV2/Sub/Mul (only when the channel is constant on every
    branch), DepthwiseConv2dNative with multiplier 1 (which loses the same channels),
    ConcatV2 along channels and a Reshape to a constant [-1, positions × channels] (a
    flatten). Where it reaches a Conv2D or MatMul, the input channel leaves the weights; a
    non-zero constant is first added into a new BiasAdd after the layer, exact but for float
    rounding, for MatMul, 1x1 and VALID convolutions, and the channel stays otherwise (a
    Conv2DBackpropInput takes only zeros; its input_sizes follow its channels). Nodes whose
    shapes change lose their _output_shapes attr. A channel stays when anything else reads
    it (other Reshapes, Softmax, a declared output or a node nothing reads, ...), and every
    tensor keeps one channel. Stats: channels_removed, layers (channels removed per layer
    output), weights_before / weights_after (elements of their weights), kept (constant
    channels that stayed, by reason). A graph with nothing to remove is left byte-identical."""
    keep = protected(graph, context.inputs + context.outputs)
    weights_before = weight_count(graph)
    analysis = Analysis(graph, keep)
    plan = analysis.channels.solve()
    layers = rewrite(graph, analysis, plan) if plan else {}
    stats = {"channels_removed": sum(layers.values()), "layers": dict(sorted(layers.items())),
             "weights_before": weights_before, "weights_after": weight_count(graph),
             "kept": dict(sorted(plan.kept.items()))}
    return PassResult(bool(plan), stats)


# -- what prune_channels asks of a GraphDef layer --------------------------------------------
PRUNABLE_OPS = LINEAR_OPS


def _out_axis(node: Node) -> int:
    if node.op == "MatMul":
        return 0 if node.attrs.get("transpose_b") else 1
    return AXES[node.op][1]


def filters(graph: Graph, node: Node) -> np.ndarray | None:
    """The layer's weights, one row per output channel; None when thin_channels would not
    edit the layer (weights not constant float32, a depthwise multiplier other than 1)."""
    refs = graph.inputs_of(node.name)
    found = constant_value(graph, refs[1]) if node.op in LINEAR_OPS and len(refs) > 1 else None
    if found is None or found[1].dtype != np.float32 or found[1].ndim != (2 if node.op == "MatMul" else 4):
        return None
    weights = found[1]
    if node.op == "DepthwiseConv2dNative" and weights.shape[3] != 1:
        return None
    axis = _out_axis(node)
    return np.moveaxis(weights.astype(np.float64), axis, 0).reshape(weights.shape[axis], -1)


def _affine_chain(graph: Graph, node: Node) -> list[Node]:
    """The BiasAdd / Add / AddV2 (a per-channel constant) and inference batch norms that
    follow the layer, each the only reader of the one before."""
    chain = []
    while True:
        users = graph.consumers(Ref(node.name, 0))
        if len(users) != 1:
            return chain
        node = graph.node(users[0][0])
        if node.op in BATCH_NORMS and not node.attrs.get("is_training", True) and users[0][1] == 0:
            chain.append(node)
        elif node.op in ("BiasAdd", "Add", "AddV2") and users[0][1] == 0 and len(graph.inputs_of(node.name)) == 2 \
                and constant_value(graph, graph.inputs_of(node.name)[1]) is not None:
            chain.append(node)
        else:
            return chain


def batch_norm_gamma(graph: Graph, node: Node) -> np.ndarray | None:
    """|scale| of the first inference batch norm after the layer, None when there is none."""
    for step in _affine_chain(graph, node):
        if step.op in BATCH_NORMS:
            found = constant_value(graph, graph.inputs_of(step.name)[1])
            return None if found is None else np.abs(found[1].astype(np.float64))
    return None


def zero_channels(graph: Graph, node: Node, channels: np.ndarray, keep: set[str]) -> None:
    """Zero output channels `channels` (a boolean mask) of the layer, and their bias and
    batch-norm scale and offset after it, so each is exactly zero."""
    refs = graph.inputs_of(node.name)
    weights = np.array(constant_value(graph, refs[1])[1])
    index = [slice(None)] * weights.ndim
    index[_out_axis(node)] = channels
    weights[tuple(index)] = 0
    set_constant(graph, node, 1, weights, keep, "weights")
    for step in _affine_chain(graph, node):
        for slot in ((1, 2) if step.op in BATCH_NORMS else (1,)):
            value = np.array(constant_value(graph, graph.inputs_of(step.name)[slot])[1])
            if value.shape[-1:] == (channels.size,) and np.any(value[..., channels]):
                value[..., channels] = 0
                set_constant(graph, step, slot, value, keep, "operand")
