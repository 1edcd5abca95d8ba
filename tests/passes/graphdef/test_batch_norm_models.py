"""Frozen tf_keras ResNet50 and Keras 3 MobileNetV2, MobileNetV3Small and EfficientNetB0: the
standard cleanup pipeline leaves no batch norm in any form after a conv or matmul, and the
outputs stay the same in TF."""
import numpy as np
import pytest

import graphtool
from graphtool.formats import graphdef

from ...model_zoo import frozen_model, kinds, logits
from ...tf_runtime import run_graphdef

PIPELINE = ("remove_nodes(op=Identity, op=CheckNumerics) fold_constants(ignore_errors=true) "
            "fold_batch_norms fold_old_batch_norms strip_unused_nodes sort_by_execution_order")
BATCH_NORM_OPS = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "BatchNormWithGlobalNormalization"}
COMPUTE_OPS = {"Conv2D", "DepthwiseConv2dNative", "MatMul"}


def batch_norms_after_compute(graph) -> list[str]:
    """Batch norms (fused, or a Mul by a constant) that directly follow a conv/matmul (+BiasAdd)."""
    found = []
    for node in graph:
        if node.op in BATCH_NORM_OPS or node.op == "Mul":
            source = graph.inputs_of(node.name)[0]
            producer = graph.node(source.node)
            if producer.op == "BiasAdd":
                producer = graph.node(graph.inputs_of(producer.name)[0].node)
            if producer.op in COMPUTE_OPS and (node.op != "Mul" or _has_constant_operand(graph, node)):
                found.append(node.name)
    return found


def _has_constant_operand(graph, node) -> bool:
    """An operand computed from constants only (no graph input upstream), like a folded scale."""
    import networkx as nx

    for ref in graph.inputs_of(node.name):
        upstream = nx.ancestors(graph.nx, ref.node) | {ref.node}
        if not any(graph.node(n).op == "Placeholder" for n in upstream):
            return True
    return False


def constant_sums_after_a_bias(graph) -> list[str]:
    """Sums of a constant (Add/AddV2/Sub/BiasAdd) reading a conv's or matmul's BiasAdd that
    nothing else reads: what fold_batch_norms leaves as one bias."""
    found = []
    for node in graph:
        inputs = graph.inputs_of(node.name)
        if node.op not in ("Add", "AddV2", "Sub", "BiasAdd") or len(inputs) != 2:
            continue
        ops = [graph.node(ref.node).op for ref in inputs]
        if "Const" in ops and "BiasAdd" in ops:
            bias = inputs[ops.index("BiasAdd")].node
            if len(graph.consumers(bias)) == 1:
                found.append(node.name)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("kind", kinds())
def test_pipeline_folds_every_batch_norm_and_keeps_outputs(tf, kind, record_property):
    """The logits (the Softmax's input) are compared too: with random weights the softmax
    is nearly uniform."""
    path, input_name, output_name = frozen_model(kind)
    graph = graphtool.load(path)
    assert batch_norms_after_compute(graph), "the model should start with batch norms"
    nodes_before = len(graph)
    scores = logits(graph)
    report = graphtool.transform(graph, PIPELINE, inputs=[input_name.split(":")[0]],
                                 outputs=[output_name.split(":")[0], scores])
    assert batch_norms_after_compute(graph) == []
    assert constant_sums_after_a_bias(graph) == []  # MobileNetV3's hard sigmoids: BiasAdd then AddV2(3.0)
    assert not any(n.op in BATCH_NORM_OPS for n in graph)
    record_property("nodes", f"{nodes_before} -> {len(graph)}")
    print(f"{kind}: nodes {nodes_before} -> {len(graph)};",
          {p.name: p.stats for p in report.passes})
    x = np.random.default_rng(0).uniform(-1, 1, (2, *graph.node(input_name.split(':')[0]).outputs[0].shape[1:]))
    x = x.astype(np.float32)
    fetches = [output_name, f"{scores}:0"]
    before = run_graphdef(tf, path.read_bytes(), {input_name: x}, fetches)
    after = run_graphdef(tf, graphdef.write(graph), {input_name: x}, fetches)
    for want, got in zip(before, after):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()))
