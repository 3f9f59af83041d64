"""The one SQLite / PostgreSQL connection every small store is built on (sql_connection.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from medalliance.database_url import DatabaseUrl, parse_database_url
from medalliance.errors import Conflict
from medalliance.sql_connection import open_sql

TABLES = "CREATE TABLE IF NOT EXISTS item (id {text} PRIMARY KEY, doc {json} NOT NULL)"


def test_a_constraint_violation_is_a_conflict_and_rolls_back_the_whole_write(
    database_url: str,
) -> None:
    db = open_sql(
        parse_database_url(database_url), store="the test store", tables=TABLES, schema=("test",)
    )
    try:
        db.begin()
        db.execute("INSERT INTO item VALUES (?, ?)", ("a", db.to_json({"n": 1})))
        db.commit()
        db.begin()
        db.execute("INSERT INTO item VALUES (?, ?)", ("b", db.to_json({"n": 2})))
        with pytest.raises(Conflict, match="the test store"):
            db.execute_many("INSERT INTO item VALUES (?, ?)", [("a", db.to_json({"n": 3}))])
        db.rollback()
        rows = db.execute("SELECT id, doc FROM item ORDER BY id")
        assert [(key, db.from_json(doc)) for key, doc in rows] == [("a", {"n": 1})]
    finally:
        db.close()


def test_processes_opening_a_new_store_at_once_all_succeed(
    database_url: str, tmp_path: Path
) -> None:
    # Each round is a store nobody has created yet, opened by four threads released together:
    # switching a new SQLite file to WAL, and creating tables on PostgreSQL, race.
    base = parse_database_url(database_url)
    for round_ in range(10):
        url = base if base.is_postgres else parse_database_url(f"sqlite:///{tmp_path}/{round_}.db")
        opener = _Opener(url, ("test", "race", str(round_)), threading.Barrier(4))
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(opener.open_and_count, range(4))) == [0, 0, 0, 0]


@dataclass(frozen=True)
class _Opener:
    url: DatabaseUrl
    schema: tuple[str, ...]
    start: threading.Barrier

    def open_and_count(self, _: int) -> int:
        self.start.wait(timeout=30)
        db = open_sql(self.url, store="the test store", tables=TABLES, schema=self.schema)
        try:
            return len(db.execute("SELECT id FROM item"))
        finally:
            db.close()
