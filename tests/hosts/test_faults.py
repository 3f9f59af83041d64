"""Faults between hosts: each organisation's nodes in its own network namespace (issue 18).

One alliance for the module (tests/hosts/alliance.py): CityHC, DistrictHC, TertiaryHospitalA
and TertiaryHospitalB, each with a peer and an ordering node on its own host (n = 4 ordering
nodes: a quorum is 3). TertiaryHospitalB is reached through TCP proxies the tests control.
After every fault: every transaction reported committed is in the chain, every node reaches
the same height and every peer the same last block hash and world-state hash, with no operator
action; the last test stops the network and compares every node's chain block by block.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from medalliance.app.session import connect_as
from medalliance.ledger.block import header_hash
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.tx import Code
from medalliance.node.bootstrap import NODES
from medalliance.sdk import Contract
from tests.hosts.alliance import CHANNEL, RELAYED, WAIT_S, HostedAlliance, require_faketime
from tests.hosts.tcp_proxy import Faults
from tests.networks import REPO, wait_until

CUT = "TertiaryHospitalA"  # the host cut off: one ordering node and one peer
_keys = itertools.count()


@pytest.fixture(scope="module")
def city(alliance: HostedAlliance) -> Iterator[Contract]:
    """The city commission's system, in the root namespace, through its own peer."""
    with connect_as(alliance.layouts["CityHC"], "CityHC") as gateway:
        yield gateway.get_network(CHANNEL).get_contract("basic")


def commit(alliance: HostedAlliance, contract: Contract, count: int, owner: str = "Tom") -> None:
    """Create `count` assets one by one; each must commit (recorded as committed)."""
    for _ in range(count):
        submitted = contract.submit_async(
            "CreateAsset", arguments=[f"asset-{next(_keys)}", "blue", "5", owner, "100"]
        )
        status = submitted.get_status(timeout=WAIT_S)
        assert status.successful, status
        alliance.committed.add(status.transaction_id)


def assert_recovered(alliance: HostedAlliance) -> None:
    """Every node at one height, every peer with the same last block and world state."""
    wait_until(
        lambda: (
            len(set(alliance.heights().values()) - {None}) == 1
            and None not in alliance.heights().values()
        ),
        "every node answers at one height",
        WAIT_S,
    )
    wait_until(
        lambda: (
            len(set(alliance.peer_digests().values())) == 1
            and None not in alliance.peer_digests().values()
        ),
        "every peer has the same last block hash and world-state hash",
        WAIT_S,
    )


def test_a_cut_ordering_node_and_peer_catch_up_by_themselves_after_healing(
    alliance: HostedAlliance, city: Contract
) -> None:
    assert_recovered(alliance)
    alliance.net.partition(CUT)
    try:
        commit(alliance, city, 4)  # the other three ordering nodes are a quorum
        assert set(alliance.heights(*alliance.nodes_on(CUT)).values()) == {None}  # unreachable
    finally:
        alliance.net.heal(CUT)
    assert_recovered(alliance)


def test_a_minority_partition_cuts_no_block_while_the_majority_commits(
    alliance: HostedAlliance, city: Contract
) -> None:
    assert_recovered(alliance)  # nothing pending: no block can be on its way into the cut host
    before = max(h for h in alliance.heights().values() if h is not None)
    orderer, peer = (f"{kind}0.tertiarya.example.com" for kind in ("orderer", "peer"))
    alliance.net.partition(CUT)
    try:
        # The hospital's own system submits through its own peer and ordering node, both in the
        # minority: the peer endorses it, but no block can be cut without a quorum.
        submitting = alliance.start_in_host(
            CUT, "submit", str(alliance.folder(CUT)), CUT, "minority-0"
        )
        commit(alliance, city, 3)
        minority = alliance.answer(submitting)
        assert "tx_id" in minority, minority  # its own ordering node took it into its mempool
        assert min(h or 0 for h in alliance.heights(*alliance.nodes_on("CityHC")).values()) > before
        assert alliance.heights_inside(orderer, peer) == (before, before)
        assert city.evaluate_transaction("AssetExists", "minority-0") == b"false"
    finally:
        alliance.net.heal(CUT)
    # Once healed the minority's transaction may be ordered (it waited in a mempool) or not; the
    # one thing it may never be is committed twice or differently at two peers (checked last).
    assert_recovered(alliance)


def test_transactions_commit_across_slow_lossy_links_while_a_host_is_cut(
    alliance: HostedAlliance, city: Contract
) -> None:
    """With TertiaryHospitalA cut, every quorum needs TertiaryHospitalB's ordering node, whose
    links (and its hospital's link to its own peer) are slow and lossy."""
    lossy = Faults(delay_s=0.03, reset_chance=0.01, stall_chance=0.05, stall_s=0.2)
    slow = Faults(delay_s=0.03, stall_chance=0.05, stall_s=0.2)  # no resets: see below
    relays = alliance.relays
    # Consensus between ordering nodes runs on their cluster ports: that is the quorum's link.
    quorum_link = "orderer0-cluster"
    relays.set_faults(quorum_link, up=lossy)
    relays.set_faults("orderer0", up=lossy)
    # A reset connection fails the client's call in flight (a hospital's system would retry);
    # here the client's own link only delays and stalls, so each submit must succeed.
    relays.set_faults("peer0", up=slow)
    carried = relays.relays[quorum_link].bytes_relayed
    alliance.net.partition(CUT)
    try:
        with connect_as(alliance.layouts[RELAYED], RELAYED) as gateway:
            hospital = gateway.get_network(CHANNEL).get_contract("basic")
            for _ in range(3):
                commit(alliance, hospital, 1, owner="B")
                commit(alliance, city, 1)
        assert relays.relays[quorum_link].bytes_relayed > carried  # the quorum used the link
    finally:
        alliance.net.heal(CUT)
        for name in relays.relays:
            relays.set_faults(name)
    assert_recovered(alliance)


def test_a_host_clock_five_minutes_ahead_keeps_ordering_and_committing(
    alliance: HostedAlliance, city: Contract
) -> None:
    require_faketime()
    skewed = alliance.nodes_on(CUT)
    for name in skewed:  # the host goes down hard and comes back with its clock 5 minutes ahead
        os.kill(alliance.pid(name), signal.SIGKILL)
    wait_until(lambda: set(alliance.heights(*skewed).values()) == {None}, "the host is down")
    # The guide's restart after a crash, as `faketime -f +5m medalliance network up --org ...`:
    # the nodes it spawns inherit libfaketime (time() and every clock_gettime) from it.
    alliance.up(CUT, clock_offset="+5m")
    # Within the certificates' five minutes of issuing slack and the proposals' 15-minute
    # window (docs/testing-hosts.md): the host orders, endorses and commits as before.
    hospital = alliance.in_host(
        CUT, "commit", str(alliance.folder(CUT)), CUT, "skewed-0", clock_offset="+5m"
    )  # the hospital's own system, on the same host and clock
    assert hospital["valid"], hospital
    alliance.committed.add(hospital["tx_id"])
    # With CityHC's ordering node frozen, every quorum needs the skewed one.
    (city_orderer,) = (n for n in alliance.nodes_on("CityHC") if n.startswith("orderer"))
    os.kill(alliance.pid(city_orderer), signal.SIGSTOP)
    try:
        commit(alliance, city, 2)
    finally:
        os.kill(alliance.pid(city_orderer), signal.SIGCONT)
    assert_recovered(alliance)


@pytest.mark.parametrize(
    ("offset", "exit_code", "says"),
    [
        pytest.param(
            "+20m", 1, ("more than 15 minutes from the peer's clock", "check the client's clock"),
            id="a client clock 20 minutes ahead is refused by the peer's proposal window",
        ),
        pytest.param(
            "-20m", 3, ("certificate is not yet valid", "check this machine's clock"),
            id="a client clock 20 minutes behind refuses the network's new TLS certificates",
        ),
    ],
)  # fmt: skip
def test_a_client_clock_twenty_minutes_off_is_refused_and_nothing_is_written(
    alliance: HostedAlliance, city: Contract, offset: str, exit_code: int, says: tuple[str, str]
) -> None:
    library = require_faketime()
    heights = alliance.heights()
    key = f"late-{offset}"
    env = dict(os.environ, LD_PRELOAD=library, FAKETIME=offset, PYTHONPATH=str(REPO))
    refused = subprocess.run(
        [sys.executable, "-m", "medalliance", "--json", "tx", "submit", "--dir",
         str(alliance.folder("CityHC")), "--org", "CityHC", "-C", CHANNEL, "-n", "basic",
         "CreateAsset", key, "red", "1", "Ann", "1"],
        capture_output=True, text=True, timeout=WAIT_S, env=env,
    )  # fmt: skip
    assert refused.returncode == exit_code, refused
    message = json.loads(refused.stdout)["message"]
    assert all(part in message for part in says), message
    assert city.evaluate_transaction("AssetExists", key) == b"false"
    assert alliance.heights() == heights


def test_every_node_holds_the_same_chain_with_every_committed_transaction(
    alliance: HostedAlliance,
) -> None:
    assert_recovered(alliance)
    alliance.down(*alliance.layouts)  # each organisation stops its own nodes, on its host
    chains: dict[str, list[bytes]] = {}
    nodes = (
        folder for org in alliance.layouts for folder in (alliance.folder(org) / NODES).iterdir()
    )
    for folder in sorted(nodes):
        with BlockStore.open(folder / "ledgers" / CHANNEL / "blocks") as store:
            chains[folder.name] = [header_hash(b.header) for b in store.iter_blocks()]
            if folder.name.startswith("peer"):
                codes = {tx: store.tx_location(tx) for tx in alliance.committed}
                assert {tx: loc.validation_code if loc else None for tx, loc in codes.items()} == {
                    tx: Code.Value("VALID") for tx in alliance.committed
                }
    assert len({tuple(chain) for chain in chains.values()}) == 1, {
        name: len(chain) for name, chain in chains.items()
    }
