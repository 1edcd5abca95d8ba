"""The pattern matcher: alternatives, wildcards, constants through Identity, commutative
operands, no leaked intermediates, no overlaps, and reasons in the debug log."""
import logging

import numpy as np

from graphtool.ir import DType, Graph, Node, Tensor, make_const
from graphtool.pattern import C, P, constant_value, find


def graph_with(mul_order=("conv", "scale"), extra_user=False, identity=True) -> Graph:
    g = Graph(format="graphdef")
    g.add_node(Node("x", "Placeholder", outputs=[Tensor("x", DType.FLOAT32, (1, 4, 4, 2))]))
    g.add_node(make_const("w", np.ones((1, 1, 2, 3), np.float32)))
    if identity:
        g.add_node(Node("w_read", "Identity"), inputs=["w"])
    g.add_node(Node("conv", "Conv2D"), inputs=["x", "w_read" if identity else "w"])
    g.add_node(make_const("scale", np.full(3, 2.0, np.float32)))
    g.add_node(Node("mul", "Mul"), inputs=list(mul_order))
    if extra_user:
        g.add_node(Node("other", "Relu"), inputs=["conv"])
    return g


PATTERN = P("Mul", P("Conv2D|DepthwiseConv2dNative|MatMul", P("*", name="input"), C("weights"), name="conv"),
            C("scale"), name="mul")


def test_matches_through_identity_and_captures():
    (match,) = find(graph_with(), PATTERN)
    assert match.nodes["conv"].name == "conv" and match.nodes["input"].name == "x"
    assert match.nodes["weights"].name == "w"  # the Const behind the Identity
    np.testing.assert_array_equal(match.values["scale"], np.full(3, 2.0, np.float32))
    assert match.interior == {"conv"}


def test_commutative_operands_match_in_either_order():
    assert len(find(graph_with(mul_order=("scale", "conv")), PATTERN)) == 1


def test_leaking_intermediate_is_skipped_with_a_reason(caplog):
    with caplog.at_level(logging.DEBUG, logger="graphtool.pattern"):
        assert find(graph_with(extra_user=True), PATTERN) == []
    assert "conv is also used by other" in caplog.text
    assert len(find(graph_with(extra_user=True), PATTERN, exclusive=False)) == 1


def test_non_matching_reasons_are_logged(caplog):
    g = graph_with()
    g.node("conv").op = "Conv3D"
    with caplog.at_level(logging.DEBUG, logger="graphtool.pattern"):
        assert find(g, PATTERN) == []
    assert "conv is Conv3D, wanted Conv2D|DepthwiseConv2dNative|MatMul" in caplog.text


def test_constant_value_looks_through_identity_only():
    g = graph_with()
    node, value = constant_value(g, g.inputs_of("conv")[1])
    assert node.name == "w" and value.shape == (1, 1, 2, 3)
    assert constant_value(g, g.inputs_of("conv")[0]) is None


def test_overlapping_matches_are_taken_once():
    g = Graph(format="graphdef")
    g.add_node(Node("x", "Placeholder"))
    g.add_node(Node("a", "Relu"), inputs=["x"])
    g.add_node(Node("b", "Relu"), inputs=["a"])
    g.add_node(Node("c", "Relu"), inputs=["b"])
    matches = find(g, P("Relu", P("Relu", P("*"))))
    assert [m.root.name for m in matches] == ["b"]  # c would reuse b
