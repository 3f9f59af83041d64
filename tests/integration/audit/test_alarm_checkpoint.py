"""The alarm runner's checkpoint on SQLite and PostgreSQL: what it keeps survives a reopen, a
second note of one alarm changes nothing, and an unreachable database is a clear error that
never shows the password."""

from __future__ import annotations

from pathlib import Path

import pytest

from medalliance.app.alarm_checkpoint import AlarmCheckpoint
from medalliance.database_url import parse_database_url
from medalliance.errors import Unavailable


def test_the_checkpoint_survives_a_reopen_and_keeps_each_alarm_once(database_url: str) -> None:
    url = parse_database_url(database_url)
    store = AlarmCheckpoint(url, "alliance")
    assert (store.last_block(), store.raised()) == (-1, [])
    store.note_raised("ALM-1", "referral.ping_pong", "ab" * 32, 7)
    store.note_raised("ALM-1", "referral.ping_pong", "", 9)  # a second note: ignored
    store.set_last_block(7)
    store.set_last_block(12)
    store.close()
    reopened = AlarmCheckpoint(url, "alliance")
    other = AlarmCheckpoint(url, "tertiary")
    try:
        assert reopened.last_block() == 12
        assert reopened.raised() == [("ALM-1", "referral.ping_pong", "ab" * 32, 7)]
        assert reopened.is_raised("ALM-1")
        assert not reopened.is_raised("ALM-2")
        assert (other.last_block(), other.raised()) == (-1, [])  # channels do not mix
    finally:
        reopened.close()
        other.close()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("postgresql://auditor:s3cret-pw@127.0.0.1:1/alarms",
                     id="a server that does not answer is unavailable"),
    ],
)  # fmt: skip
def test_an_unreachable_database_is_unavailable_without_its_password(text: str) -> None:
    with pytest.raises(Unavailable) as refused:
        AlarmCheckpoint(parse_database_url(text), "alliance")
    assert "s3cret-pw" not in str(refused.value)
    assert "auditor:***@127.0.0.1" in str(refused.value)


def test_a_checkpoint_in_an_unwritable_place_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(Unavailable, match="cannot open the alarm checkpoint"):
        AlarmCheckpoint(parse_database_url(str(blocker / "alarms.db")), "alliance")
