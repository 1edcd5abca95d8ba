"""tflite_convert's command-line flags, as `graphtool convert` takes them: argparse
definitions, and their reading into a `ConvertRequest` (what to read, what to write, the
converter settings) with tflite_convert's own checks plus graphtool's refusals of flags that
conflict or that TF 2.21's converter no longer honours. No TensorFlow here."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .common import UsageError

if TYPE_CHECKING:  # imported when a command line is read, not when the parser is built
    from ..runtime.tflite_convert import ConverterSettings

SELECT_TF_OPS = ("TFLITE_BUILTINS", "SELECT_TF_OPS")
FILE_FLAGS = {"graphdef": "--graph_def_file", "saved_model": "--saved_model_dir", "keras": "--keras_model_file"}
# flags tflite_convert (TF 2.21) still parses but the converter it drives ignores: refused, with the reason
NOT_HONOURED = {
    "output_format": "--output_format=GRAPHVIZ_DOT is not honoured by TF 2.21's converter (it writes a .tflite "
                     "anyway); `graphtool draw` draws a model",
    "dump_graphviz_dir": "--dump_graphviz_dir is not honoured by TF 2.21's converter (it writes no .dot files); "
                         "`graphtool draw` draws a model",
    "dump_graphviz_video": "--dump_graphviz_video is not honoured by TF 2.21's converter (it writes no .dot files)",
    "reorder_across_fake_quant": "--reorder_across_fake_quant was TOCO's; TF 2.21's converter ignores it",
    "experimental_new_converter": "--experimental_new_converter=false asked for TOCO, which TF 2.21 no longer has "
                                  "(its converter ignores the setting)",
    "conversion_summary_dir": "--conversion_summary_dir is not supported by graphtool convert",
    "custom_opdefs": "--custom_opdefs is not supported by graphtool convert",
}
# TF1 flags that select the TF1 converter for a SavedModel or Keras file
TF1_ONLY = ("input_arrays", "output_arrays", "input_shapes", "inference_type", "inference_input_type", "mean_values",
            "std_dev_values", "default_ranges_min", "default_ranges_max", "post_training_quantize",
            "quantize_to_float16", "allow_custom_ops", "target_ops", "enable_select_tf_ops", "force_select_tf_ops",
            "experimental_select_user_tf_ops", "change_concat_input_ranges", "drop_control_dependency")
CONVERTER_FLAGS = (*TF1_ONLY, *NOT_HONOURED, "graph_def_file", "saved_model_dir", "keras_model_file",
                   "saved_model_tag_set", "saved_model_signature_key", "enable_v1_converter",
                   "experimental_new_quantizer", "transforms")


@dataclass(frozen=True)
class ConvertRequest:
    """One `graphtool convert ... OUT.tflite` command line, read: the model and its kind
    (graphdef, saved_model or keras), the output, the arrays, the settings, the transforms and which
    converter (v1: tf.compat.v1.lite.TFLiteConverter, v2: tf.lite.TFLiteConverter)."""

    model: str
    output: str
    kind: str
    input_arrays: tuple[str, ...] = ()
    output_arrays: tuple[str, ...] = ()
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    settings: ConverterSettings | None = None
    transforms: str | None = None
    tag_set: tuple[str, ...] = ()
    signature_key: str | None = None
    converter: str = "v1"


class _Bool(argparse.Action):
    """`--flag` alone means true; `--flag=true|false` says which (tflite_convert's boolean flags)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs="?", metavar="BOOL", **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if values is None or values.lower() in ("true", "1"):
            setattr(namespace, self.dest, True)
        elif values.lower() in ("false", "0"):
            setattr(namespace, self.dest, False)
        else:
            raise argparse.ArgumentError(self, f"expected true or false, got {values!r}")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """tflite_convert's flags (TF1 and TF2), every one defaulting to None (= not given)."""
    group = parser.add_argument_group("TensorFlow's converter (OUT is .tflite; tflite_convert's flags)")
    files = group.add_mutually_exclusive_group()
    files.add_argument("--graph_def_file", metavar="PB", help="frozen GraphDef to convert (instead of IN)")
    files.add_argument("--saved_model_dir", metavar="DIR", help="SavedModel directory to convert (instead of IN)")
    files.add_argument("--keras_model_file", metavar="H5", help="Keras .h5/.keras file to convert (instead of IN)")
    group.add_argument("--output_file", metavar="TFLITE", help="where to write the .tflite (instead of OUT)")
    group.add_argument("--input_arrays", metavar="A,B", help="input tensor names, comma-separated")
    group.add_argument("--output_arrays", metavar="C,D", help="output tensor names, comma-separated")
    group.add_argument("--input_shapes", metavar="1,8,8,1:1,4",
                       help="the input arrays' shapes, colon-separated, in --input_arrays order")
    group.add_argument("--inference_type", type=str.upper, metavar="TYPE",
                       help="FLOAT (default), INT8 or QUANTIZED_UINT8: type of the model's real-valued arrays")
    group.add_argument("--inference_input_type", type=str.upper, metavar="TYPE",
                       help="the inputs' type when it differs from --inference_type")
    group.add_argument("--mean_values", metavar="M,..", help="per input: the quantized value of real 0 (zero point)")
    group.add_argument("--std_dev_values", metavar="S,..", help="per input: quantized steps per real unit "
                       "(real = (q - mean) / std_dev)")
    group.add_argument("--default_ranges_min", type=float, metavar="X",
                       help="min of the range given to tensors without one (\"dummy quantization\")")
    group.add_argument("--default_ranges_max", type=float, metavar="X", help="max of that range")
    group.add_argument("--post_training_quantize", "--quantize_weights", dest="post_training_quantize",
                       action="store_const", const=True, help="int8 weights in a float model (optimizations DEFAULT)")
    group.add_argument("--quantize_to_float16", action="store_const", const=True,
                       help="with --post_training_quantize: float16 weights instead of int8")
    group.add_argument("--allow_custom_ops", action=_Bool, help="unknown ops become custom ops instead of an error")
    group.add_argument("--target_ops", metavar="SETS", help="comma-separated tf.lite.OpsSet names, e.g. "
                       "TFLITE_BUILTINS,SELECT_TF_OPS")
    group.add_argument("--enable_select_tf_ops", action="store_const", const=True,
                       help="same as --target_ops=TFLITE_BUILTINS,SELECT_TF_OPS")
    group.add_argument("--force_select_tf_ops", action="store_const", const=True,
                       help="same as --target_ops=SELECT_TF_OPS")
    group.add_argument("--experimental_select_user_tf_ops", metavar="OPS",
                       help="user-defined TensorFlow ops to keep as select TF ops (needs SELECT_TF_OPS)")
    group.add_argument("--change_concat_input_ranges", type=str.upper, choices=("TRUE", "FALSE"),
                       help="only FALSE, the default: TF 2.21's converter ignores TRUE")
    group.add_argument("--drop_control_dependency", action="store_const", const=True,
                       help="drop control dependencies (what the converter always does)")
    group.add_argument("--saved_model_tag_set", metavar="TAGS", help="MetaGraph tags, comma-separated (default serve)")
    group.add_argument("--saved_model_signature_key", metavar="KEY", help="signature to convert (default serving_default)")
    group.add_argument("--enable_v1_converter", action="store_const", const=True,
                       help="TF 2's flag: use the TF1 converter for a SavedModel or Keras file")
    group.add_argument("--experimental_new_converter", action=_Bool, help=argparse.SUPPRESS)
    group.add_argument("--experimental_new_quantizer", action=_Bool, help="the MLIR quantizer (the default) or not")
    for name in ("output_format", "dump_graphviz_dir", "conversion_summary_dir", "custom_opdefs"):
        group.add_argument(f"--{name}", help=argparse.SUPPRESS)
    for name in ("dump_graphviz_video", "reorder_across_fake_quant"):
        group.add_argument(f"--{name}", action=_Bool, help=argparse.SUPPRESS)
    group.add_argument("--transforms", metavar="SPEC",
                       help="graphtool transforms to run on the GraphDef before converting (see below)")


def given(args: argparse.Namespace) -> list[str]:
    """The converter flags given on the command line."""
    return [name for name in CONVERTER_FLAGS if getattr(args, name, None) is not None]


def _list(text: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


def _numbers(flag: str, text: str) -> list[float]:
    try:
        return [float(item) for item in _list(text)]
    except ValueError:
        raise UsageError(f"--{flag} takes comma-separated numbers, not {text!r}") from None


def _shapes(text: str, inputs: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    if not inputs:
        raise UsageError("--input_shapes needs --input_arrays (one shape per input, in order)")
    shapes = text.split(":")
    if len(shapes) != len(inputs):
        raise UsageError(f"--input_shapes has {len(shapes)} shape(s) but --input_arrays names {len(inputs)} input(s)")
    try:
        return {name: tuple(int(d) for d in _list(shape)) for name, shape in zip(inputs, shapes)}
    except ValueError:
        raise UsageError(f"--input_shapes takes integers, e.g. 1,224,224,3:1,10; got {text!r}") from None


def _inference_type(flag: str, value: str | None) -> str | None:
    from ..runtime.tflite_convert import INFERENCE_TYPES

    if value is not None and value not in INFERENCE_TYPES:
        raise UsageError(f"--{flag}={value} is not one of {', '.join(INFERENCE_TYPES)}")
    return "QUANTIZED_UINT8" if value == "UINT8" else value


def _supported_ops(args: argparse.Namespace) -> tuple[str, ...]:
    chosen = [(flag, ops) for flag, ops in (
        ("--target_ops", _list(args.target_ops) if args.target_ops is not None else None),
        ("--enable_select_tf_ops", SELECT_TF_OPS if args.enable_select_tf_ops else None),
        ("--force_select_tf_ops", ("SELECT_TF_OPS",) if args.force_select_tf_ops else None)) if ops is not None]
    if len({frozenset(ops) for _, ops in chosen}) > 1:
        raise UsageError(f"{' and '.join(flag for flag, _ in chosen)} ask for different op sets: give one")
    ops = chosen[0][1] if chosen else ()
    from ..runtime.tflite_convert import OPS_SETS

    unknown = [op for op in ops if op not in OPS_SETS]
    if unknown:
        raise UsageError(f"--target_ops: {', '.join(unknown)} unknown; TF 2.21 has {', '.join(OPS_SETS)}")
    return tuple(ops)


def _refuse_unhonoured(args: argparse.Namespace) -> None:
    for name, reason in NOT_HONOURED.items():
        value = getattr(args, name)
        if value is None:
            continue
        if name == "output_format" and value.upper() == "TFLITE":
            continue  # asks for what is written anyway
        if name == "experimental_new_converter" and value:
            continue  # the MLIR converter: the only one
        if name in ("dump_graphviz_video", "reorder_across_fake_quant") and not value:
            continue  # asks for the default
        raise UsageError(reason)


def _one(what: str, positional: str | None, flag: str, flag_value: str | None) -> str | None:
    if positional and flag_value and positional.rstrip("/") != flag_value.rstrip("/"):
        raise UsageError(f"{what} is {positional!r} but {flag} is {flag_value!r}: give one of them")
    return positional or flag_value


def read_request(args: argparse.Namespace) -> ConvertRequest:
    """The command line as a ConvertRequest; a conflicting or unhonoured flag is a UsageError."""
    from ..passes.convert import source_kind
    from ..runtime.tflite_convert import ConverterSettings

    _refuse_unhonoured(args)
    kinds = {"graphdef": args.graph_def_file, "saved_model": args.saved_model_dir, "keras": args.keras_model_file}
    kind = next((k for k, v in kinds.items() if v), None)
    model = _one("IN", args.input, FILE_FLAGS.get(kind, "--graph_def_file"), kinds.get(kind))
    output = _one("OUT", args.output, "--output_file", args.output_file)
    if not model or not output:
        raise UsageError("convert needs IN and OUT (or --graph_def_file/--saved_model_dir/--keras_model_file "
                         "and --output_file)")
    inputs, outputs = _list(args.input_arrays), _list(args.output_arrays)
    shapes = _shapes(args.input_shapes, inputs) if args.input_shapes else {}
    inference_type = _inference_type("inference_type", args.inference_type) or "FLOAT"
    input_type = _inference_type("inference_input_type", args.inference_input_type)
    stats = _input_stats(args, inputs)
    if (args.default_ranges_min is None) != (args.default_ranges_max is None):
        raise UsageError("--default_ranges_min and --default_ranges_max go together")
    ranges = None if args.default_ranges_min is None else (args.default_ranges_min, args.default_ranges_max)
    settings = ConverterSettings(
        inference_type=inference_type, inference_input_type=input_type, quantized_input_stats=stats,
        default_ranges_stats=ranges, post_training_quantize=bool(args.post_training_quantize),
        quantize_to_float16=bool(args.quantize_to_float16), allow_custom_ops=bool(args.allow_custom_ops),
        supported_ops=_supported_ops(args), select_user_tf_ops=_list(args.experimental_select_user_tf_ops),
        change_concat_input_ranges=args.change_concat_input_ranges == "TRUE",
        experimental_new_quantizer=args.experimental_new_quantizer)
    kind = kind or source_kind(model)
    if (args.saved_model_tag_set is not None or args.saved_model_signature_key) and kind != "saved_model":
        raise UsageError("--saved_model_tag_set and --saved_model_signature_key apply to a SavedModel only")
    tf1 = kind == "graphdef" or args.enable_v1_converter or args.transforms is not None or any(
        getattr(args, name) is not None for name in TF1_ONLY)
    return ConvertRequest(model, output, kind, inputs, outputs, shapes, settings,
                          args.transforms, _list(args.saved_model_tag_set), args.saved_model_signature_key,
                          "v1" if tf1 else "v2")


def _input_stats(args: argparse.Namespace, inputs: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    if args.mean_values is None and args.std_dev_values is None:
        return {}
    if args.mean_values is None or args.std_dev_values is None:
        raise UsageError("--mean_values and --std_dev_values go together")
    means, stds = _numbers("mean_values", args.mean_values), _numbers("std_dev_values", args.std_dev_values)
    if len(means) != len(stds):
        raise UsageError(f"--mean_values has {len(means)} value(s) but --std_dev_values {len(stds)}")
    if not inputs:
        raise UsageError("--mean_values and --std_dev_values need --input_arrays (one value per input, in order)")
    if len(means) != len(inputs):
        raise UsageError(f"--mean_values has {len(means)} value(s) but --input_arrays names {len(inputs)} input(s)")
    return {name: (mean, std) for name, mean, std in zip(inputs, means, stds)}
