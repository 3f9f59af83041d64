"""Update files travel between admins; a damaged one is refused with what it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from medalliance.app.channel_update import UpdateFile
from medalliance.errors import InvalidArgument


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
