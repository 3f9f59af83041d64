"""The network configuration file: organisations, nodes, channels and contracts (architecture §4).

pydantic models with `extra="forbid"`, so a misspelt key fails with its location. Defaults follow
the paper: tertiary hospitals endorse, secondary hospitals and regulators do not; a contract's
default endorsement policy is two endorsing members' peers, a commission's and a hospital's when
both kinds endorse (a majority of member peers when fewer than two members endorse). Every field
is documented in `docs/network-config.md`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from fabric_protos.msp import msp_principal_pb2
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from medalliance.contracts.collections import CollectionConfigError, load_collections_config
from medalliance.database_url import DatabaseUrl, parse_database_url
from medalliance.errors import ConfigError, InvalidArgument, PolicySyntaxError
from medalliance.identity.policy import parse_policy
from medalliance.ledger.channel_config import normalise_policy_path, policy_from_text

OrgType = Literal["regulator", "tertiary", "secondary", "orderer", "member"]
HOSPITAL_TYPES = ("tertiary", "secondary")
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntegrityMonitorConfig(_Model):
    """A peer that compares every reachable peer's ledger on a schedule (docs/audit.md)."""

    interval_s: float = Field(default=30.0, ge=1.0, le=86400.0)
    # How long one peer may take to answer; a peer that does not is listed as unreachable.
    timeout_s: float = Field(default=10.0, gt=0.0, le=300.0)


CLUSTER_PORT_OFFSET = 20000  # an ordering node's default cluster port: port + 20000


class NodeConfig(_Model):
    """One peer or ordering node: `<name>.<domain>` listening on `host:port`."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="host prefix, e.g. peer0")
    host: str = Field(default="127.0.0.1", pattern=r"^[A-Za-z0-9.:-]+$")
    port: int = Field(ge=1, le=65535)
    # Where the node binds, when that is not the address others dial (`host`): a machine behind
    # a port forward, NAT or a relay (Fabric's listenAddress beside its external endpoint).
    # Default: `host`. The ports are the same on both.
    listen_host: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.:-]+$")
    # The operations endpoint (HTTP /healthz and /status); default: port + 10000.
    operations_port: int | None = Field(default=None, ge=1, le=65535)
    # Ordering nodes only: the port the consenters speak consensus on, with mutual TLS (Fabric's
    # General.Cluster.ListenPort); `port` then serves clients without asking for a client
    # certificate. Default: port + 20000.
    cluster_port: int | None = Field(default=None, ge=1, le=65535)
    # A peer's own world-state database, overriding the network's `state_database`. Not in
    # repr: a URL may carry a password (docs recommend PGPASSWORD instead).
    state_database: str | None = Field(default=None, repr=False)
    # Peers only: run the integrity monitor on this peer (a regulator's, usually).
    integrity_monitor: IntegrityMonitorConfig | None = None

    @field_validator("state_database")
    @classmethod
    def _state_database(cls, value: str | None) -> str | None:
        return _check_state_database(value)

    @model_validator(mode="after")
    def _operations(self) -> NodeConfig:
        if self.operations_port is None and self.port + 10000 > 65535:
            raise ValueError(
                f"port {self.port} leaves no default operations port; set operations_port"
            )
        return self

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def listen_endpoint(self) -> str:
        """Where to bind: `listen_host` or `host`; `localhost` is the IPv4 loopback, which
        every client resolves."""
        return f"{self._bind_host}:{self.port}"

    @property
    def operations_endpoint(self) -> str:
        return f"{self.host}:{self._operations_port}"

    @property
    def operations_listen_endpoint(self) -> str:
        """Where the operations endpoint binds (same rule as `listen_endpoint`)."""
        return f"{self._bind_host}:{self._operations_port}"

    @property
    def cluster_endpoint(self) -> str:
        """Where the other consenters dial this ordering node's consensus service."""
        return f"{self.host}:{self._cluster_port}"

    @property
    def cluster_listen_endpoint(self) -> str:
        """Where the cluster port binds (same rule as `listen_endpoint`)."""
        return f"{self._bind_host}:{self._cluster_port}"

    @property
    def _cluster_port(self) -> int:
        return self.cluster_port or self.port + CLUSTER_PORT_OFFSET

    @property
    def _bind_host(self) -> str:
        host = self.listen_host or self.host
        return "127.0.0.1" if host == "localhost" else host

    @property
    def _operations_port(self) -> int:
        return self.operations_port or self.port + 10000


class UserConfig(_Model):
    """A user identity: a client (or admin) certificate with an alliance role attribute."""

    name: str = Field(pattern=_NAME)
    role: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]*$")
    admin: bool = False


class CaServerConfig(_Model):
    """The organisation's Fabric CA server (docs/fabric-ca.md): `network up` starts it with TLS
    and the connection profile lists it under `certificateAuthorities`."""

    host: str = Field(default="localhost", pattern=r"^[A-Za-z0-9.:-]+$")
    port: int = Field(ge=1, le=65535)
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    bootstrap_user: str = Field(default="admin", pattern=r"^[A-Za-z0-9][A-Za-z0-9@._-]{0,63}$")
    # Fabric's test network bootstraps `admin`/`adminpw`; for a real alliance leave it out: the
    # first start writes a random secret, mode 0600, to <org folder>/ca-server/bootstrap-secret.
    bootstrap_secret: str | None = Field(default=None, min_length=1, repr=False)
    # The CA's database: a path (relative to the network folder) or postgresql://...; default
    # <org folder>/ca-server/fabric-ca.db. Not in repr: a URL may carry a password.
    database: str | None = Field(default=None, repr=False)
    # Enrolments per identity when a registrar does not say (-1: unlimited, Fabric's default).
    max_enrollments: int = Field(default=-1, ge=-1)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


class OrganizationConfig(_Model):
    name: str = Field(pattern=_NAME)
    msp_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
    domain: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$"
    )
    type: OrgType
    parent: str | None = None
    regulator: str | None = None
    endorsing: bool = False  # resolved before validation: defaults to `type == "tertiary"`
    peers: tuple[NodeConfig, ...] = ()
    orderers: tuple[NodeConfig, ...] = ()
    users: tuple[UserConfig, ...] = ()
    # The hospital's FHIR clinical store (a path, relative to the network folder, or
    # postgresql://...); default hospitals/<msp_id>.db (docs/hospital-store.md).
    hospital_database: str | None = None
    ca: CaServerConfig | None = None  # its Fabric CA server, if it runs one

    @property
    def ca_name(self) -> str:
        """The Fabric CA's name (`caname`): `ca-<org>` as in Fabric's test network."""
        return (self.ca.name if self.ca else None) or f"ca-{self.name.lower()}"

    @model_validator(mode="before")
    @classmethod
    def _default_endorsing(cls, data: Any) -> Any:
        # The paper: tertiary hospitals validate (endorse); regulators audit and secondary
        # hospitals commit only. An explicit `endorsing:` wins.
        if isinstance(data, Mapping) and data.get("endorsing") is None:
            return {**data, "endorsing": data.get("type") == "tertiary"}
        return data

    @model_validator(mode="after")
    def _monitors_on_peers(self) -> OrganizationConfig:
        for node in self.orderers:
            if node.integrity_monitor is not None:
                raise ValueError(
                    f"orderer {node.name}: integrity_monitor runs on peers only; "
                    "move it to a peer of this or a regulator's organisation"
                )
        return self

    @property
    def all_users(self) -> tuple[UserConfig, ...]:
        """The configured users plus `Admin` (admin) and `User1` (client) unless listed."""
        names = {u.name for u in self.users}
        extra = [] if "Admin" in names else [UserConfig(name="Admin", admin=True)]
        if "User1" not in names:
            extra.append(UserConfig(name="User1"))
        return (*extra, *self.users)


class BatchConfig(_Model):
    max_message_count: int = Field(default=500, ge=1)
    absolute_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    preferred_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    timeout_ms: int = Field(default=200, ge=1)

    @model_validator(mode="after")
    def _sizes(self) -> BatchConfig:
        if self.preferred_max_bytes > self.absolute_max_bytes:
            raise ValueError("preferred_max_bytes must not exceed absolute_max_bytes")
        return self


class ContractConfig(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    package: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:Class")
    version: str = Field(default="1.0", pattern=r"^[A-Za-z0-9_.+-]+$")
    endorsement_policy: str = ""  # Fabric DSL; empty = the generated default
    label: str = Field(default="", pattern=r"^[A-Za-z0-9_.+-]*$")  # empty = <name>_<version>
    # private data collections: Fabric's collections_config.json entries (docs/private-data.md)
    collections: tuple[dict[str, Any], ...] = ()

    @property
    def package_label(self) -> str:
        return self.label or f"{self.name}_{self.version}"

    @field_validator("collections")
    @classmethod
    def _collections(cls, value: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        if value:
            try:
                load_collections_config(json.dumps(list(value)))  # Fabric's checks, at load time
            except CollectionConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @property
    def collections_package(self) -> bytes:
        """The serialized CollectionConfigPackage of `collections` (b"": none)."""
        return (
            load_collections_config(json.dumps(list(self.collections))) if self.collections else b""
        )


class ChannelSpec(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9.-]{0,248}$")
    members: tuple[str, ...] = ()  # organisation names; empty = every non-orderer organisation
    batch: BatchConfig = BatchConfig()
    contracts: tuple[ContractConfig, ...] = ()
    # Channel policy overrides: path (`Application/Admins`) → DSL text or `MAJORITY Admins`.
    policies: dict[str, str] = Field(default_factory=dict)


class PseudonymRateConfig(_Model):
    """How many pseudonym evaluations one organisation may ask for (docs/privacy.md §4).

    Sized for registrations, not lookups (answers are cached at the hospital): a busy hospital
    sees a few hundred new patients a day, while enumerating one region and birth year is
    365,000 guesses — about four months at the default rate, every request logged. Raise it
    for a migration window only."""

    burst: int = Field(default=500, ge=1, le=1_000_000)
    per_minute: float = Field(default=2.0, gt=0, le=100_000)


class NetworkConfig(_Model):
    name: str = Field(pattern=_NAME)
    organizations: tuple[OrganizationConfig, ...] = Field(min_length=1)
    channels: tuple[ChannelSpec, ...] = ()
    # The regulator whose peer evaluates patient pseudonyms (docs/privacy.md §4); default: the
    # root regulator (the one without a parent).
    pseudonym_service: str | None = None
    pseudonym_rate: PseudonymRateConfig = PseudonymRateConfig()
    # Where peers keep their world state: a postgresql:// URL (one schema per peer and channel),
    # or `sqlite` / absent for SQLite in each ledger folder; a peer may override it.
    state_database: str | None = Field(default=None, repr=False)
    # Peers only: run the integrity monitor on this peer (a regulator's, usually).
    integrity_monitor: IntegrityMonitorConfig | None = None

    @field_validator("state_database")
    @classmethod
    def _state_database(cls, value: str | None) -> str | None:
        return _check_state_database(value)

    def state_database_for(self, node: NodeConfig) -> DatabaseUrl | None:
        """The world-state database of a peer: its own, else the network's; None is SQLite."""
        text = node.state_database or self.state_database
        if text is None or text == SQLITE_STATE:
            return None
        return parse_database_url(text)

    @model_validator(mode="after")
    def _check(self) -> NetworkConfig:
        problems = list(_problems(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def organization(self, name: str) -> OrganizationConfig:
        """The organisation with this name or MSP id; raises `ConfigError` when there is none."""
        for org in self.organizations:
            if name in (org.name, org.msp_id):
                return org
        names = ", ".join(org.name for org in self.organizations)
        raise ConfigError(
            f"no organisation {name!r} in network {self.name}; organisations: {names}"
        )

    def channel(self, name: str) -> ChannelSpec:
        for channel in self.channels:
            if channel.name == name:
                return channel
        names = ", ".join(channel.name for channel in self.channels)
        raise ConfigError(f"no channel {name!r} in network {self.name}; channels: {names}")

    def members(self, channel: ChannelSpec) -> tuple[OrganizationConfig, ...]:
        if channel.members:
            return tuple(self.organization(m) for m in channel.members)
        return tuple(o for o in self.organizations if o.type != "orderer")

    def pseudonym_regulator(self) -> OrganizationConfig | None:
        """The regulator that runs the pseudonym service (None: a network without regulators)."""
        if self.pseudonym_service is not None:
            return self.organization(self.pseudonym_service)
        return next(
            (o for o in self.organizations if o.type == "regulator" and o.parent is None), None
        )

    def orderer_organizations(self) -> tuple[OrganizationConfig, ...]:
        return tuple(o for o in self.organizations if o.orderers)

    def endorsement_policy(self, channel: ChannelSpec, contract: ContractConfig) -> str:
        """The contract's policy, or the default: the peers of two endorsing members (paper §3:
        tertiary hospitals validate), so that no single organisation can commit a write alone —
        a commission's and a hospital's when both kinds endorse; a majority of member peers when
        fewer than two members endorse.

        Why a commission: a key has no key-level policy before it exists, so whoever satisfies
        this policy can create any key with any content (an application born APPROVED, a
        referral with no application). With any two endorsing members, two hospitals together
        could; with a commission in every write, an honest commission's peer runs the contract
        and refuses (docs/privacy.md §3)."""
        if contract.endorsement_policy:
            return contract.endorsement_policy
        members = self.members(channel)
        endorsers = [o for o in members if o.endorsing]
        regulators = [o for o in endorsers if o.type == "regulator"]
        hospitals = [o for o in endorsers if o.type != "regulator"]
        if regulators and hospitals:
            return f"AND(OutOf(1, {_peers(regulators)}), OutOf(1, {_peers(hospitals)}))"
        if len(endorsers) >= 2:
            return f"OutOf(2, {_peers(endorsers)})"
        return f"OutOf({len(members) // 2 + 1}, {_peers(members)})"


def _peers(organizations: Sequence[OrganizationConfig]) -> str:
    return ", ".join(f"'{o.msp_id}.peer'" for o in organizations)


def load_network_config(path: Path) -> NetworkConfig:
    """Read and validate a network file; raises `ConfigError` naming the file and each problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the network config: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a network config is a YAML mapping with `name:` at the top")
    try:
        return NetworkConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path} is not a valid network config:\n{render_errors(exc)}") from None


SQLITE_STATE = "sqlite"  # the `state_database` value that keeps the default, SQLite per ledger


def _check_state_database(value: str | None) -> str | None:
    if value is None or value == SQLITE_STATE:
        return value
    try:
        url = parse_database_url(value)
    except InvalidArgument as exc:
        raise ValueError(str(exc)) from None
    if not url.is_postgres:
        # A SQLite state is one file per channel, so a single path cannot name it.
        raise ValueError(
            "state_database is a postgresql://USER@HOST/DBNAME URL, or `sqlite` for SQLite in "
            "each ledger folder (the default)"
        )
    return value


def render_errors(exc: ValidationError) -> str:
    """pydantic's errors one per line: `organizations[2].peers[0].port: <what to fix>`."""
    lines = []
    for error in exc.errors():
        where = _loc(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        for line in message.splitlines():  # model-level checks report several lines
            lines.append(f"  {where}: {line}" if where else f"  {line}")
    return "\n".join(lines)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- cross-field checks (each yields "location: what is wrong; what to do") -----------------


def _problems(net: NetworkConfig) -> Iterator[str]:
    orgs = {o.name: o for o in net.organizations}
    regulators = sorted(o.name for o in net.organizations if o.type == "regulator")
    yield from _duplicates("organizations", "name", [o.name for o in net.organizations])
    yield from _duplicates("organizations", "msp_id", [o.msp_id for o in net.organizations])
    yield from _duplicates("organizations", "domain", [o.domain for o in net.organizations])
    nodes = [n for o in net.organizations for n in (*o.peers, *o.orderers)]
    endpoints = [n.endpoint for n in nodes] + [n.operations_endpoint for n in nodes]
    endpoints += [n.cluster_endpoint for o in net.organizations for n in o.orderers]
    endpoints += [o.ca.endpoint for o in net.organizations if o.ca is not None]
    for endpoint in sorted({e for e in endpoints if endpoints.count(e) > 1}):
        yield f"organizations: address {endpoint} is used by two nodes; give each node its own port"
    for i, org in enumerate(net.organizations):
        at = f"organizations[{i}]"
        yield from _duplicates(at, "node name", [n.name for n in (*org.peers, *org.orderers)])
        yield from _duplicates(at, "user name", [u.name for u in org.users])
        yield from _org_problems(at, org, orgs, regulators)
    yield from _hierarchy_problems(net)
    service = net.pseudonym_service
    if service is not None and (
        service not in orgs or orgs[service].type != "regulator" or not orgs[service].peers
    ):
        yield (
            f"pseudonym_service: {service!r} is not a regulator organisation with a peer; "
            f"use one of: {', '.join(regulators) or 'none defined'}"
        )
    if not net.orderer_organizations():
        yield "organizations: no organisation runs an ordering node; add `orderers:` to one"
    yield from _duplicates("channels", "name", [c.name for c in net.channels])
    for i, channel in enumerate(net.channels):
        yield from _channel_problems(f"channels[{i}]", net, channel, orgs)


def _duplicates(at: str, what: str, values: list[str]) -> Iterator[str]:
    for value in sorted({v for v in values if values.count(v) > 1}):
        yield f"{at}: {what} {value!r} is used twice; names must be unique"


def _org_problems(
    at: str, org: OrganizationConfig, orgs: Mapping[str, OrganizationConfig], regulators: list[str]
) -> Iterator[str]:
    choices = ", ".join(regulators) or "none defined"
    for field, ref in (("regulator", org.regulator), ("parent", org.parent)):
        if ref is not None and (ref not in orgs or orgs[ref].type != "regulator"):
            yield (
                f"{at}.{field}: {org.name}'s {field} {ref!r} is not a regulator organisation; "
                f"use one of: {choices}"
            )
    if org.type in HOSPITAL_TYPES and org.regulator is None:
        yield f"{at}.regulator: hospital {org.name} needs a supervising regulator; use one of: {choices}"
    if org.type not in HOSPITAL_TYPES and org.regulator is not None:
        yield f"{at}.regulator: only hospitals have a regulator; a {org.type} organisation uses `parent`"
    if org.type != "regulator" and org.parent is not None:
        yield f"{at}.parent: only regulators have a parent; a hospital names its `regulator`"
    for j, node in enumerate(org.orderers):
        if node.cluster_port is None and node.port + CLUSTER_PORT_OFFSET > 65535:
            yield (
                f"{at}.orderers[{j}].cluster_port: port {node.port} leaves no default cluster "
                f"port (port + {CLUSTER_PORT_OFFSET}); set cluster_port"
            )
    for j, node in enumerate(org.peers):
        if node.cluster_port is not None:
            yield f"{at}.peers[{j}].cluster_port: only ordering nodes have a cluster port; remove it"
    if org.type == "orderer":
        if org.peers:
            yield f"{at}.peers: an orderer organisation runs no peers; move them to a peer organisation"
        if not org.orderers:
            yield f"{at}.orderers: orderer organisation {org.name} runs no ordering node; add one"
        if org.endorsing:
            yield f"{at}.endorsing: an orderer organisation has no peers to endorse with"
    elif not org.peers:
        yield f"{at}.peers: {org.name} runs no peer; add one, e.g. {{name: peer0, port: 7051}}"


def _hierarchy_problems(net: NetworkConfig) -> Iterator[str]:
    parents = {o.name: o.parent for o in net.organizations}
    reported: set[str] = set()
    for start in parents:
        seen: list[str] = []
        current: str | None = start
        while current is not None and current in parents:
            if current in seen:
                cycle = seen[seen.index(current) :]
                if not reported & set(cycle):
                    reported.update(cycle)
                    chain = " -> ".join([*cycle, current])
                    yield f"organizations: the regulator hierarchy has a cycle ({chain}); the top regulator has no parent"
                break
            seen.append(current)
            current = parents[current]


def _channel_problems(
    at: str, net: NetworkConfig, channel: ChannelSpec, orgs: Mapping[str, OrganizationConfig]
) -> Iterator[str]:
    yield from _duplicates(f"{at}.members", "member", list(channel.members))
    bad = [m for m in channel.members if m not in orgs or orgs[m].type == "orderer"]
    for member in bad:
        yield f"{at}.members: {member!r} is not a peer organisation; use organisation names"
    if bad:
        return
    members = net.members(channel)
    if not members:
        yield f"{at}.members: channel {channel.name} has no member organisations"
        return
    member_ids = {o.msp_id for o in members}
    yield from _duplicates(f"{at}.contracts", "contract", [c.name for c in channel.contracts])
    for j, contract in enumerate(channel.contracts):
        where = f"{at}.contracts[{j}].endorsement_policy"
        try:
            envelope = parse_policy(net.endorsement_policy(channel, contract))
        except PolicySyntaxError as exc:
            yield f"{where}: {exc}"
            continue
        for msp_id in sorted(_principal_msp_ids(envelope) - member_ids):
            yield f"{where}: {msp_id} is not a member of channel {channel.name}; use a member's MSP id"
    groups = {"", "Application", "Orderer"}
    groups |= {f"Application/{o.msp_id}" for o in members}
    groups |= {f"Orderer/{o.msp_id}" for o in net.orderer_organizations()}
    for key, text in channel.policies.items():
        path = normalise_policy_path(key)
        group = path.split("/", 2)[2].rpartition("/")[0] if path.count("/") > 1 else None
        if group is None or group not in groups:
            yield f"{at}.policies.{key}: no such policy group; use e.g. Application/Admins or Orderer/BlockValidation"
            continue
        try:
            policy_from_text(text)
        except PolicySyntaxError as exc:
            yield f"{at}.policies.{key}: {exc}"


def _principal_msp_ids(envelope: Any) -> set[str]:
    ids = set()
    for principal in envelope.identities:
        role = msp_principal_pb2.MSPRole()
        role.ParseFromString(principal.principal)
        ids.add(str(role.msp_identifier))
    return ids


# --- node files (`nodes/<host>/node.yaml`, written by `network init`) ---------------------------

NODE_FILE = "node.yaml"


class NodeFile(BaseModel):
    """`nodes/<host>/node.yaml`: which node of which network this process runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    network: str  # the network folder, relative to this file
    organization: str
    name: str
    role: Literal["peer", "orderer"]


def node_file_text(network_rel: str, msp_id: str, name: str, role: str) -> str:
    return yaml.safe_dump(
        {"network": network_rel, "organization": msp_id, "name": name, "role": role},
        sort_keys=False,
    )


def load_node_file(path: Path) -> tuple[NodeFile, Path]:
    """The node file and the absolute network folder it points to."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        node = NodeFile.model_validate(data)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the node config: {exc.strerror}") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path} is not a valid node config: {exc}") from None
    return node, (path.parent / node.network).resolve()
