"""draw: valid DOT for every fixture (parsed by pydot), valid SVG where Graphviz is installed
(rendered by `dot`, parsed as XML), constants folded into labels, subgraphs as clusters,
scopes collapsed, and a clear message when `dot` is missing."""
from __future__ import annotations

import importlib
import re
import shutil
import xml.etree.ElementTree as ElementTree

import pytest

import graphtool
from graphtool.analysis.draw import GraphvizMissingError, draw, render, to_dot
from graphtool.cli import draw_cmd
from graphtool.errors import GraphtoolError
from graphtool.ir import CONST_OP, MISSING_OP

from ..conftest import GRAPHDEF_FIXTURES, TFLITE_FIXTURES, graphdef_fixture_paths, tflite_fixture_paths

CLI = importlib.import_module("graphtool.cli.main")
CNN = GRAPHDEF_FIXTURES / "keras2_cnn.pb"
CONTROL_FLOW = TFLITE_FIXTURES / "control_flow.tflite"
ALL_FIXTURES = graphdef_fixture_paths() + tflite_fixture_paths()
HAVE_DOT = shutil.which("dot") is not None
NO_DOT = "Graphviz's `dot` is not installed (apt-get install graphviz): SVG/PNG/HTML checks skipped"
SVG = "{http://www.w3.org/2000/svg}"


def run_cli(monkeypatch, capsys, *argv) -> tuple[int, str, str]:
    """`graphtool draw ...` in this process (registering the command if main does not yet)."""
    if draw_cmd not in CLI.COMMANDS:
        monkeypatch.setattr(CLI, "COMMANDS", (*CLI.COMMANDS, draw_cmd))
    code = CLI.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def parse_dot(text: str):
    """The one graph pydot (a DOT parser no one here wrote; tests marked `pydot`) reads."""
    import pydot

    graphs = pydot.graph_from_dot_data(text)
    assert graphs and len(graphs) == 1, "pydot could not parse the DOT"
    return graphs[0]


def all_nodes(graph) -> list:
    """Node statements, in clusters too (without the `node [...]` defaults)."""
    nodes = [n for n in graph.get_nodes() if n.get_name() not in ("node", "edge", "graph")]
    for sub in graph.get_subgraphs():
        nodes += all_nodes(sub)
    return nodes


def all_edges(graph) -> list:
    edges = list(graph.get_edges())
    for sub in graph.get_subgraphs():
        edges += all_edges(sub)
    return edges


def unquote(value: str) -> str:
    """A DOT quoted string's text (\\n as a line break)."""
    assert value.startswith('"') and value.endswith('"'), value
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value[1:-1])


def drawn_nodes(graph) -> list[list]:
    """Per (sub)graph, the nodes drawn as boxes: all but constants only read through data edges."""
    result = []
    for g in [graph, *graph.subgraphs]:
        result.append([n for n in g if n.op != MISSING_OP and not (
            n.op == CONST_OP and g.consumers(n.name) and not g.control_consumers(n.name))])
    return result


# -- DOT -------------------------------------------------------------------------------------

@pytest.mark.pydot
@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_every_fixture_draws_valid_dot(path):
    graph = graphtool.load(path)
    dot = parse_dot(to_dot(graph))
    nodes = all_nodes(dot)
    expected = drawn_nodes(graph)
    assert len(nodes) == sum(len(nodes_) for nodes_ in expected)
    labels = [unquote(n.get("label")).split("\n") for n in nodes]
    tooltips = {unquote(n.get("tooltip")) for n in nodes}
    for node in (n for nodes_ in expected for n in nodes_):
        assert node.name in tooltips
    assert {label[0] for label in labels} == {n.op for nodes_ in expected for n in nodes_}
    if graph.subgraphs:
        clusters = [s.get_name() for s in dot.get_subgraphs()]
        assert clusters == [f"cluster_{i}" for i in range(1 + len(graph.subgraphs))]
    ids = {n.get_name() for n in nodes}
    for edge in all_edges(dot):
        assert edge.get_source() in ids and edge.get_destination() in ids


@pytest.mark.pydot
def test_labels_hold_op_name_and_output_shape_and_folded_constants():
    graph = graphtool.load(TFLITE_FIXTURES / "float_cnn.tflite")
    labels = {unquote(n.get("tooltip")): unquote(n.get("label")).split("\n") for n in all_nodes(parse_dot(to_dot(graph)))}
    fc = labels["digits_cnn/fc/MatMul;digits_cnn/fc/Relu;digits_cnn/fc/BiasAdd"]
    assert fc[0] == "FULLY_CONNECTED" and fc[2] == "float32 [?,32]"
    assert fc[3:] == ["#1 const float32 [32,256]", "#2 const float32 [32]"]
    assert fc[1].startswith("digits_cnn/fc/MatMul") and len(fc[1]) <= 48  # long names are shortened
    assert not any(label[0] == "Const" for label in labels.values())
    shown = {unquote(n.get("tooltip")) for n in all_nodes(parse_dot(to_dot(graph, fold_constants=False)))}
    assert "digits_cnn/fc/MatMul" in shown  # the weights as their own box


@pytest.mark.pydot
def test_graphdef_labels_and_control_edges():
    dot = to_dot(graphtool.load(CNN))
    parsed = parse_dot(dot)
    labels = {unquote(n.get("tooltip")): unquote(n.get("label")).split("\n") for n in all_nodes(parsed)}
    assert labels["input"] == ["Placeholder", "input", "float32 [?,8,8,1]"]
    assert labels["keras2_cnn/conv/Conv2D/ReadVariableOp"][-1] == "#0 const float32 [3,3,1,4]"
    dashed = [e for e in all_edges(parsed) if e.get("style") == "dashed"]
    assert len(dashed) == 15  # the NoOp's 14 control inputs and the Identity's one


@pytest.mark.pydot
def test_subgraph_calls_point_at_their_clusters():
    dot = parse_dot(to_dot(graphtool.load(CONTROL_FLOW)))
    calls = sorted(e.get("lhead") for e in all_edges(dot) if e.get("lhead"))
    assert calls == ["cluster_1", "cluster_2", "cluster_3", "cluster_4"]  # IF then/else, WHILE cond/body


@pytest.mark.pydot
def test_collapsed_scopes_draw_one_box_per_scope():
    graph = graphtool.load(CNN)
    dot = parse_dot(to_dot(graph, collapse_depth=2))
    labels = [unquote(n.get("label")).split("\n") for n in all_nodes(dot)]
    scopes = {"/".join(n.name.split("/")[:2]) for n in graph if n.name.count("/") >= 2}
    singles = [n for n in drawn_nodes(graph)[0] if n.name.count("/") < 2]
    assert len(labels) == len(scopes) + len(singles)
    assert ["keras2_cnn/bn1/", "5 nodes: Identity, FusedBatchNormV3"] in labels
    edges = [(e.get_source(), e.get_destination()) for e in all_edges(dot) if e.get("style") != "dashed"]
    assert len(edges) == len(set(edges))  # one edge per pair of boxes
    with pytest.raises(GraphtoolError, match="at least 1"):
        to_dot(graph, collapse_depth=0)


@pytest.mark.pydot
def test_awkward_names_are_escaped():
    from graphtool.formats.graphdef import messages as pb

    names = ['q"uote', "back\\slash", "ünï/cödé", "{brace} [x]; -> y", "tail\\"]
    message = pb.GraphDef()
    message.node.add(name=names[0], op="Placeholder")
    for previous, name in zip(names, names[1:]):
        message.node.add(name=name, op="Identity", input=[previous])
    graph = graphtool.load(message.SerializeToString())
    text = to_dot(graph)
    nodes = all_nodes(parse_dot(text))
    assert [unquote(n.get("tooltip")) for n in nodes] == names
    assert [unquote(n.get("label")).split("\n")[1] for n in nodes] == names
    if HAVE_DOT:
        svg = ElementTree.fromstring(render(text, "svg"))
        titles = ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
        for name in names:
            assert name in titles


# -- SVG, PNG, HTML through Graphviz ---------------------------------------------------------

@pytest.mark.skipif(not HAVE_DOT, reason=NO_DOT)
@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_every_fixture_draws_valid_svg(path, tmp_path):
    graph = graphtool.load(path)
    out = tmp_path / "model.svg"
    assert draw(graph, out) == "svg"
    svg = ElementTree.parse(out).getroot()
    assert svg.tag == f"{SVG}svg"
    boxes = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "node"]
    assert len(boxes) == sum(len(nodes) for nodes in drawn_nodes(graph))
    clusters = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "cluster"]
    assert len(clusters) == (1 + len(graph.subgraphs) if graph.subgraphs else 0)


@pytest.mark.skipif(not HAVE_DOT, reason=NO_DOT)
def test_cli_writes_png_and_html(monkeypatch, capsys, tmp_path):
    code, out, _ = run_cli(monkeypatch, capsys, "draw", CONTROL_FLOW, "-o", tmp_path / "cf.png")
    assert code == 0 and out.startswith(f"wrote {tmp_path / 'cf.png'} (png")
    assert (tmp_path / "cf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, _ = run_cli(monkeypatch, capsys, "draw", CNN, "-o", tmp_path / "cnn.html", "--collapse-scopes", "2")
    page = (tmp_path / "cnn.html").read_text()
    assert code == 0 and page.startswith("<!DOCTYPE html>") and "<title>keras2_cnn.pb</title>" in page
    ElementTree.fromstring(page[page.index("<svg"):page.index("</svg>") + len("</svg>")])


# -- the command line ------------------------------------------------------------------------

@pytest.mark.pydot
def test_cli_writes_dot_without_graphviz(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    out_file = tmp_path / "cnn.dot"
    code, out, err = run_cli(monkeypatch, capsys, "draw", CNN, "-o", out_file)
    assert code == 0 and err == "" and out == f"wrote {out_file} (dot, 44 nodes)\n"
    parse_dot(out_file.read_text())


def test_svg_without_graphviz_says_how_to_get_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GraphvizMissingError):
        render("digraph { a }", "svg")
    for suffix in ("svg", "png", "html"):
        target = tmp_path / f"cnn.{suffix}"
        code, out, err = run_cli(monkeypatch, capsys, "draw", CNN, "-o", target)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
        assert "Graphviz" in err and "apt-get install graphviz" in err and ".dot" in err
        assert not target.exists()


def test_cli_bad_suffix_and_missing_model_exit_2(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "draw", CNN, "-o", tmp_path / "cnn.jpg")
    assert code == 2 and "unknown drawing suffix .jpg" in err
    code, _, err = run_cli(monkeypatch, capsys, "draw", tmp_path / "none.pb", "-o", tmp_path / "x.dot")
    assert code == 2 and "no such file" in err and not (tmp_path / "x.dot").exists()
