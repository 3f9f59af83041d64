"""The audit index: the facts of a channel's committed blocks as rows of SQLite or PostgreSQL.

docs/audit.md §1. Fed from the committed blocks of the commission's own peer (Deliver, as the
hospital connector reads them). Each block's rows and the checkpoint (the next block to read and
the indexed block's header hash) are written in ONE database transaction, so a crash between or
inside blocks neither skips nor doubles a block; a block already indexed is skipped (a replay is
harmless) and a block that does not follow the indexed one is refused. `rebuild` empties the
index; reading again from genesis refills it. Never authoritative: it answers queries, while
reports cite transactions a verifier re-reads from the blocks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabric_protos.common import common_pb2

from medalliance.audit.facts import Fact, facts_of_block
from medalliance.database_url import DatabaseUrl
from medalliance.errors import Conflict, PreconditionFailed
from medalliance.ledger.block import header_hash
from medalliance.sql_connection import open_sql

__all__ = ["AuditIndex", "CatchUp", "default_index_path"]

# Columns beside the fact itself, so queries filter in SQL: the organisations a fact names
# (origin/applicant/performer/payer/submitter/accessor as party_a; target/payee/recipient as
# party_b; an alarm's raising commission and the one it is escalated to) and its month.
_PARTY_A = ("from_hospital", "hospital", "payer", "submitter", "org", "raised_by")
_PARTY_B = ("to_hospital", "target", "payee", "recipient", "escalate_to")

_TABLES = """
CREATE TABLE IF NOT EXISTS audit_fact (
    channel {text} NOT NULL, block INTEGER NOT NULL, tx_index INTEGER NOT NULL,
    seq INTEGER NOT NULL, kind {text} NOT NULL, tx_id {text} NOT NULL,
    ts {text} NOT NULL, period {text} NOT NULL, creator_msp {text} NOT NULL,
    creator_role {text} NOT NULL, subject {text} NOT NULL, party_a {text} NOT NULL,
    party_b {text} NOT NULL, status {text} NOT NULL, attributes {text} NOT NULL,
    PRIMARY KEY (channel, block, tx_index, seq));
CREATE INDEX IF NOT EXISTS audit_fact_kind ON audit_fact (channel, kind, period);
CREATE INDEX IF NOT EXISTS audit_fact_subject ON audit_fact (channel, subject);
CREATE TABLE IF NOT EXISTS audit_checkpoint (
    channel {text} PRIMARY KEY, next_block INTEGER NOT NULL, last_hash {text} NOT NULL)
"""
_COLUMNS = "block, tx_index, seq, kind, tx_id, ts, creator_msp, creator_role, subject, attributes"


@dataclass(frozen=True, slots=True)
class CatchUp:
    """What one catch-up did: blocks and facts added, and the next block to read."""

    blocks: int
    facts: int
    next_block: int


def default_index_path(directory: Path, msp_id: str) -> Path:
    """Where a commission's index lives by default: DIR/audit/<MSP>.db."""
    return directory / "audit" / f"{msp_id}.db"


class AuditIndex:
    """The index of one channel. One writer at a time (a database transaction per block); any
    number of readers."""

    def __init__(self, url: DatabaseUrl, channel: str) -> None:
        self.url = url
        self.channel = channel
        self._db = open_sql(url, store="the audit index", tables=_TABLES, schema=("audit",))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AuditIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- feeding ---------------------------------------------------------------------------------

    def next_block(self) -> int:
        """The number of the next block to index (0 for an empty index)."""
        return self._checkpoint()[0]

    def add_block(self, block: common_pb2.Block) -> int:
        """Index one committed block with its checkpoint, atomically; the number of facts added
        (0 for a block indexed before). Raises `PreconditionFailed` for a block after a gap and
        `Conflict` for one that does not follow the indexed block (another ledger: rebuild)."""
        number = int(block.header.number)
        facts = facts_of_block(block, self.channel)
        self._db.begin()
        try:
            expected, last_hash = self._checkpoint(for_update=True)
            if number < expected:
                self._db.rollback()
                return 0
            if number > expected:
                raise PreconditionFailed(
                    f"block {number} cannot be indexed before block {expected}; read the "
                    f"blocks in order from {expected}"
                )
            if number > 0 and bytes(block.header.previous_hash).hex() != last_hash:
                raise Conflict(
                    f"block {number} does not follow the indexed block {number - 1}: the index "
                    "was built from another ledger; run `medalliance audit index --rebuild`"
                )
            try:
                self._db.execute_many(
                    "INSERT INTO audit_fact VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [self._row(seq, fact) for seq, fact in enumerate(facts)],
                )
                # UPDATE, not DELETE + INSERT: a concurrent `FOR UPDATE` waiting on the row then
                # reads its new version, where a deleted row would make it see no checkpoint at all.
                checkpoint = (number + 1, header_hash(block.header).hex(), self.channel)
                if number == 0:
                    self._db.execute(
                        "INSERT INTO audit_checkpoint (next_block, last_hash, channel) VALUES (?,?,?)",
                        checkpoint,
                    )
                else:
                    self._db.execute(
                        "UPDATE audit_checkpoint SET next_block = ?, last_hash = ? WHERE channel = ?",
                        checkpoint,
                    )
            except Conflict as exc:
                # Only PostgreSQL gets here: two indexers both read "no checkpoint" (there is
                # no row to lock yet) and raced on the first block; SQLite's BEGIN IMMEDIATE
                # serialises writers. Nothing of this transaction stays.
                raise Conflict(
                    f"another indexer wrote block {number} at the same time; run one indexer "
                    "per index, then retry"
                ) from exc
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise
        return len(facts)

    def catch_up(self, blocks: Iterable[common_pb2.Block]) -> CatchUp:
        """Index `blocks` (the peer's, from `next_block()` on) one transaction per block."""
        added_blocks = added_facts = 0
        for block in blocks:
            before = self.next_block()
            added_facts += self.add_block(block)
            added_blocks += self.next_block() - before
        return CatchUp(added_blocks, added_facts, self.next_block())

    def rebuild(self) -> None:
        """Empty the index of this channel (rows and checkpoint, in one transaction): the next
        catch-up reads from genesis."""
        self._db.begin()
        try:
            self._db.execute("DELETE FROM audit_fact WHERE channel = ?", (self.channel,))
            self._db.execute("DELETE FROM audit_checkpoint WHERE channel = ?", (self.channel,))
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise

    # --- reading ---------------------------------------------------------------------------------

    def facts(
        self,
        kinds: Sequence[str] = (),
        *,
        period: str = "",
        subjects: Sequence[str] = (),
        party: str = "",
    ) -> list[Fact]:
        """Indexed facts in ledger order, filtered by kind, month, subject and an organisation
        named as either party (empty: any)."""
        sql = f"SELECT {_COLUMNS} FROM audit_fact WHERE channel = ?"  # noqa: S608 - placeholders only
        args: list[Any] = [self.channel]
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        if period:
            sql += " AND period = ?"
            args.append(period)
        if subjects:
            sql += f" AND subject IN ({','.join('?' * len(subjects))})"
            args.extend(subjects)
        if party:
            sql += " AND (party_a = ? OR party_b = ?)"
            args.extend((party, party))
        rows = self._db.execute(sql + " ORDER BY block, tx_index, seq", args)
        return [_fact(row) for row in rows]

    def count(self) -> int:
        """How many facts the index holds for this channel."""
        rows = self._db.execute(
            "SELECT COUNT(*) FROM audit_fact WHERE channel = ?", (self.channel,)
        )
        return int(rows[0][0])

    # --- private ---------------------------------------------------------------------------------

    def _checkpoint(self, *, for_update: bool = False) -> tuple[int, str]:
        lock = " FOR UPDATE" if for_update and self.url.is_postgres else ""
        rows = self._db.execute(
            f"SELECT next_block, last_hash FROM audit_checkpoint WHERE channel = ?{lock}",  # noqa: S608 - placeholders only
            (self.channel,),
        )
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, "")

    def _row(self, seq: int, fact: Fact) -> tuple[Any, ...]:
        attributes = dict(fact.attributes)
        party_a = next((attributes[a] for a in _PARTY_A if attributes.get(a)), "")
        party_b = next((attributes[b] for b in _PARTY_B if attributes.get(b)), "")
        return (
            self.channel, fact.block, fact.tx_index, seq, fact.kind, fact.tx_id, fact.timestamp,
            fact.timestamp[:7], fact.creator_msp, fact.creator_role, fact.subject, party_a,
            party_b, attributes.get("status", ""), json.dumps(fact.attributes),
        )  # fmt: skip


def _fact(row: Sequence[Any]) -> Fact:
    block, tx_index, _, kind, tx_id, ts, msp, role, subject, attributes = row
    pairs = tuple((str(k), str(v)) for k, v in json.loads(attributes))
    return Fact(kind, tx_id, int(block), int(tx_index), ts, msp, role, subject, pairs)
