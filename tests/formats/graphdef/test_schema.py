"""schemas/graphtool_graphdef.proto declares exactly TensorFlow's wire format."""
from graphtool.formats.graphdef import messages as ours


def _walk(descriptor, seen):
    if descriptor.full_name in seen:
        return
    seen[descriptor.full_name] = descriptor
    for field in descriptor.fields:
        if field.message_type is not None:
            _walk(field.message_type, seen)


def test_every_message_reachable_from_graphdef_matches_tensorflow(tf_graph_pb2):
    theirs: dict = {}
    _walk(tf_graph_pb2.GraphDef.DESCRIPTOR, theirs)
    mine: dict = {}
    _walk(ours.GraphDef.DESCRIPTOR, mine)
    assert len(theirs) > 30
    for full_name, their_message in theirs.items():
        my_name = full_name.replace("tensorflow.", "graphtool.tf.", 1)
        assert my_name in mine, f"{full_name} is not declared"
        my_fields = {f.number: f for f in mine[my_name].fields}
        for field in their_message.fields:
            assert field.number in my_fields, f"{full_name}.{field.name} ({field.number}) missing"
            mine_f = my_fields[field.number]
            assert (mine_f.name, mine_f.type, mine_f.is_repeated) == (field.name, field.type, field.is_repeated), \
                f"{full_name}.{field.name} differs"
            assert mine_f.is_packed == field.is_packed, f"{full_name}.{field.name} packing differs"
            if field.containing_oneof is not None:
                assert mine_f.containing_oneof.name == field.containing_oneof.name
        assert set(my_fields) == {f.number for f in their_message.fields}, f"{my_name} declares extra fields"


def test_enums_match_tensorflow(tf):
    from tensorflow.core.framework import full_type_pb2, types_pb2

    for theirs, mine in ((types_pb2.DataType, ours.DataType), (full_type_pb2.FullTypeId, ours.FullTypeId)):
        assert {v.name: v.number for v in theirs.DESCRIPTOR.values} == \
               {v.name: v.number for v in mine.DESCRIPTOR.values}
