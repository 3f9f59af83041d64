"""benchmarks/caliper/make-networkconfig.py on folders of both test networks: Caliper needs only
Org1's peer, its TLS CA and User1, so the BFT test network (four ordering nodes) takes the same
config as the test network."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from tests.networks import REPO

from medalliance.node.bootstrap import init_network
from medalliance.node.config import load_network_config

SCRIPT = REPO / "benchmarks" / "caliper" / "make-networkconfig.py"


def make_networkconfig() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_networkconfig", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=["fabric-test-network.yaml", "bft-test-network.yaml"])
def folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A network folder of the test network or of the BFT test network (not started)."""
    config = load_network_config(REPO / "networks" / request.param)
    directory = tmp_path_factory.mktemp("caliper") / "net"
    init_network(config, directory, now=dt.datetime.now(dt.UTC))
    return directory


def test_caliper_is_configured_with_org1s_peer_on_either_test_network(folder: Path) -> None:
    text = make_networkconfig().build(folder, "Org1", "User1", "mychannel", "basic")

    (org,) = yaml.safe_load(text)["organizations"]
    (peer,) = org["peers"]
    assert org["mspid"] == "Org1MSP"
    assert peer["endpoint"] == "localhost:7051"
    assert peer["grpcOptions"]["ssl-target-name-override"] == "peer0.org1.example.com"
    (identity,) = org["identities"]["certificates"]
    for path in (
        peer["tlsCACerts"]["path"],
        *(identity[k]["path"] for k in identity if k != "name"),
    ):
        assert Path(path).is_file()
        assert Path(path).is_relative_to(folder.resolve())


def test_a_missing_contract_or_organisation_is_refused(folder: Path) -> None:
    script = make_networkconfig()
    with pytest.raises(SystemExit, match="no contract 'nocontract'"):
        script.build(folder, "Org1", "User1", "mychannel", "nocontract")
    with pytest.raises(SystemExit, match="no organisation 'Org9'"):
        script.build(folder, "Org9", "User1", "mychannel", "basic")
