"""The mixed-precision search on a model of known noise: each layer adds a fixed share of output
noise unless it is in fallback, where it costs its bytes. No runtime: the search's choices are
checked against the answer worked out by hand."""
from __future__ import annotations

import math

import pytest

from graphtool.runtime.mixed_precision import SearchError, search
from graphtool.runtime.output_error import Sqnr, db

# layer -> (noise it adds as a fraction of the signal, bytes it costs in fallback)
LAYERS = {"a": (1e-4, 100), "b": (5e-2, 1000), "c": (1e-5, 10), "d": (2e-2, 5000), "e": (1e-3, 50)}
BASE_BYTES = 1000


class Measure:
    """Stands in for OutputError: the SQNR of a variant from the layers its bytes name."""

    samples = 8

    def __init__(self):
        self.runs = 0

    def measure(self, model: bytes, source: str = "") -> Sqnr:
        self.runs += 1
        fallback = {name.strip() for name in model.decode().split(",")} - {""}
        noise = sum(n for name, (n, _) in LAYERS.items() if name not in fallback)
        value = db(1.0, noise)
        return Sqnr(1.0, noise, (value, value))


def build(fallback: frozenset[str]) -> bytes:
    text = ",".join(sorted(fallback))
    return text.encode() + b" " * (BASE_BYTES + sum(LAYERS[name][1] for name in fallback) - len(text))


def test_the_cheapest_fallback_reaching_the_target_is_chosen():
    measure = Measure()
    found = search(build, list(LAYERS), measure, 20.0)  # 20 dB: noise <= 1e-2: b and d must go
    assert found.chosen.fallback == ["b", "d"]
    assert found.chosen.sqnr_db == pytest.approx(db(1.0, 1e-4 + 1e-5 + 1e-3), abs=1e-3)
    assert found.chosen.bytes == BASE_BYTES + 6000 == len(found.model)
    assert [s.step for s in found.tried[:2]] == ["all quantized", "all fallback"]
    assert {tuple(s.fallback) for s in found.tried if s.step == "one layer"} == {(n,) for n in LAYERS}
    assert measure.runs == len(found.tried)  # each variant measured once


def test_a_met_target_tries_nothing_else():
    found = search(build, list(LAYERS), Measure(), 10.0)
    assert found.chosen.fallback == [] and len(found.tried) == 1


def test_trim_drops_layers_the_target_does_not_need():
    """29 dB: noise <= 1.26e-3. By noise per byte the greedy pass takes b, e, then d (predicted
    to cross the target), measured; trimming then finds e unneeded (b and d leave 1.11e-3)."""
    found = search(build, list(LAYERS), Measure(), 29.0)
    greedy = [s for s in found.tried if s.step == "greedy"]
    assert [s.fallback for s in greedy] == [["b", "d", "e"]]
    assert found.chosen.fallback == ["b", "d"] and found.chosen.step == "trim"
    assert found.chosen.bytes == min(s.bytes for s in found.tried if s.sqnr_db is None or s.sqnr_db >= 29.0)


def test_out_of_reach():
    with pytest.raises(SearchError, match="out of reach"):
        search(lambda fallback: b"x" * 10, ["a"], Measure(), 80.0)


def test_deterministic():
    first, second = search(build, list(LAYERS), Measure(), 25.0), search(build, list(LAYERS), Measure(), 25.0)
    assert first.tried == second.tried and first.chosen == second.chosen


def test_db():
    assert db(1.0, 0.0) == math.inf and db(100.0, 1.0) == pytest.approx(20.0)
