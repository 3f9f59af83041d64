"""Patient pseudonyms: stable, keyed (OPRF), typed, and never echoing an identifier."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medalliance.errors import InvalidArgument, NotFound, PreconditionFailed
from medalliance.privacy import oprf
from medalliance.privacy.oprf import OprfKey
from medalliance.privacy.pseudonym import (
    ID_TYPES,
    blind_identifier,
    load_key,
    normalise,
    oprf_input,
    pseudonym_of,
    save_key,
)

KEY = oprf.derive_key(bytes(range(32)), b"medalliance test key")
VALID = "11010519491231002X"  # GB 11643 sample number (check character X)
# The `patientRef` the visit and records contracts accept (src/medalliance/alliance/visit.py).
PATIENT_REF = re.compile(r"[0-9a-f]{16,64}")

keys = st.binary(min_size=32, max_size=32).map(lambda seed: oprf.derive_key(seed, b"test"))
first17s = st.from_regex(r"[0-9]{17}", fullmatch=True)
other_numbers = st.from_regex(r"[0-9A-Z]{4,32}", fullmatch=True)


def pseudonym(key: OprfKey, id_type: str, id_number: str) -> str:
    """The whole protocol: the hospital blinds and finishes, the key holder evaluates."""
    pending = blind_identifier(id_type, id_number)
    return pending.finish(oprf.blind_evaluate(key, pending.element))


def with_check(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


@pytest.mark.parametrize(
    ("id_type", "spelling", "canonical"),
    [
        pytest.param("resident-id", VALID, VALID, id="a canonical resident ID stays as it is"),
        pytest.param("resident-id", "11010519491231002x", VALID, id="a lower-case check letter x is read as X"),
        pytest.param("resident-id", " 110105 19491231 002X ", VALID, id="spaces are ignored"),
        pytest.param("resident-id", "110105\t19491231\n002X", VALID, id="tabs and line breaks are ignored"),
        pytest.param("resident-id", "１１０１０５１９４９１２３１００２Ｘ", VALID, id="full-width digits read as digits"),
        pytest.param("resident-id", "110105\u300019491231002X", VALID, id="a full-width space is ignored"),
        pytest.param("passport", "e 1234567", "E1234567", id="a passport number is upper-cased"),
        pytest.param("medical-card", "3201-0000-42", "3201-0000-42", id="a medical card number keeps its hyphens"),
    ],
)  # fmt: skip
def test_spellings_of_one_identifier_share_a_pseudonym(
    id_type: str, spelling: str, canonical: str
) -> None:
    assert normalise(id_type, spelling) == canonical
    assert pseudonym(KEY, id_type, spelling) == pseudonym(KEY, id_type, canonical)


@pytest.mark.parametrize(
    ("id_type", "number", "message"),
    [
        pytest.param("resident-id", "110105194912310021", "check digit is wrong", id="a resident ID with a wrong check digit is refused"),
        pytest.param("resident-id", "1101051949", "17 digits", id="a resident ID that is too short is refused"),
        pytest.param("resident-id", "11010519491231002X1", "17 digits", id="a resident ID that is too long is refused"),
        pytest.param("resident-id", "1101051949123100XX", "17 digits", id="an X before the check character is refused"),
        pytest.param("resident-id", "", "17 digits", id="an empty resident ID is refused"),
        pytest.param("resident-id", "   ", "17 digits", id="a blank resident ID is refused"),
        pytest.param("passport", "", "4-32 letters", id="an empty passport number is refused"),
        pytest.param("passport", "E12", "4-32 letters", id="a passport number under 4 characters is refused"),
        pytest.param("medical-card", "3201/0042", "4-32 letters", id="a medical card number with a slash is refused"),
        pytest.param("name", "张三", "identifier type must be one of", id="a name is not an identifier type"),
        pytest.param("Resident-ID", VALID, "identifier type must be one of", id="identifier types are spelt exactly"),
    ],
)  # fmt: skip
def test_bad_identifiers_are_refused_without_echoing_them(
    id_type: str, number: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message) as refused:
        pseudonym(KEY, id_type, number)
    if number.strip():
        assert number.strip() not in str(refused.value)


def test_a_pseudonym_fits_the_patient_ref_of_the_contracts() -> None:
    reference = pseudonym(KEY, "resident-id", VALID)
    assert re.fullmatch(r"[0-9a-f]{32}", reference)
    assert PATIENT_REF.fullmatch(reference)


def test_a_pseudonym_is_fixed_for_a_key_and_identifier() -> None:
    # Pins the encoding: changing it would give every patient of the alliance a new pseudonym.
    same_key = oprf.derive_key(bytes(range(32)), b"medalliance test key")
    assert pseudonym(KEY, "resident-id", VALID) == pseudonym(same_key, "resident-id", VALID)
    assert pseudonym(KEY, "resident-id", VALID) == "856412b4065b363320a6ad50608de8f0"
    assert pseudonym_of(oprf.evaluate(KEY, oprf_input("resident-id", VALID))) == pseudonym(
        KEY, "resident-id", VALID
    )


def test_the_service_sees_a_fresh_element_for_every_request_of_one_patient() -> None:
    first, second = blind_identifier("resident-id", VALID), blind_identifier("resident-id", VALID)
    assert first.element != second.element
    assert VALID.encode() not in first.element
    assert VALID not in repr(first)


@given(keys, first17s)
def test_pseudonyms_are_stable_32_hex_characters(key: OprfKey, first17: str) -> None:
    number = with_check(first17)
    reference = pseudonym(key, "resident-id", number)
    assert re.fullmatch(r"[0-9a-f]{32}", reference)
    assert pseudonym(OprfKey(key.scalar), "resident-id", f" {number.lower()} ") == reference


@given(keys, keys, first17s)
def test_different_keys_give_different_pseudonyms(
    key: OprfKey, other: OprfKey, first17: str
) -> None:
    if key != other:
        number = with_check(first17)
        assert pseudonym(key, "resident-id", number) != pseudonym(other, "resident-id", number)


@given(keys, other_numbers, st.sampled_from(ID_TYPES), st.sampled_from(ID_TYPES))
def test_one_number_under_two_identifier_types_gives_two_pseudonyms(
    key: OprfKey, number: str, id_type: str, other_type: str
) -> None:
    def reference(kind: str) -> str | None:
        try:
            return pseudonym(key, kind, number)
        except InvalidArgument:  # not every number is a valid resident ID
            return None

    first, second = reference(id_type), reference(other_type)
    if id_type != other_type and first is not None and second is not None:
        assert first != second


@given(first17s)
def test_a_valid_resident_id_is_accepted_and_every_other_check_character_refused(
    first17: str,
) -> None:
    valid = with_check(first17)
    assert normalise("resident-id", valid) == valid
    for wrong in set("0123456789X") - {valid[17]}:
        with pytest.raises(InvalidArgument, match="check digit is wrong") as refused:
            normalise("resident-id", first17 + wrong)
        assert first17 not in str(refused.value)


@given(
    st.sampled_from(ID_TYPES),
    st.text(alphabet="0123456789ABCDEFXZ -", min_size=6),
    st.data(),
)
def test_error_messages_never_contain_the_identifier(
    id_type: str, text: str, data: st.DataObject
) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    number = text[:cut] + "/" + text[cut:]  # a slash: malformed for every identifier type
    with pytest.raises(InvalidArgument) as refused:
        pseudonym(KEY, id_type, number)
    assert number not in str(refused.value)
    for part in (text[:cut], text[cut:], "".join(text.split())):
        assert len(part.strip()) < 6 or part.strip() not in str(refused.value)


def test_the_key_file_is_private_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "pseudonym" / "oprf.key"
    key = oprf.generate_key()
    save_key(key, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_key(path) == key
    assert os.listdir(path.parent) == ["oprf.key"]  # no temporary file left behind


def test_an_existing_key_is_never_overwritten_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "oprf.key"
    key, other = oprf.generate_key(), oprf.generate_key()
    save_key(key, path)
    with pytest.raises(PreconditionFailed, match="never overwritten"):
        save_key(other, path)
    assert load_key(path) == key
    save_key(other, path, replace=True)
    assert load_key(path) == other
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["oprf.key"]


def test_a_key_written_concurrently_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "oprf.key"
    key = oprf.generate_key()
    save_key(key, path)
    # Another process wrote its key after this one looked: the write itself must refuse.
    monkeypatch.setattr(Path, "exists", lambda self: False)
    with pytest.raises(PreconditionFailed, match="never overwritten"):
        save_key(oprf.generate_key(), path)
    monkeypatch.undo()
    assert load_key(path) == key
    assert os.listdir(tmp_path) == ["oprf.key"]


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        pytest.param(None, NotFound, "no OPRF key", id="a missing key file is not found"),
        pytest.param(b"", InvalidArgument, "is not an OPRF key", id="an empty key file is refused"),
        pytest.param(bytes(32), InvalidArgument, "is not an OPRF key", id="a zero scalar is refused"),
        pytest.param(b"\x01" * 32 + b"\n", InvalidArgument, "is not an OPRF key", id="a key file with a trailing byte is refused"),
    ],
)  # fmt: skip
def test_a_bad_key_file_is_refused(
    tmp_path: Path, content: bytes | None, error: type[Exception], message: str
) -> None:
    path = tmp_path / "oprf.key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        load_key(path)
