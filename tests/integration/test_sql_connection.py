"""The one SQLite / PostgreSQL connection every small store is built on (sql_connection.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from medalliance.database_url import parse_database_url
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


def test_two_processes_opening_a_new_store_at_once_both_succeed(database_url: str) -> None:
    url = parse_database_url(database_url)

    def open_and_count(_: int) -> int:
        db = open_sql(url, store="the test store", tables=TABLES, schema=("test", "race"))
        try:
            return len(db.execute("SELECT id FROM item"))
        finally:
            db.close()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(open_and_count, range(4))) == [0, 0, 0, 0]
