"""The pending pool's cut answers as the cutter's rules say, walk or no walk."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from medalliance.consensus.pending import Batch, CutRules, Pending

RULES = CutRules(max_count=4, preferred_bytes=40, timeout_ticks=3)


def reference(entries: list[tuple[str, bytes, bool, int]], now: int) -> Batch | None:
    """The rules applied by walking every entry (FIFO: id, envelope, alone, arrived)."""
    if not entries:
        return None
    first_id, first, alone, arrived = entries[0]
    if alone:
        return Batch((first,), (first_id,), True, now - arrived)
    taken: list[tuple[str, bytes]] = []
    for tx_id, envelope, entry_alone, _ in entries:
        size = sum(len(e) for _, e in taken)
        if entry_alone or (
            taken
            and (len(taken) >= RULES.max_count or size + len(envelope) > RULES.preferred_bytes)
        ):
            break
        taken.append((tx_id, envelope))
    full = len(taken) < len(entries) or len(taken) >= RULES.max_count
    if now - arrived >= RULES.timeout_ticks or full:
        return Batch(tuple(e for _, e in taken), tuple(i for i, _ in taken), False, now - arrived)
    return None


operations = st.lists(
    st.tuples(
        st.sampled_from(["add", "add", "add", "remove", "tick"]),
        st.sampled_from("abcdefg"),
        st.integers(1, 30),  # envelope size
        st.sampled_from([False, False, False, True]),  # a config update, alone in its block
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_batch_equals_the_walk_over_every_entry(ops: list[tuple[str, str, int, bool]]) -> None:
    """Adds (a re-added id replaces its entry in place), removals of ids present or not, config
    updates that go alone, ticks: every answer is the walk's, sizes and counts kept right."""
    pending = Pending()
    model: dict[str, tuple[bytes, bool, int]] = {}  # a dict keeps a replaced key's place too
    now = 0
    for op, tx_id, size, alone in ops:
        if op == "add":
            envelope = tx_id.encode() * size
            pending.add(tx_id, envelope, alone=alone, now_ticks=now)
            model[tx_id] = (envelope, alone, now)
        elif op == "remove":
            pending.remove([tx_id, "never-added"])
            model.pop(tx_id, None)
        else:
            now += 1
        entries = [(i, *entry) for i, entry in model.items()]
        assert pending.batch(RULES, now) == reference(entries, now)
        assert len(pending) == len(entries)


def test_a_flood_under_the_limits_waits_for_the_timeout_and_then_goes_whole() -> None:
    pending = Pending()
    for n in range(3):
        pending.add(f"t{n}", b"x" * 10, alone=False, now_ticks=0)
    pending.add("t0", b"x" * 10, alone=False, now_ticks=0)  # replayed: counted once
    assert pending.batch(RULES, 2) is None
    batch = pending.batch(RULES, 3)
    assert (batch.tx_ids if batch else None) == ("t0", "t1", "t2")
    pending.add("t3", b"x" * 11, alone=False, now_ticks=3)  # 41 bytes: over the preferred size
    batch = pending.batch(RULES, 3)
    assert (batch.tx_ids if batch else None) == ("t0", "t1", "t2")
    pending.remove(["t0", "t1", "t2"])
    assert pending.batch(RULES, 4) is None  # t3 alone, not yet due
