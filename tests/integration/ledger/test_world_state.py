"""World state on SQLite and on PostgreSQL: every test runs on both (the `database_url` fixture).

Versions, byte-ordered ranges (composite keys with NUL bytes), history, metadata, rich queries,
atomic blocks, `get_many`, `state_hash` and `clear`: the same behaviour whichever backend holds it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medalliance.database_url import parse_database_url, schema_name
from medalliance.errors import (
    InvalidArgument,
    PreconditionFailed,
    QuerySyntaxError,
    StateDatabaseUnavailable,
)
from medalliance.ledger.state import (
    VALIDATION_PARAMETER,
    MetadataWrite,
    TxWrites,
    Version,
    Write,
)
from medalliance.ledger.world_state import WorldState, open_state, state_schema


def open_store(database_url: str, name: str = "state") -> WorldState:
    """A world state on the backend under test; `name` keeps several stores of one test apart."""
    url = parse_database_url(database_url)
    assert url.is_postgres or url.path is not None
    sqlite_path = url.path.with_name(f"{name}.db") if url.path else Path()
    return open_state(url, sqlite_path=sqlite_path, schema=schema_name("test", name))


@pytest.fixture
def state(database_url: str) -> Iterator[WorldState]:
    s = open_store(database_url)
    s.apply_block(0, [])
    yield s
    s.close()


def put(state: WorldState, block: int, *writes: tuple[str, bytes | None]) -> None:
    state.apply_block(
        block,
        [TxWrites(0, f"tx{block}", block * 1000, tuple(Write("ns", k, v) for k, v in writes))],
    )


def test_versions_history_and_deletes(state: WorldState) -> None:
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


def test_ranges_are_in_utf8_byte_order(state: WorldState) -> None:
    keys = ["b", "a", "\x00visit\x00V1\x00", "\U0010ffff", "é", "Z"]
    put(state, 1, *((k, b"v") for k in keys))
    assert [k for k, _ in state.range("ns", "", "")] == sorted(keys, key=lambda k: k.encode())
    assert [k for k, _ in state.range("ns", "a", "c")] == ["a", "b"]


def test_a_block_out_of_order_changes_nothing(state: WorldState) -> None:
    put(state, 1, ("a", b"1"))
    before = state.state_hash()
    with pytest.raises(PreconditionFailed, match="cannot apply block 5"):
        put(state, 5, ("a", b"x"))
    assert state.state_hash() == before
    assert state.savepoint == 1


def test_rich_query_with_sort_limit_and_bookmark(state: WorldState) -> None:
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


def test_a_new_state_has_no_savepoint(database_url: str) -> None:
    fresh = open_store(database_url, "fresh")
    assert fresh.savepoint == -1
    assert fresh.get("ns", "a") is None
    with pytest.raises(PreconditionFailed):
        fresh.apply_block(1, [])
    fresh.close()


def test_within_a_block_the_later_write_wins_and_both_are_history(state: WorldState) -> None:
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


def test_a_delete_then_a_write_in_one_block_leaves_the_write(state: WorldState) -> None:
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


def test_get_many_agrees_with_get(state: WorldState) -> None:
    put(state, 1, *((f"k{i}", b"v") for i in range(0, 1200, 2)))
    keys = [("ns", f"k{i}") for i in range(1200)] + [("other", "k0"), ("ns", "k0")]
    assert state.get_many(keys) == {key: state.get(*key) for key in keys}


def test_ranges_include_the_start_and_exclude_the_end(state: WorldState) -> None:
    put(state, 1, ("a", b"1"), ("b", b"1"), ("c", b"1"))
    assert [k for k, _ in state.range("ns", "b", "")] == ["b", "c"]
    assert [k for k, _ in state.range("ns", "", "b")] == ["a"]
    assert [k for k, _ in state.range("other", "", "")] == []


def test_composite_key_ranges_stay_inside_their_prefix(state: WorldState) -> None:
    keys = ["\x00visit\x00V1\x00", "\x00visit\x00V2\x00", "\x00visitor\x00X\x00", "plain"]
    put(state, 1, *((k, b"v") for k in keys))
    found = [k for k, _ in state.range("ns", "\x00visit\x00", "\x00visit\x00\U0010ffff")]
    assert found == keys[:2]


def test_state_hashes_compare_content_and_versions(database_url: str) -> None:
    def build(name: str, block_of_b: int) -> bytes:
        s = open_store(database_url, name)
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

    assert build("one", 2) == build("two", 2)
    assert build("three", 3) != build("four", 2)  # same values, other versions


def test_clear_drops_everything(state: WorldState) -> None:
    put(state, 1, ("a", b"1"))
    state.clear()
    assert state.savepoint == -1
    assert state.get("ns", "a") is None
    assert state.history("ns", "a") == []
    state.apply_block(0, [])  # and it can be rebuilt from the genesis block


def test_rich_queries_skip_values_that_are_not_json_objects(state: WorldState) -> None:
    put(state, 1, ("doc", b'{"t": 1}'), ("bin", b"\xff\xfe"), ("text", b"plain words"))
    page = state.query("ns", {"selector": {}})
    assert [k for k, _ in page.results] == ["doc"]


def test_query_limit_caps_every_page(state: WorldState) -> None:
    put(state, 1, *((f"k{i}", json.dumps({"n": i}).encode()) for i in range(5)))
    query = {"selector": {"n": {"$gte": 0}}, "sort": ["n"], "limit": 3}
    first = state.query("ns", query, page_size=2)
    second = state.query("ns", query, page_size=2, bookmark=first.bookmark)
    assert [k for k, _ in first.results + second.results] == ["k0", "k1", "k2"]
    assert second.bookmark == ""
    assert state.query("ns", json.dumps(query)).results == first.results + second.results


def test_sort_by_several_fields_with_directions(state: WorldState) -> None:
    docs = {"w": ("b", 1), "x": ("a", 1), "y": ("a", 2), "z": ("b", 2)}
    put(state, 1, *((k, json.dumps({"g": g, "n": n}).encode()) for k, (g, n) in docs.items()))
    page = state.query("ns", {"selector": {}, "sort": [{"g": "asc"}, {"n": "desc"}]})
    assert [k for k, _ in page.results] == ["y", "x", "z", "w"]


def test_sorting_follows_couchdb_collation(state: WorldState) -> None:
    values = [{"x": 1}, [1], "a", 2, True, False, None]
    put(state, 1, *((f"k{i}", json.dumps({"v": v}).encode()) for i, v in enumerate(values)))
    page = state.query("ns", {"selector": {}, "sort": ["v"]})
    assert [k for k, _ in page.results] == [f"k{i}" for i in reversed(range(len(values)))]


@pytest.mark.parametrize(
    "bookmark",
    ["%%%", "bm90LWEtbnVtYmVy", "LTU="],
    ids=["not base64", "not a number", "a negative offset"],
)
def test_foreign_bookmarks_are_refused(state: WorldState, bookmark: str) -> None:
    with pytest.raises(QuerySyntaxError, match="bookmark"):
        state.query("ns", {"selector": {}}, page_size=1, bookmark=bookmark)


def test_a_block_failing_midway_leaves_savepoint_state_and_history_unchanged(
    state: WorldState,
) -> None:
    put(state, 1, ("a", b"1"))
    before = (state.savepoint, state.state_hash(), state.history("ns", "a"))
    # The value rows are written before the history rows; a timestamp beyond 64 bits makes the
    # history insert fail after them, so only an atomic block leaves nothing behind.
    doomed = TxWrites(0, "doomed", 2**64, (Write("ns", "a", b"2"), Write("ns", "b", b"2")))
    with pytest.raises((OverflowError, psycopg.DataError)):
        state.apply_block(2, [doomed])
    assert (state.savepoint, state.state_hash(), state.history("ns", "a")) == before
    assert state.get("ns", "b") is None
    put(state, 2, ("b", b"2"))  # and the next good block still applies
    assert state.savepoint == 2


def test_metadata_follows_its_key(state: WorldState) -> None:
    policy = ((VALIDATION_PARAMETER, b"policy"),)
    assert not state.has_metadata("ns")
    state.apply_block(
        1,
        [
            TxWrites(
                0,
                "t",
                0,
                (Write("ns", "k", b"1"),),
                (MetadataWrite("ns", "k", policy), MetadataWrite("ns", "ghost", policy)),
            )
        ],
    )
    assert dict(state.get_metadata("ns", "k")) == {VALIDATION_PARAMETER: b"policy"}
    assert state.get_metadata("ns", "ghost") == {}  # a key that does not exist keeps none
    assert state.has_metadata("ns")
    assert not state.has_metadata("other")
    with_metadata = state.state_hash()
    put(state, 2, ("k", None))
    put(state, 3, ("k", b"1"))
    assert state.get_metadata("ns", "k") == {}  # deleting the key dropped its policy
    assert not state.has_metadata("ns")
    assert state.state_hash() != with_metadata


@pytest.mark.parametrize(
    "schema",
    ["", "Upper", "semi;colon", "x" * 64],
    ids=[
        "an empty schema is refused",
        "upper case is refused",
        "punctuation is refused",
        "a schema longer than PostgreSQL's limit is refused",
    ],
)
def test_unsafe_schema_names_are_refused(postgres_url: str, schema: str) -> None:
    with pytest.raises(InvalidArgument, match="schema"):
        open_state(parse_database_url(postgres_url), sqlite_path=Path(), schema=schema)


def test_an_unreachable_server_is_unavailable_and_keeps_the_password_secret() -> None:
    url = parse_database_url("postgresql://peer:s3cret-pw@127.0.0.1:1/state?connect_timeout=2")
    with pytest.raises(StateDatabaseUnavailable) as caught:
        open_state(url, sqlite_path=Path(), schema="state_x")
    assert "s3cret-pw" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_stores_in_one_database_keep_apart(postgres_url: str) -> None:
    url = parse_database_url(postgres_url)
    one = open_state(url, sqlite_path=Path(), schema=state_schema("peer0.a.example.com", "ch"))
    two = open_state(url, sqlite_path=Path(), schema=state_schema("peer0.b.example.com", "ch"))
    one.apply_block(0, [TxWrites(0, "t", 0, (Write("ns", "k", b"one"),))])
    assert (two.savepoint, two.get("ns", "k")) == (-1, None)
    two.clear()
    assert one.savepoint == 0
    one.close()
    two.close()


blocks_of_writes = st.lists(
    st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["ns", "other"]),
                st.sampled_from(["a", "b", "\x00visit\x00V1\x00", "é", "\U0010ffff"]),
                st.none() | st.binary(max_size=4) | st.just(b'{"n": 1}'),
            ),
            min_size=1,
            max_size=4,
        ),
        max_size=3,
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(blocks=blocks_of_writes)
def test_sqlite_and_postgresql_end_in_the_same_state_hash(
    postgres_url: str, tmp_path: Path, blocks: list[list[list[tuple[str, str, bytes | None]]]]
) -> None:
    stores = [
        open_state(None, sqlite_path=tmp_path / "parity.db", schema=""),
        open_state(parse_database_url(postgres_url), sqlite_path=Path(), schema="parity"),
    ]
    for store in stores:
        store.clear()  # hypothesis reuses the fixtures across examples
        store.apply_block(0, [])
        for number, txs in enumerate(blocks, start=1):
            store.apply_block(
                number,
                [
                    TxWrites(n, f"tx{number}.{n}", number, tuple(Write(*w) for w in writes))
                    for n, writes in enumerate(txs)
                ],
            )
    sqlite, postgres = stores
    assert sqlite.state_hash() == postgres.state_hash()
    assert list(sqlite.range("ns", "", "")) == list(postgres.range("ns", "", ""))
    assert sqlite.history("ns", "a") == postgres.history("ns", "a")
    query = {"selector": {"n": 1}}
    assert sqlite.query("ns", query) == postgres.query("ns", query)
    for store in stores:
        store.close()


def test_readers_on_other_threads_never_see_a_block_before_it_commits(
    state: WorldState,
) -> None:
    """The gateway reads while the committer applies: a read must not see uncommitted writes."""
    blocks = 150
    seen_ahead: list[tuple[int, int]] = []
    done = threading.Event()

    def read_forever() -> None:
        while not done.is_set():
            versioned = state.get("ns", "a")
            savepoint = state.savepoint  # read after: it can only have moved on
            if versioned is not None and versioned.version.block_num > savepoint:
                seen_ahead.append((versioned.version.block_num, savepoint))

    readers = [threading.Thread(target=read_forever) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for number in range(1, blocks + 1):
            writes = tuple(Write("ns", k, str(number).encode()) for k in ("a", "b", "c"))
            state.apply_block(number, [TxWrites(0, f"tx{number}", 0, writes)])
    finally:
        done.set()
        for reader in readers:
            reader.join()
    assert seen_ahead == []
    assert state.savepoint == blocks


def test_a_dropped_postgresql_connection_is_reopened_without_losing_a_block(
    postgres_url: str,
) -> None:
    state = open_state(parse_database_url(postgres_url), sqlite_path=Path(), schema="dropped")
    state.apply_block(0, [TxWrites(0, "t0", 0, (Write("ns", "a", b"0"),))])

    def drop_connections() -> None:  # as a server restart or an idle timeout would
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    drop_connections()
    versioned = state.get("ns", "a")
    assert versioned is not None
    assert versioned.value == b"0"
    drop_connections()
    state.apply_block(1, [TxWrites(0, "t1", 0, (Write("ns", "a", b"1"),))])
    assert state.savepoint == 1
    assert [m.tx_id for m in state.history("ns", "a")] == ["t1", "t0"]  # written once
    state.close()
