"""draw: a model as a Graphviz DOT graph, and SVG / PNG / HTML through Graphviz's `dot`.

Each node is a box labelled with its op, its name and its output shape; constants are not
drawn as boxes but folded into their consumer's label (slot, dtype, shape); control
dependencies are dashed; TFLite subgraphs become clusters, with a dotted edge from each
control-flow operator to the subgraphs it calls. `collapse_depth` draws every name scope
that deep as one box (with its node count and main ops), for graphs too big to read.
DOT needs nothing installed; the other formats need the `dot` program.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field

from ..errors import GraphtoolError
from ..formats import atomic_write
from ..ir import CONST_OP, MISSING_OP, Graph, Node, Tensor
from ..ir.attrs import TensorShape

FORMATS = ("dot", "svg", "png", "html")
LABEL_WIDTH = 48  # characters of a name shown in a label; the tooltip has all of it
GRAPHVIZ_HINT = ("install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
                 "Windows: winget install graphviz) or write a .dot file and render it elsewhere")
COLORS = {"input": "#d8ecd8", "output": "#f6dcc8", "op": "#e8eef8", "scope": "#f3ecd0", "const": "#eeeeee"}


class GraphvizMissingError(GraphtoolError):
    """Rendering needs Graphviz's `dot`, which is not installed."""


@dataclass
class _Box:
    id: str
    lines: list[str]
    tooltip: str
    kind: str = "op"
    members: int = 1
    ops: Counter = field(default_factory=Counter)


def to_dot(graph: Graph, collapse_depth: int | None = None, fold_constants: bool = True,
           title: str | None = None) -> str:
    """The DOT source drawing `graph` and its subgraphs."""
    if collapse_depth is not None and collapse_depth < 1:
        raise GraphtoolError("collapse depth must be at least 1")
    graphs = [graph, *graph.subgraphs]
    name = title or os.path.basename(graph.meta.get("source") or "") or graph.name or "model"
    lines = [f"digraph {_quote(name)} {{",
             # nslimit caps network-simplex passes: a 1,000-node graph takes 5 s instead of minutes
             f"  graph [label={_quote(name)}, labelloc=t, fontname=Helvetica, rankdir=TB, compound=true, "
             "nslimit=4];",
             "  node [shape=box, style=\"rounded,filled\", fontname=Helvetica, fontsize=10];",
             "  edge [fontname=Helvetica, fontsize=9, color=\"#555555\"];"]
    firsts: dict[int, str] = {}
    calls: list[tuple[str, int]] = []
    for index, g in enumerate(graphs):
        body, first, subgraph_calls = _draw_graph(g, index, graphs, collapse_depth, fold_constants)
        if first is not None:
            firsts[index] = first
        calls += subgraph_calls
        if len(graphs) > 1:
            label = f"subgraph {index}" + (f": {g.name}" if g.name else "")
            lines.append(f"  subgraph cluster_{index} {{")
            lines.append(f"    label={_quote(label)}; style=rounded; color=\"#888888\";")
            lines += ["  " + line for line in body]
            lines.append("  }")
        else:
            lines += body
    for source, target in calls:
        if target in firsts:
            lines.append(f"  {source} -> {firsts[target]} [lhead=cluster_{target}, style=dotted, "
                         f"label={_quote(f'subgraph {target}')}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _draw_graph(graph: Graph, index: int, graphs: list[Graph], depth: int | None,
                fold_constants: bool) -> tuple[list[str], str | None, list[tuple[str, int]]]:
    nodes = [n for n in graph if n.op != MISSING_OP]
    folded = {n.name for n in nodes if fold_constants and _foldable(graph, n)}
    outputs = {r.node for r in graph.outputs}
    boxes: dict[str, _Box] = {}  # node name -> its box (shared by the nodes of a collapsed scope)
    scopes: dict[str, _Box] = {}
    order: list[_Box] = []
    for node in nodes:
        if node.name in folded:
            continue
        scope = _scope(node.name, depth)
        box = scopes.get(scope) if scope is not None else None
        if box is None:
            box = _Box(f"s{index}_n{len(order)}", _node_lines(graph, node, folded), node.name)
            box.kind = ("input" if node.name in graph.inputs or node.op in ("Placeholder", "Input")
                        else "output" if node.name in outputs else "op")
            if scope is not None:
                box.kind, box.tooltip, box.members = "scope", scope, 0
                scopes[scope] = box
            order.append(box)
        box.members += 1
        box.ops[node.op] += 1
        boxes[node.name] = box
    for scope, box in scopes.items():
        top = ", ".join(op for op, _ in box.ops.most_common(3))
        box.lines = [f"{_short(scope)}/", f"{box.members} node{'s' if box.members > 1 else ''}: {top}"]
    body = [f"  {box.id} [label={_quote(chr(10).join(box.lines))}, tooltip={_quote(box.tooltip)}, "
            f"fillcolor=\"{COLORS[box.kind]}\"];" for box in order]
    body += _edges(graph, nodes, folded, boxes)
    calls = []
    for node in nodes:
        if node.name in boxes:
            for target in _called_subgraphs(node, graphs):
                calls.append((boxes[node.name].id, target))
    return body, (order[0].id if order else None), calls


def _foldable(graph: Graph, node: Node) -> bool:
    """A constant drawn inside its consumers' labels: used, and only through data edges."""
    if node.op != CONST_OP or not graph.consumers(node.name):
        return False
    return not graph.control_consumers(node.name)


def _scope(name: str, depth: int | None) -> str | None:
    if depth is None:
        return None
    parts = name.split(";", 1)[0].split("/")
    return "/".join(parts[:depth]) if len(parts) > depth else None


def _node_lines(graph: Graph, node: Node, folded: set[str]) -> list[str]:
    lines = [node.op, _short(node.name)]
    shapes = _output_shapes(node)
    if shapes:
        lines.append(" ".join(shapes))
    for slot, ref in enumerate(graph.inputs_of(node.name)):
        if ref is not None and ref.node in folded:
            tensor = graph.node(ref.node).output(ref.port)
            lines.append(f"#{slot} const {_tensor_text(tensor)}")
    return lines


def _output_shapes(node: Node) -> list[str]:
    tensors = [t for t in node.outputs if t is not None]
    if tensors:
        return [_tensor_text(t) for t in tensors[:4]] + (["…"] if len(tensors) > 4 else [])
    declared = node.attrs.get("_output_shapes") or ([node.attrs["shape"]] if "shape" in node.attrs else [])
    return [str(s) for s in declared if isinstance(s, TensorShape)][:4]


def _tensor_text(tensor: Tensor | None) -> str:
    if tensor is None:
        return "?"
    shape = "?" if tensor.shape is None else "[" + ",".join("?" if d is None else str(d) for d in tensor.shape) + "]"
    return f"{tensor.dtype or '?'} {shape}"


def _edges(graph: Graph, nodes: list[Node], folded: set[str], boxes: dict[str, _Box]) -> list[str]:
    lines, seen = [], set()
    for node in nodes:
        if node.name in folded:
            continue
        target = boxes[node.name].id
        for ref in graph.inputs_of(node.name):
            if ref is None or ref.node in folded or ref.node not in boxes:
                continue
            source = boxes[ref.node].id
            key = (source, target, ref.port, False)
            if source != target and key not in seen:
                seen.add(key)
                lines.append(f"  {source} -> {target}" + (f" [label=\":{ref.port}\"]" if ref.port else "") + ";")
        for producer in graph.control_inputs_of(node.name):
            if producer not in boxes:
                continue
            source = boxes[producer].id
            key = (source, target, -1, True)
            if source != target and key not in seen:
                seen.add(key)
                lines.append(f"  {source} -> {target} [style=dashed, arrowhead=odot];")
    return lines


def _called_subgraphs(node: Node, graphs: list[Graph]) -> list[int]:
    """Subgraph indices a TFLite control-flow operator (IF, WHILE, CALL_ONCE, ...) runs:
    its attributes hold the subgraphs themselves."""
    called = []
    for value in node.attrs.values():
        for index, graph in enumerate(graphs):
            if value is graph and index > 0:
                called.append(index)
    return called


def _short(name: str) -> str:
    if len(name) <= LABEL_WIDTH:
        return name
    half = (LABEL_WIDTH - 1) // 2
    return name[:half] + "…" + name[-half:]


def _quote(text: str) -> str:
    """A DOT double-quoted string; newlines become DOT's centred line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r", "").replace("\n", "\\n")
    return f'"{escaped}"'


# -- rendering -----------------------------------------------------------------------------

def dot_program() -> str | None:
    """Path of Graphviz's `dot`, or None when it is not on PATH."""
    return shutil.which("dot")


def render(dot_source: str, fmt: str, wanted: str | None = None) -> bytes:
    """`dot_source` rendered by Graphviz as svg or png (for a `wanted` format that embeds it)."""
    if fmt not in ("svg", "png"):
        raise GraphtoolError(f"Graphviz output format must be svg or png, not {fmt!r}")
    program = dot_program()
    if program is None:
        raise GraphvizMissingError(f"writing {(wanted or fmt).upper()} needs Graphviz's `dot`, which is not on "
                                   f"PATH: {GRAPHVIZ_HINT}")
    result = subprocess.run([program, f"-T{fmt}"], input=dot_source.encode("utf-8", "backslashreplace"),
                            capture_output=True)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GraphtoolError(f"Graphviz `dot` failed: {message[0] if message else f'exit {result.returncode}'}")
    return result.stdout


def html_page(svg: bytes, title: str) -> bytes:
    """A standalone HTML page showing `svg` (its XML prologue dropped)."""
    text = svg.decode("utf-8", "replace")
    start = text.find("<svg")
    body = text[start:] if start >= 0 else text
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{safe_title}</title>\n"
            "<style>body{margin:0;font-family:Helvetica,Arial,sans-serif} svg{display:block}</style>\n"
            f"</head>\n<body>\n{body}\n</body>\n</html>\n")
    return page.encode("utf-8")


def output_format(path: str) -> str:
    """dot, svg, png or html from the suffix of `path`."""
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix == "gv":
        return "dot"
    if suffix not in FORMATS:
        raise GraphtoolError(f"{path}: unknown drawing suffix {('.' + suffix) if suffix else '(none)'}; "
                             "expected .dot, .svg, .png or .html")
    return suffix


def draw(graph: Graph, path: str | os.PathLike, collapse_depth: int | None = None,
         fold_constants: bool = True) -> str:
    """Write `graph` drawn to `path` (format from its suffix), atomically; returns the format."""
    path = os.fspath(path)
    fmt = output_format(path)
    title = os.path.basename(graph.meta.get("source") or "") or graph.name or "model"
    source = to_dot(graph, collapse_depth, fold_constants, title)
    if fmt == "dot":
        data = source.encode("utf-8", "backslashreplace")
    elif fmt == "html":
        data = html_page(render(source, "svg", wanted="html"), title)
    else:
        data = render(source, fmt)
    atomic_write(path, [data])
    return fmt


def node_count(graph: Graph) -> int:
    """Nodes across all subgraphs (to decide whether to suggest collapsing)."""
    return sum(len(g) for g in (graph, *graph.subgraphs))

