"""target_sqnr=, calibration= and fallback=: automatic mixed precision for the quantizing
transforms. The transform says how to build the model with some layers left in higher
precision; graphtool.runtime.mixed_precision runs the variants in LiteRT and picks one; this
module checks the parameters, hands over, and writes the report (stats["target_sqnr"])."""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ...errors import GraphtoolError
from ...formats import load
from ...ir import Graph
from ..registry import PassError
from .samples_param import samples_of

FALLBACKS = ("float16", "float32")
TARGET_DOC = ("output SQNR (dB) to reach on the calibration samples: layers go back to higher precision "
              "(fallback), the fewest bytes first, until it does; the report lists every variant tried")
CALIBRATION_DOC = ("samples for target_sqnr: an .npz keyed by input tensor name or signature input key, samples "
                   "on the first axis (at least 2); from Python also a mapping of arrays or an iterable of feed "
                   "dicts")
FALLBACK_DOC = ("what a layer left out of quantization by target_sqnr stores: float16 (weights FLOAT16 behind "
                "DEQUANTIZE, as the converter stores them) or float32")


@dataclass(frozen=True)
class Target:
    db: float
    calibration: Any  # a path, or samples given from Python
    fallback: str


def target_of(transform: str, target_sqnr: float | None, calibration: Any, fallback: str) -> Target | None:
    """The checked target_sqnr parameters, or None when no target is asked for."""
    if fallback not in FALLBACKS:
        raise PassError(f"{transform}: fallback must be float16 or float32, got {fallback!r}")
    if target_sqnr is None:
        return None
    if not 0 < target_sqnr < 200:
        raise PassError(f"{transform}: target_sqnr must be between 0 and 200 dB, got {target_sqnr:g}")
    data = samples_of(calibration)
    if isinstance(data, str) and not data:
        raise PassError(f"{transform}: target_sqnr needs calibration=SAMPLES.npz (inputs keyed by input name, "
                        "samples on the first axis) to measure the output SQNR on")
    if isinstance(data, (str, os.PathLike)) and os.fspath(data).endswith(".json"):
        raise PassError(f"{transform}: target_sqnr needs samples (.npz), not ranges (.json): it runs the model")
    if not isinstance(data, (str, os.PathLike, Mapping)):  # an iterable is read more than once: keep it
        data = list(data() if callable(data) else data)
    return Target(float(target_sqnr), data, fallback)


Build = Callable[[frozenset[str]], tuple[bytes, dict]]


def mixed_precision(transform: str, graph: Graph, reference: bytes, layers: Sequence[str], build: Build,
                    target: Target, log: logging.Logger) -> dict:
    """Search the fallback for `target`, make `graph` the chosen model and return its stats with
    the report under "target_sqnr". `reference`: the float model's bytes; `build(fallback)`:
    the quantized model's bytes and stats with the layers of `fallback` left in higher precision."""
    from ...runtime.mixed_precision import search
    from ...runtime.output_error import OutputError

    built: dict[frozenset[str], dict] = {}

    def variant(fallback: frozenset[str]) -> bytes:
        data, stats = build(fallback)
        built[fallback] = stats
        return data

    try:
        measure = OutputError(reference, target.calibration, graph.meta.get("source") or "<tflite>")
        found = search(variant, layers, measure, target.db)
    except GraphtoolError as exc:
        raise PassError(f"{transform}: {exc}") from exc
    for strategy in found.tried:
        log.info("%s: %s, %d layer(s) in %s: %d bytes, %s dB", transform, strategy.step, len(strategy.fallback),
                 target.fallback, strategy.bytes, "inf" if strategy.sqnr_db is None else f"{strategy.sqnr_db:.2f}")
    chosen = found.chosen
    log.info("%s: target_sqnr %g dB reached at %s dB with %d of %d layer(s) in %s: %s", transform, target.db,
             "inf" if chosen.sqnr_db is None else f"{chosen.sqnr_db:.2f}", len(chosen.fallback), len(layers),
             target.fallback, ", ".join(chosen.fallback) or "none")
    result = load(found.model)
    result.meta["source"] = graph.meta.get("source")
    graph.restore(result)
    stats = dict(built[frozenset(chosen.fallback)])
    stats["target_sqnr"] = {
        "target_db": target.db, "samples": found.samples, "fallback_type": target.fallback,
        "layers": len(layers), "fallback": list(chosen.fallback), "sqnr_db": chosen.sqnr_db,
        "bytes": chosen.bytes, "input_bytes": len(reference),
        "strategies": [dataclasses.asdict(s) for s in found.tried]}
    return stats
