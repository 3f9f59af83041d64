"""The peer's gRPC link to chaincode servers: real gRPC servers, real SQLite state.

A Python contract served over `protos.Chaincode/Connect` must simulate exactly as in the peer;
a server that is down, restarts, answers garbage, registers as another package, never
completes, or writes after completing gets a clear refusal and changes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.ccaas_chaincode import Call, ChaincodeServer, contract_behaviour
from tests.conftest import Org
from tests.networks import free_ports, wait_until
from tests.unit.contracts.fakes import tx_context

from medalliance.contracts.ccaas_package import CcaasPackage, Connection
from medalliance.contracts.external import ExternalContract
from medalliance.contracts.shim_handler import Msg
from medalliance.contracts.simulation import SimulationResult, TxContext, simulate
from medalliance.identity.msp import MspManager
from medalliance.ledger.sqlite_state import SqliteState
from medalliance.ledger.state import TxWrites, Write
from medalliance.node.chaincode_link import ChaincodeLink
from medalliance.samples.asset_transfer_basic import AssetTransferBasic

NS = "basic"
PACKAGE_ID = "basic_1.0:" + hashlib.sha256(b"basic").hexdigest()
EXECUTE_TIMEOUT_S = 1.0


@pytest.fixture
def state(tmp_path: Path) -> Iterator[SqliteState]:
    s = SqliteState.open(tmp_path / "state.db")
    s.apply_block(0, [])
    s.apply_block(1, [TxWrites(0, "t0", 0, (Write(NS, "asset1", b'{"ID":"asset1"}'),))])
    yield s
    s.close()


@pytest.fixture
def tx(org1: Org, msps: MspManager) -> TxContext:
    return tx_context(org1, msps)


def link_to(address: str) -> ChaincodeLink:
    package = CcaasPackage("basic_1.0", Connection(address, dial_timeout_s=5.0))
    return ChaincodeLink(PACKAGE_ID, package, execute_timeout_s=EXECUTE_TIMEOUT_S)


def run(link: ChaincodeLink, state: SqliteState, tx: TxContext, *args: bytes) -> SimulationResult:
    return simulate(ExternalContract(PACKAGE_ID, link), NS, list(args), state, tx)


def asset_server(**kwargs: object) -> ChaincodeServer:
    return ChaincodeServer(PACKAGE_ID, contract_behaviour(AssetTransferBasic()), **kwargs)  # type: ignore[arg-type]


def test_a_contract_served_over_grpc_simulates_as_in_the_peer(
    state: SqliteState, tx: TxContext
) -> None:
    server = asset_server().start()
    link = link_to(server.address)
    try:
        for args in (
            [b"CreateAsset", b"asset2", b"red", b"5", b"Brad", b"400"],
            [b"ReadAsset", b"asset1"],
            [b"GetAllAssets"],
            [b"TransferAsset", b"asset9", b"Max"],  # refused
        ):
            assert run(link, state, tx, *args) == simulate(
                AssetTransferBasic(), NS, args, state, tx
            ), args[0]
    finally:
        link.close()
        server.stop()


def test_a_chaincode_that_is_down_is_reported_and_reached_once_it_is_up(
    state: SqliteState, tx: TxContext
) -> None:
    (port,) = free_ports(1)  # nobody listens there yet: the connection is refused
    address = f"127.0.0.1:{port}"
    link = link_to(address)
    down = run(link, state, tx, b"ReadAsset", b"asset1")
    assert (down.status, down.rwset) == (503, b"")
    assert f"chaincode {PACKAGE_ID} is not reachable at {address}" in down.message
    assert "refused" in down.message
    probe = asset_server(port=port).start()
    try:
        wait_until(
            lambda: run(link, state, tx, b"ReadAsset", b"asset1").status == 200,
            "the link re-dials the chaincode after its back-off",
        )
        probe.stop()  # the chaincode restarts: the next call finds the stream broken
        broken = run(link, state, tx, b"ReadAsset", b"asset1")
        assert (broken.status, broken.rwset) == (503, b"")
        again = asset_server(port=port).start()
        try:
            wait_until(
                lambda: run(link, state, tx, b"ReadAsset", b"asset1").status == 200,
                "the link reconnects to the restarted chaincode",
            )
        finally:
            again.stop()
    finally:
        probe.stop()  # stopping twice is harmless; a failed assertion must not leak it
        link.close()


def silent_for_hang(first: Msg, call: Call) -> list[Msg]:
    """Completes nothing for `Hang`; otherwise the asset contract."""
    if first.payload and b"Hang" in first.payload:
        return []
    return contract_behaviour(AssetTransferBasic())(first, call)


def write_after_completing(first: Msg, call: Call) -> list[Msg]:
    done = contract_behaviour(AssetTransferBasic())(first, call)
    late = Msg(type=Msg.PUT_STATE, txid=first.txid, channel_id=first.channel_id)
    late.payload = b"\n\x04late\x12\x01x"  # PutState{key: "late", value: "x"}
    return [*done, late]


@pytest.mark.parametrize(
    ("server_kwargs", "refusal"),
    [
        pytest.param(
            {"garbage": True},
            "closed the stream before registering",
            id="a server answering garbage is not reachable",
        ),
        pytest.param(
            {"register_as": "other_1.0:" + "0" * 64},
            "registered under another package id",
            id="a server registering as another package is refused",
        ),
    ],
)
def test_a_server_that_does_not_register_as_the_package_is_refused(
    state: SqliteState, tx: TxContext, server_kwargs: dict[str, object], refusal: str
) -> None:
    server = asset_server(**server_kwargs).start()
    link = link_to(server.address)
    try:
        result = run(link, state, tx, b"CreateAsset", b"asset2", b"red", b"5", b"Brad", b"400")
        assert (result.status, result.rwset, result.payload) == (503, b"", b"")
        assert refusal in result.message
        assert server.transactions == 0  # no transaction reached it
    finally:
        link.close()
        server.stop()


def test_a_chaincode_that_never_completes_hits_the_deadline_and_the_link_still_serves(
    state: SqliteState, tx: TxContext
) -> None:
    server = ChaincodeServer(PACKAGE_ID, silent_for_hang).start()
    link = link_to(server.address)
    try:
        stuck = run(link, state, tx, b"Hang")
        assert (stuck.status, stuck.rwset) == (504, b"")
        assert f"did not complete the transaction within {EXECUTE_TIMEOUT_S:g} s" in stuck.message
        assert run(link, state, tx, b"ReadAsset", b"asset1").status == 200
    finally:
        link.close()
        server.stop()


def test_a_write_after_completing_is_not_in_any_read_write_set(
    state: SqliteState, tx: TxContext
) -> None:
    server = ChaincodeServer(PACKAGE_ID, write_after_completing).start()
    link = link_to(server.address)
    try:
        args = [b"CreateAsset", b"asset2", b"red", b"5", b"Brad", b"400"]
        expected = simulate(AssetTransferBasic(), NS, args, state, tx)
        assert run(link, state, tx, *args) == expected
        # the late PUT_STATE reaches the peer during or after the next transaction: ignored
        following, tx2 = [b"ReadAsset", b"asset1"], dataclasses.replace(tx, tx_id="tx2")
        assert run(link, state, tx2, *following) == simulate(
            AssetTransferBasic(), NS, following, state, tx2
        )
    finally:
        link.close()
        server.stop()
