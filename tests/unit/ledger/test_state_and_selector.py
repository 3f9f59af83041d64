"""Rich-query selectors (CouchDB subset): parsing and matching. Pure.

The world-state stores themselves are tested on both backends in
tests/integration/ledger/test_world_state.py.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medalliance.errors import QuerySyntaxError
from medalliance.ledger.selector import parse_query


@pytest.mark.parametrize(
    ("selector", "doc", "ok"),
    [
        pytest.param({"a": 1}, {"a": 1}, True, id="implicit equality"),
        pytest.param({"a": {"$ne": 1}}, {"b": 1}, True, id="a missing field is not equal"),
        pytest.param({"a.b": {"$in": [1, 2]}}, {"a": {"b": 2}}, True, id="dotted paths and $in"),
        pytest.param({"$or": [{"a": 1}, {"b": 2}]}, {"b": 2}, True, id="$or"),
        pytest.param({"a": {"$gt": 1}}, {"a": "2"}, False, id="ranges compare within one type"),
        pytest.param({"a": {"$exists": False}}, {"b": 1}, True, id="$exists false"),
        pytest.param({"a": {"$lte": 3}, "b": 1}, {"a": 3, "b": 2}, False, id="fields are ANDed"),
    ],
)
def test_selector_rules(selector: dict[str, object], doc: object, ok: bool) -> None:
    assert parse_query({"selector": selector}).matches(doc) is ok


def test_unsupported_operators_are_named() -> None:
    with pytest.raises(QuerySyntaxError, match=r"unknown operator \$regex"):
        parse_query({"selector": {"name": {"$regex": "^A"}}})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(json_values)
def test_random_queries_raise_only_query_syntax_errors(query: object) -> None:
    with contextlib.suppress(QuerySyntaxError):
        parse_query({"selector": query})


@given(
    st.dictionaries(st.sampled_from("abc"), st.integers(0, 3), max_size=3),
    st.dictionaries(st.sampled_from("abc"), st.integers(0, 3), min_size=1, max_size=2),
    st.dictionaries(st.sampled_from("abc"), st.integers(0, 3), min_size=1, max_size=2),
)
def test_and_matches_exactly_what_both_match(
    doc: dict[str, int], s1: dict[str, int], s2: dict[str, int]
) -> None:
    both = parse_query({"selector": {"$and": [s1, s2]}}).matches(doc)
    assert both == (
        parse_query({"selector": s1}).matches(doc) and parse_query({"selector": s2}).matches(doc)
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param("{not json", "not JSON", id="text that is not JSON"),
        pytest.param([1], "JSON object", id="a query that is not an object"),
        pytest.param({"selector": {}, "group": 1}, "unknown query keys: group", id="unknown keys"),
        pytest.param({"selector": []}, "selector must be", id="a selector that is a list"),
        pytest.param({"selector": {}, "limit": -1}, "limit", id="a negative limit"),
        pytest.param({"selector": {}, "limit": True}, "limit", id="a boolean limit"),
        pytest.param({"selector": {"$and": {}}}, r"\$and needs", id="$and without a list"),
        pytest.param({"selector": {"$or": [1]}}, r"\$or items", id="$or of non-selectors"),
        pytest.param({"selector": {"a": {"$in": 1}}}, r"\$in at 'a'", id="$in without a list"),
        pytest.param({"selector": {"a": {"$exists": 1}}}, r"\$exists at 'a'", id="$exists of 1"),
        pytest.param({"selector": {}, "sort": "a"}, "sort must be a list", id="sort not a list"),
        pytest.param({"selector": {}, "sort": [{"a": "up"}]}, "asc or desc", id="a bad direction"),
        pytest.param({"selector": {}, "sort": [1]}, "sort items", id="a bad sort item"),
    ],
)
def test_query_syntax_errors_name_the_bad_part(query: object, message: str) -> None:
    with pytest.raises(QuerySyntaxError, match=message):
        parse_query(query)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("selector", "doc", "ok"),
    [
        pytest.param({"a": {"$nin": [1, 2]}}, {"a": 3}, True, id="$nin of an absent value"),
        pytest.param({"a": {"$nin": [1, 2]}}, {"a": 1}, False, id="$nin of a listed value"),
        pytest.param({"a": {"$lt": 2}}, {"a": 1.5}, True, id="ints and floats compare as numbers"),
        pytest.param({"a": None}, {"a": None}, True, id="null equals null"),
        pytest.param({"a": {"$eq": None}}, {}, False, id="a missing field is not null"),
        pytest.param({"a": {"$gt": None}}, {"a": False}, False, id="ranges never cross types"),
        pytest.param({"a": [1, 2]}, {"a": [1, 2]}, True, id="arrays compare by value"),
        pytest.param({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}, True, id="nested objects are paths"),
        pytest.param(
            {"a": {"$eq": {"b": 1}}}, {"a": {"b": 1, "c": 2}}, False, id="$eq of an object is whole"
        ),
        pytest.param(
            {"a": {"$eq": {"b": 1}}}, {"a": {"b": 1}}, True, id="objects compare by value"
        ),
        pytest.param({"a": {"b": {"$gt": 0}}}, {"a": {"b": 1}}, True, id="nested operator objects"),
        pytest.param({"a": True}, {"a": 1}, False, id="true is not the number one"),
        pytest.param(
            {"$and": [{"a": 1}, {"$or": [{"b": 1}, {"c": 1}]}]},
            {"a": 1, "c": 1},
            True,
            id="nested $and and $or",
        ),
    ],
)
def test_more_selector_rules(selector: dict[str, object], doc: object, ok: bool) -> None:
    assert parse_query({"selector": selector}).matches(doc) is ok
