"""Key-level endorsement on the embedded demo alliance: the regulator's peer is asked when its
decision's key policy names it, and the key policies survive `ledger rebuild-state` and are
covered by `ledger verify`."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from fabric_protos.msp import identities_pb2
from tests.networks import DEMO_ALLIANCE

from medalliance.alliance.report import DOWNWARD_RULES
from medalliance.audit.verify import verify_ledger
from medalliance.ledger.state import VALIDATION_PARAMETER
from medalliance.ledger.tx import new_signed_proposal, parse_envelope
from medalliance.node.channel import namespace_policy, rebuild_state
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork

CHANNEL = "alliance"
DISTRICT = "DistrictHCMSP"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("key-level") / "net"
    EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), directory).close()
    return directory


def endorsers_of(network: EmbeddedNetwork, tx_id: str) -> list[str]:
    ledger = network.peers[0].channel(CHANNEL)
    location = ledger.store.tx_location(tx_id)
    assert location is not None
    block = ledger.store.get_block(location.block_num)
    view = parse_envelope(bytes(block.data.data[location.tx_num]))
    return sorted(
        identities_pb2.SerializedIdentity.FromString(e.endorser).mspid
        for e in view.endorser_tx().endorsements
    )


def test_the_regulators_peer_endorses_its_own_rule_and_the_policy_survives_a_rebuild(
    template: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "net"
    shutil.copytree(template, directory)
    config = load_network_config(DEMO_ALLIANCE)
    with EmbeddedNetwork.open(config, directory) as network:
        reviewer = network.client(DISTRICT, "Reviewer1")
        first = reviewer.submit(CHANNEL, "report", "SetDownwardRule", DOWNWARD_RULES[0])
        second = reviewer.submit(CHANNEL, "report", "SetDownwardRule", DOWNWARD_RULES[1])
        assert first.valid
        assert second.valid
        # The embedded network asks every endorsing organisation (in the demo alliance the
        # commissions endorse too); the second write, a change, also satisfies the key's policy,
        # which names the regulator's own peer.
        endorsing = sorted(o.msp_id for o in config.organizations if o.endorsing)
        assert endorsers_of(network, first.tx_id) == endorsing
        assert DISTRICT in endorsers_of(network, second.tx_id)
        ledgers = [p.directory / "ledgers" / CHANNEL for p in network.peers]
        hashes = {p.name: p.channel(CHANNEL).state.state_hash() for p in network.peers}
    for ledger in ledgers:
        rebuilt = rebuild_state(ledger)
        assert bytes.fromhex(rebuilt.state_hash) in hashes.values()
        db = sqlite3.connect(ledger / "state.db")
        try:
            names = db.execute("SELECT DISTINCT name FROM metadata WHERE ns = 'report'").fetchall()
        finally:
            db.close()
        assert names == [(VALIDATION_PARAMETER,)]


def test_the_endorsement_after_a_keys_first_policy_commits_reports_it(
    template: Path, tmp_path: Path
) -> None:
    """Peers keep, per committed block, whether a namespace has any key policy: a stale "none"
    after the block that sets the first would leave the regulator out of the next plan."""
    directory = tmp_path / "net"
    shutil.copytree(template, directory)
    with EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), directory) as network:
        reviewer = network.client(DISTRICT, "Reviewer1")
        peer = network.peers_of(CHANNEL)[0]

        def key_policies() -> int:
            signed, _ = new_signed_proposal(
                reviewer.signer,
                channel_id=CHANNEL,
                chaincode="report",
                args=[b"SetDownwardRule", DOWNWARD_RULES[1].encode()],
                nonce=os.urandom(24),
                timestamp_ms=int(network.now().timestamp() * 1000),
            )
            endorsed = peer.endorse(signed, now=network.now())
            assert endorsed.ok, endorsed.result.message
            return sum(len(c.key_policies) for c in endorsed.response.interest.chaincodes)

        assert key_policies() == 0
        assert key_policies() == 0  # asked again at the same height
        assert reviewer.submit(CHANNEL, "report", "SetDownwardRule", DOWNWARD_RULES[0]).valid
        assert key_policies() == 1


def test_ledger_verify_notices_a_node_state_whose_key_policy_was_changed(
    template: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "net"
    shutil.copytree(template, directory)
    with EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), directory) as network:
        reviewer = network.client(DISTRICT, "Reviewer1")
        assert reviewer.submit(CHANNEL, "report", "SetDownwardRule", DOWNWARD_RULES[0]).valid
        ledger = network.peers[0].directory / "ledgers" / CHANNEL
    assert verify_ledger(ledger, namespace_policy).intact
    db = sqlite3.connect(ledger / "state.db")
    with db:  # a member loosens a key policy on its own disk
        db.execute("UPDATE metadata SET value = x'00' WHERE ns = 'report'")
    db.close()
    report = verify_ledger(ledger, namespace_policy)
    assert report.node_state_matches is False
    assert not report.intact
