"""Update files travel between admins; a damaged one is refused with what it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from fabric_protos.common import common_pb2

from medalliance.app.channel_update import UpdateFile, broadcast_outcome
from medalliance.errors import (
    InvalidArgument,
    MedallianceError,
    NotFound,
    Overloaded,
    PermissionDenied,
    Unavailable,
)


def test_an_update_file_round_trips(tmp_path: Path) -> None:
    update = UpdateFile("alliance", "remove organisation X", b"\x01update", [])
    update.signatures.append(
        {"signer": "Admin@XMSP", "signatureHeader": "AA==", "signature": "AQ=="}
    )
    update.save(tmp_path / "u.json")
    assert UpdateFile.load(tmp_path / "u.json") == update


@pytest.mark.parametrize(
    "text", ["not json", '{"channel": "alliance"}', '{"channel": "a", "description": "d", '
             '"update": "%%%", "signatures": []}'],
    ids=["not JSON", "fields missing", "bad base64"],
)  # fmt: skip
def test_a_damaged_update_file_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "u.json").write_text(text)
    with pytest.raises(InvalidArgument, match=r"u\.json is not an update file"):
        UpdateFile.load(tmp_path / "u.json")


def test_a_missing_update_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="is not an update file"):
        UpdateFile.load(tmp_path / "nowhere.json")


# --- which ordering node's answer ends the broadcast -----------------------------------------

S = common_pb2.Status


def test_a_node_that_took_the_update_ends_the_broadcast() -> None:
    assert broadcast_outcome("o1.example", S.SUCCESS, "") is None


def test_service_unavailable_is_a_reason_to_try_the_next_node() -> None:
    reason = broadcast_outcome("o1.example", S.SERVICE_UNAVAILABLE, "no longer a consenter")
    assert reason == "o1.example: SERVICE_UNAVAILABLE (no longer a consenter)"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (S.BAD_REQUEST, InvalidArgument),
        (S.FORBIDDEN, PermissionDenied),
        (S.NOT_FOUND, NotFound),
        (S.REQUEST_ENTITY_TOO_LARGE, MedallianceError),
        (S.INTERNAL_SERVER_ERROR, MedallianceError),
        (S.NOT_IMPLEMENTED, MedallianceError),
        (S.UNKNOWN, MedallianceError),
        (999, MedallianceError),
    ],
)
def test_any_other_refusal_is_final_with_its_category(
    status: int, kind: type[MedallianceError]
) -> None:
    """A refused update is refused everywhere: retrying a forbidden one on every node is what a
    probe looks like, so nothing but SERVICE_UNAVAILABLE moves on."""
    with pytest.raises(kind, match=r"o1\.example") as raised:
        broadcast_outcome("o1.example", status, "signatures do not satisfy /Channel/Admins")
    assert not isinstance(raised.value, Unavailable | Overloaded)
    assert "signatures do not satisfy" in str(raised.value)
