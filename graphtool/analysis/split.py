"""split: a TFLite model cut at tensors into consecutive parts whose chain computes what the
model computes, as a plain dataclass (its to_dict() is `graphtool split --json`).

Every operator goes to one part: the part of the last cut it depends on (`--at T1,T2` makes
three parts: what the model's inputs give up to T1, what needs T1 but not T2, what needs
T2). Constants, and operators that read only constants, go to every part that uses them. A
tensor one part computes and a later part reads — a cut tensor, or one a skip connection
carries past a cut — is an output of the first and an input of the second, so a part may
have several inputs and outputs; a model input goes straight to each part that reads it.
Chained: run the parts in order, each on the model's inputs and the earlier parts' outputs
it names (tensor names are unique across those), and the model's outputs are among theirs.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Iterable

from ..errors import GraphtoolError
from ..formats import load
from ..formats.tflite import keys, ops, tables, write_parts
from ..ir import Graph, Ref
from ..passes.helpers.tflite_cut import cut, source_kind, tensor_ref

PART_NAME = "part_{}.tflite"
STATEFUL_OPS = frozenset({"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE", "HASHTABLE",
                          "HASHTABLE_FIND", "HASHTABLE_IMPORT", "HASHTABLE_SIZE"})


class SplitError(GraphtoolError):
    """The model cannot be cut there (or the parts cannot be written where asked)."""


@dataclass
class Part:
    """One part: the tensors it reads and computes (by name), its operators and its size in bytes."""

    index: int
    inputs: list[str]
    outputs: list[str]
    operators: int
    size: int
    path: str | None = None  # where it was written, if it was
    graph: Graph | None = field(default=None, repr=False, compare=False)
    data: bytes | None = field(default=None, repr=False, compare=False)  # the file, when not written

    def to_dict(self) -> dict:
        return {"index": self.index, "path": self.path, "inputs": self.inputs, "outputs": self.outputs,
                "operators": self.operators, "size": self.size}


@dataclass
class SplitReport:
    """The parts of a model, in the order they run, and the model's own inputs and outputs."""

    source: str | None
    at: list[str]
    inputs: list[str]
    outputs: list[str]
    parts: list[Part]
    directory: str | None = None

    def to_dict(self) -> dict:
        return {"source": self.source, "at": self.at, "directory": self.directory, "inputs": self.inputs,
                "outputs": self.outputs, "parts": [part.to_dict() for part in self.parts]}


@dataclass
class _Plan:
    """One part before it is made: its operators, and the tensors it reads and computes."""

    operators: list[str]
    inputs: list[Ref] = field(default_factory=list)
    outputs: list[Ref] = field(default_factory=list)


def split(model: Graph | str | os.PathLike | bytes, at: str | Iterable[str],
          directory: str | os.PathLike | None = None) -> SplitReport:
    """Cut a TFLite model at the tensors `at` (names, or a comma-separated string of them, in
    the order they are computed) into len(at) + 1 parts. With `directory` (which must not
    exist or be empty) the parts are written there as part_0.tflite, part_1.tflite, ...
    all or none; otherwise each Part holds its bytes in `data`. The model is not changed."""
    target = None if directory is None else os.fspath(directory)
    if target is not None:
        check_directory(target)
    graph = model if isinstance(model, Graph) else load(model)
    names = [name.strip() for name in at.split(",")] if isinstance(at, str) else list(at)
    _check_model(graph)
    plans = _plan(graph, _cuts(graph, names))
    _check_names(graph, plans)
    parts = [_part(graph, index, plan) for index, plan in enumerate(plans)]
    if target is None:
        for part in parts:
            part.data = b"".join(write_parts(part.graph))
            part.size = len(part.data)
    else:
        _write(target, parts)
    return SplitReport(graph.meta.get("source"), names, [graph.tensor(Ref(n)).name for n in graph.inputs],
                       [graph.tensor(r).name for r in graph.outputs], parts, target)


# -- what can be cut --------------------------------------------------------------------------
def _check_model(graph: Graph) -> None:
    """Refuse what split cannot cut: other formats, state, control flow, several subgraphs."""
    if graph.format != "tflite":
        raise SplitError(f"split cuts TFLite models; this is a {graph.format} model")
    for sub in tables.subgraphs(graph):
        for node in sub:
            if node.op in STATEFUL_OPS or node.op == ops.VARIABLE_OP or any(map(tables.is_variable, node.outputs)):
                raise SplitError(f"{node.name!r} ({node.op}) holds state (variables, hash tables), which "
                                 "cannot be cut: run freeze_variables first, if the values are fixed")
            if tables.subgraphs_in(node.attrs):
                raise SplitError(f"{node.name!r} ({node.op}) runs other subgraphs: split cuts models "
                                 "without control flow")
    if graph.subgraphs:
        signatures = ", ".join(repr(sig["key"]) for sig in graph.meta.get(keys.SIGNATURE_DEFS) or [])
        raise SplitError(f"the model has {len(graph.subgraphs) + 1} subgraphs"
                         + (f" (signatures {signatures})" if signatures else "") + ": split cuts one")


def _cuts(graph: Graph, names: list[str]) -> list[Ref]:
    """The tensors `names` name: each once, each computed by an operator."""
    if not names or not all(names):
        raise SplitError("give the tensors to cut at (--at T1,T2)")
    refs = []
    for name in names:
        ref = tensor_ref(graph, name)
        node = graph.node(ref.node)
        if not ops.is_operator(node):
            raise SplitError(f"{name!r} is {source_kind(node)}: cut at tensors operators compute")
        if ref in refs:
            raise SplitError(f"{name!r} is given twice")
        refs.append(ref)
    return refs


# -- planning ---------------------------------------------------------------------------------
def _stages(graph: Graph, cuts: list[Ref], order: list[str]) -> dict[str, int]:
    """The part of each operator: the largest of its inputs' (k for the k-th cut tensor, that
    of the operator computing any other, 0 for a model input). Operators that read only
    constants have none: they go with whatever uses them."""
    cut_at = {ref: k for k, ref in enumerate(cuts, 1)}
    stage = {name: 0 for name in graph.inputs}
    for name in order:
        if not ops.is_operator(graph.node(name)):
            continue
        found = [cut_at.get(ref, stage.get(ref.node)) for ref in graph.inputs_of(name) if ref is not None]
        found = [s for s in found if s is not None]
        if found:
            stage[name] = max(found)
    return stage


def _execution_order(graph: Graph) -> list[str]:
    """The nodes as the graph lists them when producers come first there (a TFLite file lists
    its operators in the order they run), else in a topological order."""
    seen: set[str] = set()
    for node in graph:
        if any(producer not in seen for producer in graph.producers(node.name)):
            return graph.topological_order()
        seen.add(node.name)
    return [node.name for node in graph]


def _plan(graph: Graph, cuts: list[Ref]) -> list[_Plan]:
    """Each part's operators, inputs and outputs, in the order the graph lists them."""
    order = _execution_order(graph)
    stage = _stages(graph, cuts, order)
    _check_order(graph, cuts, stage)
    plans = [_Plan([n.name for n in graph if ops.is_operator(n) and stage.get(n.name) == k])
             for k in range(len(cuts) + 1)]
    _check_not_empty(graph, cuts, plans)
    position = {name: i for i, name in enumerate(order)}
    passed = set(cuts)  # what a later part reads: each is an output of the part computing it
    for k, plan in enumerate(plans):
        plan.inputs = _inputs(graph, plan.operators, stage, k, position)
        passed.update(ref for ref in plan.inputs if ref.node not in graph.inputs)
    outputs = _model_outputs(graph, stage)
    for k, plan in enumerate(plans):
        produced = sorted((r for r in passed | set(outputs) if stage[r.node] == k),
                          key=lambda r: (position[r.node], r.port))
        plan.outputs = [r for r in outputs if r in produced] + [r for r in produced if r not in outputs]
    return plans


def _inputs(graph: Graph, operators: list[str], stage: dict[str, int], k: int,
            position: dict[str, int]) -> list[Ref]:
    """What the operators of part k read from outside it: the model's inputs (in the model's
    order), then tensors earlier parts compute (in the order they are computed)."""
    found = {ref for name in operators for ref in graph.inputs_of(name)
             if ref is not None and (ref.node in graph.inputs or stage.get(ref.node, k) < k)}
    model_inputs = [Ref(name) for name in graph.inputs if Ref(name) in found]
    return model_inputs + sorted(found - set(model_inputs), key=lambda r: (position[r.node], r.port))


def _model_outputs(graph: Graph, stage: dict[str, int]) -> list[Ref]:
    """The model's outputs some part computes (an input that is also an output is no part's)."""
    outputs = [ref for ref in graph.outputs if ref.node not in graph.inputs]
    for ref in outputs:
        if ref.node not in stage:
            raise SplitError(f"output {graph.tensor(ref).name!r} is computed from constants only")
    return outputs


def _check_not_empty(graph: Graph, cuts: list[Ref], plans: list[_Plan]) -> None:
    """Every part computes something."""
    tensors = [repr(graph.tensor(ref).name) for ref in cuts]
    for k, plan in enumerate(plans):
        if not plan.operators:
            where = f"after {tensors[-1]}" if k == len(cuts) else f"between {tensors[k - 1]} and {tensors[k]}"
            raise SplitError(f"part {k} would compute nothing: no operator runs {where}")


def _check_order(graph: Graph, cuts: list[Ref], stage: dict[str, int]) -> None:
    """Each cut tensor is computed before the next cut, from the model's inputs."""
    for k, ref in enumerate(cuts, 1):
        found = stage.get(ref.node)
        name = graph.tensor(ref).name
        if found is None:
            raise SplitError(f"{name!r} is computed from constants only: cut at tensors computed from the inputs")
        if found >= k:
            raise SplitError(f"{name!r} is computed from {graph.tensor(cuts[found - 1]).name!r}, "
                             "a later cut: give the cuts in the order they are computed")


def _check_names(graph: Graph, plans: list[_Plan]) -> None:
    """The tensors passed between parts, and the model's inputs and outputs, have distinct
    names: the chain finds them by name."""
    refs = dict.fromkeys([Ref(n) for n in graph.inputs] + list(graph.outputs)
                         + [ref for plan in plans for ref in plan.inputs + plan.outputs])
    seen: dict[str, Ref] = {}
    for ref in refs:
        name = graph.tensor(ref).name
        if not name:
            raise SplitError(f"the tensor {ref} passes between parts but has no name: name it with rename_node")
        if name in seen:
            raise SplitError(f"{seen[name]} and {ref} pass between parts under one name, {name!r}: "
                             "rename one with rename_node")
        seen[name] = ref


# -- making and writing the parts ---------------------------------------------------------------
def _part(graph: Graph, index: int, plan: _Plan) -> Part:
    """The model cut down to one part (signature defs naming its inputs and outputs)."""
    part = graph.copy()
    cut(part, plan.inputs, plan.outputs, keep=plan.operators)
    _drop_io_metadata(part)
    part.validate()
    return Part(index, [graph.tensor(r).name for r in plan.inputs], [graph.tensor(r).name for r in plan.outputs],
                sum(1 for node in part if ops.is_operator(node)), 0, graph=part)


def _drop_io_metadata(part: Graph) -> None:
    """TFLite Support metadata (and the files zipped with it) describe the whole model's
    inputs and outputs, not a part's: a part goes without them."""
    metadata = part.meta.get(keys.METADATA)
    if metadata and keys.SUPPORT_METADATA in metadata:
        part.meta[keys.METADATA] = {k: v for k, v in metadata.items() if k != keys.SUPPORT_METADATA}
    part.meta.pop(keys.ASSOCIATED_FILES, None)


def check_directory(directory: str) -> None:
    """SplitError unless `directory` is free to be made (absent, or an empty directory)."""
    if os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
        raise SplitError(f"{directory}: exists and is not an empty directory; give a new one")


def _write(directory: str, parts: list[Part]) -> None:
    """Write the parts into a new directory beside `directory`, then rename it there: a failure
    leaves nothing behind."""
    parent = os.path.dirname(os.path.abspath(directory))
    try:
        staging = tempfile.mkdtemp(prefix=".graphtool-", dir=parent)
    except OSError as exc:
        raise SplitError(f"{directory}: cannot write here: {exc.strerror or exc}") from None
    try:
        for part in parts:
            name = PART_NAME.format(part.index)
            with open(os.path.join(staging, name), "wb") as handle:
                for chunk in write_parts(part.graph):
                    handle.write(chunk)
            part.size = os.path.getsize(os.path.join(staging, name))
            part.path = os.path.join(directory, name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)
        os.replace(staging, directory)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise SplitError(f"{directory}: cannot write: {exc.strerror or exc}") from None
        raise
