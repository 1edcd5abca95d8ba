"""TensorFlow's TFLite converter with tflite_convert's settings, as data.

`ConverterSettings` holds what tflite_convert's TF1 flags set on
tf.compat.v1.lite.TFLiteConverter (inference_type, quantized_input_stats, default_ranges_stats,
optimizations, allow_custom_ops, target_spec...), and refuses settings that conflict or that
TF 2.21's converter no longer honours, so nothing is silently ignored. `ConverterSource` says
what the converter reads (a frozen GraphDef file, a SavedModel directory or a Keras file) and
which converter (the TF1 one, or TFLiteConverterV2 as TF 2's tflite_convert uses).
`convert_with_tensorflow` runs it. Checking settings needs no TensorFlow; converting imports it.
"""
from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import GraphtoolError, first_line
from ..logs import quietly, showing
from . import ModelRunError

# tflite_convert's --inference_type / --inference_input_type values -> tf dtype names
INFERENCE_TYPES = {"FLOAT": "float32", "INT8": "int8", "QUANTIZED_UINT8": "uint8", "UINT8": "uint8"}
# tf.lite.OpsSet members in TF 2.21 (--target_ops values)
OPS_SETS = ("TFLITE_BUILTINS", "SELECT_TF_OPS", "TFLITE_BUILTINS_INT8",
            "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8", "EXPERIMENTAL_STABLEHLO_OPS")
SOURCE_KINDS = ("graphdef", "saved_model", "keras")
CONVERTERS = ("v1", "v2")


class ConversionOptionsError(GraphtoolError):
    """Converter settings that conflict, or that TF 2.21's converter would not honour."""


@dataclass(frozen=True)
class ConverterSettings:
    """The converter attributes tflite_convert's flags set (their TF1 names in brackets).

    inference_type [--inference_type]: FLOAT, INT8 or QUANTIZED_UINT8 (UINT8 is the same).
    inference_input_type [--inference_input_type]: the inputs' type when it differs.
    quantized_input_stats [--mean_values, --std_dev_values]: {input: (mean, std_dev)}, real =
    (q - mean) / std_dev; mean must be an integer (the zero point) for quantized inputs.
    default_ranges_stats [--default_ranges_min/max]: (min, max) for tensors without a range
    ("dummy quantization"). post_training_quantize [--post_training_quantize]: optimizations
    [DEFAULT] on a float model (int8 weights). quantize_to_float16 [--quantize_to_float16]:
    float16 weights instead. allow_custom_ops [--allow_custom_ops]. supported_ops
    [--target_ops]: tf.lite.OpsSet names, empty = the converter's default (TFLITE_BUILTINS).
    select_user_tf_ops [--experimental_select_user_tf_ops]. change_concat_input_ranges
    [--change_concat_input_ranges]: only false (the default): TF 2.21 ignores true.
    experimental_new_quantizer [--experimental_new_quantizer]: None = the converter's default."""

    inference_type: str = "FLOAT"
    inference_input_type: str | None = None
    quantized_input_stats: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    default_ranges_stats: tuple[float, float] | None = None
    post_training_quantize: bool = False
    quantize_to_float16: bool = False
    allow_custom_ops: bool = False
    supported_ops: tuple[str, ...] = ()
    select_user_tf_ops: tuple[str, ...] = ()
    change_concat_input_ranges: bool = False
    experimental_new_quantizer: bool | None = None

    @property
    def quantized(self) -> bool:
        """True when the model's arrays (or its inputs) are to be integers."""
        return self.inference_type != "FLOAT" or self.input_type != "FLOAT"

    @property
    def input_type(self) -> str:
        return self.inference_input_type or self.inference_type

    def check(self) -> None:
        """ConversionOptionsError naming the first conflict or unhonoured setting."""
        for name, value in (("inference_type", self.inference_type),
                            ("inference_input_type", self.inference_input_type)):
            if value is not None and value not in INFERENCE_TYPES:
                raise ConversionOptionsError(f"{name} {value!r} is not one of {', '.join(INFERENCE_TYPES)}")
        unknown = [name for name in self.supported_ops if name not in OPS_SETS]
        if unknown:
            raise ConversionOptionsError(f"target ops {', '.join(unknown)} unknown; TF 2.21's tf.lite.OpsSet has "
                                         f"{', '.join(OPS_SETS)}")
        if self.post_training_quantize and self.inference_type != "FLOAT":
            raise ConversionOptionsError(
                f"post_training_quantize quantizes a float model but inference_type is {self.inference_type} "
                "(tflite_convert would switch it to FLOAT): give one of them")
        if self.quantize_to_float16 and not self.post_training_quantize:
            raise ConversionOptionsError("quantize_to_float16 takes effect only with post_training_quantize")
        if self.default_ranges_stats is not None:
            low, high = self.default_ranges_stats
            if not low <= 0 <= high or low == high:
                raise ConversionOptionsError(f"default ranges ({low:g}, {high:g}) must hold 0 and not be empty")
            if self.inference_type == "FLOAT":
                raise ConversionOptionsError("default ranges are used only for quantized inference, but "
                                             "inference_type is FLOAT")
        if self.quantized_input_stats and not self.quantized:
            raise ConversionOptionsError("mean and std_dev values are used only for quantized inputs, but "
                                         "inference_type and inference_input_type are FLOAT")
        if self.input_type != "FLOAT":
            for name, (mean, std) in self.quantized_input_stats.items():
                if float(mean) != int(mean):
                    raise ConversionOptionsError(f"mean value {mean:g} of {name!r} must be an integer for "
                                                 f"{self.input_type} inputs (it is the zero point)")
                if std <= 0:
                    raise ConversionOptionsError(f"std_dev value {std:g} of {name!r} must be positive")
        if self.select_user_tf_ops and "SELECT_TF_OPS" not in self.supported_ops:
            raise ConversionOptionsError("select_user_tf_ops needs SELECT_TF_OPS among the target ops")
        if self.change_concat_input_ranges:
            raise ConversionOptionsError("change_concat_input_ranges=true is not honoured by TF 2.21's converter "
                                         "(the model is the same without it)")

    def needs_input_stats(self, inputs: tuple[str, ...]) -> list[str]:
        """The inputs that lack (mean, std_dev) although the inputs are quantized."""
        if self.input_type == "FLOAT":
            return []
        return [name for name in inputs if name not in self.quantized_input_stats]


@dataclass(frozen=True)
class ConverterSource:
    """What the converter reads: kind graphdef (a frozen GraphDef file: input_arrays and
    output_arrays required), saved_model (a directory; tag_set, signature_key) or keras (an
    .h5/.keras file). input_shapes {input: dims} fixes unknown dims. converter v1 is
    tf.compat.v1.lite.TFLiteConverter.from_*; v2 is tf.lite.TFLiteConverter (SavedModel or
    Keras only, default settings except post-training quantization), as TF 2's tflite_convert."""

    kind: str
    path: str
    input_arrays: tuple[str, ...] = ()
    output_arrays: tuple[str, ...] = ()
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    tag_set: tuple[str, ...] = ()
    signature_key: str | None = None
    converter: str = "v1"

    def check(self, settings: ConverterSettings) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ConversionOptionsError(f"{self.path}: unknown source kind {self.kind!r}")
        if self.converter not in CONVERTERS:
            raise ConversionOptionsError(f"converter must be v1 or v2, not {self.converter!r}")
        if self.kind == "graphdef" and not (self.input_arrays and self.output_arrays):
            raise ConversionOptionsError(f"{self.path}: input arrays and output arrays are needed to convert a "
                                         "frozen GraphDef (`graphtool inspect` lists its inputs and outputs)")
        unknown = [name for name in self.input_shapes if self.input_arrays and name not in self.input_arrays]
        if unknown:
            raise ConversionOptionsError(f"input shapes given for {', '.join(unknown)}, which are not input arrays")
        if (self.tag_set or self.signature_key) and self.kind != "saved_model":
            raise ConversionOptionsError("a tag set or signature key applies to a SavedModel only")
        if self.converter == "v2":
            if self.kind == "graphdef":
                raise ConversionOptionsError("TF 2's converter does not read frozen GraphDefs: use the TF1 one (v1)")
            if self.input_arrays or self.output_arrays or self.input_shapes:
                raise ConversionOptionsError("TF 2's converter takes no input/output arrays or shapes: use v1")
            defaults = ConverterSettings(post_training_quantize=settings.post_training_quantize,
                                         quantize_to_float16=settings.quantize_to_float16,
                                         allow_custom_ops=settings.allow_custom_ops,
                                         supported_ops=settings.supported_ops,
                                         select_user_tf_ops=settings.select_user_tf_ops,
                                         experimental_new_quantizer=settings.experimental_new_quantizer)
            if settings != defaults:
                raise ConversionOptionsError("TF 2's converter has no inference types, input stats or default "
                                             "ranges: use the TF1 one (v1)")


def _dtype(tf: Any, name: str) -> Any:
    return getattr(tf, INFERENCE_TYPES[name])


def _converter(tf: Any, source: ConverterSource) -> Any:
    """The converter object for `source`, before settings."""
    shapes = {name: list(dims) for name, dims in source.input_shapes.items()} or None
    if source.converter == "v2":
        if source.kind == "saved_model":
            return tf.lite.TFLiteConverter.from_saved_model(
                source.path, signature_keys=[source.signature_key] if source.signature_key else None,
                tags=set(source.tag_set) or None)
        return tf.lite.TFLiteConverter.from_keras_model(tf.keras.models.load_model(source.path))
    lite = tf.compat.v1.lite
    inputs, outputs = list(source.input_arrays) or None, list(source.output_arrays) or None
    if source.kind == "graphdef":
        return lite.TFLiteConverter.from_frozen_graph(source.path, inputs, outputs, input_shapes=shapes)
    if source.kind == "saved_model":
        return lite.TFLiteConverter.from_saved_model(source.path, input_arrays=inputs, input_shapes=shapes,
                                                     output_arrays=outputs, tag_set=set(source.tag_set) or None,
                                                     signature_key=source.signature_key)
    return lite.TFLiteConverter.from_keras_model_file(source.path, input_arrays=inputs, input_shapes=shapes,
                                                      output_arrays=outputs)


def apply_settings(tf: Any, converter: Any, settings: ConverterSettings) -> None:
    """Set `settings` on a converter the way tflite_convert's flags do (only what differs from
    the converter's defaults is set)."""
    if hasattr(converter, "inference_type"):  # the TF1 converter
        converter.inference_type = _dtype(tf, settings.inference_type)
        if settings.inference_input_type:
            converter.inference_input_type = _dtype(tf, settings.inference_input_type)
        if settings.quantized_input_stats:
            integer = settings.input_type != "FLOAT"
            converter.quantized_input_stats = {
                name: (int(mean) if integer else float(mean), float(std))
                for name, (mean, std) in settings.quantized_input_stats.items()}
        if settings.default_ranges_stats is not None:
            converter.default_ranges_stats = tuple(map(float, settings.default_ranges_stats))
    if settings.post_training_quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if settings.quantize_to_float16:
        converter.target_spec.supported_types = [tf.float16]
    if settings.allow_custom_ops:
        converter.allow_custom_ops = True
    if settings.supported_ops:
        converter.target_spec.supported_ops = {tf.lite.OpsSet[name] for name in settings.supported_ops}
    if settings.select_user_tf_ops:
        converter.target_spec.experimental_select_user_tf_ops = list(settings.select_user_tf_ops)
    if settings.experimental_new_quantizer is not None:
        converter.experimental_new_quantizer = settings.experimental_new_quantizer


@quietly
def convert_with_tensorflow(source: ConverterSource, settings: ConverterSettings) -> bytes:
    """The .tflite bytes TensorFlow's converter makes of `source` with `settings` (checked
    first: a conflict is a ConversionOptionsError, before TensorFlow loads)."""
    from .tensorflow import import_tensorflow, run_converter

    settings.check()
    source.check(settings)
    tf = import_tensorflow("converting to TFLite")
    try:  # from_frozen_graph prints a note to stdout on text GraphDefs: stderr's, and only with --verbose
        with contextlib.redirect_stdout(sys.stderr if showing() else io.StringIO()):
            converter = _converter(tf, source)
    except (OSError, ValueError, KeyError, TypeError, ImportError, tf.errors.OpError) as exc:
        raise ModelRunError(f"{source.path}: TensorFlow cannot load the model: {first_line(exc)}") from None
    apply_settings(tf, converter, settings)
    return run_converter(converter, source.path)
