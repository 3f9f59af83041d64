"""Online backup and restore of a peer's folder on an embedded network (node.backup): a backup
taken while the peer's databases are open restores to the same ledgers; and the backups a
careless or hostile operator would restore are refused with nothing written."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from medalliance.database_url import parse_database_url
from medalliance.errors import PreconditionFailed, SnapshotInvalid
from medalliance.identity.cryptogen import load_signer
from medalliance.ledger.block_store import BlockStore
from medalliance.ledger.world_state import StateLocation
from medalliance.node.backup import MANIFEST, backup_node, restore_node
from medalliance.node.channel import PeerChannel
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.node.peer import Peer

CHANNEL = "alliance"
HOST = "peer0.hospc.example.com"


@pytest.fixture(scope="module")
def net(
    network_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedNetwork]:
    from tests.integration.conftest import network_with_assets

    directory = tmp_path_factory.mktemp("backupnet") / "net"
    with network_with_assets(network_template, directory, "b") as network:
        yield network


@pytest.fixture(scope="module")
def backup(net: EmbeddedNetwork, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("backups") / "peer"
    backup_node(net.layout.directory / "nodes" / HOST / "node.yaml", out)  # the peer has it open
    return out


def _empty_node(net: EmbeddedNetwork, base: Path, host: str = HOST) -> Path:
    """A node folder holding only its node.yaml: a wiped machine being restored."""
    config = base / "nodes" / host / "node.yaml"
    config.parent.mkdir(parents=True)
    shutil.copy(net.layout.directory / "nodes" / host / "node.yaml", config)
    return config


def test_a_restored_peer_opens_the_same_ledgers(
    net: EmbeddedNetwork, backup: Path, tmp_path: Path
) -> None:
    config = _empty_node(net, tmp_path)
    manifest = restore_node(backup, config)
    assert [entry.channel for entry in manifest.ledgers] == [CHANNEL]
    original = next(p for p in net.peers_of(CHANNEL) if p.name == HOST)
    signer = load_signer(net.layout.peer_dir("HospCMSP", "peer0") / "msp", "HospCMSP")
    restored = Peer(HOST, signer, config.parent, endorsing=False)
    try:
        ledger, source = restored.channel(CHANNEL), original.channel(CHANNEL)
        assert ledger.height == source.height
        assert ledger.state.state_hash() == source.state.state_hash()
    finally:
        restored.close()


def test_a_backup_archive_restores_like_a_folder(net: EmbeddedNetwork, tmp_path: Path) -> None:
    archive = tmp_path / "peer.tar.gz"
    backup_node(net.layout.directory / "nodes" / HOST / "node.yaml", archive)
    assert archive.stat().st_mode & 0o077 == 0  # it holds private data: the owner's only
    config = _empty_node(net, tmp_path / "target")
    restore_node(archive, config)
    assert (config.parent / "ledgers" / CHANNEL / "state.db").is_file()


def _edit_state(directory: Path) -> None:
    path = directory / "ledgers" / CHANNEL / "state.db"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _forge_manifest_node(directory: Path) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["node"] = "peer0.hospa.example.com"
    (directory / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("tamper", "host", "reason"),
    [
        pytest.param(
            _edit_state, HOST, "does not match its SHA-256", id="an edited state is refused"
        ),
        pytest.param(
            lambda d: (d / "ledgers" / "planted.db").write_bytes(b"x"),
            HOST,
            "holds",
            id="a planted file is refused",
        ),
        pytest.param(
            lambda d: (d / MANIFEST).write_text("{"),
            HOST,
            MANIFEST,
            id="a broken manifest is refused",
        ),
        pytest.param(
            lambda d: None,
            "peer0.hospa.example.com",
            "not of peer0.hospa",
            id="another node's backup is refused",
        ),
        pytest.param(
            _forge_manifest_node, HOST, "not of peer0.hospc", id="a relabelled backup is refused"
        ),
    ],
)
def test_a_bad_backup_is_refused_and_nothing_is_written(
    net: EmbeddedNetwork,
    backup: Path,
    tmp_path: Path,
    tamper: Callable[[Path], object],
    host: str,
    reason: str,
) -> None:
    forged = tmp_path / "forged"
    shutil.copytree(backup, forged)
    tamper(forged)
    config = _empty_node(net, tmp_path, host)
    with pytest.raises(SnapshotInvalid, match=reason):
        restore_node(forged, config)
    assert sorted(p.name for p in config.parent.iterdir()) == ["node.yaml"]


def test_an_archive_reaching_outside_the_folder_is_refused(
    net: EmbeddedNetwork, tmp_path: Path
) -> None:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    config = _empty_node(net, tmp_path / "target")
    with pytest.raises(SnapshotInvalid, match="not a readable backup archive"):
        restore_node(archive, config)
    assert not list(tmp_path.rglob("escaped"))


def test_a_restore_over_live_ledgers_is_refused(net: EmbeddedNetwork, backup: Path) -> None:
    config = net.layout.directory / "nodes" / HOST / "node.yaml"
    peer = next(p for p in net.peers_of(CHANNEL) if p.name == HOST)
    before = (peer.channel(CHANNEL).height, peer.channel(CHANNEL).state.state_hash())
    with pytest.raises(PreconditionFailed, match="still holds ledgers"):
        restore_node(backup, config)
    assert (peer.channel(CHANNEL).height, peer.channel(CHANNEL).state.state_hash()) == before


def test_a_backup_is_cut_back_to_its_world_state_so_later_blocks_are_committed_again(
    net: EmbeddedNetwork, backup: Path, tmp_path: Path
) -> None:
    """A node caught between storing a block and applying it (the state one block behind) is
    backed up at the state's block: the restored peer commits the next one through its commit
    path (and its listeners: private-data erasures) instead of replaying it."""
    lagging = _empty_node(net, tmp_path / "lagging")
    restore_node(backup, lagging)
    assert net.client("HospCMSP").submit(CHANNEL, "basic", "TransferAsset", "b0", "Tom").valid
    source = next(p for p in net.peers_of(CHANNEL) if p.name == HOST).channel(CHANNEL)
    ledger = lagging.parent / "ledgers" / CHANNEL
    with BlockStore.open(ledger / "blocks") as store:
        savepoint = store.height - 1
        store.append(source.store.get_block(store.height))  # stored, not yet applied

    restored = _empty_node(net, tmp_path / "restored")
    backup_node(lagging, tmp_path / "again")
    restore_node(tmp_path / "again", restored)
    channel = PeerChannel.open(restored.parent / "ledgers" / CHANNEL)
    try:
        assert (channel.height, channel.state.savepoint) == (savepoint + 1, savepoint)
        for block in source.blocks(channel.height):
            channel.commit(block)
        assert channel.state.state_hash() == source.state.state_hash()
    finally:
        channel.close()


def test_a_postgresql_state_peer_is_restored_with_its_state_rebuilt_from_the_blocks(
    net: EmbeddedNetwork, backup: Path, tmp_path: Path, postgres_url: str
) -> None:
    """The state is not in the folder, and may be ahead of the backup's blocks: restore clears
    the peer's schema, which it rebuilds from the restored blocks."""
    url = parse_database_url(postgres_url)
    location = StateLocation(url, "state_backup_test")
    config = _empty_node(net, tmp_path / "node")
    restore_node(backup, config)
    ledger = config.parent / "ledgers" / CHANNEL
    (ledger / "state.db").unlink()
    PeerChannel.open(ledger, state_at=location).close()  # the state moves to PostgreSQL
    manifest = backup_node(config, tmp_path / "pg-backup")
    assert [entry.state for entry in manifest.ledgers] == ["postgresql"]

    assert net.client("HospCMSP").submit(CHANNEL, "basic", "TransferAsset", "b1", "Li").valid
    source = next(p for p in net.peers_of(CHANNEL) if p.name == HOST).channel(CHANNEL)
    channel = PeerChannel.open(ledger, state_at=location)
    try:
        height = channel.height
        for block in source.blocks(height):
            channel.commit(block)  # the schema moves on past the backup
    finally:
        channel.close()

    shutil.rmtree(config.parent / "ledgers")
    restore_node(tmp_path / "pg-backup", config, state_database=url)
    channel = PeerChannel.open(ledger, state_at=location)
    try:
        assert (channel.height, channel.state.savepoint) == (height, height - 1)
        for block in source.blocks(channel.height):
            channel.commit(block)
        assert channel.state.state_hash() == source.state.state_hash()
    finally:
        channel.close()
