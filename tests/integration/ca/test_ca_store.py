"""The CA store (ca/store.py) on SQLite and PostgreSQL: two CA processes sharing one database
cannot both spend an identity's last enrolment, and a refused write leaves nothing behind."""

from __future__ import annotations

import datetime as dt

import pytest

from medalliance.ca import CaStore
from medalliance.ca.registrar import Attribute, CaIdentity
from medalliance.database_url import parse_database_url
from medalliance.errors import Conflict

NOW = dt.datetime.now(dt.UTC)
PEM = "-----BEGIN CERTIFICATE-----\n(test)\n-----END CERTIFICATE-----\n"


def test_the_last_enrolment_is_spent_once(database_url: str) -> None:
    url = parse_database_url(database_url)
    first, second = CaStore(url, "ca-t"), CaStore(url, "ca-t")  # as two server processes
    try:
        first.add_identity(
            CaIdentity("u1", "client", "", (Attribute("role", "doctor", True),), 1), "hash"
        )
        first.record_certificate("u1", PEM, 0xA1, NOW, count_enrollment=True)
        with pytest.raises(Conflict, match="no enrolment left"):
            second.record_certificate("u1", PEM, 0xA2, NOW, count_enrollment=True)
        assert [c.serial_hex for c in second.certificates("u1")] == ["a1"]
        assert second.require("u1").enrollments == 1
        with pytest.raises(Conflict, match="registered already"):
            second.add_identity(CaIdentity("u1", "peer", "", (), -1), "other")
        found = first.identity("u1")
        assert found is not None
        assert (found[0].type, found[1]) == ("client", "hash")
        assert found[0].attributes == (Attribute("role", "doctor", True),)
    finally:
        first.close()
        second.close()
