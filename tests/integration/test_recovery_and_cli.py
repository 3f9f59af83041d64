"""Crash recovery, state rebuild, and the two commands the README promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from medalliance.node.channel import PeerChannel, rebuild_state
from medalliance.node.embedded import EmbeddedNetwork

PATIENT = "0123456789abcdef0123456789abcdef"


def ledger_dirs(directory: Path) -> list[Path]:
    return sorted(p.parent for p in directory.glob("nodes/*/ledgers/alliance/blocks"))


def test_a_peer_killed_between_block_and_state_replays_on_restart(network: EmbeddedNetwork) -> None:
    network.client("HospCMSP").submit(
        "alliance", "visit", "RegisterVisit", "R-1", PATIENT, "HospCMSP"
    )
    reference = network.peers_of("alliance")[0].channel("alliance")
    victim = network.peers_of("alliance")[1].channel("alliance")
    expected = reference.state.state_hash()
    # The crash: the next block reached the block store, its writes never reached the state.
    network.client("HospCMSP").submit(
        "alliance", "visit", "RegisterVisit", "R-2", PATIENT, "HospCMSP"
    )
    directory = network.peers_of("alliance")[1].directory
    path = directory / "ledgers" / "alliance"
    victim.close()
    state_db = path / "state.db"
    from medalliance.ledger.sqlite_state import SqliteState

    state = SqliteState.open(state_db)
    state.clear()
    state.apply_block(0, [])
    state.close()
    reopened = PeerChannel.open(path)
    try:
        assert reopened.state.state_hash() == reference.state.state_hash() != expected
        assert reopened.height == reference.height
    finally:
        reopened.close()


def test_rebuild_state_rederives_the_same_world_state(network: EmbeddedNetwork) -> None:
    network.client("HospCMSP").submit(
        "alliance", "visit", "RegisterVisit", "R-3", PATIENT, "HospCMSP"
    )
    peer = network.peers_of("alliance")[0]
    before = peer.channel("alliance").state.state_hash()
    height = peer.channel("alliance").height
    path = peer.directory / "ledgers" / "alliance"
    network.close()
    result = rebuild_state(path)
    assert bytes.fromhex(result.state_hash) == before
    assert result.blocks_replayed == height - 1  # every block after genesis


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medalliance.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_demo_then_verify_then_tamper(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    demo = cli("demo", "--scenario", "referral", "--data-dir", str(data))
    assert demo.returncode == 0, demo.stderr
    assert "exactly once" in demo.stdout
    assert "✗" not in demo.stdout
    # A second run reuses the alliance (same patients, new visits): it must not trip over the
    # first run's records in the hospitals' stores.
    again = cli("demo", "--scenario", "referral", "--data-dir", str(data))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "✗" not in again.stdout
    verify = cli("--json", "ledger", "verify", str(data))
    assert verify.returncode == 0, verify.stdout
    report = json.loads(verify.stdout)
    assert report["intact"]
    assert len(report["ledgers"]) == 6
    assert len({ledger["state_hash"] for ledger in report["ledgers"]}) == 1

    blockfile = ledger_dirs(data)[2] / "blocks" / "blockfile_000000"
    raw = bytearray(blockfile.read_bytes())
    raw[-40] ^= 0x01  # one bit in the last block
    blockfile.write_bytes(bytes(raw))
    tampered = cli("--json", "ledger", "verify", str(data))
    assert tampered.returncode == 1
    bad = [ledger for ledger in json.loads(tampered.stdout)["ledgers"] if not ledger["intact"]]
    assert len(bad) == 1
    assert bad[0]["bad_block"] is not None
    assert bad[0]["reason"]


def test_a_changed_world_state_is_caught(tmp_path: Path, network_template: Path) -> None:
    import shutil
    import sqlite3

    data = tmp_path / "net"
    shutil.copytree(network_template, data)
    db = sqlite3.connect(ledger_dirs(data)[0] / "state.db")
    db.execute("UPDATE state SET value = X'7b7d' WHERE ns = '_lifecycle'")
    db.commit()
    db.close()
    verify = cli("--json", "ledger", "verify", str(data))
    assert verify.returncode == 1
    verdicts = json.loads(verify.stdout)["ledgers"]
    assert [v["node_state_matches"] for v in verdicts].count(False) == 1


def test_errors_are_clear_and_exit_codes_follow_the_table(tmp_path: Path) -> None:
    missing = cli("ledger", "verify", str(tmp_path / "nothing"))
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("name: x\norganizations: []\nunknown_key: 1\n")
    result = cli("--json", "demo", "--config", str(bad_config), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2
    error = json.loads(result.stdout)
    assert error["error"] == "ConfigError"
    assert "unknown_key" in error["message"]
    assert cli("demo", "--help").returncode == 0


def test_any_flipped_bit_in_a_block_file_is_caught(
    network: EmbeddedNetwork, tmp_path: Path
) -> None:
    import random
    import shutil

    from medalliance.audit.verify import verify_ledger
    from medalliance.node.channel import namespace_policy

    client = network.client("HospCMSP")
    client.submit("alliance", "visit", "RegisterVisit", "F-1", PATIENT, "HospCMSP")
    client.submit("alliance", "basic", "CreateAsset", "F-1", "blue", "5", "HospC", "300")
    ledger = network.peers_of("alliance")[0].directory / "ledgers" / "alliance"
    network.close()
    assert verify_ledger(ledger, namespace_policy).intact
    raw = (ledger / "blocks" / "blockfile_000000").read_bytes()
    rng = random.Random(7)  # a failure names the seed and the offset
    for offset in sorted(rng.sample(range(len(raw)), 30)):
        copy = tmp_path / f"flip-{offset}"
        shutil.copytree(ledger, copy)
        data = bytearray(raw)
        data[offset] ^= 1 << rng.randrange(8)
        (copy / "blocks" / "blockfile_000000").write_bytes(bytes(data))
        report = verify_ledger(copy, namespace_policy)
        assert not report.intact, f"seed 7: a flip at byte {offset} went unnoticed"
        shutil.rmtree(copy)


def test_dash_h_is_help_on_every_level() -> None:
    for args in (("-h",), ("referral", "review", "-h"), ("ledger", "verify", "-h")):
        result = cli(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "Usage:" in result.stdout
        assert " ".join(args[:-1]) in result.stdout  # the subcommand's own help
