"""A model to .tflite through TensorFlow's converter, with graphtool's transforms first.

`convert_to_tflite` is what `graphtool convert IN OUT.tflite` runs: optionally a pipeline on
the GraphDef (a frozen graph, or a SavedModel's frozen serving signature), then
tf.compat.v1.lite.TFLiteConverter (graphtool.runtime.tflite_convert) with tflite_convert's
settings, then an atomic write. It lives with the pipeline because it runs one; the
converter itself stays in runtime/. When the pipeline ran insert_fake_quant and no input
statistics were given, the converter gets the ones its calibration derived.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import GraphtoolError
from ..runtime.tflite_convert import (
    ConversionOptionsError,
    ConverterSettings,
    ConverterSource,
)
from .pipeline import Spec, transform

KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
FAKE_QUANT_PASS = "insert_fake_quant"


@dataclass
class ConversionResult:
    """What `convert_to_tflite` did: the file written (size, sha256), what the converter read
    (`source_kind`, its arrays), the settings it ran with, where the input statistics came
    from ("flags", "calibration" or None) and the report of each transform run first."""

    output: str
    bytes: int
    sha256: str
    source: str
    source_kind: str
    converter: str
    input_arrays: list[str]
    output_arrays: list[str]
    settings: dict[str, Any]
    input_stats_from: str | None = None
    transforms: list[dict[str, Any]] = field(default_factory=list)


def source_kind(path: str) -> str:
    """graphdef, saved_model or keras, from what `path` is."""
    if os.path.isdir(path):
        return "saved_model"
    return "keras" if path.lower().endswith(KERAS_SUFFIXES) else "graphdef"


def convert_to_tflite(model: str | os.PathLike, output: str | os.PathLike, *,
                      input_arrays: Sequence[str] = (), output_arrays: Sequence[str] = (),
                      input_shapes: Mapping[str, Sequence[int]] | None = None,
                      settings: ConverterSettings | None = None, transforms: Spec | None = None,
                      kind: str | None = None, tag_set: Sequence[str] = (), signature_key: str | None = None,
                      converter: str = "v1") -> ConversionResult:
    """Convert `model` (frozen GraphDef, SavedModel directory or Keras file) to `output`
    (.tflite) with TensorFlow's converter, after `transforms` when given (GraphDef or
    SavedModel only). Bad settings, a failed transform or conversion raise GraphtoolError and
    leave no output."""
    from ..formats import atomic_write

    path, output = os.fspath(model), os.fspath(output)
    settings = settings or ConverterSettings()
    source = ConverterSource(kind or source_kind(path), path, tuple(input_arrays), tuple(output_arrays),
                             {k: tuple(v) for k, v in (input_shapes or {}).items()}, tuple(tag_set),
                             signature_key, converter)
    settings.check()
    stats_from = "flags" if settings.quantized_input_stats else None
    reports: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="graphtool-convert-") as scratch:
        if transforms is not None:
            source, settings, reports, calibrated = _prepared(source, settings, transforms, scratch)
            stats_from = stats_from or ("calibration" if calibrated else None)
        source.check(settings)
        missing = settings.needs_input_stats(source.input_arrays)
        if missing:
            raise ConversionOptionsError(
                f"{settings.input_type} inputs need mean and std_dev values for {', '.join(missing)} "
                "(--mean_values/--std_dev_values, or --transforms with insert_fake_quant(calibration=...))")
        from ..runtime.tflite_convert import convert_with_tensorflow

        try:
            data = convert_with_tensorflow(source, settings)
        except GraphtoolError as exc:
            if source.path == path:
                raise
            raise type(exc)(str(exc).replace(source.path, f"{path} (after --transforms)")) from None
    atomic_write(output, [data])
    return ConversionResult(output, len(data), hashlib.sha256(data).hexdigest(), path, source.kind,
                            _converter_name(source), list(source.input_arrays), list(source.output_arrays),
                            _settings_dict(settings), stats_from, reports)


def _prepared(source: ConverterSource, settings: ConverterSettings, spec: Spec,
              scratch: str) -> tuple[ConverterSource, ConverterSettings, list[dict[str, Any]], bool]:
    """Run the pipeline on the source's GraphDef; the frozen result as a new source (in
    `scratch`), the settings with calibrated input stats when none were given, the reports."""
    from .. import formats

    if source.kind == "keras":
        raise ConversionOptionsError(f"{source.path}: --transforms needs a GraphDef or a SavedModel, not a Keras file")
    if source.converter != "v1" or source.tag_set:
        raise ConversionOptionsError("--transforms converts the transformed GraphDef with the TF1 converter: "
                                     "drop the TF2 converter and the tag set")
    graph = formats.load(source.path)
    inputs, outputs = list(source.input_arrays), list(source.output_arrays)
    if source.kind == "saved_model":
        from ..formats.savedmodel import SIGNATURE

        signature = graph.meta.get(SIGNATURE) or {}
        inputs = inputs or list(signature.get("inputs", {}).values())
        outputs = outputs or [_node_name(name) for name in signature.get("outputs", {}).values()]
    try:
        report = transform(graph, spec, inputs=inputs, outputs=outputs)
    except GraphtoolError as exc:
        raise GraphtoolError(f"{source.path}: {exc}") from None
    calibrated = False
    stats = next((p.stats["quantized_input_stats"] for p in reversed(report.passes)
                  if p.name == FAKE_QUANT_PASS and p.stats.get("quantized_input_stats")), None)
    if stats and not settings.quantized_input_stats:
        settings = replace(settings, quantized_input_stats={k: (float(m), float(s)) for k, (m, s) in stats.items()})
        calibrated = True
    frozen = os.path.join(scratch, "transformed.pb")
    formats.save(graph, frozen)
    return (replace(source, kind="graphdef", path=frozen, input_arrays=tuple(inputs), output_arrays=tuple(outputs),
                    signature_key=None), settings, [asdict(p) for p in report.passes], calibrated)


def _node_name(tensor: str) -> str:
    """`node:0` -> `node` (the converter names an output 0 by its node)."""
    node, sep, port = tensor.rpartition(":")
    return node if sep and port == "0" else tensor


def _converter_name(source: ConverterSource) -> str:
    if source.converter == "v2":
        return f"tf.lite.TFLiteConverter.from_{'saved_model' if source.kind == 'saved_model' else 'keras_model'}"
    method = {"graphdef": "from_frozen_graph", "saved_model": "from_saved_model", "keras": "from_keras_model_file"}
    return f"tf.compat.v1.lite.TFLiteConverter.{method[source.kind]}"


def _settings_dict(settings: ConverterSettings) -> dict[str, Any]:
    values = asdict(settings)
    values["quantized_input_stats"] = {k: list(v) for k, v in settings.quantized_input_stats.items()}
    return values
