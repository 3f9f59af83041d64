"""The alarm runner's checkpoint: which alarms it raised on the chain and the last block done.

A small store on SQLite (a file, the default) or PostgreSQL (its own schema), given by a database
URL (`medalliance.database_url`). It is what makes the runner raise each alarm once across
restarts; it is never authoritative — the alarm contract refuses a second alarm with the same id,
so a lost checkpoint costs a refused call per alarm, never a duplicate.
"""

from __future__ import annotations

from typing import Any

from medalliance.database_url import DatabaseUrl
from medalliance.sql_connection import open_sql

_TABLES = """
CREATE TABLE IF NOT EXISTS alarm_raised (
    channel {text} NOT NULL, alarm_id {text} NOT NULL, rule_id {text} NOT NULL,
    tx_id {text} NOT NULL, block INTEGER NOT NULL, PRIMARY KEY (channel, alarm_id));
CREATE TABLE IF NOT EXISTS alarm_progress (
    channel {text} PRIMARY KEY, last_block INTEGER NOT NULL);
-- Integrity divergences the runner raised and that still last, by (channel, peer, kind): while
-- one lasts it is not raised again, across restarts.
CREATE TABLE IF NOT EXISTS alarm_divergence (
    channel {text} NOT NULL, identity {text} NOT NULL, alarm_id {text} NOT NULL,
    PRIMARY KEY (channel, identity))
"""


class AlarmCheckpoint:
    """One commission's runner state on one channel. Not thread-safe: one runner owns it."""

    def __init__(self, url: DatabaseUrl, channel: str) -> None:
        self.url = url
        self._channel = channel
        self._db = open_sql(
            url, store="the alarm checkpoint", tables=_TABLES, schema=("alarms", channel)
        )

    def close(self) -> None:
        self._db.close()

    def last_block(self) -> int:
        """The last block whose alarms are all raised (-1: none yet)."""
        rows = self._rows("SELECT last_block FROM alarm_progress WHERE channel = ?", self._channel)
        return int(rows[0][0]) if rows else -1

    def set_last_block(self, number: int) -> None:
        self._rows(
            "INSERT INTO alarm_progress (channel, last_block) VALUES (?, ?) "
            "ON CONFLICT (channel) DO UPDATE SET last_block = excluded.last_block",
            self._channel,
            number,
        )

    def is_raised(self, alarm_id: str) -> bool:
        return bool(
            self._rows(
                "SELECT 1 FROM alarm_raised WHERE channel = ? AND alarm_id = ?",
                self._channel,
                alarm_id,
            )
        )

    def note_raised(self, alarm_id: str, rule_id: str, tx_id: str, block: int) -> None:
        """Remember a raised alarm (`tx_id` "" when the chain already had it)."""
        self._rows(
            "INSERT INTO alarm_raised (channel, alarm_id, rule_id, tx_id, block) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, alarm_id) DO NOTHING",
            self._channel,
            alarm_id,
            rule_id,
            tx_id,
            block,
        )

    def raised(self) -> list[tuple[str, str, str, int]]:
        """(alarm id, rule id, tx id, block) of every alarm raised, in id order."""
        rows = self._rows(
            "SELECT alarm_id, rule_id, tx_id, block FROM alarm_raised WHERE channel = ? ORDER BY 1",
            self._channel,
        )
        return [(str(a), str(r), str(t), int(b)) for a, r, t, b in rows]

    def divergences(self) -> dict[str, str]:
        """Integrity divergences raised and still lasting: identity -> alarm id."""
        rows = self._rows(
            "SELECT identity, alarm_id FROM alarm_divergence WHERE channel = ?", self._channel
        )
        return {str(i): str(a) for i, a in rows}

    def note_divergence(self, identity: str, alarm_id: str) -> None:
        self._rows(
            "INSERT INTO alarm_divergence (channel, identity, alarm_id) VALUES (?, ?, ?) "
            "ON CONFLICT (channel, identity) DO NOTHING",
            self._channel,
            identity,
            alarm_id,
        )

    def end_divergence(self, identity: str) -> None:
        """The monitor no longer names it: a later divergence is a new finding."""
        self._rows(
            "DELETE FROM alarm_divergence WHERE channel = ? AND identity = ?",
            self._channel,
            identity,
        )

    def _rows(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, args)
