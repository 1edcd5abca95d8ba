"""Float TFLite models with layers int8 treats badly, as real models have them, built through
the IR in milliseconds (no TensorFlow): a stack of FULLY_CONNECTED layers where some layer's
input has a few channels scaled by a MUL and its weight columns divided by the same factor
(what folding a batch norm leaves), so the float function is unchanged:

- factor > 1: activations with outliers (a hybrid kernel quantizes its whole input row with
  one scale, so the ordinary channels lose their precision);
- factor < 1: a few large-magnitude weights among small ones (the row's int8 scale is set by
  them, so the small weights round to few levels).

Used by the target_sqnr and sensitivity tests and by bench/bench_sensitivity.py."""
from __future__ import annotations

import numpy as np

from graphtool.formats import tflite
from graphtool.ir import DType, Graph, Node, Ref, Tensor, make_const

FC_META = {"version": 1, "tflite.options_type": "FullyConnectedOptions"}
MUL_META = {"version": 1, "tflite.options_type": "MulOptions"}
INPUT_WIDTH = 64
SCALED_CHANNELS = 3


def fc_stack(depth: int = 8, width: int = 256, scales: dict[int, float] | None = None, seed: int = 0) -> bytes:
    """x [N, 64] -> fc0 .. fc{depth-1} (RELU between, `width` wide) -> the last layer's output.
    `scales`: layer index -> the factor its input's SCALED_CHANNELS channels are scaled by."""
    rng = np.random.default_rng(seed)
    graph = Graph("main", format="tflite")
    graph.add_node(Node("x", "Input", outputs=[Tensor("x", DType.FLOAT32, (None, INPUT_WIDTH))]))
    graph.inputs = ["x"]
    previous, inputs = "x", INPUT_WIDTH
    for i in range(depth):
        weights = (rng.standard_normal((width, inputs)) / np.sqrt(inputs)).astype(np.float32)
        if i in (scales or {}):
            factor = np.ones(inputs, np.float32)
            factor[rng.choice(inputs, SCALED_CHANNELS, replace=False)] = scales[i]
            weights = (weights / factor).astype(np.float32)
            graph.add_node(make_const(f"scale{i}", factor))
            graph.add_node(Node(f"mul{i}", "MUL", {"fused_activation_function": 0},
                                outputs=[Tensor(f"mul{i}", DType.FLOAT32, (None, inputs))], meta=dict(MUL_META)),
                           inputs=[previous, f"scale{i}"])
            previous = f"mul{i}"
        graph.add_node(make_const(f"w{i}", weights))
        graph.add_node(make_const(f"b{i}", (rng.standard_normal(width) * 0.1).astype(np.float32)))
        graph.add_node(Node(f"fc{i}", "FULLY_CONNECTED", {"fused_activation_function": 1 if i < depth - 1 else 0},
                            outputs=[Tensor(f"fc{i}", DType.FLOAT32, (None, width))], meta=dict(FC_META)),
                       inputs=[previous, f"w{i}", f"b{i}"])
        previous, inputs = f"fc{i}", width
    graph.outputs = [Ref(previous)]
    return tflite.write(graph)


def samples(count: int, seed: int) -> dict[str, np.ndarray]:
    """`count` standard-normal inputs for fc_stack, keyed by its input name."""
    return {"x": np.random.default_rng(seed).standard_normal((count, INPUT_WIDTH)).astype(np.float32)}
