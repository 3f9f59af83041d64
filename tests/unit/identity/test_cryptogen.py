"""Crypto material lands in Fabric's cryptogen layout and loads back as working identities."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from tests.conftest import NOW

from medalliance.errors import PreconditionFailed
from medalliance.identity.cryptogen import OrgSpec, UserSpec, generate_org, load_signer
from medalliance.identity.msp import Msp, MspManager


def test_layout_and_identities(tmp_path: Path) -> None:
    spec = OrgSpec(
        "Org1MSP",
        "org1.example.com",
        "peer",
        peers=("peer0",),
        users=(UserSpec("Admin", "admin"), UserSpec("User1", "client", "doctor")),
    )
    root = generate_org(tmp_path, spec, now=NOW)
    assert root == tmp_path / "peerOrganizations" / "org1.example.com"
    for rel in (
        "ca/ca.org1.example.com-cert.pem",
        "tlsca/priv_sk",
        "msp/config.yaml",
        "peers/peer0.org1.example.com/tls/server.crt",
        "peers/peer0.org1.example.com/msp/keystore/priv_sk",
        "users/User1@org1.example.com/msp/signcerts/User1@org1.example.com-cert.pem",
        "users/Admin@org1.example.com/tls/client.key",
    ):
        assert (root / rel).is_file(), rel
    assert stat.S_IMODE((root / "ca/priv_sk").stat().st_mode) == 0o600
    msps = MspManager([Msp.from_dir(root / "msp", "Org1MSP")])
    user = load_signer(root / "users/User1@org1.example.com/msp", "Org1MSP")
    identity = msps.deserialize(user.serialized_identity, at=NOW)
    assert (identity.node_ou, identity.alliance_role) == ("client", "doctor")
    assert identity.verify(user.sign(b"hello"), b"hello")
    peer = load_signer(root / "peers/peer0.org1.example.com/msp", "Org1MSP")
    assert msps.deserialize(peer.serialized_identity, at=NOW).node_ou == "peer"
    with pytest.raises(PreconditionFailed, match="refusing to overwrite"):
        generate_org(tmp_path, spec, now=NOW)
