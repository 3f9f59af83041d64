"""Private data collections on the embedded network: only member organisations' peers hold the
values; others hold hashes. HospA and HospB are members of `shared`; HospA alone of
`hospAOnly` (blockToLive 2); the regulator and HospC are not members."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.conftest import CONFIG

from medalliance.audit.verify import verify_ledger
from medalliance.errors import ContractError, InvalidArgument, NotFound, PreconditionFailed
from medalliance.node.channel import namespace_policy, rebuild_state
from medalliance.node.config import NetworkConfig
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.node.peer import Peer

CHANNEL = "alliance"
SECRET = b"blood type AB- for patient 4711"
COLLECTIONS = [
    {
        "name": "shared",
        "policy": "OR('HospAMSP.member', 'HospBMSP.member')",
        "requiredPeerCount": 1,
        "maxPeerCount": 2,
        "blockToLive": 0,
        "memberOnlyRead": True,
        "memberOnlyWrite": True,
    },
    {
        "name": "hospAOnly",
        "policy": "OR('HospAMSP.member')",
        "requiredPeerCount": 0,
        "maxPeerCount": 1,
        "blockToLive": 2,
        "memberOnlyRead": True,
        "memberOnlyWrite": False,
        "endorsementPolicy": {"signaturePolicy": "OR('HospAMSP.peer')"},
    },
]


def _config() -> NetworkConfig:
    config = copy.deepcopy(CONFIG)
    config["channels"][0]["contracts"].append(  # type: ignore[index]
        {
            "name": "notes",
            "package": "tests.private_contract:PrivateNotes",
            "endorsement_policy": "OR('HospAMSP.peer', 'HospBMSP.peer')",
            "collections": COLLECTIONS,
        }
    )
    return NetworkConfig.model_validate(config)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pdc") / "net"
    EmbeddedNetwork.open(_config(), directory).close()
    return directory


@pytest.fixture
def network(template: Path, tmp_path: Path) -> Iterator[EmbeddedNetwork]:
    shutil.copytree(template, tmp_path / "net")
    with EmbeddedNetwork.open(_config(), tmp_path / "net") as net:
        yield net


def peer_of(network: EmbeddedNetwork, msp_id: str) -> Peer:
    return next(p for p in network.peers if p.msp_id == msp_id)


def files_contain(peer: Peer, needle: bytes) -> list[str]:
    return [
        str(path.relative_to(peer.directory))
        for path in peer.directory.rglob("*")
        if path.is_file() and needle in path.read_bytes()
    ]


def put(network: EmbeddedNetwork, msp: str, collection: str, key: str, value: bytes) -> int:
    result = network.client(msp).submit(
        CHANNEL, "notes", "Put", collection, key, transient={"value": value}
    )
    return result.code


def test_members_hold_the_value_non_members_only_its_hash(network: EmbeddedNetwork) -> None:
    assert put(network, "HospAMSP", "shared", "p4711", SECRET) == 0
    for msp in ("HospAMSP", "HospBMSP"):
        held = peer_of(network, msp).channel(CHANNEL).private
        assert held is not None
        value = held.get_private("notes", "shared", "p4711")
        assert value is not None
        assert value.value == SECRET
    assert network.client("HospBMSP").evaluate(CHANNEL, "notes", "Get", "shared", "p4711") == SECRET
    # a non-member's client is refused (memberOnlyRead); its peer has the hash only
    with pytest.raises(ContractError, match="read access"):
        network.client("HospCMSP").evaluate(CHANNEL, "notes", "Get", "shared", "p4711")
    digest = network.client("HospCMSP").evaluate(CHANNEL, "notes", "Hash", "shared", "p4711")
    assert digest.decode() == hashlib.sha256(SECRET).hexdigest()
    network.close()
    for msp in ("HospCMSP", "RegMSP"):
        assert files_contain(peer_of(network, msp), SECRET) == []
    assert files_contain(peer_of(network, "HospBMSP"), SECRET)  # the scan can find it


def test_a_non_member_client_cannot_write_a_member_only_write_collection(
    network: EmbeddedNetwork,
) -> None:
    code = put(network, "HospCMSP", "shared", "p1", b"forged by an outsider")
    assert code == 10  # ENDORSEMENT_POLICY_FAILURE
    held = peer_of(network, "HospAMSP").channel(CHANNEL).private
    assert held is not None
    assert held.get_private("notes", "shared", "p1") is None


def test_purge_removes_the_value_and_its_history(network: EmbeddedNetwork) -> None:
    assert put(network, "HospAMSP", "shared", "p9", b"first value 1") == 0
    assert put(network, "HospAMSP", "shared", "p9", b"second value 2") == 0
    purged = network.client("HospAMSP").submit(CHANNEL, "notes", "Purge", "shared", "p9")
    assert purged.valid
    for msp in ("HospAMSP", "HospBMSP"):
        peer = peer_of(network, msp)
        assert network.client(msp).evaluate(CHANNEL, "notes", "Get", "shared", "p9") == b""
    network.close()
    for msp in ("HospAMSP", "HospBMSP"):
        peer = peer_of(network, msp)
        assert files_contain(peer, b"first value 1") == []
        assert files_contain(peer, b"second value 2") == []


def test_block_to_live_expires_the_value_at_the_right_height(network: EmbeddedNetwork) -> None:
    client = network.client("HospAMSP")
    assert put(network, "HospAMSP", "hospAOnly", "k", b"short-lived") == 0
    held = peer_of(network, "HospAMSP").channel(CHANNEL).private
    assert held is not None
    for i in range(2):  # written at block n: readable through block n + 2
        assert held.get_private("notes", "hospAOnly", "k") is not None
        assert client.submit(CHANNEL, "notes", "Touch", f"t{i}").valid
    assert held.get_private("notes", "hospAOnly", "k") is not None
    assert client.submit(CHANNEL, "notes", "Touch", "t2").valid  # block n + 3
    assert held.get_private("notes", "hospAOnly", "k") is None


def test_required_peer_count_is_enforced_at_endorsement(network: EmbeddedNetwork) -> None:
    network.unreachable.add(peer_of(network, "HospBMSP").name)
    network.unreachable.add(peer_of(network, "HospAMSP").name)
    with pytest.raises(PreconditionFailed, match="requiredPeerCount is 1"):
        put(network, "HospAMSP", "shared", "p5", SECRET)


def test_a_peer_that_missed_the_data_reconciles_from_another_member(
    network: EmbeddedNetwork,
) -> None:
    a_peer, b_peer = peer_of(network, "HospAMSP"), peer_of(network, "HospBMSP")
    tx_id, _ = network.client("HospAMSP").submit_async(
        CHANNEL, "notes", "Put", "shared", "p5", transient={"value": SECRET}
    )
    # HospB's peer loses what it received (as if its disk was replaced) and, while it commits,
    # HospA's peer is unreachable: it commits the hashes with a gap
    db = sqlite3.connect(b_peer.directory / "private" / "collections" / f"{CHANNEL}.db")
    with db:
        db.execute("DELETE FROM transient")
    db.close()
    network.unreachable.add(a_peer.name)
    network.cut_blocks(CHANNEL)
    held = b_peer.channel(CHANNEL).private
    assert held is not None
    assert [(g.tx_id, g.collection) for g in held.missing()] == [(tx_id, "shared")]
    assert held.get_private("notes", "shared", "p5") is None
    with pytest.raises(ContractError, match="not available"):  # the hash is ahead of the value
        network.client("HospBMSP").evaluate(CHANNEL, "notes", "Get", "shared", "p5")
    network.unreachable.clear()  # back: the next attempt fetches it from HospA's peer
    assert b_peer.reconcile_private(CHANNEL) == 1
    assert held.missing() == []
    assert network.client("HospBMSP").evaluate(CHANNEL, "notes", "Get", "shared", "p5") == SECRET


def test_a_non_member_fetch_or_push_gets_nothing(network: EmbeddedNetwork) -> None:
    assert put(network, "HospAMSP", "shared", "p7", SECRET) == 0
    a_peer = peer_of(network, "HospAMSP")
    ledger = a_peer.channel(CHANNEL)
    location = _tx_ids(a_peer)[-1]
    assert a_peer.serve_private(CHANNEL, "HospCMSP", location, "notes", "shared") is None
    assert a_peer.serve_private(CHANNEL, "HospBMSP", location, "notes", "shared") is not None
    # a replayed push of a committed transaction's set is not taken
    assert ledger.private is not None
    assert not a_peer.receive_private(CHANNEL, "HospBMSP", location, b"")


def _tx_ids(peer: Peer) -> list[str]:
    from medalliance.ledger.tx import parse_envelope

    ledger = peer.channel(CHANNEL)
    block = ledger.store.get_block(ledger.height - 1)
    return [parse_envelope(bytes(d)).tx_id for d in block.data.data]


def test_rebuild_and_verify_pass_with_private_data(network: EmbeddedNetwork) -> None:
    assert put(network, "HospAMSP", "shared", "p8", SECRET) == 0
    assert put(network, "HospAMSP", "hospAOnly", "k", b"gone soon") == 0
    for i in range(3):  # the hospAOnly value expires: not an integrity failure
        assert network.client("HospAMSP").submit(CHANNEL, "notes", "Touch", f"e{i}").valid
    held = peer_of(network, "HospAMSP").channel(CHANNEL).private
    assert held is not None
    assert held.get_private("notes", "hospAOnly", "k") is None
    network.close()
    for peer in network.peers:  # members and non-members alike
        ledger_dir = peer.directory / "ledgers" / CHANNEL
        before = verify_ledger(ledger_dir, namespace_policy)
        assert before.intact, before.bad
        rebuilt = rebuild_state(ledger_dir)
        assert rebuilt.state_hash == before.state_hash
        assert verify_ledger(ledger_dir, namespace_policy).intact


def test_forged_pushes_are_never_kept_and_cannot_flood(network: EmbeddedNetwork) -> None:
    from medalliance.node.private_dissemination import filter_for

    b_peer, c_peer = peer_of(network, "HospBMSP"), peer_of(network, "HospCMSP")
    tx_id, _ = network.client("HospAMSP").submit_async(
        CHANNEL, "notes", "Put", "shared", "p6", transient={"value": SECRET}
    )
    held = b_peer.channel(CHANNEL).private
    assert held is not None
    (real,) = held.transient(tx_id)
    forged = real.replace(SECRET, b"forged type AB- for patient 666")
    assert filter_for(forged, [("notes", "shared")])
    assert b_peer.receive_private(CHANNEL, "HospAMSP", tx_id, forged)
    assert not c_peer.receive_private(CHANNEL, "HospAMSP", tx_id, real)  # not a member
    assert not b_peer.receive_private(CHANNEL, "HospCMSP", tx_id, forged)  # sender not a member
    assert not b_peer.receive_private(CHANNEL, "HospAMSP", tx_id, b"\xff garbage")
    floods = [forged.replace(b"666", f"{i:03}".encode()) for i in range(3)]
    assert [b_peer.receive_private(CHANNEL, "HospAMSP", tx_id, f) for f in floods] == [
        True,
        True,
        False,
    ]
    network.cut_blocks(CHANNEL)
    value = held.get_private("notes", "shared", "p6")
    assert value is not None
    assert value.value == SECRET
    assert held.transient(tx_id) == []
    network.close()
    assert files_contain(b_peer, b"forged type") == []


# --- the PrivateData service's collection methods, as another process would call them -----------


def _call(network: EmbeddedNetwork, method: str, signer_msp: str, **fields: str) -> object:
    from medalliance.node.collection_service import CollectionService, signed_collection_request

    service = CollectionService(peer_of(network, "HospAMSP"), network.now)
    signer = peer_of(network, signer_msp).signer
    purpose = fields.pop("purpose", "fetchCollection" if method == "fetch" else "pushCollection")
    rwset = fields.pop("rwset", "")
    message: dict[str, str] = {
        **signed_collection_request(signer, purpose, CHANNEL, fields.pop("tx_id"), network.now(),
                                    **fields),
    }  # fmt: skip
    if rwset:
        message["rwset"] = rwset
    data = json.dumps(message).encode()
    return service.fetch(data) if method == "fetch" else service.push(data)


def test_the_collection_service_answers_members_only(network: EmbeddedNetwork) -> None:
    assert put(network, "HospAMSP", "shared", "p3", SECRET) == 0
    tx_id = _tx_ids(peer_of(network, "HospAMSP"))[-1]
    found = _call(network, "fetch", "HospBMSP", tx_id=tx_id, namespace="notes", collection="shared")
    assert isinstance(found, dict)
    assert SECRET in base64.b64decode(found["rwset"])
    with pytest.raises(NotFound):  # the regulator's peer is not a member
        _call(network, "fetch", "RegMSP", tx_id=tx_id, namespace="notes", collection="shared")
    with pytest.raises(InvalidArgument, match="signed for 'fetchCollection'"):
        _call(network, "fetch", "HospBMSP", tx_id=tx_id, namespace="notes",
              collection="shared", purpose="pushCollection")  # fmt: skip
    # a replayed push of a committed transaction's set is refused, and a push whose set is not
    # the signed one too
    data = base64.b64encode(found["rwset"].encode()).decode()
    with pytest.raises(InvalidArgument, match="signature covers"):
        _call(network, "push", "HospBMSP", tx_id=tx_id, rwset=data, rwsetSha256="00")
    assert _call(network, "push", "HospBMSP", tx_id=tx_id, rwset=found["rwset"],
                 rwsetSha256=hashlib.sha256(base64.b64decode(found["rwset"])).hexdigest()) == {
        "held": False
    }  # fmt: skip


def test_a_peer_stopped_between_state_and_private_data_completes_on_restart(
    network: EmbeddedNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medalliance.node.collection_store import CollectionStore

    b_peer = peer_of(network, "HospBMSP")
    held = b_peer.channel(CHANNEL).private
    assert held is not None
    network.client("HospAMSP").submit_async(
        CHANNEL, "notes", "Put", "shared", "p2", transient={"value": SECRET}
    )

    def crash(self: CollectionStore, *args: object) -> object:
        if self is held:
            raise RuntimeError("killed between the block's state and its private data")
        return original(self, *args)

    original = CollectionStore.apply_block
    monkeypatch.setattr(CollectionStore, "apply_block", crash)
    with pytest.raises(RuntimeError, match="killed"):
        network.cut_blocks(CHANNEL)
    monkeypatch.setattr(CollectionStore, "apply_block", original)
    height = b_peer.channel(CHANNEL).height
    assert held.savepoint == height - 2  # the block is stored, its private side is not
    assert held.get_private("notes", "shared", "p2") is None
    network.close()
    directory = network.layout.directory
    with EmbeddedNetwork.open(_config(), directory) as again:
        reopened = peer_of(again, "HospBMSP").channel(CHANNEL).private
        assert reopened is not None
        assert reopened.savepoint == height - 1
        value = reopened.get_private("notes", "shared", "p2")
        assert value is not None
        assert value.value == SECRET


def test_a_non_member_peer_alone_cannot_endorse_a_write_to_a_collection(
    network: EmbeddedNetwork,
) -> None:
    """HospB's peer is not a member of hospAOnly, whose policy wants HospA's peer: its
    endorsement alone (enough for the contract's policy) is refused at commit."""
    from medalliance.ledger.tx import new_signed_proposal, new_transaction_payload, sign_envelope

    client = network.signer("HospBMSP")
    signed, tx_id = new_signed_proposal(
        client, channel_id=CHANNEL, chaincode="notes", args=[b"Put", b"hospAOnly", b"k"],
        nonce=os.urandom(24), timestamp_ms=int(network.now().timestamp() * 1000),
        transient={"value": b"written by an outsider"},
    )  # fmt: skip
    endorsed = peer_of(network, "HospBMSP").endorse(signed, now=network.now())
    assert endorsed.ok, endorsed.result.message
    payload = new_transaction_payload(endorsed.proposal, [endorsed.response])
    network.broadcast(CHANNEL, sign_envelope(payload, client))
    network.cut_blocks(CHANNEL)
    assert network.client("HospBMSP").status(CHANNEL, tx_id).code == 10
    held = peer_of(network, "HospAMSP").channel(CHANNEL).private
    assert held is not None
    assert held.get_private("notes", "hospAOnly", "k") is None
    network.close()  # the non-member endorser passed the value on without keeping it
    assert files_contain(peer_of(network, "HospBMSP"), b"written by an outsider") == []


def test_chaincode_approve_refuses_a_bad_collections_config(
    network: EmbeddedNetwork, tmp_path: Path
) -> None:
    from tests.networks import cli

    bad = tmp_path / "collections_config.json"
    bad.write_text(json.dumps([{**COLLECTIONS[0], "requiredPeerCount": 3}]))
    refused = cli("chaincode", "approve", "--org", "HospA", "-C", CHANNEL, "-n", "ext",
                  "-v", "1", "--sequence", "1", "--package-id", "ext_1:" + "ab" * 32,
                  "--policy", "OR('HospAMSP.peer')", "--collections-config", str(bad),
                  "--dir", str(network.layout.directory), check=False)  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "maxPeerCount (2) cannot be less than requiredPeerCount (3)" in refused.stderr
