"""An embedded network whose peers keep their world state on PostgreSQL (`state_database`).

The template network's ledgers hold SQLite states; opened with `state_database` the peers start
with empty PostgreSQL schemas and rebuild them from their block stores. Then the usual path runs:
submit, evaluate, composite-key scans, rich queries, history, and `ledger verify` comparing a
scratch SQLite rebuild with each peer's PostgreSQL state.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.networks import cli, cli_json

from medalliance.audit.verify import find_ledgers, verify_ledger
from medalliance.database_url import parse_database_url
from medalliance.errors import InvalidArgument
from medalliance.ledger.postgres_state import PostgresState
from medalliance.ledger.world_state import LOCATION_FILE, open_state
from medalliance.node.channel import namespace_policy, rebuild_state
from medalliance.node.config import NetworkConfig
from medalliance.node.embedded import EmbeddedNetwork

PATIENT = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def pg_network(
    network_template: Path, tmp_path: Path, postgres_url: str
) -> Iterator[EmbeddedNetwork]:
    from tests.integration.conftest import CONFIG

    directory = tmp_path / "net"
    shutil.copytree(network_template, directory)
    config = NetworkConfig.model_validate({**CONFIG, "state_database": postgres_url})
    with EmbeddedNetwork.open(config, directory) as net:
        yield net


def test_peers_rebuild_their_postgresql_state_and_serve_from_it(
    pg_network: EmbeddedNetwork,
) -> None:
    peers = pg_network.peers_of("alliance")
    states = [p.channel("alliance").state for p in peers]
    assert all(isinstance(s, PostgresState) for s in states)
    assert {s.savepoint for s in states} == {peers[0].channel("alliance").height - 1}
    assert len({s.state_hash() for s in states}) == 1

    hosp_c = pg_network.client("HospCMSP")
    assert hosp_c.submit("alliance", "visit", "RegisterVisit", "V-1", PATIENT, "HospCMSP").valid
    assert hosp_c.submit("alliance", "basic", "CreateAsset", "a1", "red", "5", "Ann", "300").valid
    assert hosp_c.submit("alliance", "basic", "TransferAsset", "a1", "Tom").valid
    assert json.loads(hosp_c.evaluate("alliance", "basic", "ReadAsset", "a1"))["Owner"] == "Tom"
    # A composite-key scan: keys with NUL bytes, ordered and bounded as in Fabric.
    held = json.loads(hosp_c.evaluate("alliance", "visit", "PatientsAt", "HospCMSP"))
    assert [v["visitNo"] for v in held] == ["V-1"]

    state = peers[0].channel("alliance").state
    page = state.query("basic", {"selector": {"Owner": "Tom"}})
    assert [key for key, _ in page.results] == ["a1"]
    owners = [json.loads(m.value)["Owner"] for m in state.history("basic", "a1")]
    assert owners == ["Tom", "Ann"]  # newest first
    assert len({p.channel("alliance").state.state_hash() for p in peers}) == 1


def test_verify_and_rebuild_find_the_peers_postgresql_state(
    pg_network: EmbeddedNetwork, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        pg_network.client("HospCMSP")
        .submit("alliance", "basic", "CreateAsset", "a1", "red", "5", "Ann", "300")
        .valid
    )
    peer = pg_network.peers_of("alliance")[0]
    expected = peer.channel("alliance").state.state_hash()
    ledger_dir = peer.directory / "ledgers" / "alliance"
    record = (ledger_dir / LOCATION_FILE).read_text(encoding="utf-8")
    password = urlsplit(postgres_url).password
    assert password
    assert f":{password}@" not in record  # libpq's PGPASSWORD supplies it
    pg_network.close()

    monkeypatch.setenv("PGPASSWORD", password)
    for ledger in find_ledgers(pg_network.layout.directory / "nodes"):
        report = verify_ledger(ledger, namespace_policy)
        assert report.intact, report.path
        assert report.node_state_matches is True
    rebuilt = rebuild_state(ledger_dir, parse_database_url(postgres_url))
    assert bytes.fromhex(rebuilt.state_hash) == expected


def test_rebuild_state_on_the_command_line_takes_the_password_or_refuses_clearly(
    pg_network: EmbeddedNetwork, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = pg_network.peers_of("alliance")[0]
    expected = peer.channel("alliance").state.state_hash().hex()
    ledger_dir = peer.directory / "ledgers" / "alliance"
    pg_network.close()
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(ledger_dir / "no-such-pgpass"))
    password = urlsplit(postgres_url).password

    refused = cli("--json", "ledger", "rebuild-state", str(ledger_dir), check=False)
    assert refused.returncode == 3  # Unavailable: supply the password and retry
    assert json.loads(refused.stdout)["error"] == "StateDatabaseUnavailable"
    assert f":{password}@" not in refused.stdout + refused.stderr

    monkeypatch.setenv("MEDALLIANCE_STATE_DATABASE", postgres_url)
    rebuilt = cli_json("ledger", "rebuild-state", str(ledger_dir))
    assert rebuilt["state_hash"] == expected


def test_a_damaged_location_record_is_refused_naming_the_file(
    pg_network: EmbeddedNetwork, postgres_url: str
) -> None:
    peer = pg_network.peers_of("alliance")[0]
    state = peer.channel("alliance").state
    assert isinstance(state, PostgresState)
    schema, before = state.schema, (state.savepoint, state.state_hash())
    ledger_dir = peer.directory / "ledgers" / "alliance"
    pg_network.close()
    (ledger_dir / LOCATION_FILE).write_text('{"url": 1}', encoding="utf-8")
    with pytest.raises(InvalidArgument, match=f"{LOCATION_FILE} is damaged"):
        rebuild_state(ledger_dir)
    with pytest.raises(InvalidArgument, match=f"{LOCATION_FILE} is damaged"):
        verify_ledger(ledger_dir, namespace_policy)
    untouched = open_state(parse_database_url(postgres_url), sqlite_path=Path(), schema=schema)
    assert (untouched.savepoint, untouched.state_hash()) == before  # nothing was cleared
    untouched.close()
