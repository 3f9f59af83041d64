"""What endorsements read of one committed state, kept until it changes (ledger/committed_reads.py):
the same answers as the state, each asked once, bounded, and never past the state they were
read from once a new instance is taken."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from medalliance.ledger.committed_reads import KEPT_MAX, LIFECYCLE_NAMESPACE, CommittedReads
from medalliance.ledger.sqlite_state import SqliteState
from medalliance.ledger.state import VALIDATION_PARAMETER, MetadataWrite, TxWrites, Write


class CountingState(SqliteState):
    """A real SQLite state that counts the reads it serves."""

    reads = 0

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        self.reads += 1
        return super()._rows(sql, params)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[CountingState]:
    plain = SqliteState.open(tmp_path / "state.db")
    counting = CountingState(plain._db)
    counting.apply_block(0, [])
    yield counting
    counting.close()


def commit(state: SqliteState, *writes: Write, metadata: tuple[MetadataWrite, ...] = ()) -> None:
    state.apply_block(state.savepoint + 1, [TxWrites(0, "t", 0, writes, metadata)])


def test_lifecycle_values_are_read_once_per_state_and_other_namespaces_every_time(
    state: CountingState,
) -> None:
    commit(state, Write(LIFECYCLE_NAMESPACE, "definition/cc", b"v1"), Write("cc", "k", b"x"))
    reads = CommittedReads(state)
    before = state.reads
    for _ in range(3):
        found = reads.get(LIFECYCLE_NAMESPACE, "definition/cc")
        assert found is not None
        assert found.value == b"v1"
        assert reads.get(LIFECYCLE_NAMESPACE, "definition/none") is None
        assert reads.get("cc", "k") == state.get("cc", "k")
    # two lifecycle reads kept, three pass-through reads of cc (plus the three comparisons)
    assert state.reads - before == 2 + 3 + 3


def test_an_upgrade_is_seen_by_the_reads_taken_after_it(state: CountingState) -> None:
    """The hostile case: a definition replaced (an upgrade, a deregistration) must not be
    answered from before; an instance answers for one state, the channel takes a new one."""
    commit(state, Write(LIFECYCLE_NAMESPACE, "definition/cc", b"v1"))
    old = CommittedReads(state)
    assert old.get(LIFECYCLE_NAMESPACE, "definition/cc").value == b"v1"  # type: ignore[union-attr]
    commit(state, Write(LIFECYCLE_NAMESPACE, "definition/cc", b"v2"))
    new = CommittedReads(state)
    assert new.get(LIFECYCLE_NAMESPACE, "definition/cc").value == b"v2"  # type: ignore[union-attr]
    commit(state, Write(LIFECYCLE_NAMESPACE, "definition/cc", None))
    assert CommittedReads(state).get(LIFECYCLE_NAMESPACE, "definition/cc") is None


def test_a_namespace_without_metadata_asks_no_key_until_one_has_a_policy(
    state: CountingState,
) -> None:
    commit(state, Write("cc", "k", b"x"))
    reads = CommittedReads(state)
    before = state.reads
    assert [reads.get_metadata("cc", f"k{i}") for i in range(5)] == [{}] * 5
    assert state.reads - before == 1  # whether cc has any metadata, once
    policy = b"\x0a\x00"
    commit(state, metadata=(MetadataWrite("cc", "k", ((VALIDATION_PARAMETER, policy),)),))
    fresh = CommittedReads(state)
    assert fresh.get_metadata("cc", "k") == {VALIDATION_PARAMETER: policy}
    assert fresh.get_metadata("cc", "other") == {}
    assert fresh.has_metadata("cc")
    assert not fresh.has_metadata("elsewhere")


def test_a_flood_of_distinct_lifecycle_keys_is_answered_but_not_kept(
    state: CountingState,
) -> None:
    """A member asking for ever new names within one block costs reads, not memory."""
    commit(state, Write(LIFECYCLE_NAMESPACE, "definition/cc", b"v1"))
    reads = CommittedReads(state)
    for i in range(KEPT_MAX + 50):
        assert reads.get(LIFECYCLE_NAMESPACE, f"definition/x{i}") is None
        assert not reads.has_metadata(f"ns{i}")
    assert len(reads._lifecycle) == KEPT_MAX
    assert len(reads._has_metadata) == KEPT_MAX
    before = state.reads
    assert reads.get(LIFECYCLE_NAMESPACE, "definition/cc").value == b"v1"  # type: ignore[union-attr]
    assert state.reads - before == 1


def test_ranges_queries_and_history_pass_through(state: CountingState) -> None:
    commit(state, Write("cc", "a", b'{"n": 1}'), Write("cc", "b", b'{"n": 2}'))
    reads = CommittedReads(state)
    assert list(reads.range("cc", "", "")) == list(state.range("cc", "", ""))
    selector = {"selector": {"n": 2}}
    assert reads.query("cc", selector) == state.query("cc", selector)
    assert reads.history("cc", "a") == state.history("cc", "a")
