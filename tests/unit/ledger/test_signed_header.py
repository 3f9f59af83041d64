"""The one check of a signed header (ledger/signed_header.py), against a hostile member."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.peer import proposal_pb2
from tests.conftest import NOW, Org

from medalliance.errors import InvalidArgument, PermissionDenied
from medalliance.identity.msp import MspManager
from medalliance.identity.signing import Signer
from medalliance.ledger.signed_header import HeaderRejected, check_signed_header
from medalliance.ledger.tx import ProposalView, new_signed_proposal, parse_signed_proposal

NOW_MS = int(NOW.timestamp() * 1000)
CONFIG_TYPE = common_pb2.HeaderType.Value("CONFIG")


@dataclass
class _Impostor:
    """Claims one identity in the header and signs with another's key."""

    serialized_identity: bytes
    signer: Signer

    def sign(self, message: bytes) -> bytes:
        return self.signer.sign(message)


def _proposal(signer: object, nonce: bytes = b"n" * 24) -> ProposalView:
    signed, _ = new_signed_proposal(
        signer,  # type: ignore[arg-type]
        channel_id="ch",
        chaincode="basic",
        args=[b"CreateAsset"],
        nonce=nonce,
        timestamp_ms=NOW_MS,
    )
    return parse_signed_proposal(signed)


def _check(view: ProposalView, msps: MspManager, at: dt.datetime = NOW, **kw: object) -> str:
    creator = check_signed_header(
        view.header,
        view.signature,
        view.proposal_bytes,
        msps,
        at=at,
        **kw,  # type: ignore[arg-type]
    )
    return creator.msp_id


def _rejected(view: ProposalView, msps: MspManager, at: dt.datetime = NOW, **kw: object) -> str:
    with pytest.raises(HeaderRejected) as refused:
        _check(view, msps, at, **kw)
    return refused.value.code


def test_a_well_formed_proposal_passes(org1: Org, msps: MspManager) -> None:
    assert _check(_proposal(org1.signer("alice")), msps, channel_id="ch") == "Org1MSP"


def test_a_forged_creator_is_refused(org1: Org, org2: Org, msps: MspManager) -> None:
    alice = org1.signer("alice")
    forged = _proposal(_Impostor(alice.serialized_identity, org2.signer("mallory")))
    assert _rejected(forged, msps) == "BAD_CREATOR_SIGNATURE"


@pytest.mark.parametrize(
    "taken",
    [
        pytest.param("signature", id="another proposal's signature, its creator verified"),
        pytest.param("proposal_bytes", id="a replayed header and signature over other bytes"),
    ],
)
def test_a_signature_over_other_bytes_is_refused(org1: Org, msps: MspManager, taken: str) -> None:
    alice = org1.signer("alice")
    view = _proposal(alice)
    _check(view, msps)  # alice's real signature is now remembered
    other = _proposal(alice, nonce=b"m" * 24)
    mixed = ProposalView(**{**_fields(view), taken: getattr(other, taken)})
    assert _rejected(mixed, msps) == "BAD_CREATOR_SIGNATURE"


def test_a_tx_id_not_derived_from_nonce_and_creator_is_refused(org1: Org, msps: MspManager) -> None:
    """Reusing a known tx id with a fresh nonce (to collide with another transaction)."""
    alice = org1.signer("alice")
    view = _proposal(alice)
    proposal = proposal_pb2.Proposal.FromString(view.proposal_bytes)
    header = common_pb2.Header.FromString(proposal.header)
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    channel_header.tx_id = "0" * 64
    header.channel_header = channel_header.SerializeToString()
    proposal.header = header.SerializeToString()
    data = proposal.SerializeToString()
    tampered = parse_signed_proposal(
        proposal_pb2.SignedProposal(proposal_bytes=data, signature=alice.sign(data))
    )
    assert _rejected(tampered, msps) == "BAD_PROPOSAL_TXID"


def test_an_expired_certificate_is_refused(org1: Org, msps: MspManager) -> None:
    signer = org1.signer("brief", valid_days=1)
    view = _proposal(signer)
    _check(view, msps)  # valid now; its signature is remembered
    later = NOW + dt.timedelta(days=3)
    with pytest.raises(PermissionDenied):
        _check(view, msps, later)
    assert _rejected(view, msps, later) == "BAD_CREATOR_SIGNATURE"


def test_a_header_of_another_type_or_channel_is_malformed(org1: Org, msps: MspManager) -> None:
    view = _proposal(org1.signer("alice"))
    assert _rejected(view, msps, header_type=CONFIG_TYPE) == "UNKNOWN_TX_TYPE"
    assert _rejected(view, msps, channel_id="other") == "TARGET_CHAIN_NOT_FOUND"
    with pytest.raises(InvalidArgument):
        _check(view, msps, channel_id="other")


def test_an_unknown_msp_is_refused(org1: Org) -> None:
    view = _proposal(org1.signer("alice"))
    assert _rejected(view, MspManager([])) == "BAD_CREATOR_SIGNATURE"


def _fields(view: ProposalView) -> dict[str, object]:
    return {name: getattr(view, name) for name in view.__dataclass_fields__}
