"""The split set-up: each organisation's own keys, public bundles, the genesis archive, joining.

Every refusal is checked twice: the error says what is wrong, and nothing was written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from medalliance.cli import network_split_cmd
from medalliance.errors import (
    GenesisMismatch,
    InvalidArgument,
    InvalidPublicBundle,
    PreconditionFailed,
)
from medalliance.identity.ca import CertificateAuthority
from medalliance.ledger.block import parse_block
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.node import launcher
from medalliance.node.bootstrap import NetworkLayout, init_network
from medalliance.node.config import NetworkConfig
from medalliance.node.public_bundle import pack, unpack, write_bundle
from medalliance.node.split_setup import (
    init_organization,
    join_genesis,
    make_genesis,
    published_hashes,
)

NOW = dt.datetime.now(dt.UTC)

CONFIG = NetworkConfig.model_validate(
    {
        "name": "split-net",
        "organizations": [
            {"name": "Reg", "msp_id": "RegMSP", "domain": "reg.example.com", "type": "regulator",
             "peers": [{"name": "peer0", "port": 7051}]},
            {"name": "HospA", "msp_id": "HospAMSP", "domain": "hospa.example.com",
             "type": "tertiary", "regulator": "Reg", "peers": [{"name": "peer0", "port": 7151}],
             "orderers": [{"name": "orderer0", "port": 7050}]},
            {"name": "Ord", "msp_id": "OrdMSP", "domain": "ord.example.com", "type": "orderer",
             "orderers": [{"name": "orderer0", "port": 7150}]},
        ],
        "channels": [{"name": "alliance"}, {"name": "audit", "members": ["Reg"]}],
    }
)  # fmt: skip
ORGS = ("Reg", "HospA", "Ord")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each organisation's folder after `network init --org` (not joined: tests copy them)."""
    base = tmp_path_factory.mktemp("split")
    for org in ORGS:
        init_organization(CONFIG, org, base / org, now=NOW)
    return {org: base / org for org in ORGS}


@pytest.fixture(scope="module")
def bundles(folders: dict[str, Path]) -> dict[str, bytes]:
    return {org: (folders[org] / f"{org}.public.tar.gz").read_bytes() for org in ORGS}


@pytest.fixture(scope="module")
def genesis(bundles: dict[str, bytes]) -> tuple[bytes, dict[str, str]]:
    made = make_genesis(CONFIG, [(f"{o}.public.tar.gz", b) for o, b in bundles.items()], now=NOW)
    return made.archive, dict(made.block_sha256)


def fresh(folders: dict[str, Path], org: str, tmp_path: Path) -> NetworkLayout:
    """A copy of the organisation's unjoined folder, for a test to join (or fail to)."""
    shutil.copytree(folders[org], tmp_path / org)
    return NetworkLayout.load(tmp_path / org)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def private_key_files(directory: Path) -> list[Path]:
    return [
        p for p in directory.rglob("*") if p.is_file() and b"PRIVATE KEY-----" in p.read_bytes()
    ]


def test_an_organisation_folder_holds_only_its_own_keys(folders: dict[str, Path]) -> None:
    for org, folder in folders.items():
        domain = CONFIG.organization(org).domain
        keys = private_key_files(folder)
        assert keys, f"{org} made no keys"
        assert all(f"/{domain}/" in str(p) for p in keys), f"{org} holds another's key"
        assert not private_key_files_in_bundle(folder / f"{org}.public.tar.gz")


def private_key_files_in_bundle(bundle: Path) -> list[str]:
    return [n for n, d in unpack(bundle.read_bytes(), "b").items() if b"PRIVATE KEY" in d]


def test_the_split_genesis_is_the_one_folder_genesis(tmp_path: Path) -> None:
    """One code path: the blocks `network init` writes are those `network genesis` makes from
    the same organisations' public bundles."""
    layout = init_network(CONFIG, tmp_path / "net", now=NOW)
    made = make_genesis(
        CONFIG,
        [
            (
                org.name,
                write_bundle(layout.directory, CONFIG, org, tmp_path / org.name).read_bytes(),
            )
            for org in CONFIG.organizations
        ],
        now=NOW,
    )
    for channel, digest in made.block_sha256.items():
        assert hashlib.sha256(layout.genesis_block_path(channel).read_bytes()).hexdigest() == digest


def test_joining_installs_the_others_public_material_and_the_blocks(
    folders: dict[str, Path], genesis: tuple[bytes, dict[str, str]], tmp_path: Path
) -> None:
    archive, hashes = genesis
    layout = fresh(folders, "HospA", tmp_path)
    assert join_genesis(layout, "HospA", archive, hashes) == hashes
    config = ChannelConfig.from_block(
        parse_block(layout.genesis_block_path("alliance").read_bytes())
    )
    assert sorted(config.orgs) == ["HospAMSP", "OrdMSP", "RegMSP"]
    for org in CONFIG.organizations:  # every organisation's TLS CA, for the nodes' mTLS
        assert list((layout.org_msp_dir(org.msp_id) / "tlscacerts").glob("*.pem"))
    keys = private_key_files(layout.directory)
    assert keys
    assert all("/hospa.example.com/" in str(p) for p in keys)
    with pytest.raises(PreconditionFailed, match="has joined"):
        join_genesis(layout, "HospA", archive, hashes)


def rewrite(bundle: bytes, change: Callable[[dict[str, bytes]], None]) -> bytes:
    files = unpack(bundle, "bundle")
    change(files)
    return pack(files)


def with_private_key(files: dict[str, bytes]) -> None:
    key = next(n for n in files if n.endswith("signcerts/Admin@hospa.example.com-cert.pem"))
    files[key.replace("-cert.pem", ".pem")] = CertificateAuthority.create(
        "x", "hospa.example.com", now=NOW
    ).key_pem


def with_foreign_ca(files: dict[str, bytes]) -> None:
    """The CA certificate replaced by another CA of the same name: nothing chains to it."""
    path = next(n for n in files if "/msp/cacerts/" in n)
    files[path] = CertificateAuthority.create(
        "ca.hospa.example.com", "hospa.example.com", now=NOW
    ).cert_pem


def naming(msp_id: str, name: str, domain: str) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        manifest = yaml.safe_load(files["bundle.yaml"])
        manifest.update(msp_id=msp_id, name=name, domain=domain)
        files["bundle.yaml"] = yaml.safe_dump(manifest).encode()

    return change


def with_file(name: str, data: bytes = b"x") -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        files[name] = data

    return change


HOSPA = "organizations/peerOrganizations/hospa.example.com/"
DER_KEY = ec.generate_private_key(ec.SECP256R1()).private_bytes(
    serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(with_private_key, "holds a private key", id="a bundle with a private key inside is refused"),
        pytest.param(with_foreign_ca, "not issued by HospA's own CA", id="a bundle whose CA did not sign its certificates is refused"),
        pytest.param(naming("RegMSP", "Reg", "reg.example.com"), "outside Reg's folder", id="a bundle naming another MSP is refused"),
        pytest.param(naming("EvilMSP", "Evil", "evil.example.com"), "MSPs: RegMSP, HospAMSP, OrdMSP", id="a bundle naming an unknown MSP lists the known ones"),
        pytest.param(with_file("../../etc/cron.d/x"), "not a plain file inside the bundle", id="a path climbing out of the folder is refused"),
        pytest.param(with_file("organizations/peerOrganizations/reg.example.com/msp/cacerts/x.pem"), "outside HospA's folder", id="a file in another organisation's folder is refused"),
        pytest.param(with_file(HOSPA + "msp/keystore/key.der", DER_KEY), "holds a private key", id="a private key without a PEM marker is refused"),
        pytest.param(with_file(HOSPA + "msp/notes.txt"), "not a PEM certificate", id="a file that is not a certificate is refused"),
        pytest.param(with_file(HOSPA + "msp/big.pem", bytes(5 << 20)), "unpacks to over", id="a flood of bytes is refused while unpacking"),
    ],
)  # fmt: skip
def test_a_bad_public_bundle_is_refused_and_no_archive_is_written(
    bundles: dict[str, bytes],
    change: Callable[[dict[str, bytes]], None],
    message: str,
    tmp_path: Path,
) -> None:
    paths = []
    for org, data in bundles.items():
        path = tmp_path / f"{org}.public.tar.gz"
        path.write_bytes(rewrite(data, change) if org == "HospA" else data)
        paths.append(path)
    config = tmp_path / "network.yaml"
    config.write_text(yaml.safe_dump(CONFIG.model_dump(mode="json", exclude_none=True)))
    with pytest.raises(InvalidPublicBundle, match=message):
        network_split_cmd.genesis(config, paths, tmp_path / "g.tar.gz")
    assert not (tmp_path / "g.tar.gz").exists()


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        pytest.param(lambda b: [("x", b"not a tar")], "not a .tar.gz", id="random bytes are not a bundle"),
        pytest.param(lambda b: [(o, b[o]) for o in ("Reg", "HospA")], "no public bundle of Ord", id="a missing organisation is named"),
        pytest.param(lambda b: [(o, b[o]) for o in ("Reg", "HospA", "Ord", "HospA")], "two bundles name HospAMSP", id="a bundle given twice is refused"),
    ],
)  # fmt: skip
def test_the_genesis_maker_needs_exactly_one_good_bundle_per_organisation(
    bundles: dict[str, bytes],
    inputs: Callable[[dict[str, bytes]], list[tuple[str, bytes]]],
    message: str,
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        make_genesis(CONFIG, inputs(bundles), now=NOW)


def tampered(archive: bytes, *, foreign_hospa: bytes | None = None) -> tuple[bytes, dict[str, str]]:
    """The archive with its alliance block's batch size changed (or HospA's bundle replaced),
    and the hashes its tamperer would publish."""
    files = unpack(archive, "archive")
    if foreign_hospa is None:
        block = parse_block(files["channel-artifacts/alliance.block"])
        block.data.data[0] = block.data.data[0].replace(b"\x08\xf4\x03", b"\x08\xf5\x03")
        files["channel-artifacts/alliance.block"] = block.SerializeToString()
    else:
        files["bundles/HospA.public.tar.gz"] = foreign_hospa
    digests = {
        name.removeprefix("channel-artifacts/").removesuffix(".block"): hashlib.sha256(
            data
        ).hexdigest()
        for name, data in files.items()
        if name.startswith("channel-artifacts/")
    }
    return pack(files), digests


def test_a_tampered_genesis_block_is_refused_and_nothing_is_installed(
    folders: dict[str, Path], genesis: tuple[bytes, dict[str, str]], tmp_path: Path
) -> None:
    archive, hashes = genesis
    changed, their_hashes = tampered(archive)
    assert their_hashes["alliance"] != hashes["alliance"], "the tampering changed nothing"
    layout = fresh(folders, "Reg", tmp_path)
    before = snapshot(layout.directory)
    with pytest.raises(GenesisMismatch, match="not the published one"):
        join_genesis(layout, "Reg", changed, hashes)
    with pytest.raises(GenesisMismatch, match="does not follow from the public bundles"):
        join_genesis(layout, "Reg", changed, their_hashes)  # the tamperer published its hashes
    assert snapshot(layout.directory) == before


def test_a_genesis_made_with_other_keys_for_us_is_refused(
    folders: dict[str, Path], bundles: dict[str, bytes], tmp_path: Path
) -> None:
    """The genesis maker swapped in keys of its own for HospA: blocks and bundles agree, the
    hashes it publishes match, but HospA sees its bundle is not its own."""
    impostor = tmp_path / "impostor"
    init_organization(CONFIG, "HospA", impostor, now=NOW)
    forged = (impostor / "HospA.public.tar.gz").read_bytes()
    made = make_genesis(
        CONFIG, [("Reg", bundles["Reg"]), ("HospA", forged), ("Ord", bundles["Ord"])], now=NOW
    )
    layout = fresh(folders, "HospA", tmp_path)
    before = snapshot(layout.directory)
    with pytest.raises(GenesisMismatch, match="not the one in"):
        join_genesis(layout, "HospA", made.archive, dict(made.block_sha256))
    assert snapshot(layout.directory) == before


A, B = "a" * 64, "b" * 64


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param([f"alliance={A}", f"audit={B.upper()}"], {"alliance": A, "audit": B}, id="one hash per channel, any case"),
        pytest.param([A], "CHANNEL=SHA256HEX", id="a bare hash needs a network of one channel"),
        pytest.param([f"alliance={A}"], "no published genesis hash for channel.s. audit", id="a channel without a hash is refused"),
        pytest.param([f"alliance={A}", f"other={B}"], "channels: alliance, audit", id="an unknown channel lists the channels"),
        pytest.param([f"alliance={A[:-1]}", f"audit={B}"], "CHANNEL=SHA256HEX", id="a short hash is refused"),
    ],
)  # fmt: skip
def test_published_hashes_name_every_channel(values: list[str], expected: object) -> None:
    if isinstance(expected, dict):
        assert published_hashes(values, CONFIG) == expected
    else:
        with pytest.raises(InvalidArgument, match=str(expected)):
            published_hashes(values, CONFIG)


def test_an_organisation_acts_only_for_itself_in_its_folder(
    folders: dict[str, Path], genesis: tuple[bytes, dict[str, str]], tmp_path: Path
) -> None:
    archive, hashes = genesis
    layout = fresh(folders, "HospA", tmp_path)
    before = snapshot(layout.directory)
    with pytest.raises(PreconditionFailed, match="no genesis block of channel"):
        launcher.up(layout, organization="HospA")
    with pytest.raises(PreconditionFailed, match="holds no keys of Reg"):
        join_genesis(layout, "Reg", archive, hashes)
    assert snapshot(layout.directory) == before
    join_genesis(layout, "HospA", archive, hashes)
    with pytest.raises(PreconditionFailed, match=r"no node config of peer0\.reg\.example\.com"):
        launcher.up(layout, organization="Reg")
    assert not (layout.directory / launcher.RUN).exists()  # nothing started
