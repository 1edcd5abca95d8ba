"""`graphtool convert IN OUT`: re-encode a model losslessly (.pb <-> .pbtxt, .tflite), or, when
OUT is .tflite and IN a GraphDef, SavedModel or Keras file, convert it with TensorFlow's
converter, taking tflite_convert's flags unchanged (cli/tflite_flags.py)."""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import GraphtoolError
from .common import UsageError, load_model
from .tflite_flags import add_flags, given, read_request

EPILOG = """\
TensorFlow's converter (the tf extra): when OUT is .tflite and IN is a frozen GraphDef
(.pb/.pbtxt), a SavedModel directory or a Keras .h5/.keras file, the model goes through
tf.compat.v1.lite.TFLiteConverter with tflite_convert's TF1 flags, spelled as tflite_convert
spells them (IN and OUT may be given as --graph_def_file/--saved_model_dir/--keras_model_file
and --output_file). A SavedModel or Keras file with none of the TF1 flags goes through
tf.lite.TFLiteConverter, as TF 2's tflite_convert does (--enable_v1_converter: the TF1 one).
Flags that conflict, or that TF 2.21's converter no longer honours (--output_format=GRAPHVIZ_DOT,
--dump_graphviz_dir, --reorder_across_fake_quant, --change_concat_input_ranges=true,
--experimental_new_converter=false), stop the command with one line saying so.

--transforms SPEC runs graphtool transforms (`graphtool transforms` lists them) on the GraphDef
(a SavedModel's frozen serving signature) before converting, with --input_arrays and
--output_arrays as the graph's inputs and outputs. When the pipeline runs insert_fake_quant
and no --mean_values/--std_dev_values are given, the input statistics (mean, std_dev) come
from its calibration.

examples (the command lines of TensorFlow's converter documentation, cmdline_examples.md
and ops_select.md, with `graphtool convert` in place of `tflite_convert`):

  float model from a frozen graph
    graphtool convert --graph_def_file=/tmp/mobilenet_v1_0.50_128/frozen_graph.pb \\
      --output_file=/tmp/foo.tflite --input_arrays=input \\
      --output_arrays=MobilenetV1/Predictions/Reshape_1
  QUANTIZED_UINT8 with input statistics and default ranges (dummy quantization)
    graphtool convert --graph_def_file=/tmp/mobilenet_v1_0.50_128/frozen_graph.pb \\
      --output_file=/tmp/foo.tflite --input_arrays=input \\
      --output_arrays=MobilenetV1/Predictions/Reshape_1 --inference_type=QUANTIZED_UINT8 \\
      --mean_values=128 --std_dev_values=127 --default_ranges_min=0 --default_ranges_max=6
  int8 weights (post-training quantization)
    graphtool convert --graph_def_file=/tmp/some_quantized_graph.pb --output_file=/tmp/foo.tflite \\
      --input_arrays=input --output_arrays=MobilenetV1/Predictions/Reshape_1 --post_training_quantize
  several inputs, with their shapes
    graphtool convert --graph_def_file=/tmp/inception_v1_2016_08_28_frozen.pb \\
      --output_file=/tmp/foo.tflite \\
      --input_arrays=InceptionV1/InceptionV1/Mixed_3b/Branch_1/Conv2d_0a_1x1/Relu,InceptionV1/InceptionV1/Mixed_3b/Branch_2/Conv2d_0a_1x1/Relu,InceptionV1/InceptionV1/Mixed_3b/Branch_3/MaxPool_0a_3x3/MaxPool,InceptionV1/InceptionV1/Mixed_3b/Branch_0/Conv2d_0a_1x1/Relu \\
      --input_shapes=1,28,28,96:1,28,28,16:1,28,28,192:1,28,28,64 \\
      --output_arrays=InceptionV1/Logits/Predictions/Reshape_1
  TensorFlow ops the TFLite builtins lack, as select TF ops
    graphtool convert --graph_def_file=/tmp/foo.pb --output_file=/tmp/foo.tflite \\
      --input_arrays=input --output_arrays=MobilenetV1/Predictions/Reshape_1 \\
      --target_ops=TFLITE_BUILTINS,SELECT_TF_OPS
  a SavedModel
    graphtool convert --saved_model_dir=/tmp/saved_model --output_file=/tmp/foo.tflite
  graphtool's preparation first: fold batch norms, fake-quant from calibration, full int8
    graphtool convert frozen.pb model_int8.tflite --input_arrays=image --output_arrays=probs \\
      --input_shapes=1,8,8,1 --inference_type=INT8 --transforms \\
      'fold_batch_norms fold_old_batch_norms insert_fake_quant(calibration=samples.npz)'
  lossless re-encoding
    graphtool convert model.pb model.pbtxt
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "convert", help="re-encode a model losslessly, or convert it to .tflite with TensorFlow's converter",
        description="Read IN and write it to OUT. With no converter flag and IN and OUT in formats graphtool\n"
                    "writes, the model is re-encoded with no change; the suffixes choose the encoding (.pb\n"
                    "binary, .pbtxt text, .tflite). When OUT is .tflite and IN a GraphDef, SavedModel or Keras\n"
                    "file, TensorFlow's converter makes it (see below). The output is written atomically.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", metavar="IN", nargs="?",
                        help="model to read: .pb, .pbtxt, .tflite, a SavedModel directory, or a Keras .h5/.keras")
    parser.add_argument("output", metavar="OUT", nargs="?", help="where to write it; its suffix chooses the encoding")
    parser.add_argument("--in-place", action="store_true", help="allow OUT to be IN")
    parser.add_argument("--allow-unknown-fields", action="store_true",
                        help="write a TFLite model even though fields from a newer schema would be dropped")
    parser.add_argument("--json", action="store_true", help="print what the converter did as JSON")
    add_flags(parser)
    parser.set_defaults(run=run)


def _converts(args: argparse.Namespace) -> bool:
    """True when TensorFlow's converter makes OUT: converter flags, or IN not a .tflite and OUT one."""
    if given(args) or args.output_file:
        return True
    source, target = args.input or "", args.output or ""
    return target.lower().endswith(".tflite") and not source.lower().endswith(".tflite")


def run(args: argparse.Namespace) -> int:
    if _converts(args):
        return _convert(args)
    if not args.input or not args.output:
        raise UsageError("convert needs IN and OUT")
    if args.json:
        raise UsageError("--json reports a conversion by TensorFlow's converter (OUT .tflite)")
    return _reencode(args)


def _reencode(args: argparse.Namespace) -> int:
    from .. import formats

    if not args.in_place and os.path.exists(args.input) and os.path.exists(args.output) \
            and os.path.samefile(args.input, args.output):
        raise GraphtoolError(f"{args.output}: output is the input; pass --in-place to overwrite it")
    graph = load_model(args.input)
    formats.save(graph, args.output, allow_unknown=args.allow_unknown_fields)
    print(f"wrote {args.output} ({os.path.getsize(args.output):,} bytes, {len(graph):,} nodes)")
    return 0


def _convert(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from ..passes.convert import convert_to_tflite

    request = read_request(args)
    if not request.output.lower().endswith(".tflite"):
        raise UsageError(f"{request.output}: TensorFlow's converter writes .tflite; the converter flags need an "
                         "OUT ending in .tflite")
    if request.model.lower().endswith(".tflite"):
        raise UsageError(f"{request.model}: already a .tflite; the converter flags apply to GraphDefs, SavedModels "
                         "and Keras files")
    if not os.path.exists(request.model):
        raise GraphtoolError(f"{request.model}: no such file or directory")
    result = convert_to_tflite(request.model, request.output, input_arrays=request.input_arrays,
                               output_arrays=request.output_arrays, input_shapes=request.input_shapes,
                               settings=request.settings, transforms=request.transforms, kind=request.kind,
                               tag_set=request.tag_set, signature_key=request.signature_key,
                               converter=request.converter)
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2, default=str))
        return 0
    for p in result.transforms:
        status = f"ignored error: {p['error']}" if p["error"] else ("changed" if p["changed"] else "no change")
        print(f"{p['name']}: {status}; nodes {p['nodes_before']} -> {p['nodes_after']}", file=sys.stderr)
    settings = result.settings
    kind = settings["inference_type"] + (" (int8 weights)" if settings["post_training_quantize"] else "")
    stats = "; input stats from the calibration" if result.input_stats_from == "calibration" else ""
    print(f"wrote {result.output} ({result.bytes:,} bytes, {kind}, {result.converter}{stats})")
    return 0
