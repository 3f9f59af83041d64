"""Patient pseudonyms: stable, keyed, typed, and never echoing an identifier."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medalliance.errors import InvalidArgument, PreconditionFailed
from medalliance.privacy.pseudonym import PseudonymKey, normalise, pseudonym

KEY = PseudonymKey(bytes(range(32)))
VALID = "11010519491231002X"  # GB 11643 sample number (check character X)


def with_check(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


def test_a_pseudonym_is_32_hex_and_stable_across_spelling() -> None:
    reference = pseudonym(KEY, "resident-id", VALID)
    assert re.fullmatch(r"[0-9a-f]{32}", reference)
    assert pseudonym(KEY, "resident-id", " 110105 19491231 002x ") == reference


def test_key_and_identifier_type_separate_pseudonyms() -> None:
    other_key = PseudonymKey(bytes(32))
    assert pseudonym(other_key, "resident-id", VALID) != pseudonym(KEY, "resident-id", VALID)
    assert pseudonym(KEY, "passport", "E1234567") != pseudonym(KEY, "medical-card", "E1234567")


@pytest.mark.parametrize(
    ("id_type", "number", "message"),
    [
        pytest.param("resident-id", "110105194912310021", "check digit is wrong", id="a resident ID with a wrong check digit"),
        pytest.param("resident-id", "1101051949", "17 digits", id="a resident ID that is too short"),
        pytest.param("passport", "", "4-32 letters", id="an empty passport number"),
        pytest.param("name", "张三", "identifier type must be one of", id="names are not identifiers"),
    ],
)  # fmt: skip
def test_bad_identifiers_are_refused_without_echoing_them(
    id_type: str, number: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message) as refused:
        pseudonym(KEY, id_type, number)
    assert not number or number not in str(refused.value)


@given(st.from_regex(r"[0-9]{17}", fullmatch=True))
def test_every_valid_resident_id_is_accepted_and_its_neighbours_are_not(first17: str) -> None:
    valid = with_check(first17)
    assert normalise("resident-id", valid) == valid
    wrong = valid[:17] + ("0" if valid[17] != "0" else "1")
    with pytest.raises(InvalidArgument):
        normalise("resident-id", wrong)


def test_the_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "alliance" / "pseudonym.key"
    key = PseudonymKey.generate()
    key.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert PseudonymKey.load(path) == key
    with pytest.raises(PreconditionFailed, match="never overwritten"):
        PseudonymKey.generate().save(path)
    assert key.secret.hex() not in repr(key)
