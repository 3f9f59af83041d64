"""The platform in one process: lifecycle, endorsement, ordering, validation, and bad input."""

from __future__ import annotations

import json
import os

import pytest
from fabric_protos.common import common_pb2
from fabric_protos.peer import proposal_pb2, transaction_pb2
from tests.conftest import make_org

from medalliance.errors import (
    BadSignature,
    ContractError,
    DuplicateTransaction,
    InvalidArgument,
    InvalidIdentity,
    PermissionDenied,
    PreconditionFailed,
    UnknownChannel,
    UnknownContract,
)
from medalliance.identity.cryptogen import load_signer
from medalliance.identity.signing import Signer
from medalliance.identity.verified import VERIFIED
from medalliance.ledger.block import header_hash, new_block
from medalliance.ledger.commit_certificate import precommit_bytes, write_certificate
from medalliance.ledger.tx import new_signed_proposal, new_transaction_payload, sign_envelope
from medalliance.node.embedded import Client, EmbeddedNetwork

CODE = transaction_pb2.TxValidationCode
PATIENT = "0123456789abcdef0123456789abcdef"


def heights(network: EmbeddedNetwork, channel: str = "alliance") -> set[int]:
    return {p.channel(channel).height for p in network.peers_of(channel)}


def state_hashes(network: EmbeddedNetwork, channel: str = "alliance") -> set[bytes]:
    return {p.channel(channel).state.state_hash() for p in network.peers_of(channel)}


def test_the_lifecycle_committed_the_contract_by_majority(network: EmbeddedNetwork) -> None:
    definition = json.loads(
        network.client("HospCMSP").evaluate(
            "alliance", "_lifecycle", "QueryChaincodeDefinition", "visit"
        )
    )
    assert (definition["name"], definition["sequence"], definition["deregistered"]) == (
        "visit",
        1,
        False,
    )


def test_submit_commits_on_every_peer_and_evaluate_reads_it(network: EmbeddedNetwork) -> None:
    result = network.client("HospCMSP").submit(
        "alliance", "visit", "RegisterVisit", "V-1", PATIENT, "HospCMSP"
    )
    assert result.valid
    assert json.loads(result.payload)["hospital"] == "HospCMSP"
    assert len(heights(network)) == 1
    assert len(state_hashes(network)) == 1
    record = json.loads(network.client("RegMSP").evaluate("alliance", "visit", "GetVisit", "V-1"))
    assert record["patientRef"] == PATIENT


def test_a_refused_call_writes_nothing(network: EmbeddedNetwork) -> None:
    before = (heights(network), state_hashes(network))
    with pytest.raises(ContractError, match="cannot register a visit for HospCMSP"):
        network.client("HospBMSP").submit(
            "alliance", "visit", "RegisterVisit", "V-2", PATIENT, "HospCMSP"
        )
    with pytest.raises(ContractError, match="RegisterVisit takes 3 arguments, got 1"):
        network.client("HospCMSP").submit("alliance", "visit", "RegisterVisit", "V-2")
    with pytest.raises(ContractError, match="pseudonym"):
        network.client("HospCMSP").submit(
            "alliance", "visit", "RegisterVisit", "V-2", "Zhang San 3201", "HospCMSP"
        )
    assert (heights(network), state_hashes(network)) == before


def create_asset(client: Client, asset_id: str) -> None:
    client.submit("alliance", "basic", "CreateAsset", asset_id, "blue", "5", "HospC", "300")


def test_conflicting_transfers_of_one_asset_commit_exactly_once(network: EmbeddedNetwork) -> None:
    holder = network.client("HospCMSP")
    create_asset(holder, "asset3")
    first, _ = holder.submit_async("alliance", "basic", "TransferAsset", "asset3", "HospA")
    second, _ = holder.submit_async("alliance", "basic", "TransferAsset", "asset3", "HospB")
    network.cut_blocks()
    codes = [holder.status("alliance", tx).code for tx in (first, second)]
    assert codes == [CODE.Value("VALID"), CODE.Value("MVCC_READ_CONFLICT")]
    record = json.loads(holder.evaluate("alliance", "basic", "ReadAsset", "asset3"))
    assert record["Owner"] == "HospA"


def test_transfers_of_different_assets_never_conflict(network: EmbeddedNetwork) -> None:
    holder = network.client("HospCMSP")
    for i in range(4):
        holder.submit_async("alliance", "basic", "CreateAsset", f"P-{i}", "red", "1", "HospC", "9")
    network.cut_blocks()
    txs = [
        holder.submit_async("alliance", "basic", "TransferAsset", f"P-{i}", "HospA")[0]
        for i in range(4)
    ]
    network.cut_blocks()
    assert {holder.status("alliance", tx).code for tx in txs} == {CODE.Value("VALID")}


def visit_proposal(
    network: EmbeddedNetwork, signer: Signer, visit: str, hospital: str
) -> tuple[proposal_pb2.SignedProposal, str]:
    return new_signed_proposal(
        signer,
        channel_id="alliance",
        chaincode="visit",
        args=[b"RegisterVisit", visit.encode(), PATIENT.encode(), hospital.encode()],
        nonce=os.urandom(24),
        timestamp_ms=int(network.now().timestamp() * 1000),
    )


def endorsed_envelope(network: EmbeddedNetwork, msp: str, visit: str) -> tuple[bytes, str]:
    client = network.client(msp)
    signed, tx_id = visit_proposal(network, client.signer, visit, msp)
    endorsers = network.endorsers_for("alliance", "visit")
    responses = [p.endorse(signed, now=network.now()) for p in endorsers]
    payload = new_transaction_payload(responses[0].proposal, [r.response for r in responses])
    return sign_envelope(payload, client.signer), tx_id


def test_a_peer_does_not_verify_its_own_endorsement_again(network: EmbeddedNetwork) -> None:
    """The endorsement a peer signs is remembered (identity/verified.py), so its validation at
    commit makes no second ECDSA verification; the same signature over a tampered payload is
    verified and refused."""
    client = network.client("HospCMSP")
    signed, _ = visit_proposal(network, client.signer, "V-own", "HospCMSP")
    peer = network.endorsers_for("alliance", "visit")[0]
    response = peer.endorse(signed, now=network.now()).response
    endorsement, payload = response.endorsement, response.payload
    msps = peer.channel("alliance").config.msps
    endorser = msps.deserialize(endorsement.endorser, at=network.now())
    before = VERIFIED.verified
    assert endorser.verify(endorsement.signature, payload + endorsement.endorser)
    assert VERIFIED.verified == before
    assert not endorser.verify(endorsement.signature, payload + b"!" + endorsement.endorser)
    assert VERIFIED.verified == before + 1


def test_a_member_that_may_not_write_is_refused_whatever_was_endorsed_before(
    network: EmbeddedNetwork,
) -> None:
    """Hostile member: HospA's ordering node is a valid HospA identity but not a Writer. The
    endorser asks the Writers policy of the creator it has just validated (no second
    verification): a client's endorsement just before, of the same organisation, must not let
    the orderer identity through, nor the orderer's refusal stop the client."""
    peer = network.endorsers_for("alliance", "visit")[0]
    client = network.client("HospAMSP").signer
    for turn in range(2):
        signed, _ = visit_proposal(network, client, f"V-w{turn}", "HospAMSP")
        assert peer.endorse(signed, now=network.now()).ok
        signed, _ = visit_proposal(network, consenter(network), f"V-o{turn}", "HospAMSP")
        with pytest.raises(PermissionDenied, match="may not write to channel alliance"):
            peer.endorse(signed, now=network.now())


def deliver_raw_block(network: EmbeddedNetwork, envelopes: list[bytes]) -> list[int]:
    """Order a block around admission checks, as a faulty orderer would; returns HospA's codes."""
    peer = network.peers_of("alliance")[0]
    ledger = peer.channel("alliance")
    block = new_block(
        ledger.height, header_hash(ledger.store.get_block(ledger.height - 1).header), envelopes
    )
    certify(block, consenter(network))
    codes = []
    for p in network.peers_of("alliance"):
        copy = common_pb2.Block()
        copy.CopyFrom(block)
        codes = list(p.deliver(copy).codes)
    return codes


def consenter(network: EmbeddedNetwork) -> Signer:
    """The network's one ordering node (HospA's orderer0): its certificate alone is a quorum."""
    return load_signer(network.layout.orderer_dir("HospAMSP", "orderer0") / "msp", "HospAMSP")


def certify(block: common_pb2.Block, signer: Signer) -> None:
    signature = signer.sign(precommit_bytes("alliance", block, 0))
    write_certificate(
        block, round=0, signatures=[(signer.serialized_identity, signature)], last_config=0
    )


def test_a_block_not_certified_by_a_consenter_is_refused(network: EmbeddedNetwork) -> None:
    peer = network.peers_of("alliance")[0]
    ledger = peer.channel("alliance")
    envelope, _ = endorsed_envelope(network, "HospCMSP", "V-9")
    block = new_block(
        ledger.height, header_hash(ledger.store.get_block(ledger.height - 1).header), [envelope]
    )
    certify(block, network.signer("HospAMSP", "Admin"))  # a member, not a consenter
    with pytest.raises(PermissionDenied, match="not from a consenter of the channel"):
        peer.deliver(block)
    signer = consenter(network)
    round0 = signer.sign(precommit_bytes("alliance", block, 0))
    write_certificate(  # a real precommit of round 0, claimed for round 1
        block, round=1, signatures=[(signer.serialized_identity, round0)], last_config=0
    )
    with pytest.raises(PermissionDenied, match=r"the signature of orderer0\.hospa\.example\.com"):
        peer.deliver(block)
    certify(block, signer)
    assert list(peer.deliver(block).codes) == [CODE.Value("VALID")]


def test_a_block_whose_transactions_or_link_changed_is_refused_and_not_stored(
    network: EmbeddedNetwork,
) -> None:
    # The commit checks the link against the stored tip's hash and the data hash once, before
    # anything is written; the block store then trusts that check.
    peer = network.peers_of("alliance")[0]
    ledger = peer.channel("alliance")
    height, tip = ledger.height, ledger.store.last_header_hash
    envelope, _ = endorsed_envelope(network, "HospCMSP", "V-link")
    other, _ = endorsed_envelope(network, "HospCMSP", "V-link2")
    swapped = new_block(height, tip, [envelope])
    certify(swapped, consenter(network))
    swapped.data.data[0] = other  # certified, then its transaction replaced
    with pytest.raises(InvalidArgument, match="data hash"):
        peer.deliver(swapped)
    unlinked = new_block(height, b"\x00" * 32, [envelope])
    certify(unlinked, consenter(network))
    with pytest.raises(InvalidArgument, match="previous hash"):
        peer.deliver(unlinked)
    assert (ledger.height, ledger.store.last_header_hash) == (height, tip)
    assert deliver_raw_block(network, [envelope]) == [CODE.Value("VALID")]  # every peer


def test_replayed_transactions_are_refused_and_never_applied_twice(
    network: EmbeddedNetwork,
) -> None:
    envelope, tx_id = endorsed_envelope(network, "HospCMSP", "V-4")
    network.broadcast("alliance", envelope)
    with pytest.raises(DuplicateTransaction):
        network.broadcast("alliance", envelope)
    network.cut_blocks()
    assert deliver_raw_block(network, [envelope]) == [CODE.Value("DUPLICATE_TXID")]
    assert network.client("HospCMSP").status("alliance", tx_id).valid
    # One look-up for the whole block: a replay beside a new transaction and its own copy.
    fresh, fresh_id = endorsed_envelope(network, "HospCMSP", "V-4b")
    duplicate, valid = CODE.Value("DUPLICATE_TXID"), CODE.Value("VALID")
    codes = deliver_raw_block(network, [envelope, fresh, fresh])
    assert codes == [duplicate, valid, duplicate]
    assert network.client("HospCMSP").status("alliance", fresh_id).valid


def test_a_replayed_transaction_is_refused_while_pending_and_once_ordered(
    network: EmbeddedNetwork,
) -> None:
    envelope, tx_id = endorsed_envelope(network, "HospCMSP", "W-1")
    network.broadcast("alliance", envelope)
    with pytest.raises(DuplicateTransaction):  # waiting in the replicas' pending transactions
        network.broadcast("alliance", envelope)
    network.cut_blocks()
    with pytest.raises(DuplicateTransaction):  # in the chain
        network.broadcast("alliance", envelope)
    network.cut_blocks()
    status = network.client("HospCMSP").status("alliance", tx_id)
    assert status.valid
    ledger = network.peers_of("alliance")[0].channel("alliance")
    assert ledger.height == status.block_number + 1  # the replay made no block


def test_a_tampered_signature_or_policy_failure_is_recorded_invalid(
    network: EmbeddedNetwork,
) -> None:
    envelope, _ = endorsed_envelope(network, "HospCMSP", "V-5")
    parsed = common_pb2.Envelope()
    parsed.ParseFromString(envelope)
    parsed.signature = network.signer("HospBMSP").sign(parsed.payload)
    with pytest.raises(BadSignature):
        network.broadcast("alliance", parsed.SerializeToString())
    # Endorsed only by the secondary hospital, which the policy does not accept.
    client = network.client("HospCMSP")
    signed, _ = visit_proposal(network, client.signer, "V-6", "HospCMSP")
    secondary = next(p for p in network.peers if p.msp_id == "HospCMSP")
    endorsed = secondary.endorse(signed, now=network.now())
    weak = sign_envelope(
        new_transaction_payload(endorsed.proposal, [endorsed.response]), client.signer
    )
    before = state_hashes(network)
    codes = deliver_raw_block(network, [parsed.SerializeToString(), weak])
    assert codes == [CODE.Value("BAD_CREATOR_SIGNATURE"), CODE.Value("ENDORSEMENT_POLICY_FAILURE")]
    assert state_hashes(network) == before


def test_bad_requests_get_typed_errors_and_the_peer_keeps_serving(network: EmbeddedNetwork) -> None:
    peer = network.peers_of("alliance")[0]
    with pytest.raises(InvalidArgument):
        peer.endorse(
            proposal_pb2.SignedProposal(proposal_bytes=b"\xff\x00garbage"), now=network.now()
        )
    with pytest.raises(UnknownChannel):
        network.client("HospCMSP").evaluate("nochannel", "visit", "GetVisit", "V-1")
    with pytest.raises(UnknownContract, match="no contract 'nope'"):
        network.client("HospCMSP").evaluate("alliance", "nope", "Get")
    stranger = make_org("HospCMSP").signer("mallory")
    signed, _ = new_signed_proposal(
        stranger,
        channel_id="alliance",
        chaincode="visit",
        args=[b"GetVisit", b"V-1"],
        nonce=os.urandom(24),
        timestamp_ms=int(network.now().timestamp() * 1000),
    )
    with pytest.raises(InvalidIdentity, match="not issued by a CA of HospCMSP"):
        peer.endorse(signed, now=network.now())
    assert (
        network.client("HospCMSP")
        .submit("alliance", "visit", "RegisterVisit", "V-7", PATIENT, "HospCMSP")
        .valid
    )


def test_non_members_cannot_join_read_or_endorse_a_channel(network: EmbeddedNetwork) -> None:
    hosp_c = next(p for p in network.peers if p.msp_id == "HospCMSP")
    assert "tertiary" not in hosp_c.channel_ids
    genesis = network.peers_of("tertiary")[0].channel("tertiary").store.get_block(0)
    with pytest.raises(PermissionDenied, match="not a member of channel tertiary"):
        hosp_c.join(genesis)
    with pytest.raises(UnknownChannel):
        hosp_c.channel("tertiary")
    with pytest.raises(InvalidIdentity, match="unknown MSP"):
        network.peers_of("tertiary")[0].endorse(
            new_signed_proposal(
                network.signer("HospCMSP"),
                channel_id="tertiary",
                chaincode="x",
                args=[b"f"],
                nonce=os.urandom(24),
                timestamp_ms=0,
            )[0],
            now=network.now(),
        )


def test_a_deregistered_contract_can_no_longer_be_invoked(network: EmbeddedNetwork) -> None:
    members = ["HospAMSP", "HospBMSP", "HospCMSP", "RegMSP"]
    for msp in members[:2]:
        network.client(msp, "Admin").submit(
            "alliance", "_lifecycle", "ApproveDeregistrationForMyOrg", "visit", "2"
        )
    with pytest.raises(ContractError, match="has 2 of the 3 approvals it needs"):
        network.client("HospAMSP", "Admin").submit(
            "alliance", "_lifecycle", "CommitDeregistration", "visit", "2"
        )
    network.client("RegMSP", "Admin").submit(
        "alliance", "_lifecycle", "ApproveDeregistrationForMyOrg", "visit", "2"
    )
    # HospC's peer reads the definition at the height the deregistration commits onto (peers
    # keep it per block: ledger/committed_reads.py); the block after must not be served from it.
    network.client("HospCMSP").evaluate("alliance", "visit", "PatientsAt", "HospCMSP")
    assert (
        network.client("HospAMSP", "Admin")
        .submit("alliance", "_lifecycle", "CommitDeregistration", "visit", "2")
        .valid
    )
    with pytest.raises(PreconditionFailed, match="deregistered at sequence 2"):
        network.client("HospCMSP").evaluate("alliance", "visit", "GetVisit", "V-1")


def test_only_admins_approve(network: EmbeddedNetwork) -> None:
    with pytest.raises(ContractError, match="only an admin of HospCMSP may approve"):
        network.client("HospCMSP").submit(
            "alliance", "_lifecycle", "ApproveDeregistrationForMyOrg", "visit", "2"
        )


def test_a_new_version_in_the_config_upgrades_to_the_next_sequence(
    network_template, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import copy
    import shutil

    from tests.integration.conftest import CONFIG

    from medalliance.node.config import NetworkConfig

    upgraded = copy.deepcopy(CONFIG)
    upgraded["channels"][0]["contracts"][0]["version"] = "2.0"  # type: ignore[index]
    shutil.copytree(network_template, tmp_path / "net")
    with EmbeddedNetwork.open(NetworkConfig.model_validate(upgraded), tmp_path / "net") as net:
        definition = json.loads(
            net.client("HospAMSP").evaluate(
                "alliance", "_lifecycle", "QueryChaincodeDefinition", "visit"
            )
        )
        assert (definition["sequence"], definition["version"]) == (2, "2.0")
        assert (
            net.client("HospCMSP")
            .submit("alliance", "visit", "RegisterVisit", "U-1", PATIENT, "HospCMSP")
            .valid
        )
