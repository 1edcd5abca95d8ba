"""Graph: the IR. A networkx MultiDiGraph is the one source of truth for topology.

Nodes are keyed by their unique name and carry the `Node` under the attribute "node".
An edge is one use of a value: producer -> consumer, keyed by the consumer's input slot
(an int), with the producer's output index as "port". Control dependencies are edges
keyed "^0", "^1", ... with port CONTROL. Node order (networkx keeps insertion order) is
the order formats write nodes in.
"""
from __future__ import annotations

import copy
from typing import Any, Container, Iterable, Iterator

import networkx as nx

from ..errors import GraphError
from .meta import copy_meta, is_source_record
from .node import CONTROL, MISSING_OP, Node, Ref
from .tensor import Tensor

# TF1 loops feed NextIteration back into Merge: the one kind of cycle a dataflow graph
# may hold. Such edges are left out when ordering nodes or looking for cycles.
BACK_EDGE_OPS = frozenset({"NextIteration", "RefNextIteration"})

RefLike = Ref | str | Node


def as_ref(value: RefLike) -> Ref:
    if isinstance(value, Ref):
        return value
    if isinstance(value, Node):
        return Ref(value.name, 0)
    return Ref.parse(value)


class Graph:
    """A dataflow graph of Nodes. Mutate it only through its methods; read its topology
    through them too, or through `nx`, a read-only networkx view."""

    def __init__(self, name: str = "", format: str | None = None):
        self.name = name
        self.format = format
        self._nx = nx.MultiDiGraph()
        self.inputs: list[str] = []  # names of graph-input nodes, when the format declares them
        self.outputs: list[Ref] = []  # declared outputs, when the format declares them
        self.subgraphs: list[Graph] = []
        self.meta: dict[str, Any] = {}

    # -- reading -------------------------------------------------------------------------
    @property
    def nx(self) -> nx.MultiDiGraph:
        """A read-only view of the topology for networkx algorithms (it follows later
        changes; mutating it raises)."""
        return nx.freeze(nx.graphviews.generic_graph_view(self._nx))

    def __len__(self) -> int:
        return self._nx.number_of_nodes()

    def __contains__(self, name: object) -> bool:
        return name in self._nx

    def __iter__(self) -> Iterator[Node]:
        for _, data in self._nx.nodes(data="node"):
            yield data

    @property
    def nodes(self) -> list[Node]:
        return list(self)

    def node(self, name: str) -> Node:
        try:
            return self._nx.nodes[name]["node"]
        except KeyError:
            raise GraphError(f"no node named {name!r}") from None

    def tensor(self, ref: RefLike | None) -> Tensor | None:
        """The tensor `ref` names (an output of a node), or None: no ref, or no such output."""
        if ref is None:
            return None
        ref = as_ref(ref)
        return self.node(ref.node).output(ref.port)

    def inputs_of(self, name: str) -> list[Ref | None]:
        """Data inputs of `name`, in slot order; None where an optional input is left out."""
        by_slot = {k: Ref(u, d["port"]) for u, _, k, d in self._nx.in_edges(name, keys=True, data=True)
                   if isinstance(k, int)}
        absent = self._nx.nodes[name].get("absent", ())
        count = max([*by_slot, *absent], default=-1) + 1
        return [by_slot.get(slot) for slot in range(count)]

    def control_inputs_of(self, name: str) -> list[str]:
        """Names of the nodes `name` must run after, in their original order."""
        edges = [(int(k[1:]), u) for u, _, k in self._nx.in_edges(name, keys=True) if isinstance(k, str)]
        edges.sort()
        return [u for _, u in edges]

    def consumers(self, value: RefLike) -> list[tuple[str, int]]:
        """(consumer, slot) for each data use of a value (a Ref, or every output of a node)."""
        if isinstance(value, str) and ":" not in value or isinstance(value, Node):
            name, port = (value.name if isinstance(value, Node) else value), None
        else:
            name, port = as_ref(value)
        return [(v, k) for _, v, k, d in self._nx.out_edges(name, keys=True, data=True)
                if isinstance(k, int) and (port is None or d["port"] == port)]

    def uses_of(self, name: str) -> list[tuple[str, int]]:
        """(consumer, port) for every use of an output of `name`; port CONTROL for a
        control dependency."""
        return [(v, d["port"]) for _, v, d in self._nx.out_edges(name, data=True)]

    def users(self, name: str) -> set[str]:
        """The nodes that use an output of `name`, through data or control edges."""
        return set(self._nx.successors(name))

    def used_ports(self, name: str) -> set[int]:
        """The output ports of `name` that some node reads (control uses aside)."""
        return {port for _, port in self.uses_of(name) if port != CONTROL}

    def producers(self, name: str) -> list[str]:
        """The nodes `name` reads from or runs after, each once."""
        return list(self._nx.predecessors(name))

    def ancestors(self, name: str) -> set[str]:
        """Every node `name` depends on, through data and control edges."""
        return nx.ancestors(self._nx, name)

    def descendants(self, name: str) -> set[str]:
        """Every node that depends on `name`, through data and control edges."""
        return nx.descendants(self._nx, name)

    def topological_order(self, ignore_back_edges: bool = True) -> list[str]:
        """Node names, producers before consumers (TF1 loops' back edges ignored unless
        asked), without reordering the graph. GraphError on a cycle."""
        view = self._forward_view() if ignore_back_edges else self._nx
        try:
            return list(nx.topological_sort(view))
        except nx.NetworkXUnfeasible:
            raise GraphError(f"graph has a cycle: {self._describe_cycle(view)}") from None

    def control_consumers(self, name: str) -> list[str]:
        return [v for _, v, k in self._nx.out_edges(name, keys=True) if isinstance(k, str)]

    def is_used(self, name: str) -> bool:
        return self._nx.out_degree(name) > 0

    def unique_name(self, base: str, taken: Container[str] = (), separator: str = "_") -> str:
        """`base`, or `base` + separator + 1, 2, ... — the first that names no node and is
        not in `taken` (names a caller has promised but not yet added)."""
        name, index = base, 0
        while name in self._nx or name in taken:
            index += 1
            name = f"{base}{separator}{index}"
        return name

    # -- mutation ------------------------------------------------------------------------
    def add_node(self, node: Node, inputs: Iterable[RefLike | None] = (),
                 control_inputs: Iterable[str] = ()) -> Node:
        """Add `node` (appended to the order) fed by `inputs` (slot i gets inputs[i]; None
        marks an optional input left out)."""
        if node.name in self._nx:
            raise GraphError(f"a node named {node.name!r} already exists")
        refs = self._refs(inputs)
        controls = list(control_inputs)
        for producer in controls:
            self._require(producer)
        self._nx.add_node(node.name, node=node)
        self._connect(node.name, refs)
        for j, producer in enumerate(controls):
            self._nx.add_edge(producer, node.name, key=f"^{j}", port=CONTROL)
        return node

    def remove_node(self, name: str) -> Node:
        """Remove a node nothing uses any more (refused while its outputs are used)."""
        node = self.node(name)
        users = sorted({v for _, v in self._nx.out_edges(name)})
        if users:
            raise GraphError(f"cannot remove {name!r}: still used by {', '.join(users[:5])}"
                             + (" …" if len(users) > 5 else ""))
        self._nx.remove_node(name)
        return node

    def set_input(self, consumer: str, slot: int, value: RefLike) -> None:
        """Rewire data input `slot` of `consumer` to `value`."""
        ref = as_ref(value)
        self._require(ref.node)
        absent = self._nx.nodes[consumer].get("absent", frozenset())
        old = [(u, k) for u, _, k in self._nx.in_edges(consumer, keys=True) if k == slot]
        if not old and slot not in absent:
            raise GraphError(f"{consumer!r} has no input slot {slot}")
        if old:
            self._nx.remove_edge(old[0][0], consumer, key=slot)
        else:
            self._nx.nodes[consumer]["absent"] = absent - {slot}
        self._nx.add_edge(ref.node, consumer, key=slot, port=ref.port)

    def set_inputs(self, consumer: str, values: Iterable[RefLike | None]) -> None:
        """Replace all data inputs of `consumer` (control inputs stay)."""
        refs = self._refs(values)
        self._require(consumer)
        for u, _, k in list(self._nx.in_edges(consumer, keys=True)):
            if isinstance(k, int):
                self._nx.remove_edge(u, consumer, key=k)
        self._connect(consumer, refs)

    def replace_uses(self, old: RefLike, new: RefLike) -> int:
        """Make every data use of `old` use `new` instead; returns how many were moved."""
        old_ref, new_ref = as_ref(old), as_ref(new)
        self._require(new_ref.node)
        uses = [(v, k) for _, v, k, d in self._nx.out_edges(old_ref.node, keys=True, data=True)
                if isinstance(k, int) and d["port"] == old_ref.port]
        for consumer, slot in uses:
            self._nx.remove_edge(old_ref.node, consumer, key=slot)
            self._nx.add_edge(new_ref.node, consumer, key=slot, port=new_ref.port)
        return len(uses)

    def set_control_inputs(self, consumer: str, producers: Iterable[str]) -> None:
        """Replace the control dependencies of `consumer`."""
        producers = list(dict.fromkeys(producers))
        for producer in producers:
            self._require(producer)
        for u, _, k in list(self._nx.in_edges(consumer, keys=True)):
            if isinstance(k, str):
                self._nx.remove_edge(u, consumer, key=k)
        for j, producer in enumerate(producers):
            self._nx.add_edge(producer, consumer, key=f"^{j}", port=CONTROL)

    def add_control_input(self, consumer: str, producer: str) -> None:
        """Make `consumer` also run after `producer` (no-op if it already does)."""
        self._require(consumer)
        self._require(producer)
        incoming = self._nx.pred[consumer]  # producer -> {edge key: data}
        if producer in incoming and any(isinstance(k, str) for k in incoming[producer]):
            return
        after = max((int(k[1:]) for keys in incoming.values() for k in keys if isinstance(k, str)), default=-1) + 1
        self._nx.add_edge(producer, consumer, key=f"^{after}", port=CONTROL)

    def replace_control_input(self, consumer: str, old: str, new: str) -> None:
        """Make `consumer` run after `new` instead of `old`, in `old`'s place among its control
        inputs (no-op unless `old` is one; `old` just goes if `new` already is one)."""
        self._require(consumer)
        self._require(new)
        if new == consumer:
            raise GraphError(f"{consumer!r} cannot run after itself")
        keys = [k for k in self._nx.get_edge_data(old, consumer, default={}) if isinstance(k, str)]
        if not keys:
            return
        for key in keys:
            self._nx.remove_edge(old, consumer, key=key)
        if not any(isinstance(k, str) for k in self._nx.get_edge_data(new, consumer, default={})):
            self._nx.add_edge(new, consumer, key=keys[0], port=CONTROL)

    def remove_control_input(self, consumer: str, producer: str) -> None:
        """Drop the control dependency of `consumer` on `producer`, if any."""
        for key in [k for k in self._nx.get_edge_data(producer, consumer, default={}) if isinstance(k, str)]:
            self._nx.remove_edge(producer, consumer, key=key)

    def prune(self, keep: Iterable[str] | None = None) -> list[str]:
        """Remove every node that none of `keep` (default: the declared outputs' nodes, and the
        declared inputs) needs, through data or control edges. Returns the removed names."""
        roots = set(keep) if keep is not None else {r.node for r in self.outputs} | set(self.inputs)
        if not roots:
            raise GraphError("prune needs outputs: declare graph outputs or pass keep=")
        for name in roots:
            self._require(name)
        needed = set(roots)
        for root in roots:
            needed |= nx.ancestors(self._nx, root)
        removed = [n for n in self._nx if n not in needed]
        self._nx.remove_nodes_from(removed)
        return removed

    def toposort(self) -> "Graph":
        """Reorder nodes so producers come before consumers, otherwise keeping the order."""
        order = {name: i for i, name in enumerate(self._nx)}
        forward = self._forward_view()
        try:
            sorted_names = list(nx.lexicographical_topological_sort(forward, key=order.__getitem__))
        except nx.NetworkXUnfeasible:
            raise GraphError(f"graph has a cycle: {self._describe_cycle(forward)}") from None
        self._reorder(sorted_names)
        return self

    def rename_node(self, old: str, new: str) -> None:
        """Give a node a new name, keeping its place in the order and all its edges."""
        self.rename_nodes({old: new})

    def rename_nodes(self, mapping: dict[str, str]) -> None:
        """Rename several nodes at once (names may swap), keeping order and edges."""
        for old in mapping:
            self._require(old)
        final = [mapping.get(n, n) for n in self._nx]
        if len(set(final)) != len(final):
            raise GraphError("renaming would give two nodes the same name")
        for old, new in mapping.items():
            self.node(old).name = new
        self._nx = nx.relabel_nodes(self._nx, mapping, copy=True)
        self._reorder(final)
        self.inputs = [mapping.get(n, n) for n in self.inputs]
        self.outputs = [Ref(mapping.get(r.node, r.node), r.port) for r in self.outputs]

    def copy(self) -> "Graph":
        """An independent copy: nodes, edges, attrs and subgraphs are new; tensor data
        (read-only) and the format's source records in meta are shared."""
        return copy.deepcopy(self)

    def __deepcopy__(self, memo: dict) -> "Graph":
        new = Graph.__new__(Graph)
        memo[id(self)] = new
        new.name, new.format = self.name, self.format
        new.inputs, new.outputs = list(self.inputs), list(self.outputs)
        new.subgraphs = copy.deepcopy(self.subgraphs, memo)
        new.meta = copy_meta(self.meta, memo)
        new._nx = nx.MultiDiGraph()
        for name, data in self._nx.nodes(data=True):
            node = data["node"]
            clone = Node(node.name, node.op, copy.deepcopy(node.attrs, memo), copy.deepcopy(node.outputs, memo),
                         copy_meta(node.meta, memo))
            new._nx.add_node(name, **{**data, "node": clone})
        new._nx.add_edges_from((u, v, k, dict(d)) for u, v, k, d in self._nx.edges(keys=True, data=True))
        return new

    def restore(self, snapshot: "Graph") -> None:
        """Make this graph what `snapshot` (a copy taken earlier) is; references the copy
        holds to itself (a signature's subgraph, a call's subgraph attr) now mean this graph."""
        self.__dict__.update(snapshot.__dict__)

        def retarget(value: Any) -> Any:
            if value is snapshot:
                return self
            if isinstance(value, tuple):
                return tuple(retarget(v) for v in value)
            return value

        for graph in [self, *self.subgraphs]:
            for node in graph:
                node.attrs = {k: retarget(v) for k, v in node.attrs.items()}
        for key, value in self.meta.items():  # e.g. TFLite signature defs name their subgraph
            if not is_source_record(key) and isinstance(value, list):
                for entry in value:
                    if isinstance(entry, dict):
                        entry.update({k: retarget(v) for k, v in entry.items()})

    # -- checks --------------------------------------------------------------------------
    def validate(self) -> "Graph":
        """Raise GraphError unless every input resolves, there is no cycle, names are unique
        and tensor data agree with their declared dtype and shape."""
        problems: list[str] = []
        for name, node in self._nx.nodes(data="node"):
            if node is None:
                problems.append(f"{name!r} has no Node (edge added outside the API?)")
                continue
            if node.name != name:
                problems.append(f"node keyed {name!r} is named {node.name!r}")
            if node.op == MISSING_OP:
                users = sorted({v for _, v in self._nx.out_edges(name)})
                problems.append(f"{', '.join(users)} use{'s' if len(users) == 1 else ''} "
                                f"{name!r}, which is not in the graph")
                continue
            for port, tensor in enumerate(node.outputs):
                problems.extend(_tensor_problems(name, port, tensor))
        slots_problem = self._slot_problems()
        problems.extend(slots_problem)
        if not self._is_acyclic():
            problems.append(f"cycle: {self._describe_cycle(self._forward_view())}")
        for ref in self.outputs:
            if ref.node not in self._nx:
                problems.append(f"declared output {ref} is not a node")
        for name in self.inputs:
            if name not in self._nx:
                problems.append(f"declared input {name!r} is not a node")
        if problems:
            raise GraphError(f"invalid graph ({len(problems)} problem(s)): " + "; ".join(problems[:10]))
        for sub in self.subgraphs:
            sub.validate()
        return self

    # -- internals -----------------------------------------------------------------------
    def _refs(self, values: Iterable[RefLike | None]) -> list[Ref | None]:
        refs = [None if v is None else as_ref(v) for v in values]
        for ref in refs:
            if ref is not None:
                self._require(ref.node)
        return refs

    def _connect(self, consumer: str, refs: list[Ref | None]) -> None:
        for slot, ref in enumerate(refs):
            if ref is not None:
                self._nx.add_edge(ref.node, consumer, key=slot, port=ref.port)
        absent = frozenset(slot for slot, ref in enumerate(refs) if ref is None)
        if absent:
            self._nx.nodes[consumer]["absent"] = absent
        else:
            self._nx.nodes[consumer].pop("absent", None)

    def _require(self, name: str) -> None:
        if name not in self._nx:
            raise GraphError(f"no node named {name!r}")

    def _forward_view(self) -> nx.MultiDiGraph:
        def keep_edge(u: str, v: str, k: Any) -> bool:
            producer = self._nx.nodes[u].get("node")
            return producer is None or producer.op not in BACK_EDGE_OPS

        return nx.subgraph_view(self._nx, filter_edge=keep_edge)

    def _is_acyclic(self) -> bool:
        """No cycle but through back edges (Kahn's algorithm on the adjacency: validate runs
        after every pass, and networkx's check on a filtered view costs 20x more)."""
        succ = self._nx.succ
        back = {n for n, node in self._nx.nodes(data="node") if node is not None and node.op in BACK_EDGE_OPS}
        indegree = dict.fromkeys(succ, 0)
        for producer, consumers in succ.items():
            if producer not in back:
                for consumer in consumers:
                    indegree[consumer] += 1
        ready = [n for n, degree in indegree.items() if degree == 0]
        done = 0
        while ready:
            producer = ready.pop()
            done += 1
            if producer in back:
                continue
            for consumer in succ[producer]:
                indegree[consumer] -= 1
                if indegree[consumer] == 0:
                    ready.append(consumer)
        return done == len(indegree)

    def _describe_cycle(self, view: nx.MultiDiGraph) -> str:
        try:
            cycle = nx.find_cycle(view)
        except nx.NetworkXNoCycle:
            return "none"
        return " -> ".join([cycle[0][0]] + [edge[1] for edge in cycle])

    def _slot_problems(self) -> list[str]:
        problems = []
        for name in self._nx:
            slots = sorted([k for _, _, k in self._nx.in_edges(name, keys=True) if isinstance(k, int)]
                           + list(self._nx.nodes[name].get("absent", ())))
            if slots != list(range(len(slots))):
                problems.append(f"{name!r} has input slots {slots}, not 0..{len(slots) - 1}")
        return problems

    def _reorder(self, names: list[str]) -> None:
        fresh = nx.MultiDiGraph()
        fresh.graph.update(self._nx.graph)
        fresh.add_nodes_from((n, self._nx.nodes[n]) for n in names)
        fresh.add_edges_from(self._nx.edges(keys=True, data=True))
        self._nx = fresh

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, format={self.format!r}, nodes={len(self)})"


def _tensor_problems(name: str, port: int, tensor: Any) -> list[str]:
    # Data not yet loaded are what the file says, shaped by the reader: only check data
    # something else put there. Sparse tensors hold just their non-zeros.
    if tensor is None or not tensor.is_constant or tensor._loader is not None or "sparsity" in tensor.meta:
        return []
    data = tensor.data
    problems = []
    if tensor.shape is not None and tuple(data.shape) != tuple(tensor.shape):
        problems.append(f"{name}:{port} data shape {tuple(data.shape)} != declared {tensor.shape}")
    expected = tensor.dtype.numpy if tensor.dtype is not None else None
    if expected is not None and data.dtype != expected:
        problems.append(f"{name}:{port} data dtype {data.dtype} != {tensor.dtype} storage {expected}")
    return problems
