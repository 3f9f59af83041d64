"""Network bootstrap: Fabric's crypto layout, genesis blocks, and never overwriting a network."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from medalliance.errors import NotFound, PreconditionFailed
from medalliance.identity.cryptogen import load_signer
from medalliance.identity.policy import SignedData
from medalliance.ledger.block import parse_block
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.node import bootstrap
from medalliance.node.bootstrap import (
    LEGACY_PSEUDONYM_KEY,
    OPRF_KEY,
    NetworkLayout,
    init_network,
)
from medalliance.node.config import NetworkConfig
from medalliance.privacy.pseudonym import load_key

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)

CONFIG = NetworkConfig.model_validate(
    {
        "name": "boot-net",
        "organizations": [
            {"name": "Reg", "msp_id": "RegMSP", "domain": "reg.example.com", "type": "regulator",
             "peers": [{"name": "peer0", "port": 7051}],
             "users": [{"name": "Auditor1", "role": "auditor"}]},
            {"name": "HospA", "msp_id": "HospAMSP", "domain": "hospa.example.com",
             "type": "tertiary", "regulator": "Reg", "peers": [{"name": "peer0", "port": 7151}],
             "orderers": [{"name": "orderer0", "port": 7050}]},
            {"name": "Ord", "msp_id": "OrdMSP", "domain": "ord.example.com", "type": "orderer",
             "orderers": [{"name": "orderer0", "port": 7150}]},
        ],
        "channels": [{"name": "alliance", "batch": {"max_message_count": 7}},
                     {"name": "audit", "members": ["Reg"]}],
    }
)  # fmt: skip


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[NetworkLayout, list[str]]:
    messages: list[str] = []
    directory = tmp_path_factory.mktemp("boot") / "net"
    layout = init_network(CONFIG, directory, now=NOW, on_progress=messages.append)
    return layout, messages


@pytest.fixture(scope="module")
def layout(made: tuple[NetworkLayout, list[str]]) -> NetworkLayout:
    return made[0]


def channel(layout: NetworkLayout, name: str) -> ChannelConfig:
    return ChannelConfig.from_block(parse_block(layout.genesis_block_path(name).read_bytes()))


def signed_by(msp_dir: Path, msp_id: str) -> SignedData:
    signer = load_signer(msp_dir, msp_id)
    return SignedData(b"data", signer.serialized_identity, signer.sign(b"data"))


def test_crypto_follows_fabrics_cryptogen_layout(layout: NetworkLayout) -> None:
    orgs = layout.directory / "organizations"
    hosp = orgs / "peerOrganizations" / "hospa.example.com"
    assert layout.org_dir("HospAMSP") == hosp
    assert layout.org_dir("HospA") == hosp  # by name too
    assert layout.org_dir("OrdMSP") == orgs / "ordererOrganizations" / "ord.example.com"
    assert layout.peer_dir("HospAMSP", "peer0") == hosp / "peers" / "peer0.hospa.example.com"
    # A tertiary hospital's ordering node lives under its own organisation.
    orderer = layout.orderer_dir("HospAMSP", "orderer0")
    assert orderer == hosp / "orderers" / "orderer0.hospa.example.com"
    for node in (layout.peer_dir("HospAMSP", "peer0"), orderer):
        assert (node / "msp" / "signcerts").is_dir()
        assert (node / "tls" / "server.crt").is_file()
    for folder in ("ca", "tlsca", "msp/cacerts", "msp/tlscacerts"):
        assert (hosp / folder).is_dir()


@pytest.mark.parametrize(
    ("msp_id", "user"),
    [
        pytest.param("RegMSP", "Admin", id="every organisation gets an Admin"),
        pytest.param("RegMSP", "User1", id="every organisation gets User1"),
        pytest.param("RegMSP", "Auditor1", id="configured users are generated"),
        pytest.param("OrdMSP", "Admin", id="ordering organisations get an Admin too"),
    ],
)
def test_users_get_their_msp_folders(layout: NetworkLayout, msp_id: str, user: str) -> None:
    msp_dir = layout.user_msp_dir(msp_id, user)
    assert msp_dir.name == "msp"
    assert (msp_dir / "keystore" / "priv_sk").stat().st_mode & 0o077 == 0
    assert load_signer(msp_dir, msp_id).msp_id == msp_id


def test_genesis_blocks_describe_each_channel(layout: NetworkLayout) -> None:
    alliance = channel(layout, "alliance")
    assert alliance.application_msp_ids == ("HospAMSP", "RegMSP")
    assert alliance.orderer_msp_ids == ("HospAMSP", "OrdMSP")
    assert alliance.consenters == ("127.0.0.1:7050", "127.0.0.1:7150")  # client ports
    # the consenter mapping names the cluster ports (default port + 20000): consensus goes there
    assert [c.endpoint for c in alliance.consenter_set] == ["127.0.0.1:27050", "127.0.0.1:27150"]
    assert alliance.batch_max_count == 7
    assert alliance.orgs["HospAMSP"].regulator == "RegMSP"
    assert channel(layout, "audit").application_msp_ids == ("RegMSP",)


@pytest.mark.parametrize(
    ("path", "who"),
    [
        pytest.param("/Channel/Application/Writers", ("RegMSP", "User1"), id="a generated client may write"),
        pytest.param("/Channel/Writers", ("HospAMSP", "Admin"), id="a generated admin passes channel writers"),
        pytest.param("/Channel/Orderer/BlockValidation", ("HospAMSP", "orderer0"), id="a hospital's orderer node may sign blocks"),
        pytest.param("/Channel/Orderer/BlockValidation", ("OrdMSP", "orderer0"), id="an ordering org's node may sign blocks"),
    ],
)  # fmt: skip
def test_generated_identities_satisfy_the_channel_policies(
    layout: NetworkLayout, path: str, who: tuple[str, str]
) -> None:
    msp_id, name = who
    msp_dir = (
        layout.orderer_dir(msp_id, name) / "msp"
        if name.startswith("orderer")
        else layout.user_msp_dir(msp_id, name)
    )
    config = channel(layout, "alliance")
    assert config.evaluate_policy(path, [signed_by(msp_dir, msp_id)], at=NOW)


def test_the_network_file_reads_back_as_the_same_config(layout: NetworkLayout) -> None:
    loaded = NetworkLayout.load(layout.directory)
    assert loaded.config == CONFIG
    assert loaded == layout


def test_progress_is_reported(made: tuple[NetworkLayout, list[str]]) -> None:
    messages = made[1]
    assert messages[:3] == [
        "generating crypto for RegMSP",
        "generating crypto for HospAMSP",
        "generating crypto for OrdMSP",
    ]
    assert "creating the genesis block of channel audit" in messages


def test_a_directory_holding_a_network_is_refused(layout: NetworkLayout) -> None:
    with pytest.raises(PreconditionFailed, match="already holds a network; use a new --dir"):
        init_network(CONFIG, layout.directory, now=NOW)


def test_a_directory_with_leftover_crypto_is_refused(tmp_path: Path) -> None:
    (tmp_path / "organizations").mkdir()
    with pytest.raises(PreconditionFailed, match=str(tmp_path)):
        init_network(CONFIG, tmp_path, now=NOW)


def test_a_directory_with_unrelated_files_is_used(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    init_network(CONFIG, tmp_path, now=NOW)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "channel-artifacts",
        "network.yaml",
        "nodes",
        "notes.txt",
        "organizations",
    ]


def test_a_failed_init_leaves_no_half_made_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(bootstrap, "genesis_block", fail)
    with pytest.raises(RuntimeError):
        init_network(CONFIG, tmp_path / "net", now=NOW)
    assert list((tmp_path / "net").iterdir()) == []


def test_loading_a_directory_without_a_network_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="holds no network"):
        NetworkLayout.load(tmp_path)


def test_only_the_pseudonym_regulator_holds_the_oprf_key(tmp_path: Path) -> None:
    data = CONFIG.model_dump(mode="json")
    data["organizations"].append(
        {"name": "HospB", "msp_id": "HospBMSP", "domain": "hospb.example.com",
         "type": "secondary", "regulator": "Reg", "peers": [{"name": "peer0", "port": 7251}]}
    )  # fmt: skip
    layout = init_network(NetworkConfig.model_validate(data), tmp_path, now=NOW)
    assert layout.config.pseudonym_regulator() == layout.config.organization("Reg")  # the root
    key = layout.org_dir("RegMSP") / OPRF_KEY
    assert load_key(key).scalar == key.read_bytes()
    assert key.stat().st_mode & 0o777 == 0o600
    for org in ("HospAMSP", "HospBMSP", "OrdMSP"):  # no hospital can compute a pseudonym
        assert not (layout.org_dir(org) / "pseudonym").exists()
        assert not (layout.org_dir(org) / LEGACY_PSEUDONYM_KEY).exists()


@pytest.mark.parametrize(
    ("service", "accepted"),
    [
        pytest.param("Reg", True, id="a regulator with a peer may run the service"),
        pytest.param("HospA", False, id="a hospital may not run the service"),
        pytest.param("Nobody", False, id="an unknown organisation is refused"),
    ],
)
def test_the_pseudonym_service_is_a_regulator_with_a_peer(service: str, accepted: bool) -> None:
    data = {**CONFIG.model_dump(mode="json"), "pseudonym_service": service}
    if accepted:
        assert NetworkConfig.model_validate(data).pseudonym_regulator() is not None
    else:
        with pytest.raises(ValueError, match=r"pseudonym_service: .* is not a regulator"):
            NetworkConfig.model_validate(data)
