"""The unmodified Fabric Gateway Node client (`@hyperledger/fabric-gateway`) against a network
of medalliance node processes: `node --test gateway.test.mjs`, driven from pytest.

The network is the Fabric test network config on free ports, with the interop contract
(`tests/interop/contract.py`) deployed next to `basic`. Needs `node` and `npm ci` run in
tests/interop; without either the test is skipped, saying which one is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.networks import TEST_NETWORK, running, with_free_ports

HERE = Path(__file__).resolve().parent
NODE_TEST = HERE / "gateway.test.mjs"
CHANNEL = "mychannel"
INTEROP_CONTRACT = "interop"
NODE_TIMEOUT_S = 180

NODE = shutil.which("node")


def _skip_reason() -> str | None:
    if NODE is None:
        return "`node` (Node.js >= 20.9) is not on PATH: the Fabric Gateway Node client cannot run"
    if not (HERE / "node_modules" / "@hyperledger" / "fabric-gateway").is_dir():
        return "tests/interop/node_modules is missing: run `npm ci` in tests/interop first"
    if not (HERE / "node_modules" / "fabric-ca-client").is_dir():
        return "fabric-ca-client is not in tests/interop/node_modules: run `npm ci` there"
    if not (HERE / "node_modules" / "fabric-network").is_dir():
        return "fabric-network is not in tests/interop/node_modules: run `npm ci` there"
    return None


# CI sets MEDALLIANCE_REQUIRE_INTEROP=1: there a missing Node client is a failure, not a skip.
if os.environ.get("MEDALLIANCE_REQUIRE_INTEROP") == "1" and _skip_reason() is not None:
    raise RuntimeError(f"interop tests are required here: {_skip_reason()}")
pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


@pytest.fixture(scope="module")
def network_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The Fabric test network on free ports, with the interop contract on the channel and
    its Fabric CAs (admin/adminpw, as Fabric's test network)."""
    base = tmp_path_factory.mktemp("interop")
    contract = {
        "name": INTEROP_CONTRACT,
        "package": "tests.interop.contract:InteropContract",
        "version": "1.0",
        "label": "interop_1.0",
        "endorsement_policy": "AND('Org1MSP.peer', 'Org2MSP.peer')",
    }
    config = with_free_ports(
        TEST_NETWORK, base / "network.yaml", [(CHANNEL, contract)], with_cas=True
    )
    with running(config, base) as directory:
        yield directory


def _node_env(network_dir: Path) -> dict[str, str]:
    config = yaml.safe_load((network_dir.parent / "network.yaml").read_text(encoding="utf-8"))
    orgs = {org["name"]: org for org in config["organizations"]}
    org1 = network_dir / "organizations" / "peerOrganizations" / "org1.example.com"
    user = org1 / "users" / "User1@org1.example.com" / "msp"
    (cert,) = sorted((user / "signcerts").glob("*.pem"))
    peer = orgs["Org1"]["peers"][0]
    env = dict(os.environ)
    env.update(
        {
            "GATEWAY_ENDPOINT": f"127.0.0.1:{peer['port']}",
            # the gateway's peer as the network config names it: Fabric's ErrorDetail.address
            "GATEWAY_PEER_ADDRESS": f"{peer.get('host', '127.0.0.1')}:{peer['port']}",
            "GATEWAY_HOST_ALIAS": f"{peer['name']}.{orgs['Org1']['domain']}",
            "GATEWAY_TLS_CA": str(org1 / "peers" / "peer0.org1.example.com" / "tls" / "ca.crt"),
            "GATEWAY_MSP_ID": orgs["Org1"]["msp_id"],
            "GATEWAY_CERT": str(cert),
            "GATEWAY_KEY": str(user / "keystore" / "priv_sk"),
            "GATEWAY_CHANNEL": CHANNEL,
            "GATEWAY_BASIC": "basic",
            "GATEWAY_INTEROP": INTEROP_CONTRACT,
        }
    )
    return env


def run_node_test(test_file: Path, env: dict[str, str]) -> str:
    """Run one `node --test` file against the network; fail with its output unless it passes."""
    assert NODE is not None
    try:
        result = subprocess.run(
            [NODE, "--test", "--test-reporter=spec", str(test_file)],
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT_S,
            cwd=HERE,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(f"node --test {test_file.name} ran over {NODE_TIMEOUT_S} s:\n{out}\n{err}")
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"node --test failed ({result.returncode}):\n{output}"
    print(output)
    return output


def test_fabric_gateway_node_client(network_dir: Path) -> None:
    run_node_test(NODE_TEST, _node_env(network_dir))


CA_TEST = HERE / "fabric-ca.test.mjs"


def test_fabric_ca_client(network_dir: Path, tmp_path: Path) -> None:
    """`fabric-ca-client` 2.2 enrols the bootstrap registrar, registers and enrols a doctor who
    transacts through the Gateway client, revokes it: its serial is in the CA's CRL; after the
    channel admins' vote on that CRL the doctor is refused."""
    from cryptography import x509

    from medalliance.app.session import connect_as
    from medalliance.node.bootstrap import NetworkLayout
    from medalliance.sdk import GatewayError
    from tests.networks import cli

    assert NODE is not None
    config = yaml.safe_load((network_dir.parent / "network.yaml").read_text(encoding="utf-8"))
    (org1,) = (org for org in config["organizations"] if org["name"] == "Org1")
    root = network_dir / "organizations" / "peerOrganizations" / "org1.example.com"
    out = tmp_path / "ca-out.json"
    env = _node_env(network_dir)
    env.update(
        {
            "CA_URL": f"https://localhost:{org1['ca']['port']}",
            "CA_NAME": "ca-org1",
            "CA_TLS_CA": str(root / "tlsca" / "tlsca.org1.example.com-cert.pem"),
            "CA_ROOT": str(root / "ca" / "ca.org1.example.com-cert.pem"),
            "CA_OUT": str(out),
        }
    )
    run_node_test(CA_TEST, env)
    revoked = json.loads(out.read_text(encoding="utf-8"))
    crl = x509.load_pem_x509_crl(revoked["crl"].encode())
    ca_cert = (root / "ca" / "ca.org1.example.com-cert.pem").read_bytes()
    assert crl.is_signature_valid(x509.load_pem_x509_certificate(ca_cert).public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(int(revoked["serial"], 16)) is not None

    # the CA's CRL reaches the channel through the admins' vote; then the doctor is refused
    (tmp_path / "crl.pem").write_text(revoked["crl"], encoding="utf-8")
    d, update = ("--dir", str(network_dir)), tmp_path / "revoke.json"
    cli("channel", "propose-update", *d, "--org", "Org1", "-C", CHANNEL,
        "--revoke", str(tmp_path / "crl.pem"), "-o", str(update))  # fmt: skip
    for org in ("Org1", "Org2", "OrdererOrg"):  # /Channel/Admins: both sides' majorities
        cli("channel", "sign-update", str(update), *d, "--org", org)
    cli("channel", "submit-update", str(update), *d, "--org", "Org1")
    layout = NetworkLayout.load(network_dir)
    msp = layout.user_msp_dir("Org1MSP", revoked["id"])
    (msp / "signcerts").mkdir(parents=True)
    (msp / "keystore").mkdir()
    (msp / "signcerts" / "cert.pem").write_text(revoked["cert"], encoding="utf-8")
    (msp / "keystore" / "key_sk").write_text(revoked["key"], encoding="utf-8")
    with connect_as(layout, "Org1MSP", revoked["id"]) as gateway:
        contract = gateway.get_network(CHANNEL).get_contract("basic")
        with pytest.raises(GatewayError, match="access denied"):
            contract.submit_transaction("CreateAsset", "after-vote", "red", "1", "x", "1")


def test_network_status_shows_the_fabric_cas_and_a_down_one_fails_it(network_dir: Path) -> None:
    """`network status` has a row per CA (role `ca`, https endpoint, pid, health from `cainfo`
    over TLS); with Org2's CA stopped the row says down and the command exits 1; started again
    (as `network up` starts it), all is up."""
    from medalliance.node import ca_launcher
    from medalliance.node.bootstrap import NetworkLayout
    from tests.networks import cli

    config = yaml.safe_load((network_dir.parent / "network.yaml").read_text(encoding="utf-8"))
    ports = {org["name"]: org["ca"]["port"] for org in config["organizations"] if "ca" in org}
    d = ("--dir", str(network_dir))

    def ca_rows() -> tuple[int, dict[str, dict[str, object]]]:
        done = cli("--json", "network", "status", *d, check=False)
        rows = json.loads(done.stdout)["nodes"]
        return done.returncode, {r["name"]: r for r in rows if r["role"] == "ca"}

    code, rows = ca_rows()
    assert code == 0
    assert set(rows) == {"ca.org1.example.com", "ca.org2.example.com"}
    for org, name in (("Org1", "ca.org1.example.com"), ("Org2", "ca.org2.example.com")):
        assert rows[name]["endpoint"] == f"https://localhost:{ports[org]}"
        assert rows[name]["health"] == "up"
        assert isinstance(rows[name]["pid"], int)
    table = cli("network", "status", *d).stdout
    assert "ca.org2.example.com" in table

    layout = NetworkLayout.load(network_dir)
    org2_ca = ca_launcher.cas_of(layout, "Org2")
    assert ca_launcher.stop(layout, org2_ca) == ["ca.org2.example.com"]
    try:
        code, rows = ca_rows()
        assert code == 1
        assert (rows["ca.org2.example.com"]["health"], rows["ca.org2.example.com"]["pid"]) == (
            "down",
            None,
        )
        assert rows["ca.org1.example.com"]["health"] == "up"
    finally:
        ca_launcher.up(layout, organization="Org2")
    code, rows = ca_rows()
    assert code == 0
    assert rows["ca.org2.example.com"]["health"] == "up"


NETWORK_TEST = HERE / "fabric-network.test.mjs"


def test_fabric_network_with_discovery(network_dir: Path) -> None:
    """`fabric-network` 2.2 with discovery on (as fabric-samples' older applications connect):
    from Org1's connection profile and a wallet identity, without a TLS client identity, it
    discovers Org2's peer and the orderer, submits a transaction endorsed by both and waits for
    its commit, then queries."""
    assert NODE is not None
    env = _node_env(network_dir)
    org1 = network_dir / "organizations" / "peerOrganizations" / "org1.example.com"
    env["NETWORK_PROFILE"] = str(org1 / "connection-org1.json")  # no TLS client identity
    run_node_test(NETWORK_TEST, env)
