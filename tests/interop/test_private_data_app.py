"""fabric-samples' asset-transfer-private-data application, with the unmodified Fabric Gateway
Node client, against the Python port of its chaincode on two organisations' peer processes.

`private-data.test.mjs` follows the sample's application-gateway-typescript call sequence and
expectations, one gateway per organisation (its one addition: before reading through the other
organisation's peer, it waits until that peer delivered the block just committed), checks that
each organisation reads only its own collection and that `DeliverWithPrivateData` gives each
the private data of its collections only; then this driver scans the files of Org2's peer: a
value only Org1's collection holds is nowhere in them, its SHA-256 hash is (the ledger's hashed
write set). Needs `node` and `npm ci` in tests/interop, as test_node_gateway.py.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from medalliance.samples.asset_transfer_private_data import collections_config
from tests.interop.test_node_gateway import _skip_reason, run_node_test
from tests.networks import TEST_NETWORK, running, with_free_ports

HERE = Path(__file__).resolve().parent
NODE_TEST = HERE / "private-data.test.mjs"
CHANNEL = "mychannel"
CHAINCODE = "private"

pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


@pytest.fixture(scope="module")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Fabric's test network on free ports with the sample deployed as the tutorial does:
    `-ccep "OR('Org1MSP.peer','Org2MSP.peer')"` and the sample's collections config."""
    base = tmp_path_factory.mktemp("private-data")
    contract = {
        "name": CHAINCODE,
        "package": "medalliance.samples.asset_transfer_private_data:AssetTransferPrivateData",
        "version": "1.0",
        "label": "private_1.0",
        "endorsement_policy": "OR('Org1MSP.peer','Org2MSP.peer')",
        "collections": json.loads(collections_config()),
    }
    config = with_free_ports(TEST_NETWORK, base / "network.yaml", [(CHANNEL, contract)])
    with running(config, base) as directory:
        yield directory


def _env(network_dir: Path, out: Path) -> dict[str, str]:
    config = yaml.safe_load((network_dir.parent / "network.yaml").read_text(encoding="utf-8"))
    env = dict(os.environ, PDC_CHANNEL=CHANNEL, PDC_CHAINCODE=CHAINCODE, PDC_OUT=str(out))
    for n, name in ((1, "Org1"), (2, "Org2")):
        (org,) = (o for o in config["organizations"] if o["name"] == name)
        root = network_dir / "organizations" / "peerOrganizations" / org["domain"]
        peer = org["peers"][0]
        user = root / "users" / f"User1@{org['domain']}" / "msp"
        (cert,) = sorted((user / "signcerts").glob("*.pem"))
        env |= {
            f"PDC_ENDPOINT_{n}": f"127.0.0.1:{peer['port']}",
            f"PDC_HOST_ALIAS_{n}": f"{peer['name']}.{org['domain']}",
            f"PDC_TLS_CA_{n}": str(
                root / "peers" / f"{peer['name']}.{org['domain']}" / "tls" / "ca.crt"
            ),
            f"PDC_MSP_ID_{n}": org["msp_id"],
            f"PDC_CERT_{n}": str(cert),
            f"PDC_KEY_{n}": str(user / "keystore" / "priv_sk"),
        }
    return env


def _files_of(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def test_the_private_data_sample_application(network_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "assets.json"
    run_node_test(NODE_TEST, _env(network_dir, out))
    org1_only = json.loads(out.read_text(encoding="utf-8"))["org1Only"]
    value = f'{{"assetID":"{org1_only}","appraisedValue":4242}}'.encode()
    org1_peer = _files_of(network_dir / "nodes" / "peer0.org1.example.com")
    org2_peer = _files_of(network_dir / "nodes" / "peer0.org2.example.com")
    assert value in org1_peer  # the member's peer keeps the value
    assert value not in org2_peer  # the non-member's holds no copy of it ...
    assert hashlib.sha256(value).digest() in org2_peer  # ... only its hash, on the ledger
