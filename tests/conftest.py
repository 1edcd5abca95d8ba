"""Shared test helpers: fixture paths, and TensorFlow imported only where a test asks."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
GRAPHDEF_FIXTURES = FIXTURES / "graphdef"


def graphdef_manifest() -> dict[str, dict]:
    return json.loads((GRAPHDEF_FIXTURES / "MANIFEST.json").read_text())


def graphdef_fixture_paths() -> list[Path]:
    return sorted(p for p in GRAPHDEF_FIXTURES.iterdir() if p.suffix in (".pb", ".pbtxt"))


@pytest.fixture(scope="session")
def tf():
    """TensorFlow, imported lazily (the core must work without it)."""
    import tensorflow

    return tensorflow


@pytest.fixture(scope="session")
def tf_graph_pb2():
    from tensorflow.core.framework import graph_pb2

    return graph_pb2
