"""What a committed record means to a holder: digest AND wrapped keys bound; erasure by state."""

from __future__ import annotations

import dataclasses
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from medalliance.contracts import create_composite_key
from medalliance.errors import InvalidArgument, NotFound, PermissionDenied, PreconditionFailed
from medalliance.privacy import record_ledger
from medalliance.privacy.envelope import SealedPackage, WrappedKey, add_recipients, seal
from medalliance.privacy.keys import RecipientKey, key_id
from medalliance.privacy.record_ledger import (
    CommittedVersion,
    check_package,
    committed_version,
    erased_records,
    record_key,
    version_key,
)

KEYS = {m: ec.generate_private_key(ec.SECP256R1()) for m in ("AMSP", "BMSP", "RegMSP", "CMSP")}


def recipient(msp_id: str) -> RecipientKey:
    public = KEYS[msp_id].public_key()
    return RecipientKey(msp_id, key_id(public), public)


def package() -> SealedPackage:
    orgs = ("AMSP", "BMSP", "RegMSP")
    return seal(b"clinical", record_id="R-1", version=1, recipients=[recipient(o) for o in orgs])


def committed(sealed: SealedPackage) -> CommittedVersion:
    return CommittedVersion(
        "R-1", 1, sealed.digest, (), ("AMSP", "BMSP", "RegMSP"), sealed.key_commitments
    )


def test_keys_are_laid_out_as_the_contract_builds_them() -> None:
    assert record_key("R-1") == create_composite_key("record", ["R-1"])
    assert version_key("R-1", 3) == create_composite_key("recordversion", ["R-1", "0000000003"])


def test_a_package_matching_digest_and_every_wrapped_key_is_kept() -> None:
    sealed = package()
    check_package(committed(sealed), sealed, "BMSP")


def swapped(sealed: SealedPackage) -> SealedPackage:
    """The regulator's wrapped key replaced by one its holder chose (same length)."""
    other = seal(b"x", record_id="R-1", version=1, recipients=[recipient("RegMSP")]).wrapped[0]
    kept = [w for w in sealed.wrapped if w.msp_id != "RegMSP"]
    return dataclasses.replace(
        sealed, wrapped=(*kept, WrappedKey("RegMSP", other.key_id, other.enc))
    )


@pytest.mark.parametrize(
    ("change", "keeper", "error", "message"),
    [
        pytest.param(swapped, "AMSP", InvalidArgument, "wrapped keys for RegMSP", id="a swapped wrapped key is refused"),
        pytest.param(lambda p: add_recipients(p, "AMSP", {recipient("AMSP").key_id: KEYS["AMSP"]}, [recipient("CMSP")]), "AMSP", InvalidArgument, "wrapped keys for CMSP", id="an uncommitted extra key is refused"),
        pytest.param(lambda p: dataclasses.replace(p, ciphertext=p.ciphertext[:-1] + bytes([p.ciphertext[-1] ^ 1])), "AMSP", InvalidArgument, "does not match the digest", id="another ciphertext is refused"),
        pytest.param(lambda p: p, "CMSP", PermissionDenied, "CMSP is not authorised", id="a non-party keeps nothing"),
        pytest.param(lambda p: dataclasses.replace(p, wrapped=p.wrapped[:1]), "BMSP", InvalidArgument, "no wrapped key for BMSP", id="a copy the keeper cannot open is refused"),
    ],
)  # fmt: skip
def test_a_package_that_differs_from_the_ledger_is_refused(
    change: object, keeper: str, error: type[Exception], message: str
) -> None:
    sealed = package()
    assert callable(change)
    with pytest.raises(error, match=message):
        check_package(committed(sealed), change(sealed), keeper)


def test_a_record_registered_without_commitments_keeps_nothing() -> None:
    sealed = package()
    legacy = dataclasses.replace(committed(sealed), key_commitments={})
    with pytest.raises(InvalidArgument, match="without wrapped-key commitments"):
        check_package(legacy, sealed, "AMSP")


def test_a_grant_extends_a_copy_and_nothing_else_does() -> None:
    sealed = package()
    own = {recipient("AMSP").key_id: KEYS["AMSP"]}
    granted = add_recipients(sealed, "AMSP", own, [recipient("CMSP")])
    assert granted.extends(sealed)
    assert not sealed.extends(granted)  # dropping a key is not an extension
    assert not swapped(sealed).extends(sealed)


def state(values: dict[str, object]) -> record_ledger.Lookup:
    return lambda key: json.dumps(values[key]).encode() if key in values else None


def test_committed_version_reads_current_rights_and_refuses_erased_records() -> None:
    version = {"digest": "d", "attachments": [], "keys": {"AMSP": "k"}}
    record = {"authorised": ["AMSP", "CMSP"], "erased": False}
    lookup = state({record_key("R-1"): record, version_key("R-1", 1): version})
    assert committed_version(lookup, "R-1", 1).authorised == ("AMSP", "CMSP")
    with pytest.raises(NotFound, match="version 2 of record R-1 is not committed"):
        committed_version(lookup, "R-1", 2)
    erased = state({record_key("R-1"): {**record, "erased": True}, version_key("R-1", 1): version})
    with pytest.raises(PreconditionFailed, match="record R-1 was erased"):
        committed_version(erased, "R-1", 1)


@pytest.mark.parametrize(
    ("writes", "erased"),
    [
        pytest.param([("records", record_key("R-1"), b'{"erased":true}')], ["R-1"], id="a committed erased record"),
        pytest.param([("records", record_key("R-1"), b'{"erased":false}')], [], id="a committed live record"),
        pytest.param([], [], id="a transaction that writes nothing (an event alone)"),
        pytest.param([("other", record_key("R-1"), b'{"erased":true}')], [], id="another namespace"),
        pytest.param([("records", version_key("R-1", 1), b'{"erased":true}')], [], id="a version key"),
        pytest.param([("records", record_key("R-1"), None)], [], id="a delete"),
        pytest.param([("records", record_key("R-1"), b"not json")], [], id="a value that is not a record"),
    ],
)  # fmt: skip
def test_erasure_follows_committed_writes_only(
    writes: list[tuple[str, str, bytes | None]], erased: list[str]
) -> None:
    assert erased_records(writes) == erased
