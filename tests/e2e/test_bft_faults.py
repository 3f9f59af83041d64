"""BFT ordering as real processes: Fabric's test network with four ordering nodes (f = 1).

Faults are real: SIGKILL, SIGSTOP/SIGCONT (a node cut off, then back), restarts through
`network up`. Afterwards every peer and ordering node must hold the same chain (header hash by
header hash) and the peers the same world state.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medalliance.app.session import connect_as
from medalliance.ledger.block import header_hash
from medalliance.ledger.block_store import BlockStore
from medalliance.node.bootstrap import NetworkLayout
from medalliance.sdk import Contract
from tests.networks import REPO, cli, cli_json, free_ports, running, wait_until, with_free_ports

BFT_NETWORK = REPO / "networks" / "bft-test-network.yaml"
CHANNEL = "mychannel"
ORDERERS = [f"orderer{i}.example.com" for i in range(4)]
WAIT_S = 60.0


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("bft")
    with running(with_free_ports(BFT_NETWORK, base / "network.yaml"), base) as directory:
        yield directory


@pytest.fixture(scope="module")
def contract(network: Path) -> Iterator[Contract]:
    with connect_as(NetworkLayout.load(network), "Org1") as gateway:
        yield gateway.get_network(CHANNEL).get_contract("basic")


def nodes(network: Path) -> dict[str, dict[str, Any]]:
    """`network status` (which exits non-zero while a node does not answer)."""
    answer = cli("--json", "network", "status", "--dir", str(network), check=False)
    return {n["name"]: n for n in json.loads(answer.stdout)["nodes"]}


def orderer_heights(network: Path) -> dict[str, int | None]:
    found = nodes(network)
    return {
        name: found[name]["height"] if found[name]["health"] == "up" else None for name in ORDERERS
    }


def next_proposer(network: Path) -> str:
    """The node that proposes the next height in round 0: V[(h + r) mod n], V in config order."""
    consensus = nodes(network)[ORDERERS[1]]["consensus"][CHANNEL]
    return ORDERERS[(consensus["height"] + consensus["round"]) % len(ORDERERS)]


def create(contract: Contract, prefix: str, count: int) -> None:
    for i in range(count):
        contract.submit_transaction("CreateAsset", f"{prefix}-{i}", "blue", "5", "Tom", "100")


def test_ordering_keeps_committing_when_the_proposer_is_killed_under_load(
    network: Path, contract: Contract
) -> None:
    create(contract, "warm", 3)
    victim = next_proposer(network)
    pid = nodes(network)[victim]["pid"]
    errors: list[Exception] = []

    def load() -> None:
        try:
            create(contract, "load", 30)
        except Exception as exc:  # reported below
            errors.append(exc)

    worker = threading.Thread(target=load)
    worker.start()
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    worker.join(timeout=WAIT_S * 2)
    assert not worker.is_alive()
    assert errors == []
    assert contract.evaluate_transaction("AssetExists", "load-29") == b"true"
    # restarted on its own ledger and hard state, the node catches up with the others
    cli("network", "up", "--dir", str(network))
    wait_until(lambda: len(set(orderer_heights(network).values())) == 1, f"{victim} caught up")


def test_two_stopped_nodes_stop_decisions_and_nothing_diverges(
    network: Path, contract: Contract
) -> None:
    create(contract, "before", 1)
    found = nodes(network)
    stopped = ORDERERS[2:]
    for name in stopped:
        os.kill(found[name]["pid"], signal.SIGSTOP)
    try:
        heights = orderer_heights(network)
        pending = contract.submit_async("CreateAsset", arguments=["stuck", "red", "1", "Ann", "1"])
        time.sleep(3.0)  # several rounds' worth of timeouts: 2 of 4 are not a quorum of 3
        assert {n: h for n, h in orderer_heights(network).items() if n not in stopped} == {
            n: heights[n] for n in ORDERERS[:2]
        }
    finally:
        for name in stopped:
            os.kill(found[name]["pid"], signal.SIGCONT)
    assert pending.get_status(timeout=WAIT_S).successful
    wait_until(lambda: len(set(orderer_heights(network).values())) == 1, "all nodes level")


def test_a_node_cut_off_and_back_catches_up(network: Path, contract: Contract) -> None:
    found = nodes(network)
    cut = ORDERERS[0]
    os.kill(found[cut]["pid"], signal.SIGSTOP)
    try:
        create(contract, "partition", 10)
    finally:
        os.kill(found[cut]["pid"], signal.SIGCONT)
    wait_until(lambda: len(set(orderer_heights(network).values())) == 1, f"{cut} caught up")
    create(contract, "after", 3)


def test_every_node_holds_the_same_chain_and_every_peer_the_same_state(network: Path) -> None:
    wait_until(lambda: len({n["height"] for n in nodes(network).values()}) == 1, "every node level")
    cli("network", "down", "--dir", str(network))
    chains = {}
    for folder in sorted((network / "nodes").iterdir()):
        store = BlockStore.open(folder / "ledgers" / CHANNEL / "blocks")
        try:
            chains[folder.name] = [
                header_hash(store.get_block(i).header) for i in range(store.height)
            ]
        finally:
            store.close()
    assert len({tuple(chain) for chain in chains.values()}) == 1, {
        name: len(chain) for name, chain in chains.items()
    }
    report = cli_json("ledger", "verify", str(network))
    assert report["intact"]
    peer_states = {led["state_hash"] for led in report["ledgers"] if "peer0" in led["path"]}
    assert len(peer_states) == 1
    cli("network", "up", "--dir", str(network))  # leave it running for the fixture's teardown


def test_an_ordering_node_leaves_only_by_a_majority_of_admins(
    network: Path, contract: Contract, tmp_path: Path
) -> None:
    update = tmp_path / "remove-orderer3.json"
    d = ("--dir", str(network))
    cli("channel", "propose-update", *d, "--org", "Org1", "-C", CHANNEL,
        "--remove-orderer", ORDERERS[3], "-o", str(update))  # fmt: skip
    cli("channel", "sign-update", str(update), *d, "--org", "Org1")
    refused = cli("channel", "submit-update", str(update), *d, "--org", "Org1", check=False)
    assert refused.returncode == 4
    assert "/Channel/Admins needs a majority of the channel's organisations" in refused.stderr
    for org in ("Org2", "OrdererOrg"):
        cli("channel", "sign-update", str(update), *d, "--org", org)
    submitted = cli_json("channel", "submit-update", str(update), *d, "--org", "Org1")
    assert submitted["signed_by"] == ["Admin@Org1MSP", "Admin@Org2MSP", "Admin@OrdererMSP"]
    # from the next block on three nodes order, the fourth only follows
    create(contract, "three", 3)
    found = nodes(network)
    assert found[ORDERERS[3]]["consensus"][CHANNEL]["retired"] is True
    assert not any(found[n]["consensus"][CHANNEL]["retired"] for n in ORDERERS[:3])
    wait_until(lambda: len({n["height"] for n in nodes(network).values()}) == 1, "level")
    cli("network", "down", "--dir", str(network))
    report = cli_json("ledger", "verify", str(network))
    assert report["intact"], [led for led in report["ledgers"] if not led["intact"]]
    cli("network", "up", "--dir", str(network))


def test_a_new_ordering_node_follows_then_orders_once_voted_in(
    network: Path, contract: Contract, tmp_path: Path
) -> None:
    port, ops, cluster = free_ports(3)
    d = ("--dir", str(network))
    cli("network", "add-orderer", *d, "--org", "OrdererOrg", "--name", "orderer4",
        "--port", str(port), "--operations-port", str(ops), "--cluster-port", str(cluster))  # fmt: skip
    cli("network", "up", *d)
    new = "orderer4.example.com"
    wait_until(lambda: nodes(network)[new]["height"] == nodes(network)[ORDERERS[0]]["height"],
               f"{new} caught up as a follower")  # fmt: skip
    assert nodes(network)[new]["consensus"][CHANNEL]["retired"] is True
    update = tmp_path / "add-orderer4.json"
    cli("channel", "propose-update", *d, "--org", "Org1", "-C", CHANNEL,
        "--add-orderer", new, "-o", str(update))  # fmt: skip
    for org in ("Org1", "Org2", "OrdererOrg"):
        cli("channel", "sign-update", str(update), *d, "--org", org)
    cli("channel", "submit-update", str(update), *d, "--org", "Org1")
    create(contract, "four", 2)
    assert nodes(network)[new]["consensus"][CHANNEL]["retired"] is False
    # orderer0..2 and orderer4 now: with one of them stopped, three still make a quorum of 4,
    # which needs the new node's votes
    stopped = nodes(network)[ORDERERS[0]]["pid"]
    os.kill(stopped, signal.SIGSTOP)
    try:
        create(contract, "with-new", 3)
    finally:
        os.kill(stopped, signal.SIGCONT)
    wait_until(lambda: len({n["height"] for n in nodes(network).values()}) == 1, "level")
