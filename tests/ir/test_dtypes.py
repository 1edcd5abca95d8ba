"""graphtool's DType numbers agree with TensorFlow's DataType and TFLite's TensorType."""
import numpy as np
import pytest

from graphtool.ir import DType


def test_every_tf_datatype_maps_both_ways(tf):
    from tensorflow.core.framework import types_pb2

    for value in types_pb2.DataType.DESCRIPTOR.values:
        if value.number >= 100:  # reference types are not element types
            continue
        dtype = DType.from_tf(value.number)
        assert dtype.tf == value.number
        name = value.name[3:].lower()
        assert dtype.value == {"float": "float32", "double": "float64", "half": "float16"}.get(name, name)


@pytest.mark.parametrize("name", ["float32", "float64", "float16", "int8", "int16", "int32", "int64",
                                  "uint8", "uint16", "uint32", "uint64", "bool", "complex64", "complex128"])
def test_numpy_types_match_tensorflow(tf, name):
    dtype = DType(name)
    assert tf.as_dtype(dtype.tf).as_numpy_dtype == dtype.numpy.type
    assert DType.from_numpy(np.dtype(name)) is dtype


def test_every_tflite_tensortype_maps_both_ways():
    from tflite.TensorType import TensorType

    for name, number in vars(TensorType).items():
        if name.startswith("_"):
            continue
        dtype = DType.from_tflite(number)
        assert dtype.tflite == number
        tf_style = {"FLOAT32": "float32", "FLOAT16": "float16", "FLOAT64": "float64"}.get(name, name.lower())
        assert dtype.value == tf_style
