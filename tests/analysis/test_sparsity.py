"""inspect's weight sparsity: per weight the share of zeros and of all-zero 1x4 and 4x1
blocks, totals, in the dataclass, --json and the text. Block counts are checked against a
plain loop over the blocks, and the pruned fixtures against their pruning target."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import graphtool
from graphtool.cli import main
from graphtool.cli.inspect_cmd import render
from graphtool.formats import graphdef
from graphtool.ir import Graph, Quantization, make_const

from ..conftest import FIXTURES, TFLITE_FIXTURES

PRUNED = FIXTURES / "pruned"


def graph_of(*arrays: np.ndarray, quantization: Quantization | None = None) -> Graph:
    graph = Graph(format="graphdef")
    for i, array in enumerate(arrays):
        node = make_const(f"w{i}", array)
        node.outputs[0].quantization = quantization
        graph.add_node(node)
    return graph


def blocks_by_loop(zero: np.ndarray, height: int, width: int) -> tuple[int, int]:
    """(blocks, all-zero blocks) over the last two dims, edge blocks partial."""
    matrices = zero.reshape(-1, *zero.shape[-2:])
    rows, columns = zero.shape[-2:]
    total = hits = 0
    for matrix in matrices:
        for r in range(0, rows, height):
            for c in range(0, columns, width):
                total += 1
                hits += bool(matrix[r:r + height, c:c + width].all())
    return total, hits


@pytest.mark.parametrize("shape", [(8, 8), (6, 5), (3, 3, 7, 9), (1, 4), (5, 1)])
def test_zero_blocks_match_a_loop_over_the_blocks(shape):
    rng = np.random.default_rng(sum(shape))
    array = np.where(rng.random(shape) < 0.7, 0, rng.normal(size=shape)).astype(np.float32)
    summary = graphtool.inspect(graph_of(array))
    (weight,) = summary.weights
    assert weight.zeros == pytest.approx(np.mean(array == 0))
    for key, (height, width) in {"1x4": (1, 4), "4x1": (4, 1)}.items():
        total, hits = blocks_by_loop(array == 0, height, width)
        assert weight.zero_blocks[key] == hits / total
        assert summary.sparsity.blocks[key].blocks == total and summary.sparsity.blocks[key].zero == hits


def test_designed_blocks_and_totals():
    rows = np.zeros((4, 8), np.float32)
    rows[:, 4:] = 1  # columns 0-3 zero: every 1x4 block in them, and both 4x1 rows of blocks there
    full = np.ones((4, 4), np.float32)
    summary = graphtool.inspect(graph_of(rows, full))
    by_name = {w.name: w for w in summary.weights}
    assert by_name["w0"].zero_blocks == {"1x4": 0.5, "4x1": 0.5}
    assert by_name["w1"].zero_blocks == {"1x4": 0.0, "4x1": 0.0}
    assert summary.sparsity.blocks["1x4"].blocks == 8 + 4 and summary.sparsity.blocks["1x4"].zero == 4
    assert summary.sparsity.blocks["4x1"].blocks == 8 + 4 and summary.sparsity.blocks["4x1"].zero == 4
    assert summary.sparsity.zeros == 16 and summary.sparsity.elements == 48


def test_quantized_zero_is_the_zero_point():
    stored = np.array([[3, 3, 3, 3], [3, 5, 3, 3]], np.int8)
    q = Quantization(np.array([0.1], np.float32), np.array([3], np.int64))
    (weight,) = graphtool.inspect(graph_of(stored, quantization=q)).weights
    assert weight.zeros == 7 / 8
    assert weight.zero_blocks == {"1x4": 0.5, "4x1": 0.75}


def test_sparse_storage_has_no_block_shares_and_stays_out_of_block_totals():
    summary = graphtool.inspect(graphtool.load(TFLITE_FIXTURES / "sparse.tflite"))
    assert all(w.sparse_storage and w.zero_blocks is None for w in summary.weights)
    assert all(t.blocks == 0 for t in summary.sparsity.blocks.values())
    assert "stored sparse" in render(summary)


def test_pruned_kernels_have_the_pruning_target_in_json_and_text(tmp_path, capsys):
    target = json.loads((PRUNED / "MANIFEST.json").read_text())["model"]["target_sparsity"]
    graph = graphtool.load(PRUNED / "pruned_cnn.tflite")
    graphtool.transform(graph, "strip_pruning")
    path = tmp_path / "stripped.tflite"
    graphtool.save(graph, path)
    assert main(["inspect", "--json", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    pruned = [w for w in data["weights"] if w["zeros"] > 0.5]
    assert len(pruned) == 4 and all(w["zeros"] == target for w in pruned)
    for w in pruned:
        assert set(w["zero_blocks"]) == {"1x4", "4x1"}
        assert 0 <= w["zero_blocks"]["1x4"] <= target
    blocks = data["sparsity"]["blocks"]
    assert set(blocks) == {"1x4", "4x1"}
    assert blocks["1x4"]["share"] == blocks["1x4"]["zero"] / blocks["1x4"]["blocks"]
    assert data["sparsity"]["share"] == data["sparsity"]["zeros"] / data["sparsity"]["elements"]
    assert "zero blocks 1x4" in text
    assert sum(1 for line in text.splitlines() if line.strip().startswith(f"{target:.1%}")) == 4


def test_text_lists_at_most_twenty_sparse_weights():
    arrays = [np.zeros((2, 4), np.float32) for _ in range(23)]
    text = render(graphtool.inspect(graph_of(*arrays)))
    assert sum(1 for line in text.splitlines() if line.startswith("  100.0%")) == 20
    assert "… 3 more sparse weights" in text


def test_graphdef_round_trip_keeps_the_sparsity():
    array = np.where(np.arange(64).reshape(8, 8) % 3 == 0, 1.0, 0.0).astype(np.float32)
    graph = graphtool.load(graphdef.write(graph_of(array)))
    (weight,) = graphtool.inspect(graph).weights
    assert math.isclose(weight.zeros, np.mean(array == 0))
    assert weight.zero_blocks["1x4"] == 0.0  # a 1 in every row of four
