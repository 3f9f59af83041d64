"""Ledger snapshots on an embedded network: take one, verify it, join a ledger from it and let
it catch up; and the snapshots a careless or hostile operator would hand over."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.networks import cli

from medalliance.audit.verify import verify_ledger
from medalliance.database_url import parse_database_url
from medalliance.errors import (
    BlockBeforeSnapshot,
    InvalidArgument,
    PermissionDenied,
    PreconditionFailed,
    SnapshotInvalid,
)
from medalliance.ledger import snapshot as snap
from medalliance.ledger.snapshot_join import join_snapshot
from medalliance.ledger.world_state import StateLocation
from medalliance.node.channel import PeerChannel, namespace_policy, rebuild_state
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.node.peer import Peer

CHANNEL = "alliance"


@pytest.fixture(scope="module")
def net(
    network_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedNetwork]:
    from tests.integration.conftest import network_with_assets

    directory = tmp_path_factory.mktemp("snapnet") / "net"
    with network_with_assets(network_template, directory, "s") as network:
        yield network


def _peer(net: EmbeddedNetwork) -> Peer:
    return net.peers_of(CHANNEL)[0]


def _ledger_dir(peer: Peer) -> Path:
    return peer.directory / "ledgers" / CHANNEL


@pytest.fixture(scope="module")
def taken(net: EmbeddedNetwork, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("snapshots") / "at-tip"
    snap.write_snapshot(_ledger_dir(_peer(net)), out, created_by="test")
    return out


def test_a_snapshot_records_the_tip_and_state_of_the_ledger(
    net: EmbeddedNetwork, taken: Path
) -> None:
    channel = _peer(net).channel(CHANNEL)
    read = snap.read_snapshot(taken, ledger_dir=_ledger_dir(_peer(net)))
    assert read.metadata.channel_name == CHANNEL
    assert read.metadata.last_block_number == channel.state.savepoint
    assert read.metadata.state_hash == channel.state.state_hash().hex()
    assert {tx_id for tx_id, _ in read.txs} >= {
        tx_id for tx_id, _ in channel.store.tx_locations(channel.height - 1)
    }


def test_a_ledger_joined_from_a_snapshot_begins_after_it_and_catches_up(
    net: EmbeddedNetwork, taken: Path, tmp_path: Path
) -> None:
    source = _peer(net).channel(CHANNEL)
    snapshot = join_snapshot(taken, tmp_path / CHANNEL)
    number = snapshot.metadata.last_block_number
    joined = PeerChannel.open(tmp_path / CHANNEL)
    try:
        assert joined.height == number + 1
        assert joined.state.state_hash() == bytes.fromhex(snapshot.metadata.state_hash)
        with pytest.raises(BlockBeforeSnapshot, match="joined from a snapshot"):
            joined.store.get_block(number)
        old_tx = next(tx_id for tx_id, _ in snapshot.txs)
        assert joined.view.is_committed_tx(old_tx)  # a replay of it is still a duplicate

        client = net.client("HospCMSP")
        assert client.submit(CHANNEL, "basic", "TransferAsset", "s1", "Tom").valid
        for block in source.blocks(joined.height):
            joined.commit(block)
        assert joined.height == source.height
        assert joined.state.state_hash() == source.state.state_hash()
    finally:
        joined.close()
    # An auditor verifies it from the snapshot on, and sees a tampered kept snapshot.
    report = verify_ledger(tmp_path / CHANNEL, namespace_policy)
    assert (report.intact, report.first_block) == (True, number + 1)
    assert report.state_hash == source.state.state_hash().hex()
    # The joined ledger is itself a source of snapshots, with the same state.
    again = snap.write_snapshot(tmp_path / CHANNEL, tmp_path / "again")
    assert again.state_hash == source.state.state_hash().hex()
    with pytest.raises(PreconditionFailed, match="joined from a snapshot"):
        rebuild_state(tmp_path / CHANNEL)
    _edit_value(tmp_path / CHANNEL / snap.SNAPSHOT_FOLDER)
    tampered = verify_ledger(tmp_path / CHANNEL, namespace_policy)
    assert not tampered.intact
    assert tampered.bad is not None
    assert "SHA-256" in tampered.bad.reason


def _rehash(directory: Path) -> None:
    """What a forger does after editing a snapshot: make every recorded hash agree again."""
    signable = json.loads((directory / snap.SIGNABLE).read_text())
    signable["snapshot_files_raw_hashes"] = {
        name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
        for name in snap.DATA_FILES
    }
    data = json.dumps(signable, indent=2).encode()
    (directory / snap.SIGNABLE).write_bytes(data)
    additional = json.loads((directory / snap.ADDITIONAL).read_text())
    additional["snapshot_hash"] = hashlib.sha256(data).hexdigest()
    (directory / snap.ADDITIONAL).write_text(json.dumps(additional))


def _edit_value(directory: Path) -> None:
    path = directory / snap.STATE_FILE
    lines = path.read_text().splitlines()
    row = json.loads(lines[-1])
    row[2] = "Zm9yZ2Vk"  # "forged"
    path.write_text("\n".join([*lines[:-1], json.dumps(row)]) + "\n")


def _edit_metadata(key: str, value: object) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        signable = json.loads((directory / snap.SIGNABLE).read_text())
        signable[key] = value
        (directory / snap.SIGNABLE).write_text(json.dumps(signable))

    return edit


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        pytest.param(_edit_value, "does not match its SHA-256", id="an edited value is refused"),
        pytest.param(
            lambda d: (_edit_value(d), _rehash(d)),
            "do not give the recorded state hash",
            id="an edited value with every file hash redone is refused by the state hash",
        ),
        pytest.param(
            _edit_metadata("last_block_number", 0),
            "recorded snapshot hash",
            id="edited metadata is refused by the snapshot hash",
        ),
        pytest.param(
            lambda d: (d / snap.TXIDS_FILE).unlink(),
            "lacks",
            id="a missing tx id file is refused",
        ),
        pytest.param(
            lambda d: (d / "extra.data").write_text("x"),
            "holds",
            id="an extra file is refused",
        ),
        pytest.param(
            lambda d: ((d / snap.TXIDS_FILE).write_text('["t", -1, 0, 0]\n'), _rehash(d)),
            "not a valid row",
            id="a malformed tx id row is refused",
        ),
    ],
)
def test_a_tampered_snapshot_is_refused_and_nothing_is_written(
    taken: Path, tmp_path: Path, tamper: Callable[[Path], object], reason: str
) -> None:
    forged = tmp_path / "forged"
    shutil.copytree(taken, forged)
    tamper(forged)
    with pytest.raises(SnapshotInvalid, match=reason):
        join_snapshot(forged, tmp_path / CHANNEL)
    assert not (tmp_path / CHANNEL).exists()


def test_a_snapshot_of_another_chain_is_refused_at_the_first_block_from_ordering(
    net: EmbeddedNetwork, taken: Path, tmp_path: Path
) -> None:
    """A forger who redoes every hash is only caught by the chain: block N + 1 from the
    ordering service names the real block N, not the forged one."""
    forged = tmp_path / "forged"
    shutil.copytree(taken, forged)
    _edit_metadata("last_block_hash", "ab" * 32)(forged)
    _rehash(forged)
    join_snapshot(forged, tmp_path / CHANNEL)
    client = net.client("HospCMSP")
    assert client.submit(CHANNEL, "basic", "TransferAsset", "s2", "Kim").valid
    joined = PeerChannel.open(tmp_path / CHANNEL)
    try:
        height, state = joined.height, joined.state.state_hash()
        following = _peer(net).channel(CHANNEL).store.get_block(height)
        with pytest.raises(InvalidArgument, match="snapshot this ledger was joined from"):
            joined.commit(following)
        assert (joined.height, joined.state.state_hash()) == (height, state)
    finally:
        joined.close()


def test_a_snapshot_is_not_joined_over_an_existing_ledger(
    net: EmbeddedNetwork, taken: Path
) -> None:
    ledger = _ledger_dir(_peer(net))
    height = _peer(net).channel(CHANNEL).height
    with pytest.raises(PreconditionFailed, match="already holds a ledger"):
        join_snapshot(taken, ledger)
    assert _peer(net).channel(CHANNEL).height == height


def test_a_snapshot_checked_against_a_different_ledger_is_refused(
    net: EmbeddedNetwork, taken: Path, tmp_path: Path
) -> None:
    other = next(p for p in net.peers_of("tertiary"))
    with pytest.raises(SnapshotInvalid):
        snap.read_snapshot(taken, ledger_dir=other.directory / "ledgers" / "tertiary")


def test_a_snapshot_joins_into_postgresql_and_is_taken_again_from_it(
    taken: Path, tmp_path: Path, postgres_url: str
) -> None:
    location = StateLocation(parse_database_url(postgres_url), "state_snapjoin")
    joined = join_snapshot(taken, tmp_path / CHANNEL, location)
    # The folder records the URL without its password: the operator passes it (or PGPASSWORD).
    again = snap.write_snapshot(tmp_path / CHANNEL, tmp_path / "again", state_database=location.url)
    assert again.state_db_type == "PostgreSQL"
    assert again.state_hash == joined.metadata.state_hash
    assert again.last_block_hash == joined.metadata.last_block_hash
    with pytest.raises(PreconditionFailed, match="not empty"):
        join_snapshot(taken, tmp_path / "second", location)  # the schema already holds state
    assert not (tmp_path / "second" / "blocks").exists()


def test_the_snapshot_commands_refuse_with_their_documented_exit_codes(
    net: EmbeddedNetwork, taken: Path, tmp_path: Path
) -> None:
    forged = tmp_path / "forged"
    shutil.copytree(taken, forged)
    _edit_value(forged)
    refused = cli("ledger", "snapshot", "verify", str(forged), check=False)
    assert refused.returncode == 2  # bad input: the snapshot does not match itself
    assert "public_state.data does not match its SHA-256" in refused.stderr
    config = net.layout.directory / "nodes" / _peer(net).name / "node.yaml"
    height = _peer(net).channel(CHANNEL).height
    over = cli("ledger", "snapshot", "join", str(taken), "--config", str(config), check=False)
    assert over.returncode == 1  # no: the peer already holds the channel's ledger
    assert "already holds a ledger" in over.stderr
    assert _peer(net).channel(CHANNEL).height == height


def test_a_peer_of_another_organisation_cannot_join_a_channel_it_is_not_in(
    net: EmbeddedNetwork, tmp_path: Path
) -> None:
    member = next(p for p in net.peers_of("tertiary") if p.msp_id == "HospAMSP")
    snap.write_snapshot(member.directory / "ledgers" / "tertiary", tmp_path / "tertiary")
    with pytest.raises(PermissionDenied, match="HospCMSP is not a member of channel tertiary"):
        join_snapshot(tmp_path / "tertiary", tmp_path / "ledger", msp_id="HospCMSP")
    assert not (tmp_path / "ledger").exists()
    join_snapshot(tmp_path / "tertiary", tmp_path / "ledger", msp_id="HospBMSP")
