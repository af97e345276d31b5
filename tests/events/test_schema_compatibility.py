"""The compatibility check between two schema versions (Confluent's modes, against the previous
version): each rule named with its path, in the direction it breaks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.compat import problems

ORDER = {
    "type": "object",
    "properties": {
        "total": {"type": "number"},
        "status": {"enum": ["open", "paid"]},
        "customer": {
            "type": "object",
            "properties": {"email": {"type": "string"}},
            "required": ["email"],
        },
        "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {}}}},
    },
    "required": ["status"],
}


def changed(**edits):
    """ORDER with ``edits`` applied at dotted paths (a value of None deletes the key)."""
    import copy

    schema = copy.deepcopy(ORDER)
    for path, value in edits.items():
        *parents, name = path.split("__")
        here = schema
        for part in parents:
            here = here[part]
        if value is None:
            here.pop(name)
        else:
            here[name] = value
    return schema


def test_a_field_that_became_required_breaks_backward_only():
    new = changed(required=["status", "total"])
    assert problems(ORDER, new, "backward") == ["backward: field `data.total` became required"]
    assert problems(ORDER, new, "forward") == []
    assert problems(ORDER, new, "full") == ["full: field `data.total` became required"]
    assert problems(ORDER, new, "none") == []


def test_a_field_no_longer_required_breaks_forward_only():
    new = changed(required=[])
    assert problems(ORDER, new, "backward") == []
    assert problems(ORDER, new, "forward") == ["forward: field `data.status` is no longer required"]


def test_a_type_change_breaks_both_ways_and_widening_number_to_string_too():
    new = changed(properties__total={"type": "string"})
    assert problems(ORDER, new, "backward") == [
        'backward: field `data.total` no longer accepts integer, number (type "string")'
    ]
    assert problems(ORDER, new, "forward") == [
        "forward: field `data.total` now also accepts string"
    ]


def test_integer_to_number_widens_and_number_to_integer_narrows():
    integer = changed(properties__total={"type": "integer"})
    assert problems(integer, ORDER, "backward") == []
    assert problems(integer, ORDER, "forward") != []
    assert problems(ORDER, integer, "backward") != []


def test_enum_narrowing_breaks_backward_and_widening_breaks_forward():
    narrower = changed(properties__status={"enum": ["open"]})
    wider = changed(properties__status={"enum": ["open", "paid", "refunded"]})
    assert problems(ORDER, narrower, "backward") == ['backward: enum of `data.status` lost "paid"']
    assert problems(ORDER, narrower, "forward") == []
    assert problems(ORDER, wider, "forward") == ['forward: enum of `data.status` gained "refunded"']
    assert problems(ORDER, wider, "backward") == []


def test_closing_additional_properties_breaks_backward():
    closed = changed(additionalProperties=False)
    assert problems(ORDER, closed, "backward") == [
        "backward: `data` no longer allows additional properties"
    ]
    assert problems(closed, ORDER, "forward") == [
        "forward: `data` now allows additional properties"
    ]


def test_adding_a_property_to_a_closed_object_breaks_forward():
    closed = changed(additionalProperties=False)
    more = changed(additionalProperties=False, properties__note={"type": "string"})
    assert problems(closed, more, "backward") == []
    assert problems(closed, more, "forward") == [
        "forward: field `data.note` was added to a closed object"
    ]
    assert problems(more, closed, "backward") == [
        "backward: field `data.note` was removed (closed object)"
    ]


def test_an_optional_property_added_to_an_open_object_is_compatible_both_ways():
    assert problems(ORDER, changed(properties__note={"type": "string"}), "full") == []


def test_nested_objects_and_array_items_are_compared_with_their_path():
    nested = changed(properties__customer__required=["email", "name"])
    assert problems(ORDER, nested, "backward") == [
        "backward: field `data.customer.name` became required"
    ]
    items = changed(
        properties__lines__items={"type": "object", "properties": {"sku": {"type": "string"}}}
    )
    assert problems(ORDER, items, "backward") == [
        'backward: field `data.lines[].sku` no longer accepts any type (type "string")'
    ]


@pytest.mark.parametrize("mode", ["none", "backward", "forward", "full"])
def test_an_unchanged_schema_is_compatible_in_every_mode(mode):
    assert problems(ORDER, ORDER, mode) == []


SCHEMAS = st.recursive(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["string", "number", "integer", "boolean"]),
            "enum": st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True),
        },
    ),
    lambda inner: st.fixed_dictionaries(
        {"type": st.just("object")},
        optional={
            "properties": st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
            "required": st.lists(st.sampled_from("abc"), max_size=3, unique=True),
            "additionalProperties": st.booleans(),
        },
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None)
@given(old=SCHEMAS, new=SCHEMAS)
def test_backward_of_a_change_is_forward_of_its_reverse(old, new):
    # The two modes mirror each other: what narrows one way widens the other.
    assert len(problems(old, new, "backward")) == len(problems(new, old, "forward"))
