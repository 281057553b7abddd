"""The wire between the tests' and the solution's sandboxes, fuzzed with Hypothesis.

Plain data survives the trip exactly (type included); anything the solution's side may send
decodes to plain data or raises one of the errors the tests' side treats as a broken solution.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gym_operator.verify.sandbox_harness import Remote
from gym_operator.verify.sandbox_wire import MALFORMED, decode, encode

HASHABLE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
)
PLAIN = st.recursive(
    st.one_of(HASHABLE, st.complex_numbers(allow_nan=False)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(HASHABLE, inner, max_size=5),
        st.sets(HASHABLE, max_size=5),
        st.frozensets(HASHABLE, max_size=5),
    ),
    max_leaves=30,
)
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=25,
)
TAGGED = st.tuples(st.sampled_from(list("n?ifcubhltszd") + ["x"]), st.lists(JSON, max_size=3))


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same type all the way down (True == 1 would hide a lost bool)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def refuse(value: Any) -> list[Any]:
    raise AssertionError(f"plain value {value!r} was sent as a handle")


@settings(max_examples=300, deadline=None)
@given(PLAIN)
def test_plain_data_crosses_unchanged(value: Any) -> None:
    wire = json.loads(json.dumps(encode(value, refuse)))
    assert same(decode(wire, lambda n: pytest.fail("no handle expected")), value)


PLAIN_TYPES = {type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset}


def plain(value: Any) -> bool:
    """Only plain types, all the way down."""
    if type(value) not in PLAIN_TYPES:
        return False
    if isinstance(value, dict):
        return all(plain(k) and plain(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return all(plain(item) for item in value)
    return True


@settings(max_examples=500, deadline=None)
@given(st.one_of(JSON, TAGGED.map(lambda t: [t[0], *t[1]])))
def test_anything_the_solution_sends_is_plain_data_or_refused(data: Any) -> None:
    try:
        value = decode(data, lambda n: ("handle", n))
    except MALFORMED:
        return
    assert plain(value)


def test_objects_of_the_solution_have_no_equality_and_no_truth() -> None:
    remote = Remote(link=None, number=0)  # type: ignore[arg-type]
    assert remote != 0 and remote != remote.__class__ and remote == remote
    with pytest.raises(TypeError, match="no truth value"):
        bool(remote)
