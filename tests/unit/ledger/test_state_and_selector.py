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


def test_a_new_state_has_no_savepoint(tmp_path: Path) -> None:
    fresh = SqliteState.open(tmp_path / "sub" / "fresh.db")
    assert fresh.savepoint == -1
    assert fresh.get("ns", "a") is None
    with pytest.raises(PreconditionFailed):
        fresh.apply_block(1, [])
    fresh.close()


def test_within_a_block_the_later_write_wins_and_both_are_history(state: SqliteState) -> None:
    state.apply_block(
        1,
        [
            TxWrites(0, "first", 10, (Write("ns", "k", b"1"),)),
            TxWrites(3, "second", 20, (Write("ns", "k", b"2"),)),
        ],
    )
    versioned = state.get("ns", "k")
    assert versioned is not None
    assert (versioned.value, versioned.version) == (b"2", Version(1, 3))
    assert [(h.tx_id, h.timestamp_ms, h.value) for h in state.history("ns", "k")] == [
        ("second", 20, b"2"),
        ("first", 10, b"1"),
    ]


def test_a_delete_then_a_write_in_one_block_leaves_the_write(state: SqliteState) -> None:
    put(state, 1, ("k", b"1"))
    state.apply_block(
        2,
        [
            TxWrites(0, "d", 0, (Write("ns", "k", None),)),
            TxWrites(1, "w", 0, (Write("ns", "k", b"back"),)),
        ],
    )
    versioned = state.get("ns", "k")
    assert versioned is not None
    assert versioned.version == Version(2, 1)


def test_get_many_agrees_with_get(state: SqliteState) -> None:
    put(state, 1, *((f"k{i}", b"v") for i in range(0, 1200, 2)))
    keys = [("ns", f"k{i}") for i in range(1200)] + [("other", "k0"), ("ns", "k0")]
    assert state.get_many(keys) == {key: state.get(*key) for key in keys}


def test_ranges_include_the_start_and_exclude_the_end(state: SqliteState) -> None:
    put(state, 1, ("a", b"1"), ("b", b"1"), ("c", b"1"))
    assert [k for k, _ in state.range("ns", "b", "")] == ["b", "c"]
    assert [k for k, _ in state.range("ns", "", "b")] == ["a"]
    assert [k for k, _ in state.range("other", "", "")] == []


def test_composite_key_ranges_stay_inside_their_prefix(state: SqliteState) -> None:
    keys = ["\x00visit\x00V1\x00", "\x00visit\x00V2\x00", "\x00visitor\x00X\x00", "plain"]
    put(state, 1, *((k, b"v") for k in keys))
    found = [k for k, _ in state.range("ns", "\x00visit\x00", "\x00visit\x00\U0010ffff")]
    assert found == keys[:2]


def test_state_hashes_compare_content_and_versions(tmp_path: Path) -> None:
    def build(name: str, block_of_b: int) -> bytes:
        s = SqliteState.open(tmp_path / name)
        s.apply_block(0, [])
        s.apply_block(1, [TxWrites(0, "t", 0, (Write("ns", "a", b"1"),))])
        s.apply_block(
            2, [TxWrites(0, "u", 0, (Write("ns", "b", b"2"),))] if block_of_b == 2 else []
        )
        if block_of_b == 3:
            s.apply_block(3, [TxWrites(0, "u", 0, (Write("ns", "b", b"2"),))])
        digest = s.state_hash()
        s.close()
        return digest

    assert build("one.db", 2) == build("two.db", 2)
    assert build("three.db", 3) != build("four.db", 2)  # same values, other versions


def test_clear_drops_everything(state: SqliteState) -> None:
    put(state, 1, ("a", b"1"))
    state.clear()
    assert state.savepoint == -1
    assert state.get("ns", "a") is None
    assert state.history("ns", "a") == []
    state.apply_block(0, [])  # and it can be rebuilt from the genesis block


def test_rich_queries_skip_values_that_are_not_json_objects(state: SqliteState) -> None:
    put(state, 1, ("doc", b'{"t": 1}'), ("bin", b"\xff\xfe"), ("text", b"plain words"))
    page = state.query("ns", {"selector": {}})
    assert [k for k, _ in page.results] == ["doc"]


def test_query_limit_caps_every_page(state: SqliteState) -> None:
    put(state, 1, *((f"k{i}", json.dumps({"n": i}).encode()) for i in range(5)))
    query = {"selector": {"n": {"$gte": 0}}, "sort": ["n"], "limit": 3}
    first = state.query("ns", query, page_size=2)
    second = state.query("ns", query, page_size=2, bookmark=first.bookmark)
    assert [k for k, _ in first.results + second.results] == ["k0", "k1", "k2"]
    assert second.bookmark == ""
    assert state.query("ns", json.dumps(query)).results == first.results + second.results


def test_sort_by_several_fields_with_directions(state: SqliteState) -> None:
    docs = {"w": ("b", 1), "x": ("a", 1), "y": ("a", 2), "z": ("b", 2)}
    put(state, 1, *((k, json.dumps({"g": g, "n": n}).encode()) for k, (g, n) in docs.items()))
    page = state.query("ns", {"selector": {}, "sort": [{"g": "asc"}, {"n": "desc"}]})
    assert [k for k, _ in page.results] == ["y", "x", "z", "w"]


def test_sorting_follows_couchdb_collation(state: SqliteState) -> None:
    values = [{"x": 1}, [1], "a", 2, True, False, None]
    put(state, 1, *((f"k{i}", json.dumps({"v": v}).encode()) for i, v in enumerate(values)))
    page = state.query("ns", {"selector": {}, "sort": ["v"]})
    assert [k for k, _ in page.results] == [f"k{i}" for i in reversed(range(len(values)))]


@pytest.mark.parametrize(
    "bookmark",
    ["%%%", "bm90LWEtbnVtYmVy", "LTU="],
    ids=["not base64", "not a number", "a negative offset"],
)
def test_foreign_bookmarks_are_refused(state: SqliteState, bookmark: str) -> None:
    with pytest.raises(QuerySyntaxError, match="bookmark"):
        state.query("ns", {"selector": {}}, page_size=1, bookmark=bookmark)


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
