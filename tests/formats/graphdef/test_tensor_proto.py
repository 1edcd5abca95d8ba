"""TensorProto <-> numpy agrees with TensorFlow's make_tensor_proto / make_ndarray."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from graphtool import FormatError
from graphtool.formats.graphdef import messages as pb
from graphtool.formats.graphdef.tensor_proto import decode_values, tensor_from_proto, tensor_to_proto
from graphtool.ir import DType, Tensor

NUMERIC = ["float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "uint16",
           "uint32", "uint64", "bool", "complex64", "complex128"]


def ours(tf_proto) -> np.ndarray:
    mine = pb.TensorProto.FromString(tf_proto.SerializeToString())
    return tensor_from_proto(mine, "t", "test").data


def theirs(tf, mine: pb.TensorProto) -> np.ndarray:
    from tensorflow.core.framework import tensor_pb2

    return tf.make_ndarray(tensor_pb2.TensorProto.FromString(mine.SerializeToString()))


@pytest.mark.parametrize("name", NUMERIC)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_decode_matches_tensorflow(tf, name, data):
    array = data.draw(hnp.arrays(np.dtype(name), hnp.array_shapes(min_dims=0, max_dims=3, max_side=5)))
    decoded = ours(tf.make_tensor_proto(array))
    np.testing.assert_array_equal(decoded, tf.make_ndarray(tf.make_tensor_proto(array)))
    assert decoded.dtype == np.dtype(name) and not decoded.flags.writeable


@pytest.mark.parametrize("name", NUMERIC)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_encode_matches_tensorflow(tf, name, data):
    array = data.draw(hnp.arrays(np.dtype(name), hnp.array_shapes(min_dims=0, max_dims=3, max_side=5)))
    mine = tensor_to_proto(Tensor("t", DType(name), array.shape, array), pb.TensorProto())
    np.testing.assert_array_equal(theirs(tf, mine), array)


def test_typed_value_fields_and_broadcast_form(tf):
    """Values in *_val fields, and fewer values than elements (the last one repeats)."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=3),
                                                   tensor_shape_pb2.TensorShapeProto.Dim(size=4)])
    cases = [
        tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape, float_val=[0.5]),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32, tensor_shape=shape, int_val=[1, 2, 3]),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64, tensor_shape=shape, int64_val=[7]),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_BOOL, tensor_shape=shape, bool_val=[True, False]),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_HALF, tensor_shape=shape, half_val=[15360]),  # 1.0
        tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, tensor_shape=shape, double_val=list(range(12))),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_COMPLEX64, tensor_shape=shape, scomplex_val=[1, 2]),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT32, tensor_shape=shape, uint32_val=[4]),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, tensor_shape=shape, int_val=[200]),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape),  # no values: zeros
    ]
    for case in cases:
        np.testing.assert_array_equal(ours(case), tf.make_ndarray(case), err_msg=str(case))


def test_bfloat16_and_strings(tf):
    bf = tf.make_tensor_proto(np.array([1.5, -2.0, 3.25], dtype=tf.bfloat16.as_numpy_dtype))
    got = ours(bf)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, tf.make_ndarray(bf).view(np.uint16))
    strings = tf.make_tensor_proto(np.array([[b"a", b""], [b"\xff\x00", b"long string"]], dtype=object))
    got = ours(strings)
    assert got.tolist() == tf.make_ndarray(strings).tolist()
    back = tensor_to_proto(Tensor("s", DType.STRING, got.shape, got), pb.TensorProto())
    assert theirs(tf, back).tolist() == got.tolist()


def test_unchanged_tensor_is_written_back_as_it_was(tf):
    from tensorflow.core.framework import tensor_pb2, types_pb2

    compact = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[0.0])
    compact.tensor_shape.dim.add().size = 1000
    mine = pb.TensorProto.FromString(compact.SerializeToString())
    tensor = tensor_from_proto(mine, "z", "test")
    assert tensor.data.sum() == 0  # decoding does not count as a change
    again = tensor_to_proto(tensor, pb.TensorProto())
    assert again.SerializeToString() == compact.SerializeToString()
    tensor.data = np.ones(1000, np.float32)
    changed = tensor_to_proto(tensor, pb.TensorProto())
    np.testing.assert_array_equal(theirs(tf, changed), np.ones(1000, np.float32))


def test_bad_tensor_protos_raise_format_errors():
    wrong_size = pb.TensorProto(dtype=1, tensor_content=b"\x00" * 7)
    wrong_size.tensor_shape.dim.add().size = 2
    with pytest.raises(FormatError, match="tensor_content has 7 bytes"):
        tensor_from_proto(wrong_size, "t", "node 3").data
    too_many = pb.TensorProto(dtype=1, float_val=[1, 2, 3])
    too_many.tensor_shape.dim.add().size = 2
    with pytest.raises(FormatError, match="3 values for shape"):
        decode_values(too_many, DType.FLOAT32, (2,), "node 4")
    huge = pb.TensorProto(dtype=1)
    for _ in range(5):
        huge.tensor_shape.dim.add().size = 1 << 20
    with pytest.raises(FormatError, match="claims"):
        tensor_from_proto(huge, "t", "node 5")
    unknown = pb.TensorProto(dtype=77)
    with pytest.raises(FormatError, match="unknown TensorFlow DataType 77"):
        tensor_from_proto(unknown, "t", "node 6")
