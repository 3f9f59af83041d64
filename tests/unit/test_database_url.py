"""Database URLs: one parser for every store."""

from __future__ import annotations

from pathlib import Path

import pytest

from medalliance.database_url import parse_database_url, schema_name
from medalliance.errors import InvalidArgument


@pytest.mark.parametrize(
    ("text", "backend", "path"),
    [
        pytest.param(
            "sqlite:////data/x.db", "sqlite", Path("/data/x.db"), id="an absolute sqlite URL"
        ),
        pytest.param(
            "sqlite:///rel/x.db",
            "sqlite",
            Path("/base/rel/x.db"),
            id="a relative sqlite URL is under the base",
        ),
        pytest.param("x.db", "sqlite", Path("/base/x.db"), id="a plain path is SQLite"),
        pytest.param("postgresql://u:pw@db:5432/alliance", "postgresql", None, id="postgresql"),
        pytest.param("postgres://u@db/alliance", "postgresql", None, id="the postgres alias"),
    ],
)
def test_database_urls(text: str, backend: str, path: Path | None) -> None:
    url = parse_database_url(text, base=Path("/base"))
    assert (url.backend, url.path) == (backend, path)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("mysql://u@h/db", id="an unsupported scheme"),
        pytest.param("postgresql://u@h", id="postgresql without a database"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_database_url(text)


def test_the_password_never_shows() -> None:
    url = parse_database_url("postgresql://alice:s3cret@db:5432/alliance")
    assert "s3cret" not in url.redacted()
    assert "s3cret" not in repr(url)
    assert url.redacted() == "postgresql://alice:***@db:5432/alliance"


def test_schema_names_are_safe_and_distinct() -> None:
    assert schema_name("state", "peer0.org1.example.com", "mychannel") == (
        "state_peer0_org1_example_com_mychannel"
    )
    long_a, long_b = schema_name("x" * 70, "a"), schema_name("x" * 70, "b")
    assert len(long_a) <= 63
    assert long_a != long_b
