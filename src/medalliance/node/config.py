"""The network configuration file: organisations, nodes, channels and contracts (architecture §4).

pydantic models with `extra="forbid"`, so a misspelt key fails with its location. Defaults follow
the paper: tertiary hospitals endorse, secondary hospitals and regulators do not; a contract's
default endorsement policy is any one tertiary member's peer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medalliance.errors import ConfigError, PolicySyntaxError
from medalliance.identity.policy import parse_policy

OrgType = Literal["regulator", "tertiary", "secondary", "orderer"]
_NAME = r"^[A-Za-z0-9][A-Za-z0-9-]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeConfig(_Model):
    name: str = Field(pattern=_NAME, description="host prefix, e.g. peer0")
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)


class UserConfig(_Model):
    name: str = Field(pattern=_NAME)
    role: str | None = Field(default=None, description="alliance role attribute, e.g. doctor")
    admin: bool = False


class OrganizationConfig(_Model):
    name: str = Field(pattern=_NAME)
    msp_id: str = Field(pattern=r"^[A-Za-z0-9.-]+$")
    domain: str = Field(pattern=r"^[a-z0-9.-]+$")
    type: OrgType
    parent: str | None = None
    regulator: str | None = None
    peers: tuple[NodeConfig, ...] = ()
    orderers: tuple[NodeConfig, ...] = ()
    users: tuple[UserConfig, ...] = ()
    endorsing_override: bool | None = Field(default=None, alias="endorsing")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def endorsing(self) -> bool:
        """Whether this organisation's peers endorse contracts (paper: tertiary hospitals do)."""
        if self.endorsing_override is not None:
            return self.endorsing_override
        return self.type == "tertiary"

    @property
    def all_users(self) -> tuple[UserConfig, ...]:
        """The configured users plus `Admin` and `User1`, which every organisation has."""
        names = {u.name for u in self.users}
        extra = [UserConfig(name="Admin", admin=True, role="admin")] if "Admin" not in names else []
        if "User1" not in names:
            extra.append(UserConfig(name="User1"))
        return (*extra, *self.users)


class BatchConfig(_Model):
    max_message_count: int = Field(default=500, ge=1)
    absolute_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    preferred_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    timeout_ms: int = Field(default=200, ge=1)


class ContractConfig(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    package: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:Class")
    version: str = "1.0"
    endorsement_policy: str = ""  # resolved by NetworkConfig when empty
    label: str = Field(default="", pattern=r"^[A-Za-z0-9_.+-]*$")


class ChannelSpec(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9.-]*$")
    members: tuple[str, ...] = ()  # organisation names; empty = every non-orderer organisation
    batch: BatchConfig = BatchConfig()
    contracts: tuple[ContractConfig, ...] = ()


class NetworkConfig(_Model):
    name: str
    organizations: tuple[OrganizationConfig, ...]
    channels: tuple[ChannelSpec, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> NetworkConfig:
        orgs = {o.name: o for o in self.organizations}
        _unique("organisation name", [o.name for o in self.organizations])
        _unique("msp_id", [o.msp_id for o in self.organizations])
        _unique("port", [n.port for o in self.organizations for n in (*o.peers, *o.orderers)])
        for org in self.organizations:
            if org.parent is not None and orgs.get(org.parent) is None:
                raise ValueError(
                    f"organisation {org.name}: parent {org.parent!r} is not an organisation"
                )
            if org.parent is not None and orgs[org.parent].type != "regulator":
                raise ValueError(f"organisation {org.name}: parent {org.parent} is not a regulator")
            if org.type in ("tertiary", "secondary"):
                if org.regulator is None:
                    raise ValueError(f"hospital {org.name} needs a supervising regulator")
                if org.regulator not in orgs or orgs[org.regulator].type != "regulator":
                    raise ValueError(
                        f"hospital {org.name}: regulator {org.regulator!r} is not a regulator organisation"
                    )
            if org.type != "orderer" and not org.peers:
                raise ValueError(f"organisation {org.name} runs no peer")
        _check_hierarchy(self.organizations)
        if not any(o.orderers for o in self.organizations):
            raise ValueError("no organisation runs an ordering node; add `orderers:` to one")
        for channel in self.channels:
            for member in channel.members:
                if member not in orgs or orgs[member].type == "orderer":
                    raise ValueError(
                        f"channel {channel.name}: member {member!r} is not a peer organisation"
                    )
            for contract in channel.contracts:
                try:
                    parse_policy(self.endorsement_policy(channel, contract))
                except PolicySyntaxError as exc:
                    raise ValueError(
                        f"channel {channel.name}, contract {contract.name}: {exc}"
                    ) from exc
        return self

    def organization(self, name: str) -> OrganizationConfig:
        for org in self.organizations:
            if name in (org.name, org.msp_id):
                return org
        raise ConfigError(f"no organisation {name!r} in network {self.name}")

    def members(self, channel: ChannelSpec) -> tuple[OrganizationConfig, ...]:
        if channel.members:
            return tuple(self.organization(m) for m in channel.members)
        return tuple(o for o in self.organizations if o.type != "orderer")

    def endorsement_policy(self, channel: ChannelSpec, contract: ContractConfig) -> str:
        """The contract's policy, or the default: one endorsing member's peer (paper §3)."""
        if contract.endorsement_policy:
            return contract.endorsement_policy
        endorsers = [o for o in self.members(channel) if o.endorsing] or list(self.members(channel))
        principals = ", ".join(f"'{o.msp_id}.peer'" for o in endorsers)
        return f"OutOf(1, {principals})"


def load_network_config(path: Path) -> NetworkConfig:
    """Read and validate a network file; raises `ConfigError` naming the file and each problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return NetworkConfig.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError(f"{path} is not a valid network config:\n" + "\n".join(lines)) from None


def _unique(what: str, values: list[object]) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} is used twice")
        seen.add(value)


def _check_hierarchy(orgs: tuple[OrganizationConfig, ...]) -> None:
    parents = {o.name: o.parent for o in orgs}
    for start in parents:
        seen: set[str] = set()
        current: str | None = start
        while current is not None:
            if current in seen:
                raise ValueError(f"the regulator hierarchy has a cycle through {current}")
            seen.add(current)
            current = parents.get(current)
