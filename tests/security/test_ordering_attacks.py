"""Issue 11, items 7 and 8, played as an attacker against real ordering node processes.

The network is Fabric's test network with four BFT ordering nodes (networks/bft-test-network.yaml,
n = 4, f = 1). The attacker holds what a hostile member holds: its peers' and users' TLS and
signing keys, and — for the messages that must get past the consenter check — one ordering
node's TLS key (a Byzantine consenter, or a stolen TLS key without the node's signing key).
Every attack asserts the refusal and that nothing changed: the target's round and height, its
health, and in the end that every ordering node holds the same chain.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.orderer import ab_pb2, ab_pb2_grpc

from medalliance.app.session import connect_as
from medalliance.consensus.messages import Certificate, Decision, Kind, Status, Value, Vote
from medalliance.identity.cryptogen import load_signer
from medalliance.identity.signing import Signer
from medalliance.ledger.block import header_hash, new_block
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.commit_certificate import read_certificate
from medalliance.ledger.seek import new_seek_envelope
from medalliance.ledger.tx import compute_tx_id
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.consensus_wire import encode
from medalliance.node.consenter_batches import encode as batch
from medalliance.node.launcher import nodes_of
from medalliance.sdk import Contract
from tests.conftest import make_org
from tests.networks import REPO, cli, running, wait_until, with_free_ports

BFT_NETWORK = REPO / "networks" / "bft-test-network.yaml"
CHANNEL = "mychannel"
ORDERERS = [f"orderer{i}.example.com" for i in range(4)]
TARGET = ORDERERS[0]
WAIT_S = 60.0
CALL_TIMEOUT_S = 10.0
OK = grpc.StatusCode.OK


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("ordering-attacks")
    with running(with_free_ports(BFT_NETWORK, base / "network.yaml"), base) as directory:
        yield directory


@pytest.fixture(scope="module")
def layout(network: Path) -> NetworkLayout:
    return NetworkLayout.load(network)


@pytest.fixture(scope="module")
def contract(layout: NetworkLayout) -> Iterator[Contract]:
    with connect_as(layout, "Org1") as gateway:
        yield gateway.get_network(CHANNEL).get_contract("basic")


# --- the attacker's tools ----------------------------------------------------------------------


def tls_pair(layout: NetworkLayout, who: str) -> tuple[bytes, bytes]:
    """(certificate, key) PEM of a TLS identity of the network folder."""
    paths = {
        "peer0.org1": (layout.peer_dir("Org1MSP", "peer0") / "tls", "server"),
        "User1@org1": (layout.user_dir("Org1MSP", "User1") / "tls", "client"),
        "Admin@orderer-org": (layout.user_dir("OrdererMSP", "Admin") / "tls", "client"),
        **{o: (layout.orderer_dir("OrdererMSP", o.split(".")[0]) / "tls", "server") for o in ORDERERS},
    }  # fmt: skip
    folder, stem = paths[who]
    return (folder / f"{stem}.crt").read_bytes(), (folder / f"{stem}.key").read_bytes()


def orderer_channel(layout: NetworkLayout, target: str, as_who: str | None) -> grpc.Channel:
    """A TLS channel to the target's cluster port presenting `as_who`'s client certificate, or
    to its client port presenting none."""
    (node,) = (n for n in layout.config.organization("OrdererOrg").orderers
               if f"{n.name}.example.com" == target)  # fmt: skip
    ca = (layout.orderer_dir("OrdererMSP", node.name) / "tls" / "ca.crt").read_bytes()
    if as_who is None:
        credentials, endpoint = grpc.ssl_channel_credentials(ca), node.endpoint
    else:
        cert, key = tls_pair(layout, as_who)
        credentials, endpoint = grpc.ssl_channel_credentials(ca, key, cert), node.cluster_endpoint
    return grpc.secure_channel(
        endpoint, credentials, options=(("grpc.ssl_target_name_override", target),)
    )


def consensus_call(
    layout: NetworkLayout,
    method: str,
    payload: bytes,
    *,
    as_who: str | None,
    target: str = TARGET,
    raw: bool = False,
) -> tuple[grpc.StatusCode, str]:
    """Send the target's consensus service `payload` (a batch of one message or envelope;
    `raw`: the body as given) as the one message of a stream (`as_who` None: on the client
    port, without a client certificate); the status code and details it ends with."""
    with orderer_channel(layout, target, as_who) as channel:
        call = channel.stream_unary(
            f"/medalliance.Consensus/{method}",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        try:
            body = payload if raw else batch([payload])
            call(iter([CHANNEL.encode() + b"\x00" + body]), timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def signing_key(layout: NetworkLayout, who: str) -> Signer:
    if who == "peer0.org1":
        return load_signer(layout.peer_dir("Org1MSP", "peer0") / "msp", "Org1MSP")
    return load_signer(layout.orderer_dir("OrdererMSP", who.split(".")[0]) / "msp", "OrdererMSP")


def status_of(layout: NetworkLayout, name: str, path: str = "/status") -> tuple[int, Any]:
    node = next(n for n in nodes_of(layout) if n.name == name)
    try:
        with urllib.request.urlopen(f"http://{node.operations}{path}", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def consensus_of(layout: NetworkLayout, name: str = TARGET) -> dict[str, Any]:
    return status_of(layout, name)[1]["consensus"][CHANNEL]  # type: ignore[no-any-return]


def dropped(layout: NetworkLayout, reason: str) -> int:
    return int(consensus_of(layout)["messagesDropped"].get(reason, 0))


def heights(layout: NetworkLayout) -> dict[str, int]:
    return {name: status_of(layout, name)[1]["channels"][CHANNEL] for name in ORDERERS}


def commit_some(contract: Contract, prefix: str, count: int = 2) -> None:
    for i in range(count):
        contract.submit_transaction("CreateAsset", f"{prefix}-{i}", "blue", "5", "Tom", "100")


def assert_target_orders_with_the_others(layout: NetworkLayout, contract: Contract) -> None:
    before = heights(layout)[TARGET]
    commit_some(contract, f"after-{before}")
    wait_until(lambda: len(set(heights(layout).values())) == 1, "every ordering node level")
    assert heights(layout)[TARGET] >= before + 2
    code, health = status_of(layout, TARGET, "/healthz")
    assert (code, health["status"]) == (200, "OK")
    assert consensus_of(layout)["failures"] == 0


# --- item 7: who may speak consensus -----------------------------------------------------------


@pytest.mark.parametrize("method", ["Step", "Forward", "Messages"])
@pytest.mark.parametrize("who", ["peer0.org1", "User1@org1", "Admin@orderer-org"])
def test_a_non_consenter_tls_certificate_is_refused_by_step_and_forward(
    layout: NetworkLayout, contract: Contract, who: str, method: str
) -> None:
    commit_some(contract, f"warm-{who}-{method}", 1)
    wait_until(lambda: len(set(heights(layout).values())) == 1, "every ordering node level")
    before = consensus_of(layout)
    if method == "Step":  # a STATUS that would have skipped the target to round 1000
        status = Status(CHANNEL, before["height"], 1000, ORDERERS[1])
        payload = encode(status)
    else:
        payload = b"not a transaction"
    code, details = consensus_call(layout, method, payload, as_who=who)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert f"may call medalliance.Consensus/{method}" in details
    assert "is not in any consenter mapping" in details  # refused before reading
    assert_untouched(layout, before)


def assert_untouched(layout: NetworkLayout, before: dict[str, Any]) -> None:
    """The refused call never reached the channel: same height, round, mempool, drops."""
    after = consensus_of(layout)
    keys = ("height", "round", "mempool", "messagesDropped")
    assert {k: after[k] for k in keys} == {k: before[k] for k in keys}


@pytest.mark.parametrize("method", ["Step", "Forward"])
def test_a_consensus_call_without_a_client_certificate_on_the_client_port_is_refused(
    layout: NetworkLayout, contract: Contract, method: str
) -> None:
    commit_some(contract, f"anonymous-{method}", 1)
    wait_until(lambda: len(set(heights(layout).values())) == 1, "every ordering node level")
    before = consensus_of(layout)
    status = Status(CHANNEL, before["height"], 1000, ORDERERS[1])
    payload = encode(status) if method == "Step" else b"not a tx"
    code, details = consensus_call(layout, method, payload, as_who=None)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert (
        f"medalliance.Consensus/{method} is served on the ordering node's cluster port" in details
    )
    assert "dial the cluster port" in details
    assert_untouched(layout, before)


def test_a_consenter_tls_certificate_is_let_through(layout: NetworkLayout) -> None:
    status = Status(CHANNEL, 1, 0, ORDERERS[3])  # an old, unsigned STATUS: dropped, not denied
    before = dropped(layout, "unsigned")
    assert consensus_call(layout, "Step", encode(status), as_who=ORDERERS[3])[0] == OK
    wait_until(lambda: dropped(layout, "unsigned") == before + 1, "the STATUS counted dropped")


@pytest.mark.parametrize(
    ("method", "body"),
    [
        *(
            pytest.param(method, body, id=f"{method} {name}")
            for method in ("Step", "Forward", "Messages")
            for name, body in (
                ("empty", b""),
                ("the former JSON body", b'["bm90IGEgdHg="]'),
                ("truncated", batch([b"x" * 64])[:-1]),
            )
        ),
        pytest.param("Messages", batch([b"x" * 64]), id="Messages an item of no known kind"),
    ],
)
def test_a_malformed_batch_from_a_consenter_is_refused_and_counted(
    layout: NetworkLayout, contract: Contract, body: bytes, method: str
) -> None:
    before = status_of(layout, TARGET)[1]["consenterCalls"]["malformed"].get(ORDERERS[3], 0)
    code, details = consensus_call(layout, method, body, as_who=ORDERERS[3], raw=True)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"medalliance.Consensus/{method}: malformed batch body" in details
    malformed = status_of(layout, TARGET)[1]["consenterCalls"]["malformed"]
    assert malformed[ORDERERS[3]] == before + 1
    assert_target_orders_with_the_others(layout, contract)


# --- item 7: forged STATUS ---------------------------------------------------------------------


def forged_statuses(layout: NetworkLayout, height: int) -> list[tuple[str, Status, str]]:
    """(TLS identity used, message, the reason it must be dropped for)."""
    member = signing_key(layout, "peer0.org1")
    attackers = ORDERERS[2:]  # f + 1 = 2 senders: enough for rule K if they were believed
    found = []
    for sender in attackers:
        unsigned = Status(CHANNEL, height, 1000, sender)
        found.append((sender, unsigned, "unsigned"))
        by_member = replace(unsigned, round=2000, signature=member.sign(unsigned.signed_bytes()))
        found.append((sender, by_member, "bad-signature"))
    outsider = Status(CHANNEL, height, 3000, "peer0.org1.example.com")
    outsider = replace(outsider, signature=member.sign(outsider.signed_bytes()))
    found.append((ORDERERS[3], outsider, "wrong-sender"))
    return found


def test_forged_status_messages_do_not_move_the_round(
    layout: NetworkLayout, contract: Contract
) -> None:
    commit_some(contract, "before-status", 1)
    wait_until(lambda: len(set(heights(layout).values())) == 1, "every ordering node level")
    before = consensus_of(layout)
    forged = forged_statuses(layout, before["height"])
    counts = {reason: dropped(layout, reason) for _, _, reason in forged}
    for sender, message, _ in forged:
        assert consensus_call(layout, "Step", encode(message), as_who=sender)[0] == OK
    for reason in counts:
        expected = counts[reason] + sum(1 for *_, r in forged if r == reason)
        wait_until(lambda r=reason, e=expected: dropped(layout, r) >= e, f"{reason} counted")  # type: ignore[misc]
    after = consensus_of(layout)
    assert (after["height"], after["round"]) == (before["height"], before["round"])
    assert_target_orders_with_the_others(layout, contract)


# --- what Broadcast and Deliver answer hostile input (the error table's Fabric column) ----------


def hostile_envelope(layout: NetworkLayout, case: str) -> common_pb2.Envelope:
    """A seek envelope with a nonce (so that Broadcast's header check gets to the signature) as a
    member (User1 of Org1) or an outsider sends it, spoiled by `case`."""
    signer: Signer = load_signer(layout.user_msp_dir("Org1MSP", "User1"), "Org1MSP")
    if case == "foreign identity":
        signer = make_org("Org1MSP").signer("Eve")  # Org1's MSP id, another CA
    payload = common_pb2.Payload.FromString(
        new_seek_envelope(
            signer,
            channel_id="nochannel" if case == "unknown channel" else CHANNEL,
            start_block=0,
            timestamp_ms=int(dt.datetime.now(dt.UTC).timestamp() * 1000),
            behavior=ab_pb2.SeekInfo.FAIL_IF_NOT_READY,
        ).payload
    )
    payload.header.signature_header = common_pb2.SignatureHeader(
        creator=signer.serialized_identity, nonce=os.urandom(24)
    ).SerializeToString()
    signed = payload.SerializeToString()
    if case == "forged signature":  # the member's genuine signature, of other bytes
        return common_pb2.Envelope(payload=signed, signature=signer.sign(b"another payload"))
    if case == "malformed payload":
        return common_pb2.Envelope(payload=b"\x0a\xff", signature=signer.sign(b"\x0a\xff"))
    return common_pb2.Envelope(payload=signed, signature=signer.sign(signed))


@pytest.mark.parametrize(
    ("case", "broadcast", "deliver"),
    [
        ("malformed payload", "BAD_REQUEST", "BAD_REQUEST"),
        ("unknown channel", "NOT_FOUND", "NOT_FOUND"),
        ("forged signature", "FORBIDDEN", "FORBIDDEN"),
        ("foreign identity", "FORBIDDEN", "FORBIDDEN"),
        # Broadcast orders transactions, not seeks: a member's genuine seek is a bad request
        ("genuine seek", "BAD_REQUEST", None),
    ],
)
def test_broadcast_and_deliver_answer_hostile_input_with_fabrics_status(
    layout: NetworkLayout, case: str, broadcast: str, deliver: str | None
) -> None:
    wait_until(lambda: len(set(heights(layout).values())) == 1, "every ordering node level")
    before = heights(layout)
    envelope = hostile_envelope(layout, case)
    with orderer_channel(layout, TARGET, None) as channel:  # the client port, as Fabric's SDKs
        stub = ab_pb2_grpc.AtomicBroadcastStub(channel)
        (answer,) = list(stub.Broadcast(iter([envelope]), timeout=CALL_TIMEOUT_S))
        assert common_pb2.Status.Name(answer.status) == broadcast, answer.info
        if deliver is not None:
            (refusal,) = list(stub.Deliver(iter([envelope]), timeout=CALL_TIMEOUT_S))
            assert refusal.WhichOneof("Type") == "status"
            assert common_pb2.Status.Name(refusal.status) == deliver
    assert heights(layout) == before


def test_broadcast_bytes_that_are_no_envelope_end_the_call_as_fabrics_orderer_does(
    layout: NetworkLayout,
) -> None:
    """Broadcast takes each envelope as bytes (admission parses it once); bytes protobuf cannot
    decode end the call with INTERNAL, as Fabric's orderer answers a request gRPC cannot
    unmarshal (grpc.aio's own decoding answered UNKNOWN); nothing is ordered."""
    before = heights(layout)
    with orderer_channel(layout, TARGET, None) as channel:
        broadcast = channel.stream_stream("/orderer.AtomicBroadcast/Broadcast")
        with pytest.raises(grpc.RpcError) as ended:
            list(broadcast(iter([b"\x0a\xff\xff"]), timeout=CALL_TIMEOUT_S))
    assert ended.value.code() == grpc.StatusCode.INTERNAL
    assert heights(layout)[TARGET] == before[TARGET]


def writer_transaction(
    layout: NetworkLayout, stamped: dt.datetime
) -> tuple[common_pb2.Envelope, str]:
    """A writer's (Org1 User1) genuinely signed endorser transaction with no actions, stamped
    `stamped`, and its tx id: what Broadcast admission judges, not what a peer would validate."""
    signer = load_signer(layout.user_msp_dir("Org1MSP", "User1"), "Org1MSP")
    payload = common_pb2.Payload.FromString(hostile_envelope(layout, "genuine seek").payload)
    nonce = common_pb2.SignatureHeader.FromString(payload.header.signature_header).nonce
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    header.type = common_pb2.ENDORSER_TRANSACTION
    header.tx_id = compute_tx_id(nonce, signer.serialized_identity)
    header.timestamp.FromDatetime(stamped)
    payload.header.channel_header = header.SerializeToString()
    payload.data = b""
    signed = payload.SerializeToString()
    return common_pb2.Envelope(payload=signed, signature=signer.sign(signed)), header.tx_id


def test_a_transaction_stamped_years_ahead_is_refused_and_the_channel_orders_on(
    layout: NetworkLayout, contract: Contract
) -> None:
    """A writer's genuine transaction stamped in the year 3000: were it admitted, every block
    holding it would be judged at that time (creators long expired) and refused while it waited
    in every node's pool. Broadcast answers BAD_REQUEST naming the clock; nothing is kept."""
    wait_until(lambda: len(set(heights(layout).values())) == 1, "every ordering node level")
    envelope, _ = writer_transaction(layout, dt.datetime(3000, 1, 1))
    before = consensus_of(layout)["mempool"]
    with orderer_channel(layout, TARGET, None) as channel:
        stub = ab_pb2_grpc.AtomicBroadcastStub(channel)
        (answer,) = list(stub.Broadcast(iter([envelope]), timeout=CALL_TIMEOUT_S))
    assert common_pb2.Status.Name(answer.status) == "BAD_REQUEST", answer.info
    assert "ahead of this ordering node's clock" in answer.info
    assert consensus_of(layout)["mempool"] == before
    assert_target_orders_with_the_others(layout, contract)


def test_an_unusually_encoded_envelope_is_ordered_in_its_canonical_encoding(
    layout: NetworkLayout, contract: Contract
) -> None:
    """A writer's genuine envelope whose payload field comes twice, junk first (protobuf keeps
    the last): it is admitted for the payload it signed, and the block holds the envelope as
    Fabric's orderer re-encodes it, never the client's bytes, so every reader of the block
    parses one payload whatever its parser does with repeated fields."""
    wait_until(lambda: len(set(heights(layout).values())) == 1, "every ordering node level")
    canonical, tx_id = writer_transaction(layout, dt.datetime.now(dt.UTC))
    junk = common_pb2.Envelope(payload=b"not what was signed").SerializeToString()
    unusual = junk + canonical.SerializeToString()  # field 1 twice: the last one counts
    assert common_pb2.Envelope.FromString(unusual) == canonical
    first = heights(layout)[TARGET]
    with orderer_channel(layout, TARGET, None) as channel:
        broadcast = channel.stream_stream("/orderer.AtomicBroadcast/Broadcast")
        (answer,) = [
            ab_pb2.BroadcastResponse.FromString(a)
            for a in broadcast(iter([unusual]), timeout=CALL_TIMEOUT_S)
        ]
    assert common_pb2.Status.Name(answer.status) == "SUCCESS", answer.info

    def holding() -> list[bytes]:
        for number in range(first, heights(layout)[TARGET]):
            data = list(fetch_block(layout, TARGET, number).data.data)
            for envelope in data:
                if tx_id.encode() in envelope:
                    return [envelope]
        return []

    wait_until(lambda: bool(holding()), "the transaction ordered into a block")
    assert holding() == [canonical.SerializeToString()]
    assert_target_orders_with_the_others(layout, contract)


def test_a_forwarded_transaction_with_a_forged_signature_is_verified_and_dropped(
    layout: NetworkLayout, contract: Contract
) -> None:
    """A consenter's Forward is admitted on its own merits: the target verifies the signature
    itself (one ECDSA verification, counted) and keeps nothing."""
    wait_until(lambda: len(set(heights(layout).values())) == 1, "every ordering node level")
    before = consensus_of(layout)["signaturesVerified"]["transactions"]
    process_before = status_of(layout, TARGET)[1]["signatures"]["verified"]
    forged = hostile_envelope(layout, "forged signature").SerializeToString()
    assert consensus_call(layout, "Forward", forged, as_who=ORDERERS[3])[0] == OK
    after = consensus_of(layout)  # Forward answers once its envelopes were judged
    assert after["signaturesVerified"]["transactions"] == before + 1
    assert after["mempool"] == 0
    assert status_of(layout, TARGET)[1]["signatures"]["verified"] >= process_before + 1
    assert_target_orders_with_the_others(layout, contract)


# --- item 8: a genuine certificate beside another body ------------------------------------------


def fetch_block(layout: NetworkLayout, source: str, number: int) -> common_pb2.Block:
    signer = signing_key(layout, "peer0.org1")
    with orderer_channel(layout, source, "peer0.org1") as channel:
        seek = new_seek_envelope(
            signer,
            channel_id=CHANNEL,
            start_block=number,
            timestamp_ms=int(dt.datetime.now(dt.UTC).timestamp() * 1000),
        )
        stream = ab_pb2_grpc.AtomicBroadcastStub(channel).Deliver(iter([seek]), timeout=WAIT_S)
        for response in stream:
            assert response.WhichOneof("Type") == "block", response
            stream.cancel()
            return response.block
    raise AssertionError(f"{source} delivered no block {number}")


def consenter_name(serialized_identity: bytes) -> str:
    identity = identities_pb2.SerializedIdentity.FromString(serialized_identity)
    cert = x509.load_pem_x509_certificate(identity.id_bytes)
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def swapped_decision(block: common_pb2.Block, sender: str) -> Decision:
    """DECISION(h) with block h's genuine certificate and header, and another body."""
    number = int(block.header.number)
    certificate = read_certificate(block)
    assert certificate is not None
    value_id = header_hash(block.header)
    votes = tuple(
        Vote(Kind.PRECOMMIT, CHANNEL, number, certificate.round, value_id, consenter_name(i), s)
        for i, s in certificate.signatures
    )
    body = new_block(number, bytes(block.header.previous_hash), [b"not the ordered transactions"])
    body.header.CopyFrom(block.header)  # the certified header, over a body it does not hash
    return Decision(
        CHANNEL, number, Value(value_id, body.SerializeToString()), Certificate(votes), sender
    )


def test_a_decision_with_a_genuine_certificate_and_a_swapped_body_is_rejected(
    layout: NetworkLayout, contract: Contract
) -> None:
    wait_until(lambda: len(set(heights(layout).values())) == 1, "every ordering node level")
    target_pid = status_of(layout, TARGET)[1]["pid"]
    height = heights(layout)[TARGET]
    before = dropped(layout, "bad-block")
    os.kill(target_pid, signal.SIGSTOP)  # the target stays at `height` while the others decide it
    try:
        commit_some(contract, "while-stopped", 1)
        block = fetch_block(layout, ORDERERS[1], height)
        forged = encode(swapped_decision(block, ORDERERS[3]))
        answers: list[grpc.StatusCode] = []
        sender = threading.Thread(
            target=lambda: answers.append(
                consensus_call(layout, "Step", forged, as_who=ORDERERS[3])[0]
            )
        )
        # Sent while the node is stopped, so it may meet the forgery still at `height` (before
        # the fix, deciding it killed its consensus task); it must be refused at any height.
        sender.start()
    finally:
        os.kill(target_pid, signal.SIGCONT)
    sender.join(CALL_TIMEOUT_S + 5)
    assert answers == [OK]
    wait_until(lambda: dropped(layout, "bad-block") == before + 1, "the forged DECISION refused")
    assert_target_orders_with_the_others(layout, contract)


def test_every_ordering_node_holds_the_same_chain(network: Path, layout: NetworkLayout) -> None:
    wait_until(lambda: len(set(heights(layout).values())) == 1, "every ordering node level")
    cli("network", "down", "--dir", str(network))
    chains = {}
    for name in ORDERERS:
        store = BlockStore.open(network / "nodes" / name / "ledgers" / CHANNEL / "blocks")
        try:
            chains[name] = [header_hash(store.get_block(i).header) for i in range(store.height)]
        finally:
            store.close()
    assert len({tuple(chain) for chain in chains.values()}) == 1
    cli("network", "up", "--dir", str(network))  # the fixture's teardown takes it down
