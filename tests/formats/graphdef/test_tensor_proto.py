"""TensorProto <-> numpy agrees with TensorFlow's make_tensor_proto / make_ndarray."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from graphtool import FormatError
from graphtool.formats.graphdef import messages as pb
from graphtool.formats.graphdef.tensor_proto import (decode_values, source_form, tensor_from_proto, tensor_to_proto,
                                                     write_afresh)
from graphtool.ir import DType, Tensor

NUMERIC = ["float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "uint16",
           "uint32", "uint64", "bool", "complex64", "complex128"]
# dtypes whose tensors of several elements TensorFlow's make_tensor_proto writes in tensor_content
CONTENT = ["float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "uint32", "uint64"]


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
    with pytest.raises(FormatError, match="claims"):  # read as TensorFlow imports it; decoding is refused
        tensor_from_proto(huge, "t", "node 5").data  # noqa: B018
    unknown = pb.TensorProto(dtype=77)
    with pytest.raises(FormatError, match="unknown TensorFlow DataType 77"):
        tensor_from_proto(unknown, "t", "node 6").data  # noqa: B018


def fresh(array: np.ndarray, dtype: str | None = None) -> pb.TensorProto:
    """`array` written as a new tensor."""
    return tensor_to_proto(Tensor("t", DType(dtype or array.dtype.name), array.shape, array), pb.TensorProto())


@pytest.mark.parametrize("name", NUMERIC)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_a_new_scalar_is_written_as_make_tensor_proto_writes_it(tf, name, data):
    """Its one value in the typed field and an empty shape: OpenCV reads a concat axis as
    int_val[0], and refuses a tensor without tensor_shape."""
    scalar = data.draw(hnp.arrays(np.dtype(name), ()))
    mine = fresh(scalar)
    assert mine.SerializeToString() == tf.make_tensor_proto(scalar).SerializeToString()
    assert mine.HasField("tensor_shape") and not mine.tensor_content


@pytest.mark.parametrize("name", CONTENT)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_a_new_tensor_is_written_in_tensor_content_as_make_tensor_proto_writes_it(tf, name, data):
    array = data.draw(hnp.arrays(np.dtype(name), hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4)))
    assert fresh(array).SerializeToString() == tf.make_tensor_proto(array).SerializeToString()


def test_one_element_and_other_dtypes_go_to_tensor_content_too(tf):
    """Where make_tensor_proto uses the typed field for a non-scalar (one element; bool,
    uint16, complex), graphtool writes tensor_content, which TensorFlow reads alike."""
    for array in [np.array([2.5], np.float32), np.ones((1, 1, 1, 3), bool), np.arange(4, dtype=np.uint16),
                  np.array([1 + 2j, 3j], np.complex64)]:
        mine = fresh(array)
        assert mine.tensor_content and not tf.make_tensor_proto(array).tensor_content
        np.testing.assert_array_equal(theirs(tf, mine), array)
    bf = fresh(np.array(1.5, dtype=tf.bfloat16.as_numpy_dtype).view(np.uint16), "bfloat16")
    assert list(bf.half_val) == [16320] and theirs(tf, bf) == 1.5


def read(proto: pb.TensorProto) -> Tensor:
    return tensor_from_proto(pb.TensorProto.FromString(proto.SerializeToString()), "t", "test")


def proto(dtype: int, shape: tuple, **fields) -> pb.TensorProto:
    message = pb.TensorProto(dtype=dtype, **fields)
    for size in shape:
        message.tensor_shape.dim.add().size = size
    return message


@pytest.mark.parametrize("message, form", [
    (proto(1, (1, 1, 1, 3)), "no values"),
    (proto(1, ()), "no values"),
    (proto(1, (3,), float_val=[2.0]), "broadcast"),
    (proto(3, (2, 2), int_val=[1, 2]), "broadcast"),
    (proto(7, (2,), string_val=[b"a"]), "broadcast"),
    (proto(1, (2,), float_val=[1.0, 2.0]), "typed field"),
    (proto(3, (1,), int_val=[4]), "typed field"),
    (proto(8, (2,), scomplex_val=[1, 2, 3, 4]), "typed field"),
    (proto(1, (), tensor_content=b"\x00\x00\x80\x3f"), "scalar in tensor_content"),
    (proto(1, (), float_val=[1.0]), None),
    (proto(7, (2,), string_val=[b"a", b"b"]), None),
    (proto(1, (2,), tensor_content=bytes(8)), None),
    (proto(1, (0, 3)), None),
    (proto(20, (2,)), None),  # a resource handle has no values to move
])
def test_source_form_names_what_is_not_the_standard_form(message, form):
    assert source_form(read(message)) == form


def test_written_afresh_a_tensor_takes_the_standard_form_with_the_values_tensorflow_reads(tf):
    for message in [proto(1, (1, 1, 1, 3)), proto(1, (2, 3), float_val=[0.5, -1.0]), proto(1, ()),
                    proto(3, (4,), int_val=[7]), proto(19, (3,), half_val=[15360]),
                    proto(7, (3,), string_val=[b"x"]), proto(5, (), tensor_content=b"\x05\x00")]:
        tensor = read(message)
        write_afresh(tensor)
        assert source_form(tensor) is None
        again = tensor_to_proto(tensor, pb.TensorProto())
        assert source_form(read(again)) is None, again
        want = theirs(tf, message)
        np.testing.assert_array_equal(theirs(tf, again), want)
        if want.dtype.kind not in "OSU":  # bit for bit
            assert theirs(tf, again).tobytes() == want.tobytes()
