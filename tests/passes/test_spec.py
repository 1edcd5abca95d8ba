"""Transform strings parse exactly as the Graph Transform Tool's transform_graph does."""
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphtool.passes import SpecError, parse


def as_tuples(text):
    return [(c.name, c.params) for c in parse(text)]


def test_gtt_examples():
    assert as_tuples('strip_unused_nodes(type=float, shape="1,224,224,3") '
                     'remove_nodes(op=Identity, op=CheckNumerics) fold_batch_norms') == [
        ("strip_unused_nodes", {"type": ["float"], "shape": ["1,224,224,3"]}),
        ("remove_nodes", {"op": ["Identity", "CheckNumerics"]}),
        ("fold_batch_norms", {}),
    ]


def test_repeated_keys_accumulate_and_quotes_hold_commas():
    assert as_tuples('foo(a=1,a=3,b="1,2,3")') == [("foo", {"a": ["1", "3"], "b": ["1,2,3"]})]


@pytest.mark.parametrize("text,names", [("foo", ["foo"]), ("foo bar", ["foo", "bar"]),
                                        ("foo() bar()", ["foo", "bar"]), ("  foo\n\tbar  ", ["foo", "bar"]),
                                        ("", [])])
def test_bare_and_empty_forms(text, names):
    assert [c.name for c in parse(text)] == names


def test_transforms_must_be_separated():
    with pytest.raises(SpecError, match="whitespace"):
        parse("foo()bar")


def test_values_with_paths_and_signs():
    assert as_tuples("set_device(device=/device.CPU-0_x)") == [("set_device", {"device": ["/device.CPU-0_x"]})]


@pytest.mark.parametrize("text,where", [
    ("foo(a)", "expected '='"),
    ("foo(a=1", "expected ',' or ')'"),
    ('foo(a="1)', "unterminated"),
    ("foo(=1)", "expected a parameter name"),
    ("foo(a=1;b=2)", "expected ',' or ')'"),
    ("foo-bar", "whitespace between transforms"),
    ("foo(a=x:0)", "expected ',' or ')'"),
])
def test_errors_say_where(text, where):
    with pytest.raises(SpecError, match=re.escape(where)):
        parse(text)


names = st.from_regex(r"[A-Za-z0-9_]{1,8}", fullmatch=True)
values = st.one_of(st.from_regex(r"[A-Za-z0-9./_-]{1,8}", fullmatch=True),
                   st.from_regex(r'[^"]{0,8}', fullmatch=True).map(lambda v: f'"{v}"'))


@given(st.lists(st.tuples(names, st.lists(st.tuples(names, values), max_size=4)), min_size=1, max_size=4))
def test_round_trip_of_generated_specs(calls):
    text = " ".join(f"{n}({', '.join(f'{k}={v}' for k, v in params)})" for n, params in calls)
    parsed = parse(text)
    assert [c.name for c in parsed] == [n for n, _ in calls]
    for call, (_, params) in zip(parsed, calls):
        expected = {}
        for k, v in params:
            expected.setdefault(k, []).append(v.strip('"') if v.startswith('"') else v)
        assert call.params == expected
        assert parse(str(call))[0].params == call.params
