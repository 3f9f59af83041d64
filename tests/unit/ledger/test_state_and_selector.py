"""World state on SQLite: versions, byte-ordered ranges, history, rich queries, atomic blocks."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medalliance.errors import PreconditionFailed, QuerySyntaxError
from medalliance.ledger.selector import parse_query
from medalliance.ledger.sqlite_state import SqliteState
from medalliance.ledger.state import TxWrites, Version, Write


@pytest.fixture
def state(tmp_path: Path) -> SqliteState:
    s = SqliteState.open(tmp_path / "state.db")
    s.apply_block(0, [])
    return s


def put(state: SqliteState, block: int, *writes: tuple[str, bytes | None]) -> None:
    state.apply_block(
        block,
        [TxWrites(0, f"tx{block}", block * 1000, tuple(Write("ns", k, v) for k, v in writes))],
    )


def test_versions_history_and_deletes(state: SqliteState) -> None:
    put(state, 1, ("a", b"1"))
    put(state, 2, ("a", b"2"))
    put(state, 3, ("a", None))
    assert state.get("ns", "a") is None
    put(state, 4, ("a", b"4"))
    versioned = state.get("ns", "a")
    assert versioned is not None
    assert versioned.version == Version(4, 0)
    assert [(h.version.block_num, h.is_delete) for h in state.history("ns", "a")] == [
        (4, False),
        (3, True),
        (2, False),
        (1, False),
    ]


def test_ranges_are_in_utf8_byte_order(state: SqliteState) -> None:
    keys = ["b", "a", "\x00visit\x00V1\x00", "\U0010ffff", "é", "Z"]
    put(state, 1, *((k, b"v") for k in keys))
    assert [k for k, _ in state.range("ns", "", "")] == sorted(keys, key=lambda k: k.encode())
    assert [k for k, _ in state.range("ns", "a", "c")] == ["a", "b"]


def test_a_block_out_of_order_changes_nothing(state: SqliteState) -> None:
    put(state, 1, ("a", b"1"))
    before = state.state_hash()
    with pytest.raises(PreconditionFailed, match="cannot apply block 5"):
        put(state, 5, ("a", b"x"))
    assert state.state_hash() == before
    assert state.savepoint == 1


def test_rich_query_with_sort_limit_and_bookmark(state: SqliteState) -> None:
    docs = {f"k{i}": {"owner": "Tom" if i % 2 else "Ann", "size": i} for i in range(7)}
    put(
        state, 1, *((k, json.dumps(v).encode()) for k, v in docs.items()), ("raw", b"\xff not json")
    )
    query = {"selector": {"owner": "Tom", "size": {"$gte": 2}}, "sort": [{"size": "desc"}]}
    first = state.query("ns", query, page_size=1)
    assert [k for k, _ in first.results] == ["k5"]
    rest = state.query("ns", query, page_size=5, bookmark=first.bookmark)
    assert [k for k, _ in rest.results] == ["k3"]
    assert rest.bookmark == ""


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
        parse_query({"selector": query})  # type: ignore[dict-item]


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
