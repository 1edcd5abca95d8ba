"""The TensorFlow anchor for `graphtool inspect`: parse a frozen GraphDef, import it into a
tf.Graph and summarise it the way tools/graph_transforms/summarize_graph does.

    python bench/tf_anchor.py MODEL.pb     # prints the summary as JSON (the cold run)
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from quiet_tf import import_tensorflow

tf = import_tensorflow()

INPUT_OPS = frozenset({"Placeholder"})
NOT_OUTPUT_OPS = frozenset({"Const", "Assign", "NoOp", "Placeholder"})


def load(path: str | Path) -> "tf.Graph":
    """Read, parse and import the GraphDef at `path` into a fresh tf.Graph."""
    graph_def = tf.compat.v1.GraphDef.FromString(Path(path).read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    return graph


def _placeholder(op: "tf.Operation") -> dict[str, Any]:
    shape = tf.TensorShape(op.get_attr("shape"))
    return {"name": op.name, "dtype": op.get_attr("dtype").name,
            "shape": None if shape.rank is None else shape.as_list()}


def _outputs(ops: list["tf.Operation"]) -> list[str]:
    """Ops nothing consumes, by data or control edge (summarize_graph's possible outputs)."""
    control_consumed = {c.name for op in ops for c in op.control_inputs}
    return [op.name for op in ops
            if op.type not in NOT_OUTPUT_OPS and op.name not in control_consumed
            and not any(t.consumers() for t in op.outputs)]


def _const_parameters(ops: list["tf.Operation"]) -> int:
    """Elements held by Const ops (from each value's shape, as graphtool counts them)."""
    return sum(op.outputs[0].shape.num_elements() or 0 for op in ops if op.type == "Const")


def summarize(graph: "tf.Graph") -> dict[str, Any]:
    """Inputs, outputs, op histogram and constant parameter count of `graph`."""
    ops = graph.get_operations()
    histogram = Counter(op.type for op in ops)
    return {"num_nodes": len(ops),
            "inputs": [_placeholder(op) for op in ops if op.type in INPUT_OPS],
            "outputs": _outputs(ops),
            "ops": dict(sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))),
            "parameters": _const_parameters(ops)}


def inspect(path: str | Path) -> dict[str, Any]:
    """The whole anchor: file -> tf.Graph -> summary."""
    return summarize(load(path))


if __name__ == "__main__":
    print(json.dumps(inspect(sys.argv[1]), indent=2))
