"""Run a GraphDef in TensorFlow: import it into its own tf.Graph and feed/fetch tensors by
name in a tf.compat.v1.Session. TensorFlow is imported on first use only."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import first_line, install_hint
from ..logs import prepare_tensorflow, quietly
from . import ModelRunError, RuntimeUnavailableError

INSTALL_HINT = install_hint("tf")


@quietly
def import_tensorflow(purpose: str = "running a GraphDef") -> Any:
    """The tensorflow module, or RuntimeUnavailableError saying how to install it."""
    prepare_tensorflow()
    try:
        import tensorflow
    except ImportError as exc:
        raise RuntimeUnavailableError(f"{purpose} needs TensorFlow ({exc}); {INSTALL_HINT}") from None
    return tensorflow


def tensor_name(name: str) -> str:
    """`node` -> `node:0`; `node:1` stays."""
    node, sep, port = name.rpartition(":")
    return name if sep and port.isdigit() else f"{name}:0"


class GraphDefSession:
    """A serialized GraphDef imported once (no name prefix), run as often as needed."""

    @quietly
    def __init__(self, graph_def: bytes, source: str = "<graphdef>"):
        tf = import_tensorflow()
        self.source = source
        self._tf = tf
        self.graph = tf.Graph()
        try:
            message = tf.compat.v1.GraphDef.FromString(bytes(graph_def))
            with self.graph.as_default():
                tf.graph_util.import_graph_def(message, name="")
        except (tf.errors.OpError, ValueError) as exc:
            raise ModelRunError(f"{source}: TensorFlow cannot import the graph: {first_line(exc)}") from None
        self._session = tf.compat.v1.Session(graph=self.graph)

    @quietly
    def run(self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str]) -> list[np.ndarray]:
        """Values of `fetches` (tensor names, `node` meaning `node:0`) given `feeds`."""
        tf = self._tf
        try:
            feed_dict = {self.graph.get_tensor_by_name(tensor_name(k)): v for k, v in feeds.items()}
            targets = [self.graph.get_tensor_by_name(tensor_name(f)) for f in fetches]
            values = self._session.run(targets, feed_dict=feed_dict)
        except (tf.errors.OpError, ValueError, KeyError, TypeError) as exc:
            raise ModelRunError(f"{self.source}: TensorFlow failed to run the graph: {first_line(exc)}") from None
        return [np.asarray(v) for v in values]

    def tensor_types(self) -> dict[str, tuple[np.dtype, tuple[int | None, ...] | None]]:
        """`node:port` -> (numpy dtype, shape as TensorFlow infers it: None for an unknown rank or
        dimension) of every output of the imported graph's ops that has a numpy dtype (resources,
        variants and the like have none), in graph order. Any of them can be fetched, or fed to
        replace what computes it (verify --layers feeds one layer's inputs)."""
        types = {}
        for op in self.graph.get_operations():
            for tensor in op.outputs:
                try:
                    dtype = np.dtype(tensor.dtype.as_numpy_dtype)
                except TypeError:
                    continue
                shape = tensor.shape
                types[tensor.name] = (dtype, None if shape.rank is None else tuple(shape.as_list()))
        return types

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "GraphDefSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_graphdef(graph_def: bytes, feeds: Mapping[str, np.ndarray], fetches: Sequence[str],
                 source: str = "<graphdef>") -> list[np.ndarray]:
    """One run of a serialized GraphDef: `fetches` given `feeds` (see GraphDefSession.run)."""
    with GraphDefSession(graph_def, source) as session:
        return session.run(feeds, fetches)



# -- calibration and integer conversion (insert_fake_quant) ------------------------------------

def float32_outputs(session: GraphDefSession) -> list[str]:
    """`node:port` of every float32 output of the imported graph's ops, Consts excepted."""
    tf = session._tf
    return [tensor.name for op in session.graph.get_operations() if op.type != "Const"
            for tensor in op.outputs if tensor.dtype == tf.float32]


def _converter(graph_def: bytes, inputs: Sequence[str], outputs: Sequence[str],
               input_shapes: Mapping[str, Sequence[int]] | None, source: str) -> tuple[Any, list]:
    """tf.compat.v1.lite.TFLiteConverter for a serialized frozen GraphDef, and its input
    tensors; `inputs` and `outputs` are node names (or node:port); `input_shapes` fixes
    unknown dims."""
    tf = import_tensorflow()
    graph = tf.Graph()
    try:
        message = tf.compat.v1.GraphDef.FromString(bytes(graph_def))
        with graph.as_default():
            tf.graph_util.import_graph_def(message, name="")
        input_tensors = [graph.get_tensor_by_name(tensor_name(name)) for name in inputs]
        output_tensors = [graph.get_tensor_by_name(tensor_name(name)) for name in outputs]
    except (tf.errors.OpError, ValueError, KeyError) as exc:
        raise ModelRunError(f"{source}: TensorFlow cannot import the graph: {first_line(exc)}") from None
    for tensor in input_tensors:
        shape = (input_shapes or {}).get(tensor.op.name)
        if shape is not None:
            tensor.set_shape(shape)
    return tf.compat.v1.lite.TFLiteConverter(message, input_tensors, output_tensors), input_tensors


@quietly
def run_converter(converter: Any, source: str) -> bytes:
    """converter.convert() as bytes; the converter's refusal becomes a one-line ModelRunError."""
    from tensorflow.lite.python.convert_phase import ConverterError

    try:
        return bytes(converter.convert())
    except (ConverterError, ValueError) as exc:
        raise ModelRunError(f"{source}: the TFLite converter failed: {first_line(exc)}") from None


def convert_graphdef(graph_def: bytes, inputs: Sequence[str], outputs: Sequence[str],
                     input_shapes: Mapping[str, Sequence[int]] | None = None,
                     source: str = "<graphdef>") -> bytes:
    """A float TFLite model from a frozen GraphDef, by TensorFlow's converter
    (tf.compat.v1.lite.TFLiteConverter, default settings)."""
    converter, _ = _converter(graph_def, inputs, outputs, input_shapes, source)
    return run_converter(converter, source)


def convert_fake_quant_graphdef(graph_def: bytes, input_stats: Mapping[str, tuple[float, float]],
                                outputs: Sequence[str], input_shapes: Mapping[str, Sequence[int]] | None = None,
                                source: str = "<graphdef>") -> bytes:
    """A fully int8 TFLite model from a float GraphDef carrying fake-quant ops, by TensorFlow's
    converter: tf.compat.v1.lite.TFLiteConverter with inference_type int8 and
    quantized_input_stats {input node: (mean, std_dev)} (real = (q - mean) / std_dev).
    `input_shapes` fixes unknown dims (the converter sets an unknown batch dim to 1)."""
    tf = import_tensorflow()
    converter, input_tensors = _converter(graph_def, list(input_stats), outputs, input_shapes, source)
    converter.inference_type = tf.int8
    converter.quantized_input_stats = {t.op.name: tuple(map(float, input_stats[t.op.name]))
                                       for t in input_tensors}
    return run_converter(converter, source)


# -- SavedModel signatures (verify) ------------------------------------------------------------


@dataclass(frozen=True)
class SignatureTensor:
    """An input or output of a SavedModel signature: its key in the signature, the name of
    its tensor in the signature's function graph (`image:0`), numpy dtype and shape (None
    where unknown)."""

    key: str
    tensor_name: str
    dtype: np.dtype
    shape: tuple[int | None, ...] | None


class SavedModelSignature:
    """A SavedModel directory loaded in TensorFlow (tf.saved_model.load), run through one of
    its signatures (default serving_default, or its only one) with inputs fed by key.
    Inputs and outputs are listed in key order, as the signature flattens them."""

    @quietly
    def __init__(self, path: str, signature: str | None = None):
        from ..formats.savedmodel import load_signature, signature_inputs

        self._tf = import_tensorflow("running a SavedModel")
        self.source = path
        self.signature, self._function, self._loaded = load_signature(path, signature)
        self.inputs = self._inputs(signature_inputs(self._function))
        self.outputs = self._outputs()

    def _inputs(self, tensors: list) -> list[SignatureTensor]:
        _, kwargs = self._function.structured_input_signature
        keys = sorted(kwargs)
        if len(keys) != len(tensors):
            raise ModelRunError(f"{self.source}: signature {self.signature!r} takes {len(keys)} named input(s) "
                                f"but its function has {len(tensors)}")
        return [SignatureTensor(key, tensor.name, _numpy_dtype(kwargs[key].dtype), _dims(kwargs[key].shape))
                for key, tensor in zip(keys, tensors)]

    def _outputs(self) -> list[SignatureTensor]:
        structured = self._function.structured_outputs
        if not isinstance(structured, dict):
            raise ModelRunError(f"{self.source}: signature {self.signature!r} does not return a dict of outputs")
        keys = sorted(structured)
        tensors = list(self._function.outputs)
        if len(keys) != len(tensors):
            raise ModelRunError(f"{self.source}: signature {self.signature!r} names {len(keys)} output(s) but its "
                                f"function has {len(tensors)}")
        return [SignatureTensor(key, tensor.name, _numpy_dtype(structured[key].dtype), _dims(structured[key].shape))
                for key, tensor in zip(keys, tensors)]

    @quietly
    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output, by key, for input values given by key."""
        tf = self._tf
        missing = [t.key for t in self.inputs if t.key not in feeds]
        if missing:
            raise ModelRunError(f"{self.source}: no value for input(s) {', '.join(missing)}")
        try:
            results = self._function(**{t.key: tf.constant(_as_dtype(feeds[t.key], t.dtype)) for t in self.inputs})
        except (tf.errors.OpError, ValueError, TypeError) as exc:
            raise ModelRunError(f"{self.source}: TensorFlow failed to run signature {self.signature!r}: "
                                f"{first_line(exc)}") from None
        return {key: np.asarray(value) for key, value in results.items()}


def _as_dtype(value: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`value` as the signature's input type (strings stay as they are)."""
    return np.asarray(value) if dtype.kind == "O" else np.asarray(value).astype(dtype, copy=False)


def _numpy_dtype(dtype: Any) -> np.dtype:
    return np.dtype(dtype.as_numpy_dtype)


def _dims(shape: Any) -> tuple[int | None, ...] | None:
    return None if shape.rank is None else tuple(shape.as_list())
