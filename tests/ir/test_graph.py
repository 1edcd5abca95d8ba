"""The IR mutation API keeps edges consistent and refuses what would break the graph."""
import numpy as np
import pytest

from graphtool import GraphError
from graphtool.ir import CONTROL, MISSING_OP, DType, Graph, Node, Ref, Tensor


def const(name: str, value: float = 1.0) -> Node:
    data = np.full((2,), value, dtype=np.float32)
    return Node(name, "Const", {"value": None}, outputs=[Tensor(name, DType.FLOAT32, (2,), data)])


def chain() -> Graph:
    """x -> a -> b -> out, with c a constant feeding b."""
    g = Graph()
    g.add_node(Node("x", "Placeholder", outputs=[Tensor("x", DType.FLOAT32, (None, 2))]))
    g.add_node(Node("a", "Relu"), inputs=["x"])
    g.add_node(const("c"))
    g.add_node(Node("b", "AddV2"), inputs=["a", "c"])
    g.add_node(Node("out", "Identity"), inputs=["b"])
    g.outputs = [Ref("out")]
    return g


def test_inputs_are_ordered_by_slot_and_consumers_found():
    g = chain()
    assert g.inputs_of("b") == [Ref("a", 0), Ref("c", 0)]
    assert g.consumers("a") == [("b", 0)]
    assert g.consumers(Ref("c", 0)) == [("b", 1)]
    assert g.consumers("c:1") == []


def test_remove_node_refused_while_used():
    g = chain()
    with pytest.raises(GraphError, match="still used by b"):
        g.remove_node("c")
    g.set_input("b", 1, "a")
    g.remove_node("c")
    assert "c" not in g
    assert g.inputs_of("b") == [Ref("a"), Ref("a")]


def test_replace_uses_moves_every_use():
    g = chain()
    g.add_node(const("d", 2.0))
    moved = g.replace_uses("c", "d")
    assert moved == 1
    assert g.inputs_of("b") == [Ref("a"), Ref("d")]
    assert not g.is_used("c")


def test_control_inputs_kept_apart_from_data_inputs():
    g = chain()
    g.add_node(Node("init", "NoOp"))
    g.set_control_inputs("out", ["init"])
    assert g.inputs_of("out") == [Ref("b")]
    assert g.control_inputs_of("out") == ["init"]
    assert g.control_consumers("init") == ["out"]
    assert Ref.parse("^init") == Ref("init", CONTROL)
    with pytest.raises(GraphError):
        g.remove_node("init")


def test_prune_keeps_what_outputs_need():
    g = chain()
    g.add_node(Node("dead", "Relu"), inputs=["a"])
    removed = g.prune()
    assert removed == ["dead"]
    assert [n.name for n in g] == ["x", "a", "c", "b", "out"]


def test_toposort_is_stable_and_fixes_order():
    g = Graph()
    g.add_node(Node("late_producer", "Const"))
    g.add_node(Node("consumer", "Identity"), inputs=["late_producer"])
    g.add_node(Node("unrelated", "NoOp"))
    # move the producer after its consumer by renaming through the API, then sort
    g.add_node(Node("p2", "Const"))
    g.set_input("consumer", 0, "p2")
    g.toposort()
    names = [n.name for n in g]
    assert names.index("p2") < names.index("consumer")
    assert names.index("late_producer") < names.index("unrelated")  # untouched order kept


def test_validate_reports_cycles_but_allows_tf1_loop_back_edges():
    g = Graph()
    g.add_node(Node("enter", "Enter"))
    g.add_node(Node("merge", "Merge"), inputs=["enter"])
    g.add_node(Node("next", "NextIteration"), inputs=["merge"])
    g.set_inputs("merge", ["enter", "next"])
    g.validate()  # NextIteration -> Merge is a loop back edge
    g.toposort()
    bad = Graph()
    bad.add_node(Node("a", "Relu"))
    bad.add_node(Node("b", "Relu"), inputs=["a"])
    bad.set_inputs("a", ["b"])
    with pytest.raises(GraphError, match="cycle"):
        bad.validate()
    with pytest.raises(GraphError, match="cycle"):
        bad.toposort()


def test_validate_reports_dangling_inputs_and_bad_data():
    g = chain()
    g.add_node(Node("ghost", MISSING_OP))
    g.add_node(Node("user", "Relu"), inputs=["ghost"])
    with pytest.raises(GraphError, match="'ghost', which is not in the graph"):
        g.validate()
    g2 = chain()
    g2.node("c").outputs[0].shape = (3,)
    with pytest.raises(GraphError, match="data shape"):
        g2.validate()


def test_add_node_refuses_duplicates_and_unknown_inputs():
    g = chain()
    with pytest.raises(GraphError, match="already exists"):
        g.add_node(Node("a", "Relu"))
    with pytest.raises(GraphError, match="no node named 'nope'"):
        g.add_node(Node("z", "Relu"), inputs=["nope"])
    assert "z" not in g


def test_rename_node_keeps_place_and_edges():
    g = chain()
    g.rename_node("b", "sum")
    assert [n.name for n in g] == ["x", "a", "c", "sum", "out"]
    assert g.inputs_of("out") == [Ref("sum")]
    assert g.node("sum").name == "sum"


def test_tensor_data_loads_lazily_once():
    calls = []

    def loader():
        calls.append(1)
        return np.zeros((2, 3), np.float32)

    t = Tensor("w", DType.FLOAT32, (2, 3), loader=loader)
    assert t.is_constant and t.nbytes == 24 and not calls
    assert t.data.shape == (2, 3) and t.data.shape == (2, 3)
    assert calls == [1]


def test_absent_optional_inputs_keep_their_slots():
    g = chain()
    g.add_node(Node("conv", "CONV_2D"), inputs=["x", "c", None])
    assert g.inputs_of("conv") == [Ref("x"), Ref("c"), None]
    g.validate()
    g.set_input("conv", 2, "c")
    assert g.inputs_of("conv") == [Ref("x"), Ref("c"), Ref("c")]
    g.set_inputs("conv", [None, "x"])
    assert g.inputs_of("conv") == [None, Ref("x")]
    g.toposort()
    assert g.inputs_of("conv") == [None, Ref("x")]


def test_replace_control_input_keeps_the_place():
    graph = Graph()
    for name in ("a", "b", "c", "d"):
        graph.add_node(Node(name, "NoOp"))
    graph.set_control_inputs("d", ["a", "b"])
    graph.replace_control_input("d", "a", "c")
    assert graph.control_inputs_of("d") == ["c", "b"]
    graph.replace_control_input("d", "c", "b")  # b already is one: c just goes
    assert graph.control_inputs_of("d") == ["b"]
    graph.replace_control_input("d", "a", "c")  # a is not one: nothing happens
    assert graph.control_inputs_of("d") == ["b"]
    with pytest.raises(GraphError, match="after itself"):
        graph.replace_control_input("d", "b", "d")
    with pytest.raises(GraphError, match="no node named"):
        graph.add_control_input("nope", "a")
    graph.validate()
