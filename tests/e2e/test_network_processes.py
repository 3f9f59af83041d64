"""A network of real node processes: status, the Python SDK, bad input, crash and restart."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2

from medalliance.app.session import connect_as
from medalliance.identity.cryptogen import load_signer
from medalliance.identity.signing import Signer
from medalliance.ledger.tx import new_signed_proposal
from medalliance.node import launcher
from medalliance.node.bootstrap import NetworkLayout
from medalliance.sdk import EndorseError, GatewayError
from medalliance.sdk.errors import gateway_error
from tests.conftest import make_org
from tests.networks import (
    REPO,
    TEST_NETWORK,
    cli,
    cli_json,
    gateway_stub,
    wait_until,
    with_free_ports,
)

CHANNEL, BASIC = "mychannel", "basic"
ENDORSE_FAILED = "failed to endorse transaction, see attached details for more info"
COLLECT_FAILED = (
    "failed to collect enough transaction endorsements, see attached details for more info"
)


def test_status_reports_every_node_up(network_dir: Path) -> None:
    status = cli_json("network", "status", "--dir", str(network_dir))
    nodes = {n["name"]: n for n in status["nodes"]}
    assert set(nodes) == {"orderer.example.com", "peer0.org1.example.com", "peer0.org2.example.com"}
    for node in nodes.values():
        assert node["health"] == "up"
        assert isinstance(node["pid"], int)
        assert node["height"] >= 3  # genesis + approvals + commit of `basic`
    assert nodes["peer0.org1.example.com"]["organization"] == "Org1MSP"
    assert nodes["orderer.example.com"]["role"] == "orderer"


def test_connection_profiles_point_at_the_peers(network_dir: Path) -> None:
    org1 = network_dir / "organizations/peerOrganizations/org1.example.com"
    profile = json.loads((org1 / "connection-org1.json").read_text())
    peer = profile["peers"]["peer0.org1.example.com"]
    layout = NetworkLayout.load(network_dir)
    port = layout.config.organization("Org1").peers[0].port
    assert peer["url"] == f"grpcs://localhost:{port}"
    assert "BEGIN CERTIFICATE" in peer["tlsCACerts"]["pem"]
    assert (org1 / "connection-org1.yaml").is_file()


def test_sdk_submits_evaluates_and_reports_commit_status(network_dir: Path) -> None:
    layout = NetworkLayout.load(network_dir)
    with connect_as(layout, "Org1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        contract.submit_transaction("CreateAsset", "sdk1", "blue", "5", "Tom", "300")
        asset = json.loads(contract.evaluate_transaction("ReadAsset", "sdk1"))
        assert asset == {
            "AppraisedValue": 300,
            "Color": "blue",
            "ID": "sdk1",
            "Owner": "Tom",
            "Size": 5,
        }
        submitted = contract.submit_async("TransferAsset", arguments=["sdk1", "Ana"])
        assert submitted.result == b"Tom"
        status = submitted.get_status()
        assert status.successful
        assert status.code == 0
        assert status.block_number > 0
    # The other organisation's peer committed the same block.
    with connect_as(layout, "Org2") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        deadline = time.monotonic() + 10
        while json.loads(contract.evaluate_transaction("ReadAsset", "sdk1"))["Owner"] != "Ana":
            assert time.monotonic() < deadline, "peer0.org2 did not commit the transfer"
            time.sleep(0.1)


def test_contract_errors_carry_fabric_details(network_dir: Path) -> None:
    layout = NetworkLayout.load(network_dir)
    with connect_as(layout, "Org1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        with pytest.raises(EndorseError) as endorse:
            contract.submit_transaction("DeleteAsset", "nope")
        assert endorse.value.code == grpc.StatusCode.ABORTED
        assert endorse.value.message == ENDORSE_FAILED
        # Fabric's gateway endorses on its own peer first and stops there: one detail
        peer = layout.config.organization("Org1").peers[0]
        assert [(d.address, d.msp_id, d.message) for d in endorse.value.details] == [
            (peer.endpoint, "Org1MSP", "chaincode response 500, the asset nope does not exist")
        ]
        with pytest.raises(GatewayError) as evaluate:
            contract.evaluate_transaction("ReadAsset", "nope")
        assert evaluate.value.code == grpc.StatusCode.UNKNOWN
        assert "chaincode response 500, the asset nope does not exist" in str(evaluate.value)


def _refused_endorse(layout: NetworkLayout, signed: proposal_pb2.SignedProposal) -> GatewayError:
    stub, channel = gateway_stub(layout)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            stub.Endorse(gateway_pb2.EndorseRequest(proposed_transaction=signed), timeout=30)
    finally:
        channel.close()
    return gateway_error(refused.value)


def _stale(user: Signer) -> proposal_pb2.SignedProposal:
    stale, _ = new_signed_proposal(
        user,
        channel_id=CHANNEL,
        chaincode=BASIC,
        args=[b"CreateAsset", b"stale", b"red", b"1", b"Bo", b"1"],
        nonce=os.urandom(24),
        timestamp_ms=int(time.time() * 1000) - 3_600_000,
    )
    return stale


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(
            _stale, "more than 15 minutes from the peer's clock", id="a proposal an hour old"
        ),
        pytest.param(
            lambda user: _proposal(Signer("Org2MSP", user.cert_pem, user.private_key)),
            "access denied",
            id="Org1's user claiming to be Org2MSP",
        ),
    ],
)
def test_a_proposal_the_gateways_own_peer_refuses_stops_there_with_its_one_detail(
    network_dir: Path, make: Callable[[Signer], proposal_pb2.SignedProposal], reason: str
) -> None:
    layout = NetworkLayout.load(network_dir)
    user = load_signer(layout.user_msp_dir("Org1MSP", "User1"), "Org1MSP")
    before = _heights(network_dir)
    error = _refused_endorse(layout, make(user))
    assert (error.code, error.message) == (grpc.StatusCode.ABORTED, ENDORSE_FAILED)
    ((address, msp_id, message),) = [(d.address, d.msp_id, d.message) for d in error.details]
    assert (address, msp_id) == (layout.config.organization("Org1").peers[0].endpoint, "Org1MSP")
    assert reason in message
    assert _heights(network_dir) == before  # nothing was ordered


def test_a_remote_endorser_down_after_the_local_success_is_a_failure_to_collect_enough(
    network_dir: Path,
) -> None:
    """`basic` needs both organisations (the channel's majority): with peer0.org2 killed, Org1's
    gateway endorses on its own peer, cannot reach Org2's, and says so in Fabric's words with
    Org2's peer as the one detail; nothing is ordered, and once Org2's peer is back it works."""
    layout = NetworkLayout.load(network_dir)
    org2_peer = layout.config.organization("Org2").peers[0]
    before = _heights(network_dir)["peer0.org1.example.com"]
    pid = int((network_dir / "run" / "peer0.org2.example.com.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: "Z" in _state(pid) or not Path(f"/proc/{pid}").exists(), "peer0.org2 died")
    with connect_as(layout, "Org1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        with pytest.raises(EndorseError) as refused:
            contract.submit_transaction("CreateAsset", "half-endorsed", "red", "1", "Bo", "1")
        assert (refused.value.code, refused.value.message) == (
            grpc.StatusCode.ABORTED,
            COLLECT_FAILED,
        )
        (detail,) = refused.value.details
        assert (detail.address, detail.msp_id) == (org2_peer.endpoint, "Org2MSP")
        assert detail.message.startswith("peer unavailable")
        assert contract.evaluate_transaction("AssetExists", "half-endorsed") == b"false"
    status = cli("--json", "network", "status", "--dir", str(network_dir), check=False)
    heights = {n["name"]: n["height"] for n in json.loads(status.stdout)["nodes"]}
    assert heights["peer0.org1.example.com"] == before  # nothing was ordered
    cli("network", "up", "--dir", str(network_dir))
    with connect_as(layout, "Org1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        contract.submit_transaction("CreateAsset", "fully-endorsed", "red", "1", "Bo", "1")


def test_endorsing_organisations_the_channel_does_not_have_are_refused_before_any_endorsement(
    network_dir: Path,
) -> None:
    layout = NetworkLayout.load(network_dir)
    before = _heights(network_dir)
    with connect_as(layout, "Org1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        with pytest.raises(EndorseError) as refused:
            contract.submit(
                "CreateAsset",
                arguments=["named-orgs", "red", "1", "Bo", "1"],
                endorsing_organizations=["Org1MSP", "EvilMSP"],
            )
    assert (refused.value.code, refused.value.message) == (
        grpc.StatusCode.UNAVAILABLE,
        "failed to find any endorsing peers for org(s): EvilMSP",
    )
    assert refused.value.details == ()
    assert _heights(network_dir) == before  # nothing was ordered


def _expired_user(layout: NetworkLayout) -> Signer:
    ca_dir = layout.org_dir("Org1MSP") / "ca"
    ca_cert = x509.load_pem_x509_certificate(next(ca_dir.glob("*.pem")).read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "priv_sk").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "org1.example.com"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Expired@org1.example.com"),
        ]
    )
    start = ca_cert.not_valid_before_utc
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(seconds=1))
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    assert dt.datetime.now(dt.UTC) > start + dt.timedelta(seconds=1)
    return Signer("Org1MSP", cert.public_bytes(serialization.Encoding.PEM), key)


def _proposal(signer: object, channel: str = CHANNEL) -> proposal_pb2.SignedProposal:
    signed, _ = new_signed_proposal(
        signer,  # type: ignore[arg-type]
        channel_id=channel,
        chaincode=BASIC,
        args=[b"AssetExists", b"anything"],
        nonce=os.urandom(24),
        timestamp_ms=int(time.time() * 1000),
    )
    return signed


def test_bad_requests_get_clear_statuses_and_the_peer_keeps_serving(network_dir: Path) -> None:
    layout = NetworkLayout.load(network_dir)
    stub, channel = gateway_stub(layout)
    user = load_signer(layout.user_msp_dir("Org1MSP", "User1"), "Org1MSP")
    try:
        garbage = proposal_pb2.SignedProposal(proposal_bytes=b"\xff\x00garbage", signature=b"x")
        with pytest.raises(grpc.RpcError) as bad:
            stub.Evaluate(gateway_pb2.EvaluateRequest(proposed_transaction=garbage), timeout=10)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        with pytest.raises(grpc.RpcError) as unknown:
            stub.Evaluate(
                gateway_pb2.EvaluateRequest(proposed_transaction=_proposal(user, "nochannel")),
                timeout=10,
            )
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        assert "nochannel" in (unknown.value.details() or "")

        # A certificate from a CA the channel does not know, claiming to be Org1MSP.
        foreign = make_org("Org1MSP").signer("Mallory")
        with pytest.raises(grpc.RpcError) as forged:
            stub.Evaluate(
                gateway_pb2.EvaluateRequest(proposed_transaction=_proposal(foreign)), timeout=10
            )
        assert forged.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "access denied" in (forged.value.details() or "")

        # A real user's proposal with someone else's signature.
        signed = _proposal(user)
        signed.signature = foreign.sign(signed.proposal_bytes)
        with pytest.raises(grpc.RpcError) as resigned:
            stub.Evaluate(gateway_pb2.EvaluateRequest(proposed_transaction=signed), timeout=10)
        assert resigned.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        # Org1's real user claiming to be Org2MSP.
        wrong_msp = Signer("Org2MSP", user.cert_pem, user.private_key)
        with pytest.raises(grpc.RpcError) as impostor:
            stub.Evaluate(
                gateway_pb2.EvaluateRequest(proposed_transaction=_proposal(wrong_msp)), timeout=10
            )
        assert impostor.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "access denied" in (impostor.value.details() or "")

        # A certificate from Org1's own CA whose validity ended a moment after the network began.
        expired = _expired_user(layout)
        with pytest.raises(grpc.RpcError) as stale:
            stub.Evaluate(
                gateway_pb2.EvaluateRequest(proposed_transaction=_proposal(expired)), timeout=10
            )
        assert stale.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "expired" in (stale.value.details() or "")

        with pytest.raises(grpc.RpcError) as unsigned:
            stub.Submit(gateway_pb2.SubmitRequest(), timeout=10)
        assert unsigned.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        ok = stub.Evaluate(
            gateway_pb2.EvaluateRequest(proposed_transaction=_proposal(user)), timeout=10
        )
        assert ok.result.status == 200
        assert ok.result.payload == b"false"
    finally:
        channel.close()


def _heights(network_dir: Path) -> dict[str, int]:
    status = cli_json("network", "status", "--dir", str(network_dir))
    return {n["name"]: n["height"] for n in status["nodes"]}


def test_a_peer_killed_during_commits_restarts_and_catches_up(network_dir: Path) -> None:
    layout = NetworkLayout.load(network_dir)
    pid_file = network_dir / "run" / "peer0.org2.example.com.pid"
    with connect_as(layout, "Org1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        submitted = [
            contract.submit_async("CreateAsset", arguments=[f"crash{i}", "red", "1", "Bo", "10"])
            for i in range(20)
        ]
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        for tx in submitted:
            assert tx.get_status().successful
    cli("network", "up", "--dir", str(network_dir))
    deadline = time.monotonic() + 30
    while len(set(_heights(network_dir).values())) != 1:
        assert time.monotonic() < deadline, f"peers did not converge: {_heights(network_dir)}"
        time.sleep(0.2)
    with connect_as(layout, "Org2") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        assert json.loads(contract.evaluate_transaction("ReadAsset", "crash19"))["Owner"] == "Bo"


def test_a_killed_ordering_node_restarts_on_its_ledger_and_service_resumes(
    network_dir: Path,
) -> None:
    layout = NetworkLayout.load(network_dir)
    before = _heights(network_dir)["orderer.example.com"]
    pid_file = network_dir / "run" / "orderer.example.com.pid"
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    cli("network", "up", "--dir", str(network_dir))
    assert _heights(network_dir)["orderer.example.com"] == before  # its blocks were durable
    with connect_as(layout, "Org2") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        contract.submit_transaction("CreateAsset", "after-crash", "green", "2", "Li", "20")
        assert (
            json.loads(contract.evaluate_transaction("ReadAsset", "after-crash"))["Owner"] == "Li"
        )


def test_the_readme_sdk_example_runs(network_dir: Path) -> None:
    port = NetworkLayout.load(network_dir).config.organization("Org1").peers[0].port
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "sdk_quickstart.py"),
            str(network_dir),
            f"localhost:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "previous owner: Tom" in result.stdout
    assert (
        "refused as expected: chaincode response 500, the asset asset70 does not exist"
        in result.stdout
    )


def test_sigterm_stops_a_node_gracefully_and_up_brings_it_back(network_dir: Path) -> None:
    pid = int((network_dir / "run" / "peer0.org1.example.com.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
        assert time.monotonic() < deadline, "the peer did not stop on SIGTERM"
        time.sleep(0.1)
    log = (network_dir / "logs" / "peer0.org1.example.com.log").read_text()
    assert json.loads(log.strip().splitlines()[-1])["message"] == "node stopped"
    status = cli("--json", "network", "status", "--dir", str(network_dir), check=False)
    assert status.returncode == 1  # not every node is up
    nodes = {n["name"]: n for n in json.loads(status.stdout)["nodes"]}
    assert nodes["peer0.org1.example.com"]["health"] == "down"
    cli("network", "up", "--dir", str(network_dir))
    layout = NetworkLayout.load(network_dir)
    with connect_as(layout, "Org1") as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(BASIC)
        assert contract.evaluate_transaction("AssetExists", "nothing") == b"false"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except (OSError, IndexError):
        return "Z"


def test_the_tx_commands_submit_and_evaluate_as_a_user(network_dir: Path) -> None:
    common = ["--dir", str(network_dir), "--org", "Org2", "-C", CHANNEL, "-n", BASIC]
    done = cli_json("tx", "submit", *common, "CreateAsset", "cli1", "red", "3", "Mo", "30")
    assert len(done["transaction_id"]) == 64
    assert done["block_number"] > 0
    read = cli("tx", "evaluate", *common, "ReadAsset", "cli1").stdout
    assert json.loads(read)["Owner"] == "Mo"
    missing = cli("tx", "evaluate", *common, "--user", "Nobody", "ReadAsset", "cli1", check=False)
    assert missing.returncode == 2  # a name the network folder does not define: bad input
    assert "Org2 has no user 'Nobody'; users: Admin, User1" in missing.stderr


def test_a_busy_port_fails_up_with_a_clear_message(tmp_path: Path) -> None:
    config = with_free_ports(TEST_NETWORK, tmp_path / "network.yaml")
    directory = tmp_path / "network"
    cli("network", "init", str(config), "--dir", str(directory))
    port = NetworkLayout.load(directory).config.organization("Org2").peers[0].port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        try:
            result = cli("network", "up", "--dir", str(directory), "--timeout", "30", check=False)
            left = [
                n.name
                for n in launcher.nodes_of(NetworkLayout.load(directory))
                if launcher.running_pid(n, directory)
            ]
        finally:
            cli("network", "down", "--dir", str(directory), check=False)
    assert left == [], result.stderr
    assert result.returncode == 3
    assert "peer0.org2.example.com exited during start-up" in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "stopped the 2 nodes this `up` had started: " in result.stderr
    status = cli("--json", "network", "status", "--dir", str(directory), check=False)
    assert {n["health"] for n in json.loads(status.stdout)["nodes"]} == {"down"}
