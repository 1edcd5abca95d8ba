"""TFLite sparsify: weights in TFLite's sparse format behind DENSIFY. The encoding is checked
against the converter's own (fixtures/tflite/sparse.tflite) and by decoding; the models run
in LiteRT with bit-identical outputs (DENSIFY restores the exact weights); the sizes, raw
and gzip-compressed, are printed as a table (run with -s to see it)."""
from __future__ import annotations

import gzip
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphtool
from graphtool.formats import tflite
from graphtool.passes import PassError, transform
from graphtool.passes.tflite.sparsify import DENSE, SPARSE_CSR, best_encoding, decode, encode

from ...conftest import FIXTURES, TFLITE_FIXTURES, run_litert

PRUNED = FIXTURES / "pruned"


def reference_images() -> np.ndarray:
    return np.load(PRUNED / "reference.npz")["images"]


def stripped_cnn(extra: str = "") -> bytes:
    """The pruned CNN after strip_pruning and fold_batch_norms (75% zeros in 4 kernels)."""
    graph = graphtool.load(PRUNED / "pruned_cnn.tflite")
    transform(graph, f"strip_pruning fold_batch_norms {extra}")
    return tflite.write(graph)


def sparsified(data: bytes, spec: str = "sparsify") -> tuple[bytes, dict]:
    graph = graphtool.load(data)
    (report,) = transform(graph, spec).passes
    return tflite.write(graph), report.stats


def gzipped(data: bytes) -> int:
    return len(gzip.compress(data, 9, mtime=0))


# -- the encoding --------------------------------------------------------------------------------

@st.composite
def sparse_arrays(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6))
    values = draw(hnp.arrays(np.float32, shape, elements=st.floats(-4, 4, width=32)))
    keep = draw(hnp.arrays(np.bool_, shape))
    return np.where(keep, values, np.float32(0))


@settings(max_examples=60, deadline=None)
@given(sparse_arrays(), st.data())
def test_every_format_choice_decodes_to_the_dense_array(dense, data):
    formats = data.draw(st.sampled_from([f for f in itertools.product((DENSE, SPARSE_CSR), repeat=dense.ndim)]))
    encoding = encode(dense, formats)
    np.testing.assert_array_equal(decode(encoding.values, encoding.sparsity, dense.shape), dense)
    arrays = [encoding.values] + [level[key]["values"] for level in encoding.sparsity["dim_metadata"]
                                  for key in ("array_segments", "array_indices") if key in level]
    assert encoding.nbytes == sum(a.nbytes for a in arrays)
    assert best_encoding(dense).nbytes <= encoding.nbytes or SPARSE_CSR not in formats


def test_the_encoding_is_the_converters():
    """EXPERIMENTAL_SPARSITY's FULLY_CONNECTED weights: [DENSE, SPARSE_CSR] with the smallest
    index types. Re-encoding what they stand for gives the same arrays."""
    graph = graphtool.load(TFLITE_FIXTURES / "sparse.tflite")
    sparse = [n.outputs[0] for n in graph if "sparsity" in n.outputs[0].meta]
    assert len(sparse) == 3
    for tensor in sparse:
        theirs = tensor.meta["sparsity"]
        dense = decode(tensor.data, theirs, tensor.shape)
        ours = encode(dense, (DENSE, SPARSE_CSR))
        np.testing.assert_array_equal(ours.values, tensor.data)
        np.testing.assert_array_equal(ours.sparsity["traversal_order"], theirs["traversal_order"])
        for mine, converter in zip(ours.sparsity["dim_metadata"], theirs["dim_metadata"]):
            assert mine["format"] == converter["format"]
            for key in ("array_segments", "array_indices"):
                if key in mine:
                    assert mine[f"{key}_type"] == converter[f"{key}_type"]
                    np.testing.assert_array_equal(mine[key]["values"], converter[key]["values"])
                    assert mine[key]["values"].dtype == converter[key]["values"].dtype


# -- models in LiteRT ------------------------------------------------------------------------------

def tfmot_stripped() -> bytes:
    return (PRUNED / "tfmot_stripped.tflite").read_bytes()


# what each model sparsified here was before
SPARSIFIED = {
    "pruned_cnn": stripped_cnn,
    "tfmot_stripped": tfmot_stripped,
    "weight_only": lambda: stripped_cnn("quantize_weights(mode=weight_only, minimum_size=16)"),
    "float16": lambda: stripped_cnn("quantize_weights(mode=float16, minimum_size=16)"),
}


@pytest.mark.litert
@pytest.mark.parametrize("name", sorted(SPARSIFIED))
def test_sparsified_models_run_bit_identical(name):
    before = SPARSIFIED[name]()
    after, _ = sparsified(before)
    x = [reference_images()]
    np.testing.assert_array_equal(run_litert(after, x)[0], run_litert(before, x)[0])


def test_pruned_cnn_shrinks():
    before = SPARSIFIED["pruned_cnn"]()
    after, stats = sparsified(before)
    assert stats["sparsified"] == 4 and stats["skipped"] == {"below_threshold": 1}  # the depthwise kernel
    summary = graphtool.inspect(graphtool.load(after))
    assert summary.ops["DENSIFY"] == 4
    stored = [w for w in summary.weights if w.sparse_storage]
    assert len(stored) == 4 and all(w.zeros == 0.75 for w in stored)
    assert len(after) < 0.5 * len(before)
    assert stats["sparse_bytes"] < stats["dense_bytes"]


def tfmot_sparsity() -> bytes:
    """The converter's own EXPERIMENTAL_SPARSITY of the Keras model tfmot_stripped came from."""
    return (PRUNED / "tfmot_sparsity.tflite").read_bytes()


def test_sparsify_matches_the_converters_experimental_sparsity_and_is_no_larger():
    ours, stats = sparsified(tfmot_stripped())
    theirs = tfmot_sparsity()
    assert stats["sparsified"] == 4
    assert graphtool.inspect(graphtool.load(ours)).ops == graphtool.inspect(graphtool.load(theirs)).ops
    assert len(ours) <= len(theirs)


@pytest.mark.litert
def test_sparsify_computes_what_the_converters_experimental_sparsity_does():
    ours, _ = sparsified(tfmot_stripped())
    x = [reference_images()]
    np.testing.assert_array_equal(run_litert(ours, x)[0], run_litert(tfmot_sparsity(), x)[0])


def test_min_runtime_version_rises_to_what_densify_needs():
    before = tfmot_stripped()
    assert graphtool.inspect(graphtool.load(before)).min_runtime_version == "1.5.0"
    after, stats = sparsified(before)
    assert stats["min_runtime_version"] == "2.2.0"
    assert graphtool.inspect(graphtool.load(after)).min_runtime_version == "2.2.0"


def test_a_sparse_model_reads_back_and_writes_the_same_bytes():
    after, _ = sparsified(stripped_cnn())
    assert tflite.write(graphtool.load(after)) == after
    again, stats = sparsified(after)  # the sparse weights now feed DENSIFY: nothing to do
    assert stats["sparsified"] == 0
    assert again == after


@pytest.mark.parametrize("mode", ["weight_only", "float16"])
def test_quantized_weights_are_densified_before_their_dequantize(mode):
    after, stats = sparsified(SPARSIFIED[mode]())
    assert stats["sparsified"] == 4
    graph = graphtool.load(after)
    for node in graph:
        if node.op == "DENSIFY":
            (consumer, _), = graph.consumers(node.name)
            assert graph.node(consumer).op == "DEQUANTIZE"


def test_int8_weights_of_integer_kernels_stay_dense():
    """LiteRT's hybrid and integer kernels (XNNPACK) refuse a weight that is not constant."""
    before = stripped_cnn("quantize_weights(mode=dynamic, minimum_size=16)")
    after, stats = sparsified(before)
    assert stats["sparsified"] == 0 and stats["skipped"]["quantized_kernel"] == 5
    assert after == before


def test_threshold_decides_which_weights_go_sparse():
    _, stats = sparsified(stripped_cnn(), "sparsify(threshold=0.8)")
    assert stats["sparsified"] == 0 and stats["skipped"] == {"below_threshold": 5}
    with pytest.raises(PassError, match="threshold"):
        sparsified(stripped_cnn(), "sparsify(threshold=0)")


@pytest.mark.litert
def test_size_table():
    """Raw and gzip sizes before and after sparsify, for docs/commands.md and BENCHMARKS."""
    rows = [("pruned CNN as exported (variables; not sparsified)", (PRUNED / "pruned_cnn.tflite").read_bytes(), None),
            ("anchor: TF-MOT strip_pruning + converter EXPERIMENTAL_SPARSITY",
             (PRUNED / "tfmot_sparsity.tflite").read_bytes(), None),
            ("TF-MOT strip_pruning + converter", (PRUNED / "tfmot_stripped.tflite").read_bytes(), "sparsify"),
            ("graphtool strip_pruning fold_batch_norms", stripped_cnn(), "sparsify"),
            ("  + quantize_weights(mode=weight_only)",
             stripped_cnn("quantize_weights(mode=weight_only, minimum_size=16)"), "sparsify"),
            ("  + quantize_weights(mode=float16)",
             stripped_cnn("quantize_weights(mode=float16, minimum_size=16)"), "sparsify")]
    lines = ["| model (bytes) | raw | gzip -9 | raw after sparsify | gzip -9 after sparsify |",
             "|---|---:|---:|---:|---:|"]
    x = [reference_images()]
    for label, before, spec in rows:
        if spec is None:
            lines.append(f"| {label} | {len(before):,} | {gzipped(before):,} | | |")
            continue
        after, stats = sparsified(before, spec)
        np.testing.assert_array_equal(run_litert(after, x)[0], run_litert(before, x)[0])
        assert len(after) < len(before)
        lines.append(f"| {label} | {len(before):,} | {gzipped(before):,} | {len(after):,} | {gzipped(after):,} |")
    print("\n" + "\n".join(lines))
