"""The memory of verified signatures (identity/verified.py) and ImplicitMeta's early exit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import NOW, Org

from medalliance.errors import InvalidIdentity
from medalliance.identity.msp import MspManager
from medalliance.identity.policy import decide_implicit_meta, evaluate_implicit_meta
from medalliance.identity.signing import Signer
from medalliance.identity.verified import VERIFIED, VerifiedSignatures, remember_own_signature

MESSAGE = b"a transaction payload"


def test_a_verified_signature_is_verified_once(org1: Org, msps: MspManager) -> None:
    signer = org1.signer("alice")
    identity = msps.deserialize(signer.serialized_identity, at=NOW)
    signature = signer.sign(MESSAGE)
    before = VERIFIED.verified
    assert identity.verify(signature, MESSAGE)
    assert identity.verify(signature, MESSAGE)
    assert VERIFIED.verified == before + 1


def test_a_forged_signature_with_a_cached_creator_still_fails(org1: Org, msps: MspManager) -> None:
    """The hostile member replays a creator whose real signature is remembered, with a forged
    signature, or the real signature over other bytes: both are verified and refused."""
    signer = org1.signer("alice")
    identity = msps.deserialize(signer.serialized_identity, at=NOW)
    signature = signer.sign(MESSAGE)
    assert identity.verify(signature, MESSAGE)
    forged = org1.signer("mallory").sign(MESSAGE)
    assert not identity.verify(forged, MESSAGE)
    assert not identity.verify(signature, MESSAGE + b" with one more write")
    assert not identity.verify(signature[:-1] + bytes([signature[-1] ^ 1]), MESSAGE)


def test_a_remembered_signature_does_not_pass_for_another_identity(
    org1: Org, org2: Org, msps: MspManager
) -> None:
    alice = org1.signer("alice")
    signature = alice.sign(MESSAGE)
    assert msps.deserialize(alice.serialized_identity, at=NOW).verify(signature, MESSAGE)
    other = msps.deserialize(org2.signer("bob").serialized_identity, at=NOW)
    assert not other.verify(signature, MESSAGE)


def test_an_expired_certificate_fails_though_its_signature_is_remembered(
    org1: Org, msps: MspManager
) -> None:
    """The memory answers only "does this signature verify"; validity is checked on each use."""
    signer = org1.signer("brief", valid_days=1)
    signature = signer.sign(MESSAGE)
    assert msps.deserialize(signer.serialized_identity, at=NOW).verify(signature, MESSAGE)
    with pytest.raises(InvalidIdentity):
        msps.deserialize(signer.serialized_identity, at=NOW + dt.timedelta(days=3))


def test_an_own_signature_is_remembered_without_a_verification(org1: Org, msps: MspManager) -> None:
    """A peer's own endorsement, remembered when it signs, is not verified again at commit."""
    peer = org1.signer("peer0", ou="peer")
    identity = msps.deserialize(peer.serialized_identity, at=NOW)
    signature = peer.sign(MESSAGE)
    assert remember_own_signature(identity, peer, signature, MESSAGE)
    before = VERIFIED.verified
    assert identity.verify(signature, MESSAGE)
    assert VERIFIED.verified == before


def test_an_own_signature_covers_only_the_bytes_signed(org1: Org, msps: MspManager) -> None:
    """The hostile member reuses the peer's remembered endorsement over other bytes, or forges
    one in the peer's name: each is verified, and refused."""
    peer = org1.signer("peer1", ou="peer")
    identity = msps.deserialize(peer.serialized_identity, at=NOW)
    signature = peer.sign(MESSAGE)
    remember_own_signature(identity, peer, signature, MESSAGE)
    before = VERIFIED.verified
    assert not identity.verify(signature, MESSAGE + b" with one more write")
    assert not identity.verify(org1.signer("mallory").sign(MESSAGE), MESSAGE)
    assert not identity.verify(signature[:-1] + bytes([signature[-1] ^ 1]), MESSAGE)
    assert VERIFIED.verified == before + 3


def test_a_signer_whose_key_is_not_the_identitys_is_not_remembered(
    org1: Org, msps: MspManager
) -> None:
    """A signer holding another key than its certificate's (a misconfigured peer) signs what
    would not verify: nothing is remembered, and the signature fails when checked."""
    peer = org1.signer("peer2", ou="peer")
    identity = msps.deserialize(peer.serialized_identity, at=NOW)
    wrong_key = Signer(peer.msp_id, peer.cert_pem, org1.signer("other", ou="peer").private_key)
    signature = wrong_key.sign(MESSAGE)
    assert not remember_own_signature(identity, wrong_key, signature, MESSAGE)
    assert not remember_own_signature(identity, object(), signature, MESSAGE)
    assert not identity.verify(signature, MESSAGE)


def test_only_successes_are_kept_and_the_table_is_bounded() -> None:
    table = VerifiedSignatures(max_entries=2)
    calls: list[bytes] = []

    def check(sig: bytes, ok: bool) -> bool:
        return table.check(b"id", sig, MESSAGE, lambda: calls.append(sig) is None and ok)

    assert not check(b"bad", False)
    assert not check(b"bad", False)  # a failure is never remembered: verified again
    for sig in (b"s1", b"s2", b"s3", b"s3", b"s2"):
        assert check(sig, True)
    assert check(b"s1", True)  # evicted (oldest first): verified again
    assert calls == [b"bad", b"bad", b"s1", b"s2", b"s3", b"s1"]


def _counted(results: list[bool], drawn: list[int]) -> Iterator[bool]:
    for result in results:
        drawn.append(1)
        yield result


@pytest.mark.parametrize(
    ("rule", "results", "draws"),
    [
        pytest.param("ANY", [True, False, False, False], 1, id="ANY stops at the first pass"),
        pytest.param("ALL", [True, False, True, True], 2, id="ALL stops at the first failure"),
        pytest.param("MAJORITY", [True, True, True, False], 3, id="MAJORITY once a majority"),
        pytest.param("MAJORITY", [False, False, True, True], 2, id="MAJORITY once out of reach"),
        pytest.param("ANY", [], 0, id="nothing to draw"),
    ],
)
def test_implicit_meta_stops_once_decided(rule: str, results: list[bool], draws: int) -> None:
    drawn: list[int] = []
    verdict = decide_implicit_meta(rule, len(results), _counted(results, drawn))  # type: ignore[arg-type]
    assert verdict is evaluate_implicit_meta(rule, results)  # type: ignore[arg-type]
    assert len(drawn) == draws


@given(st.sampled_from(["ANY", "ALL", "MAJORITY"]), st.lists(st.booleans(), max_size=9))
def test_early_exit_gives_the_counting_verdict(rule: str, results: list[bool]) -> None:
    n = len(results)
    threshold = {"ANY": 1, "ALL": n, "MAJORITY": n // 2 + 1}[rule] if n else 0
    assert decide_implicit_meta(rule, n, iter(results)) is (sum(results) >= threshold)  # type: ignore[arg-type]
