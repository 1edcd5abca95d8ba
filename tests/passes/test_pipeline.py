"""The registry and pipeline: typed parameters, clear errors, ignore_errors, validation."""
import pytest

import graphtool
from graphtool.passes import PassError, all_passes, get, transform
from graphtool.passes.registry import GUARANTEES

from ..conftest import GRAPHDEF_FIXTURES, TFLITE_FIXTURES

CNN = GRAPHDEF_FIXTURES / "keras2_cnn.pb"


def test_every_transform_is_documented_with_formats_and_a_guarantee():
    passes = all_passes()
    assert len(passes) >= 10
    for p in passes:
        assert p.summary.endswith("."), f"{p.name}: the summary is a whole sentence, got {p.summary!r}"
        assert p.formats and set(p.formats) <= {"graphdef", "tflite"}
        assert p.guarantee in GUARANTEES
        for name, type_name, _, _ in p.parameters():
            assert name.isidentifier() and type_name


def test_unknown_transform_names_the_known_ones():
    with pytest.raises(PassError, match="Transform 'nope' not recognized.*remove_nodes"):
        transform(graphtool.load(CNN), "nope")


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(PassError, match="unknown parameter 'opp'; valid: op, max_inputs, ignore_errors"):
        transform(graphtool.load(CNN), "remove_nodes(opp=Identity)")


def test_parameters_are_converted_by_type():
    assert get("remove_nodes").make_params({"op": ["A", "B"], "max_inputs": ["2"]}).max_inputs == 2
    assert get("set_device").make_params({"if_default": ["true"]}).if_default is True
    with pytest.raises(PassError, match="wants int"):
        get("remove_nodes").make_params({"max_inputs": ["two"]})
    with pytest.raises(PassError, match="given 2 times"):
        get("set_device").make_params({"device": ["a", "b"]})


def test_nothing_runs_when_a_later_call_is_wrong():
    graph = graphtool.load(CNN)
    before = len(graph)
    with pytest.raises(PassError):
        transform(graph, "remove_nodes(op=Identity) remove_nodes(bad=1)")
    assert len(graph) == before


def test_format_mismatch_is_an_error_unless_ignored():
    graph = graphtool.load(TFLITE_FIXTURES / "float_cnn.tflite")
    with pytest.raises(PassError, match="does not work on tflite"):
        transform(graph, "remove_device")
    report = transform(graph, "remove_device(ignore_errors=true)")
    assert report.passes[0].error and not report.changed


def test_ignore_errors_leaves_the_graph_as_it_was():
    graph = graphtool.load(CNN)
    written = graphtool.formats.graphdef.write(graph)
    report = transform(graph, "rename_node(old_node_name=nope, new_node_name=x, ignore_errors=true)")
    assert report.passes[0].error and "nope" in report.passes[0].error
    assert graphtool.formats.graphdef.write(graph) == written


def test_errors_name_the_transform_and_its_place():
    with pytest.raises(PassError, match=r"rename_node \(transform 2 of 2\): .*no node named 'nope'"):
        transform(graphtool.load(CNN), "remove_device rename_node(old_node_name=nope, new_node_name=x)")


def test_python_list_spec():
    graph = graphtool.load(CNN)
    report = graphtool.transform(graph, ["remove_device", ("remove_nodes", {"op": ["Identity"]})],
                                 outputs=["Identity"])
    assert [p.name for p in report.passes] == ["remove_device", "remove_nodes"]
    assert report.passes[1].stats["removed"] == 14
    assert "Identity" in graph
