"""Envelope encryption: only recipients open a package, and any change or move is detected."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from medalliance.errors import InvalidArgument
from medalliance.privacy import envelope
from medalliance.privacy.envelope import (
    MAX_VERSION,
    WRAPPED_KEY_BYTES,
    SealedPackage,
    WrappedKey,
    add_recipients,
    open_package,
    remove_recipient,
    seal,
)
from medalliance.privacy.errors import NotARecipient, TamperedData
from medalliance.privacy.keys import RecipientKey, key_id

PLAINTEXT = json.dumps({"sex": "F", "age": 54, "diagnosis": "MARKER-肺结节"}).encode()


@dataclass(frozen=True)
class OrgKey:
    msp_id: str
    private_key: ec.EllipticCurvePrivateKey

    @property
    def recipient(self) -> RecipientKey:
        public = self.private_key.public_key()
        return RecipientKey(self.msp_id, key_id(public), public)

    @property
    def keys(self) -> dict[str, ec.EllipticCurvePrivateKey]:
        return {self.recipient.key_id: self.private_key}


def org_key(msp_id: str) -> OrgKey:
    return OrgKey(msp_id, ec.generate_private_key(ec.SECP256R1()))


A, B, R, C, D = (org_key(m) for m in ("HospAMSP", "HospBMSP", "RegMSP", "HospCMSP", "HospDMSP"))


def referral_package(record_id: str = "R-1", version: int = 1) -> SealedPackage:
    recipients = [A.recipient, B.recipient, R.recipient]
    return seal(PLAINTEXT, record_id=record_id, version=version, recipients=recipients)


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << (index % 8)
    return bytes(out)


def with_wrap(package: SealedPackage, msp_id: str, enc: bytes) -> SealedPackage:
    wrapped = tuple(
        dataclasses.replace(w, enc=enc) if w.msp_id == msp_id else w for w in package.wrapped
    )
    return dataclasses.replace(package, wrapped=wrapped)


def wrap_of(package: SealedPackage, msp_id: str) -> WrappedKey:
    return next(w for w in package.wrapped if w.msp_id == msp_id)


def test_every_recipient_opens_and_the_digest_is_the_ciphertexts() -> None:
    package = referral_package()
    for org in (A, B, R):
        assert open_package(package, org.msp_id, org.keys) == PLAINTEXT
    assert package.recipients == ("HospAMSP", "HospBMSP", "RegMSP")
    assert package.digest == hashlib.sha256(package.ciphertext).hexdigest()
    assert b"MARKER" not in package.to_bytes()
    assert "MARKER" not in repr(package)


def test_the_encoding_round_trips_canonically() -> None:
    package = referral_package()
    data = package.to_bytes()
    assert SealedPackage.from_bytes(data) == package
    assert SealedPackage.from_bytes(data).to_bytes() == data
    assert json.loads(data)["ciphertext"] == base64.b64encode(package.ciphertext).decode()


def test_two_seals_of_one_plaintext_differ() -> None:
    one, two = referral_package(), referral_package()
    assert one.ciphertext != two.ciphertext  # fresh data key and nonce each time


def test_an_organisation_not_sealed_for_cannot_open() -> None:
    package = referral_package()
    with pytest.raises(NotARecipient, match="HospDMSP cannot open record 'R-1' version 1"):
        open_package(package, D.msp_id, D.keys)
    with pytest.raises(NotARecipient):  # D's key under A's name is not A's key
        open_package(package, A.msp_id, D.keys)


def test_a_keyring_without_the_wrapped_key_says_which_key() -> None:
    package = referral_package()
    with pytest.raises(NotARecipient, match=f"wrapped for key {A.recipient.key_id}"):
        open_package(package, A.msp_id, {})


@pytest.mark.parametrize("region", ["nonce", "body", "tag"])
def test_a_flipped_bit_in_the_ciphertext_is_detected(region: str) -> None:
    package = referral_package()
    span = {
        "nonce": range(12),
        "body": range(12, len(package.ciphertext) - 16),
        "tag": range(len(package.ciphertext) - 16, len(package.ciphertext)),
    }[region]
    for index in span:
        tampered = dataclasses.replace(package, ciphertext=flip(package.ciphertext, index))
        with pytest.raises(TamperedData, match="failed authentication"):
            open_package(tampered, A.msp_id, A.keys)


def test_a_flipped_bit_in_a_wrapped_key_is_detected() -> None:
    package = referral_package()
    enc = wrap_of(package, A.msp_id).enc
    for index in range(len(enc)):
        tampered = with_wrap(package, A.msp_id, flip(enc, index))
        with pytest.raises(TamperedData):
            open_package(tampered, A.msp_id, A.keys)
        assert open_package(tampered, B.msp_id, B.keys) == PLAINTEXT  # others are unaffected


@pytest.mark.parametrize(
    "moved",
    [
        pytest.param({"record_id": "R-2"}, id="to another record"),
        pytest.param({"version": 2}, id="to another version"),
    ],
)
def test_a_package_moved_to_another_record_or_version_is_detected(
    moved: dict[str, object],
) -> None:
    package = dataclasses.replace(referral_package(), **moved)  # type: ignore[arg-type]
    with pytest.raises(TamperedData):
        open_package(package, A.msp_id, A.keys)


def test_the_ciphertext_itself_is_bound_to_its_record_and_version() -> None:
    """A recipient knows the data key and could re-wrap it under another record or version;
    the ciphertext still fails there, because its associated data binds both."""
    package = referral_package()
    info = envelope._wrap_info("R-1", 1, A.msp_id, A.recipient.key_id)
    data_key = envelope.SUITE.decrypt(wrap_of(package, A.msp_id).enc, A.private_key, info)
    for record_id, version in (("R-2", 1), ("R-1", 2)):
        info = envelope._wrap_info(record_id, version, A.msp_id, A.recipient.key_id)
        enc = envelope.SUITE.encrypt(data_key, A.recipient.public_key, info)
        wrapped = (WrappedKey(A.msp_id, A.recipient.key_id, enc),)
        moved = SealedPackage(record_id, version, package.ciphertext, wrapped)
        with pytest.raises(TamperedData):
            open_package(moved, A.msp_id, A.keys)


def test_only_the_ciphertext_moved_under_another_records_keys_is_detected() -> None:
    """The wrapped keys of R-2 are genuine, but the data key does not open R-1's ciphertext."""
    one, two = referral_package("R-1"), referral_package("R-2")
    moved = dataclasses.replace(two, ciphertext=one.ciphertext)
    with pytest.raises(TamperedData):
        open_package(moved, A.msp_id, A.keys)


def test_a_wrapped_key_from_another_package_is_detected() -> None:
    one, other = referral_package(), referral_package()
    spliced = with_wrap(one, A.msp_id, wrap_of(other, A.msp_id).enc)
    with pytest.raises(TamperedData):
        open_package(spliced, A.msp_id, A.keys)


def test_a_wrapped_key_relabelled_for_another_organisation_is_detected() -> None:
    package = referral_package()
    relabelled = with_wrap(package, B.msp_id, wrap_of(package, A.msp_id).enc)
    with pytest.raises(TamperedData):
        open_package(relabelled, B.msp_id, B.keys)


def test_a_truncated_ciphertext_is_detected() -> None:
    package = referral_package()
    for size in (0, 11, 12, 27, len(package.ciphertext) - 1):
        truncated = dataclasses.replace(package, ciphertext=package.ciphertext[:size])
        with pytest.raises(TamperedData):
            open_package(truncated, A.msp_id, A.keys)


def test_a_grant_lets_a_new_organisation_open_without_changing_the_ciphertext() -> None:
    package = referral_package()
    granted = add_recipients(package, A.msp_id, A.keys, [C.recipient])
    assert open_package(granted, C.msp_id, C.keys) == PLAINTEXT
    assert (granted.ciphertext, granted.digest) == (package.ciphertext, package.digest)
    assert granted.recipients == ("HospAMSP", "HospBMSP", "HospCMSP", "RegMSP")
    assert SealedPackage.from_bytes(granted.to_bytes()) == granted
    with pytest.raises(NotARecipient):
        open_package(granted, D.msp_id, D.keys)


def test_a_grant_again_rewraps_for_the_organisations_new_key() -> None:
    package = referral_package()
    rotated = OrgKey(B.msp_id, ec.generate_private_key(ec.SECP256R1()))
    granted = add_recipients(package, A.msp_id, A.keys, [rotated.recipient])
    assert wrap_of(granted, B.msp_id).key_id == rotated.recipient.key_id
    assert open_package(granted, B.msp_id, {**B.keys, **rotated.keys}) == PLAINTEXT


def test_only_a_holder_can_grant_and_only_a_genuine_package() -> None:
    package = referral_package()
    with pytest.raises(NotARecipient):
        add_recipients(package, D.msp_id, D.keys, [D.recipient])
    tampered = dataclasses.replace(package, ciphertext=flip(package.ciphertext, 20))
    with pytest.raises(TamperedData):
        add_recipients(tampered, A.msp_id, A.keys, [C.recipient])
    with pytest.raises(InvalidArgument, match="listed twice"):
        add_recipients(package, A.msp_id, A.keys, [C.recipient, C.recipient])


def test_a_revocation_removes_the_organisations_wrapped_key() -> None:
    package = referral_package()
    revoked = remove_recipient(package, B.msp_id)
    assert revoked.recipients == ("HospAMSP", "RegMSP")
    assert revoked.digest == package.digest
    with pytest.raises(NotARecipient):
        open_package(revoked, B.msp_id, B.keys)
    assert open_package(revoked, A.msp_id, A.keys) == PLAINTEXT
    assert remove_recipient(revoked, B.msp_id) == revoked  # revoking again changes nothing


def test_the_last_recipient_cannot_be_revoked() -> None:
    package = seal(PLAINTEXT, record_id="R-1", version=1, recipients=[A.recipient])
    with pytest.raises(InvalidArgument, match="erase the record"):
        remove_recipient(package, A.msp_id)


@pytest.mark.parametrize(
    ("record_id", "version", "recipients", "message"),
    [
        pytest.param("R-1", 1, [], "at least one organisation", id="no recipients"),
        pytest.param("R-1", 1, [A.recipient, A.recipient], "listed twice", id="a duplicate org"),
        pytest.param("", 1, [A.recipient], "non-empty record id", id="an empty record id"),
        pytest.param("R-1", -1, [A.recipient], "version", id="a negative version"),
        pytest.param("R-1", True, [A.recipient], "version", id="a boolean version"),
    ],
)
def test_seal_refuses(
    record_id: str, version: int, recipients: list[RecipientKey], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        seal(PLAINTEXT, record_id=record_id, version=version, recipients=recipients)


def test_large_and_empty_plaintexts_round_trip() -> None:
    for plaintext in (b"", bytes(range(256)) * 8192):
        package = seal(plaintext, record_id="R-9", version=0, recipients=[A.recipient])
        reparsed = SealedPackage.from_bytes(package.to_bytes())
        assert open_package(reparsed, A.msp_id, A.keys) == plaintext


def _document(**changes: object) -> bytes:
    document = json.loads(referral_package().to_bytes())
    document.update(changes)
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _wrapped(**changes: object) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = json.loads(referral_package().to_bytes())["wrapped"]
    entries[0] = {**entries[0], **changes}
    return entries


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe", id="not UTF-8"),
        pytest.param(b"[]", id="not an object"),
        pytest.param(b'{"format":1}', id="missing fields"),
        pytest.param(_document(extra=1), id="an unknown field"),
        pytest.param(_document(format=2), id="an unknown format"),
        pytest.param(_document(format=True), id="a boolean format"),
        pytest.param(_document(version="1"), id="a string version"),
        pytest.param(_document(version=1.0), id="a float version"),
        pytest.param(_document(version=MAX_VERSION + 1), id="a huge version"),
        pytest.param(_document(record_id=7), id="a numeric record id"),
        pytest.param(_document(ciphertext="not base64!"), id="bad base64"),
        pytest.param(_document(ciphertext="AAAA"), id="a too short ciphertext"),
        pytest.param(_document(wrapped=[]), id="no wrapped keys"),
        pytest.param(_document(wrapped=[1]), id="a wrapped key that is not an object"),
        pytest.param(_document(wrapped=_wrapped(key_id="XYZ")), id="a bad key id"),
        pytest.param(_document(wrapped=_wrapped(msp_id="")), id="an empty msp id"),
        pytest.param(_document(wrapped=_wrapped(enc="AAAA")), id="a short wrapped key"),
        pytest.param(_document(wrapped=_wrapped(extra=1)), id="an unknown wrapped-key field"),
        pytest.param(
            _document(wrapped=_wrapped(msp_id="HospBMSP")), id="an organisation listed twice"
        ),
        pytest.param(_document(wrapped=list(reversed(_wrapped()))), id="wrapped keys out of order"),
        pytest.param(referral_package().to_bytes() + b" ", id="trailing whitespace"),
        pytest.param(
            json.dumps(json.loads(referral_package().to_bytes())).encode(),
            id="a non-canonical layout",
        ),
    ],
)
def test_from_bytes_refuses_anything_but_the_canonical_encoding(data: bytes) -> None:
    with pytest.raises(InvalidArgument, match=r"malformed sealed package|record|version"):
        SealedPackage.from_bytes(data)


@given(st.binary(max_size=512))
def test_random_bytes_raise_only_invalid_argument(data: bytes) -> None:
    with pytest.raises(InvalidArgument):
        SealedPackage.from_bytes(data)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(
    st.fixed_dictionaries(
        {"format": st.just(1), "ciphertext": _JSON, "wrapped": _JSON},
        optional={"record_id": _JSON, "version": _JSON, "extra": _JSON},
    )
)
def test_random_documents_raise_only_invalid_argument(document: dict[str, object]) -> None:
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(InvalidArgument):
        SealedPackage.from_bytes(data)


_WRAPPED = st.builds(
    WrappedKey,
    msp_id=st.text(min_size=1, max_size=12),
    key_id=st.text("0123456789abcdef", min_size=16, max_size=16),
    enc=st.binary(min_size=WRAPPED_KEY_BYTES, max_size=WRAPPED_KEY_BYTES),
)


@given(
    record_id=st.text(min_size=1, max_size=20),
    version=st.integers(min_value=0, max_value=MAX_VERSION),
    ciphertext=st.binary(min_size=28, max_size=200),
    wrapped=st.lists(_WRAPPED, min_size=1, max_size=4, unique_by=lambda w: w.msp_id),
)
def test_the_encoding_round_trips(
    record_id: str, version: int, ciphertext: bytes, wrapped: list[WrappedKey]
) -> None:
    package = SealedPackage(
        record_id, version, ciphertext, tuple(sorted(wrapped, key=lambda w: w.msp_id))
    )
    assert SealedPackage.from_bytes(package.to_bytes()) == package
