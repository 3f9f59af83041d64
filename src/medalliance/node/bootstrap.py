"""Materialise a network on disk: crypto material, genesis blocks, the config it came from.

Layout (`network init` and the embedded demo share it):
`organizations/{peerOrganizations,ordererOrganizations}/<domain>/...` in Fabric's cryptogen
layout (a hospital that runs ordering nodes keeps them under its own `orderers/`),
`channel-artifacts/<channel>.block`, and `network.yaml`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from medalliance.errors import NotFound, PreconditionFailed
from medalliance.identity.cryptogen import OrgSpec, UserSpec, generate_org, org_dir
from medalliance.identity.msp import Msp
from medalliance.ledger.channel_config import ChannelDefinition, OrgDefinition, genesis_block
from medalliance.node.config import NetworkConfig, OrganizationConfig, load_network_config

CONFIG_FILE = "network.yaml"


def _org_spec(org: OrganizationConfig) -> OrgSpec:
    users = tuple(UserSpec(u.name, "admin" if u.admin else "client", u.role) for u in org.all_users)
    return OrgSpec(
        msp_id=org.msp_id,
        domain=org.domain,
        kind="orderer" if org.type == "orderer" else "peer",
        peers=tuple(n.name for n in org.peers),
        orderers=tuple(n.name for n in org.orderers),
        users=users,
    )


@dataclass(frozen=True)
class NetworkLayout:
    directory: Path
    config: NetworkConfig

    @classmethod
    def load(cls, directory: Path) -> NetworkLayout:
        path = directory / CONFIG_FILE
        if not path.exists():
            raise NotFound(f"{directory} holds no network (no {CONFIG_FILE}); run `network init`")
        return cls(directory, load_network_config(path))

    def org_dir(self, msp_id: str) -> Path:
        return org_dir(
            self.directory / "organizations", _org_spec(self.config.organization(msp_id))
        )

    def peer_dir(self, msp_id: str, peer: str) -> Path:
        return self.org_dir(msp_id) / "peers" / f"{peer}.{self.config.organization(msp_id).domain}"

    def orderer_dir(self, msp_id: str, orderer: str) -> Path:
        return (
            self.org_dir(msp_id)
            / "orderers"
            / f"{orderer}.{self.config.organization(msp_id).domain}"
        )

    def user_msp_dir(self, msp_id: str, user: str) -> Path:
        domain = self.config.organization(msp_id).domain
        return self.org_dir(msp_id) / "users" / f"{user}@{domain}" / "msp"

    def genesis_block_path(self, channel: str) -> Path:
        return self.directory / "channel-artifacts" / f"{channel}.block"


def init_network(
    config: NetworkConfig,
    directory: Path,
    *,
    now: dt.datetime,
    on_progress: Callable[[str], None] | None = None,
) -> NetworkLayout:
    """Generate everything a network needs in `directory` (which must not hold one yet)."""
    if (directory / CONFIG_FILE).exists() or (directory / "organizations").exists():
        raise PreconditionFailed(
            f"{directory} already holds a network; use a new --dir or remove it"
        )
    layout = NetworkLayout(directory, config)
    msps = {}
    for org in config.organizations:
        if on_progress:
            on_progress(f"generating crypto material for {org.msp_id}")
        root = generate_org(directory / "organizations", _org_spec(org), now=now)
        msps[org.msp_id] = Msp.from_dir(root / "msp", org.msp_id)
    by_name = {o.name: o for o in config.organizations}
    for channel in config.channels:
        if on_progress:
            on_progress(f"creating the genesis block of channel {channel.name}")

        def definition(org: OrganizationConfig, *, orderer: bool) -> OrgDefinition:
            nodes = org.orderers if orderer else org.peers
            return OrgDefinition(
                msp_id=org.msp_id,
                msp=msps[org.msp_id],
                alliance_type=org.type,
                regulator=by_name[org.regulator].msp_id if org.regulator else None,
                parent=by_name[org.parent].msp_id if org.parent else None,
                endpoints=tuple(f"{n.host}:{n.port}" for n in nodes),
            )

        orderer_orgs = [o for o in config.organizations if o.orderers]
        defn = ChannelDefinition(
            channel_id=channel.name,
            application_orgs=tuple(definition(o, orderer=False) for o in config.members(channel)),
            orderer_orgs=tuple(definition(o, orderer=True) for o in orderer_orgs),
            batch_max_count=channel.batch.max_message_count,
            batch_absolute_max_bytes=channel.batch.absolute_max_bytes,
            batch_preferred_max_bytes=channel.batch.preferred_max_bytes,
            batch_timeout_ms=channel.batch.timeout_ms,
            consenters=tuple(f"{n.host}:{n.port}" for o in orderer_orgs for n in o.orderers),
        )
        path = layout.genesis_block_path(channel.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        block = genesis_block(defn, timestamp_ms=int(now.timestamp() * 1000))
        path.write_bytes(block.SerializeToString())
    (directory / CONFIG_FILE).write_text(
        yaml.safe_dump(
            config.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=False
        ),
        encoding="utf-8",
    )
    return layout
