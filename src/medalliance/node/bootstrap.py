"""Materialise a network on disk: crypto material, genesis blocks, the config it came from.

Layout (`network init` and the embedded demo share it), as Fabric's tools expect:

    organizations/peerOrganizations/<domain>/{ca,tlsca,msp,enc,peers,orderers,users}/
    organizations/peerOrganizations/<regulator domain>/pseudonym/oprf.key (the pseudonym
        service's regulator only: docs/privacy.md §4)
    organizations/ordererOrganizations/<domain>/{ca,tlsca,msp,orderers,users}/
    channel-artifacts/<channel>.block
    network.yaml

A hospital that runs ordering nodes keeps them under its own `orderers/`; only organisations of
type `orderer` live under `ordererOrganizations/`. Everything is generated in a staging folder
and moved into place with `network.yaml` last, so a failed init leaves no half-made network.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from medalliance.errors import ConfigError, InvalidArgument, NoNetwork, PreconditionFailed
from medalliance.identity.cryptogen import (
    OrgSpec,
    UserSpec,
    add_node,
    generate_org,
    org_dir,
)
from medalliance.identity.msp import Msp
from medalliance.identity.signing import serialize_identity
from medalliance.ledger.channel_config import ChannelDefinition, OrgDefinition, genesis_block
from medalliance.ledger.commit_certificate import Consenter
from medalliance.node.config import (
    NODE_FILE,
    ChannelSpec,
    NetworkConfig,
    OrganizationConfig,
    load_network_config,
    node_file_text,
    render_errors,
)
from medalliance.node.profiles import connection_profile, profile_file_stem
from medalliance.privacy.oprf import generate_key
from medalliance.privacy.pseudonym import save_key

CONFIG_FILE = "network.yaml"
ORGANIZATIONS = "organizations"
ARTIFACTS = "channel-artifacts"
NODES = "nodes"
OPRF_KEY = "pseudonym/oprf.key"  # under the pseudonym service regulator's folder only
# The shared HMAC key of earlier versions; `privacy migrate-pseudonyms` deletes it.
LEGACY_PSEUDONYM_KEY = "pseudonym/alliance.key"


def org_spec(org: OrganizationConfig) -> OrgSpec:
    """The cryptogen spec of one organisation: its nodes and users (Admin and User1 always)."""
    users = tuple(UserSpec(u.name, "admin" if u.admin else "client", u.role) for u in org.all_users)
    return OrgSpec(
        msp_id=org.msp_id,
        domain=org.domain,
        kind="orderer" if org.type == "orderer" else "peer",
        peers=tuple(n.name for n in org.peers),
        orderers=tuple(n.name for n in org.orderers),
        users=users,
        sans=("localhost", "127.0.0.1", *sorted({n.host for n in (*org.peers, *org.orderers)})),
    )


@dataclass(frozen=True)
class NetworkLayout:
    """Where a network's files live. Methods accept an organisation's MSP id or name."""

    directory: Path
    config: NetworkConfig

    @classmethod
    def load(cls, directory: Path) -> NetworkLayout:
        """The layout of an initialised network; `NotFound` when `directory` holds none."""
        path = directory / CONFIG_FILE
        if not path.is_file():
            raise NoNetwork(str(directory), CONFIG_FILE)
        return cls(directory, load_network_config(path))

    def org_dir(self, msp_id: str) -> Path:
        return org_dir(self.directory / ORGANIZATIONS, org_spec(self.config.organization(msp_id)))

    def peer_dir(self, msp_id: str, peer: str) -> Path:
        """The peer's node folder (holding `msp/` and `tls/`)."""
        return self._node_dir(msp_id, "peers", peer)

    def orderer_dir(self, msp_id: str, orderer: str) -> Path:
        """The ordering node's folder (holding `msp/` and `tls/`)."""
        return self._node_dir(msp_id, "orderers", orderer)

    def user_dir(self, msp_id: str, user: str) -> Path:
        domain = self.config.organization(msp_id).domain
        return self.org_dir(msp_id) / "users" / f"{user}@{domain}"

    def user_msp_dir(self, msp_id: str, user: str) -> Path:
        return self.user_dir(msp_id, user) / "msp"

    def org_msp_dir(self, msp_id: str) -> Path:
        return self.org_dir(msp_id) / "msp"

    def genesis_block_path(self, channel: str) -> Path:
        return self.directory / ARTIFACTS / f"{channel}.block"

    def _node_dir(self, msp_id: str, folder: str, node: str) -> Path:
        domain = self.config.organization(msp_id).domain
        return self.org_dir(msp_id) / folder / f"{node}.{domain}"


def org_definition(
    config: NetworkConfig, org: OrganizationConfig, msp: Msp, *, orderer: bool
) -> OrgDefinition:
    """What a channel's configuration says of one organisation."""
    by_name = {o.name: o for o in config.organizations}
    nodes = org.orderers if orderer else org.peers
    return OrgDefinition(
        msp_id=org.msp_id,
        msp=msp,
        alliance_type=org.type,
        regulator=by_name[org.regulator].msp_id if org.regulator else None,
        parent=by_name[org.parent].msp_id if org.parent else None,
        endpoints=tuple(n.endpoint for n in nodes),
    )


def channel_definition(
    config: NetworkConfig,
    channel: ChannelSpec,
    msps: Mapping[str, Msp],
    consenter_set: tuple[Consenter, ...] = (),
) -> ChannelDefinition:
    """The genesis definition of one channel; every ordering node is a consenter of it."""

    def definition(org: OrganizationConfig, *, orderer: bool) -> OrgDefinition:
        return org_definition(config, org, msps[org.msp_id], orderer=orderer)

    orderer_orgs = config.orderer_organizations()
    return ChannelDefinition(
        channel_id=channel.name,
        application_orgs=tuple(definition(o, orderer=False) for o in config.members(channel)),
        orderer_orgs=tuple(definition(o, orderer=True) for o in orderer_orgs),
        batch_max_count=channel.batch.max_message_count,
        batch_absolute_max_bytes=channel.batch.absolute_max_bytes,
        batch_preferred_max_bytes=channel.batch.preferred_max_bytes,
        batch_timeout_ms=channel.batch.timeout_ms,
        consenters=tuple(n.endpoint for o in orderer_orgs for n in o.orderers),
        consenter_set=consenter_set,
        policy_overrides=tuple(sorted(channel.policies.items())),
    )


def init_network(
    config: NetworkConfig,
    directory: Path,
    *,
    now: dt.datetime,
    on_progress: Callable[[str], None] | None = None,
) -> NetworkLayout:
    """Generate crypto material, genesis blocks and `network.yaml` in `directory`.

    `directory` may be missing, empty, or hold unrelated files; one that already holds a network
    raises `PreconditionFailed`. Keys are never overwritten.
    """
    progress = on_progress or (lambda _message: None)
    entries = (CONFIG_FILE, ORGANIZATIONS, NODES, ARTIFACTS)
    if any((directory / entry).exists() for entry in entries):
        raise PreconditionFailed(
            f"{directory} already holds a network; use a new --dir or remove it"
        )
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".init-", dir=directory))
    try:
        # The same steps the organisations run apart (node/split_setup.py), here in one process.
        for org in config.organizations:
            progress(f"generating crypto for {org.msp_id}")
            generate_organization(staging, config, org, now=now)
        write_genesis_blocks(
            staging, config, timestamp_ms=int(now.timestamp() * 1000), on_progress=progress
        )
        save_config(staging, config)
        # network.yaml moves last: its presence is what marks a finished network.
        for entry in entries[1:] + entries[:1]:
            os.replace(staging / entry, directory / entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(f"network {config.name} is ready in {directory}")
    return NetworkLayout(directory, config)


def generate_organization(
    base: Path, config: NetworkConfig, org: OrganizationConfig, *, now: dt.datetime
) -> Path:
    """One organisation's own material in the network folder `base`: its CAs, node and user
    keys and certificates, connection profiles, node files, and (the pseudonym service's
    regulator only) the OPRF key. Returns its organisation folder. Nothing of another
    organisation is read or written."""
    root = generate_org(base / ORGANIZATIONS, org_spec(org), now=now)
    if org.peers:
        _write_profiles(base / ORGANIZATIONS, config, org)
    # The pseudonym service's OPRF key: one regulator holds it, no hospital ever does.
    service = config.pseudonym_regulator()
    if service is not None and service.name == org.name:
        save_key(generate_key(), root / OPRF_KEY)
    _write_node_files(base / NODES, config, org)
    return root


def write_genesis_blocks(
    base: Path,
    config: NetworkConfig,
    *,
    timestamp_ms: int,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, bytes]:
    """Write every channel's genesis block under `base/channel-artifacts/` from the public
    material of every organisation under `base/organizations/` (MSP folders, ordering nodes'
    signing and TLS certificates: no private key is read). Returns the blocks by channel."""
    progress = on_progress or (lambda _message: None)
    msps = {
        org.msp_id: Msp.from_dir(org_dir(base / ORGANIZATIONS, org_spec(org)) / "msp", org.msp_id)
        for org in config.organizations
    }
    consenter_set = _consenter_set(base / ORGANIZATIONS, config)
    (base / ARTIFACTS).mkdir(exist_ok=True)
    blocks = {}
    for channel in config.channels:
        progress(f"creating the genesis block of channel {channel.name}")
        block = genesis_block(
            channel_definition(config, channel, msps, consenter_set), timestamp_ms=timestamp_ms
        )
        blocks[channel.name] = block.SerializeToString()
        (base / ARTIFACTS / f"{channel.name}.block").write_bytes(blocks[channel.name])
    return blocks


def _consenter_set(base: Path, config: NetworkConfig) -> tuple[Consenter, ...]:
    """Every ordering node, in config order, numbered from 1, with its signing identity and
    its TLS certificate (the one it serves and calls with)."""
    found: list[Consenter] = []
    for org in config.orderer_organizations():
        for node in org.orderers:
            name = f"{node.name}.{org.domain}"
            node_dir = org_dir(base, org_spec(org)) / "orderers" / name
            # The signing certificate alone: the genesis maker holds no other org's key.
            cert_pem = next(p for p in sorted((node_dir / "msp" / "signcerts").iterdir()))
            identity = serialize_identity(org.msp_id, cert_pem.read_bytes())
            tls_cert = (node_dir / "tls" / "server.crt").read_bytes()
            # Fabric's consenter mapping names the cluster port: consensus is dialled there.
            host, _, port = node.cluster_endpoint.rpartition(":")
            found.append(
                Consenter(
                    len(found) + 1, name, host, int(port), org.msp_id, identity, tls_cert, tls_cert
                )
            )
    return tuple(found)


def add_organization(
    layout: NetworkLayout, org: OrganizationConfig, *, now: dt.datetime
) -> NetworkLayout:
    """Add an organisation with peers to an initialised network folder: its crypto material,
    connection profiles, node files (no pseudonym key: hospitals ask the service), and its
    entry in network.yaml. It joins a channel only once a config update adds it there."""
    if org.orderers:
        raise InvalidArgument(
            f"{org.name}: an organisation joins with peers; adding ordering nodes is not supported"
        )
    data = layout.config.model_dump(mode="json", exclude_none=True)
    data["organizations"].append(org.model_dump(mode="json", exclude_none=True))
    try:  # unique names and ports, known regulators
        config = NetworkConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{org.name} cannot join this network:\n{render_errors(exc)}") from None
    new = config.organization(org.name)
    base = layout.directory / ORGANIZATIONS
    if org_dir(base, org_spec(new)).exists():
        raise PreconditionFailed(f"{base} already holds material for {new.domain}")
    generate_org(base, org_spec(new), now=now)
    if new.peers:
        _write_profiles(base, config, new)
    for owner, name, role in node_hosts(config):
        folder = layout.directory / NODES / f"{name}.{owner.domain}"
        if owner.name == new.name:
            folder.mkdir(parents=True)
            (folder / NODE_FILE).write_text(
                node_file_text("../..", owner.msp_id, name, role), encoding="utf-8"
            )
    save_config(layout.directory, config)
    return NetworkLayout(layout.directory, config)


def add_orderer(
    layout: NetworkLayout, organization: str, node: dict[str, object], *, now: dt.datetime
) -> NetworkLayout:
    """Add an ordering node of an existing ordering organisation to the network folder: its
    certificates from the organisation's CAs, its node file and its entry in network.yaml. It
    starts as a follower; a config update makes it a consenter."""
    org = layout.config.organization(organization)
    if not org.orderers:
        raise InvalidArgument(
            f"{org.name} runs no ordering node; only ordering organisations add one"
        )
    data = layout.config.model_dump(mode="json", exclude_none=True)
    for entry in data["organizations"]:
        if entry["name"] == org.name:
            entry["orderers"].append(node)
    try:
        config = NetworkConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"the ordering node cannot be added:\n{render_errors(exc)}") from None
    name = str(node["name"])
    add_node(
        layout.directory / ORGANIZATIONS,
        org_spec(config.organization(org.name)),
        name,
        "orderer",
        now=now,
    )
    folder = layout.directory / NODES / f"{name}.{org.domain}"
    folder.mkdir(parents=True)
    (folder / NODE_FILE).write_text(
        node_file_text("../..", org.msp_id, name, "orderer"), encoding="utf-8"
    )
    save_config(layout.directory, config)
    return NetworkLayout(layout.directory, config)


def save_config(directory: Path, config: NetworkConfig) -> None:
    """Write `network.yaml` into `directory`, whole or not at all."""
    dumped = yaml.safe_dump(
        config.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True
    )
    tmp = directory / (CONFIG_FILE + ".tmp")
    tmp.write_text(dumped, encoding="utf-8")
    tmp.replace(directory / CONFIG_FILE)


def node_hosts(config: NetworkConfig) -> list[tuple[OrganizationConfig, str, str]]:
    """Every node of the network as (organisation, name, role), ordering nodes first."""
    orderers = [(o, n.name, "orderer") for o in config.organizations for n in o.orderers]
    peers = [(o, n.name, "peer") for o in config.organizations for n in o.peers]
    return orderers + peers


def _write_node_files(nodes_dir: Path, config: NetworkConfig, owner: OrganizationConfig) -> None:
    for org, name, role in node_hosts(config):
        if org.name != owner.name:
            continue
        folder = nodes_dir / f"{name}.{org.domain}"
        folder.mkdir(parents=True)
        (folder / NODE_FILE).write_text(
            node_file_text("../..", org.msp_id, name, role), encoding="utf-8"
        )


def _write_profiles(base: Path, config: NetworkConfig, org: OrganizationConfig) -> None:
    root = org_dir(base, org_spec(org))
    tls_ca = next((root / "tlsca").glob("*.pem")).read_bytes()
    profile = connection_profile(config, org, tls_ca)
    stem = profile_file_stem(org)
    (root / f"{stem}.json").write_text(json.dumps(profile, indent=2) + "\n", encoding="utf-8")
    (root / f"{stem}.yaml").write_text(yaml.safe_dump(profile, sort_keys=False), encoding="utf-8")
