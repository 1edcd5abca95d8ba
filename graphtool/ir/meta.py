"""The meta dicts of graphs, nodes and tensors: what a format has that the IR does not model.

Keys with a format's prefix ("graphdef.*", "tflite.*") hold read-only records of the source
file (tables, messages as read): copies of a graph share them, and a change replaces them.
Other keys hold plain values that passes read and set, copied with the graph.
"""
from __future__ import annotations

import copy


def is_source_record(key: str) -> bool:
    """True for a format-namespaced key: a read-only record of the source file."""
    return "." in key


def copy_meta(meta: dict, memo: dict) -> dict:
    """Copy a meta dict: source records are shared; everything else is copied deeply."""
    return {k: v if is_source_record(k) else copy.deepcopy(v, memo) for k, v in meta.items()}
