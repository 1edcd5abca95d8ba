"""Automatic mixed precision: which layers to keep in higher precision (a "fallback") so that a
quantized model's output SQNR on samples reaches a target, for the fewest bytes.

The quantizing transform hands over `build(fallback) -> model bytes` (the model quantized with
the layers of `fallback` left in higher precision) and its candidate layers; every variant
runs in LiteRT against the float model (graphtool.runtime.output_error), its SQNR taken as
`Sqnr.worst_db`. The search, deterministic for the same inputs:

1. every layer quantized; done if it reaches the target;
2. every layer in fallback; if even that misses the target, an error saying what it reached;
3. each layer alone in fallback: how much output noise it removes, and for how many bytes;
4. greedily, layers by noise removed per byte (ties: graph order) join the fallback until the
   noise the single-layer runs predict is below the target's, then one at a time, measured,
   until the target is reached;
5. each chosen layer, last joined first, is tried out of the fallback again and stays out when
   the target still holds.

The answer is the smallest model among every variant tried that reaches the target (ties: the
first tried); `Search.tried` lists them all with their size and SQNR.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..errors import GraphtoolError
from .output_error import OutputError, Sqnr


class SearchError(GraphtoolError):
    """No fallback reaches the target SQNR."""


@dataclass(frozen=True)
class Strategy:
    """One variant tried: the layers left in higher precision, its size and SQNR."""

    step: str  # "all quantized", "all fallback", "one layer", "greedy" or "trim"
    fallback: list[str]
    bytes: int
    sqnr_db: float | None  # the worst of the whole set's and each half's; None: no error at all

    def reaches(self, target: float) -> bool:
        return self.sqnr_db is None or self.sqnr_db >= target


@dataclass
class Search:
    """The chosen variant and every variant tried, in the order tried."""

    target_db: float
    samples: int
    chosen: Strategy
    tried: list[Strategy] = field(default_factory=list)
    model: bytes = field(default=b"", repr=False)  # the chosen variant's bytes


def _finite(value: float) -> float | None:
    return None if math.isinf(value) and value > 0 else round(value, 4)


def _noise(sqnr: Sqnr) -> float:
    """The worst-half noise as a fraction of the signal (10^(-dB/10))."""
    worst = sqnr.worst_db
    return 0.0 if math.isinf(worst) and worst > 0 else 10.0 ** (-worst / 10.0)


class _Trials:
    """Builds, measures and records variants (each fallback set measured once)."""

    def __init__(self, build: Callable[[frozenset[str]], bytes], measure: OutputError, order: Sequence[str]):
        self.build, self.measure, self.order = build, measure, {name: i for i, name in enumerate(order)}
        self.tried: list[Strategy] = []
        self.noise: dict[frozenset[str], float] = {}
        self.models: dict[frozenset[str], bytes] = {}

    def __call__(self, step: str, fallback: frozenset[str]) -> Strategy:
        done = next((s for s in self.tried if frozenset(s.fallback) == fallback), None)
        if done is not None:
            return done
        model = self.build(fallback)
        sqnr = self.measure.measure(model, f"<{step}: {len(fallback)} layer(s) in fallback>")
        strategy = Strategy(step, sorted(fallback, key=self.order.__getitem__), len(model), _finite(sqnr.worst_db))
        self.tried.append(strategy)
        self.noise[fallback] = _noise(sqnr)
        self.models[fallback] = model
        return strategy


def search(build: Callable[[frozenset[str]], bytes], layers: Sequence[str], measure: OutputError,
           target_db: float) -> Search:
    """The fewest-bytes fallback (of those tried) whose model reaches `target_db` (see the module doc)."""
    trials = _Trials(build, measure, layers)
    none = trials("all quantized", frozenset())
    if not none.reaches(target_db) and layers:
        every = trials("all fallback", frozenset(layers))
        if not every.reaches(target_db):
            raise SearchError(f"target_sqnr={target_db:g} dB is out of reach: with every one of {len(layers)} "
                              f"layer(s) in fallback the output SQNR is {every.sqnr_db:.2f} dB "
                              f"(every layer quantized: {none.sqnr_db:.2f} dB)")
        _greedy(trials, layers, none, target_db)
    elif not none.reaches(target_db):
        raise SearchError(f"target_sqnr={target_db:g} dB is out of reach: no layer to keep in fallback and the "
                          f"output SQNR is {none.sqnr_db:.2f} dB")
    reaching = [s for s in trials.tried if s.reaches(target_db)]
    chosen = min(reaching, key=lambda s: s.bytes)  # min keeps the first tried among equals
    return Search(target_db, measure.samples, chosen, trials.tried, trials.models[frozenset(chosen.fallback)])


def _greedy(trials: _Trials, layers: Sequence[str], none: Strategy, target_db: float) -> None:
    base_noise = trials.noise[frozenset()]
    gains = {}
    for layer in layers:
        alone = trials("one layer", frozenset({layer}))
        removed = base_noise - trials.noise[frozenset({layer})]
        gains[layer] = (removed / max(alone.bytes - none.bytes, 1), removed)
    ranked = sorted(layers, key=lambda name: (-gains[name][0], trials.order[name]))
    target_noise = 10.0 ** (-target_db / 10.0)
    chosen: list[str] = []
    predicted = base_noise
    for layer in ranked:
        chosen.append(layer)
        predicted -= gains[layer][1]
        if predicted > target_noise and len(chosen) < len(ranked):
            continue
        if trials("greedy", frozenset(chosen)).reaches(target_db):
            break
    for layer in reversed(list(chosen)):
        fewer = frozenset(chosen) - {layer}
        if trials("trim", fewer).reaches(target_db):
            chosen.remove(layer)
