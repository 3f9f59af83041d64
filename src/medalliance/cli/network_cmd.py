"""`medalliance network ...`: create a network folder, run its nodes as processes, stop them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel, ValidationError
from rich.table import Table

from medalliance.app.channel_update import propose
from medalliance.app.session import GatewayAdminSession
from medalliance.cli import network_split_cmd
from medalliance.cli.output import dir_option, emit_json, output_state, stderr, stdout
from medalliance.errors import InvalidArgument, MedallianceError, category_of
from medalliance.node import ca_launcher, launcher
from medalliance.node.bootstrap import (
    NetworkLayout,
    add_orderer,
    add_organization,
    init_network,
)
from medalliance.node.config import NetworkConfig, OrganizationConfig, load_network_config
from medalliance.node.deploy import deploy_contracts
from medalliance.node.split_setup import init_organization

app = typer.Typer(
    help="Create, start, inspect and stop a network of node processes.", no_args_is_help=True
)

DirOption = Annotated[Path, dir_option("The network folder (created by `network init`).")]
OrgOption = Annotated[
    str | None,
    typer.Option(
        "--org",
        help="Only this organisation's nodes (name or MSP id): its folder of a split set-up.",
    ),
]


class InitOutput(BaseModel):
    directory: str
    organizations: list[str]
    channels: list[str]
    nodes: list[str]
    # `--org`: the organisation's public bundle, to send to the genesis maker, and its SHA-256
    bundle: str | None = None
    bundle_sha256: str | None = None


class NodeRow(BaseModel):
    name: str
    organization: str
    role: str
    pid: int | None
    endpoint: str
    health: str
    height: int | None
    channels: dict[str, int]
    # ordering nodes: per channel, consensus height, round, mempool size, halt reason
    consensus: dict[str, dict[str, Any]] | None = None
    # integrity-monitor peers: the latest check (findings name divergent peers; docs/audit.md)
    integrity: dict[str, Any] | None = None


class StatusOutput(BaseModel):
    network: str
    nodes: list[NodeRow]


class UpOutput(StatusOutput):
    deployed: list[str]


class DownOutput(BaseModel):
    stopped: list[str]


def _progress(message: str) -> None:
    stderr().print(f"[dim]•[/dim] {message}")


@app.command("init")
def init(
    config: Annotated[Path, typer.Argument(help="The network config YAML (see networks/).")],
    directory: DirOption,
    organization: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="Make only this organisation's keys and its public bundle (split set-up: "
            "docs/deployment.md).",
        ),
    ] = None,
) -> None:
    """Generate crypto material, genesis blocks, node configs and connection profiles.

    With --org, only that organisation's own keys, node configs and profiles, and its public
    bundle DIR/<Org>.public.tar.gz (certificates only) for `network genesis`.

    Example: medalliance network init networks/fabric-test-network.yaml --dir test-network

    Example: medalliance network init alliance.yaml --org CityHC --dir /srv/medalliance
    """
    network = load_network_config(config)
    if organization is not None:
        _init_organization(network, organization, directory)
        return
    layout = init_network(network, directory, now=dt.datetime.now(dt.UTC), on_progress=_progress)
    result = InitOutput(
        directory=str(directory),
        organizations=[o.msp_id for o in network.organizations],
        channels=[c.name for c in network.channels],
        nodes=[n.name for n in launcher.nodes_of(layout)],
    )
    if output_state.json:
        emit_json(result)
    else:
        stdout().print(
            f"network [bold]{network.name}[/bold] created in {directory}: "
            f"{len(result.nodes)} nodes; start it with `medalliance network up --dir {directory}`"
        )


def _init_organization(network: NetworkConfig, organization: str, directory: Path) -> None:
    bundle = init_organization(
        network, organization, directory, now=dt.datetime.now(dt.UTC), on_progress=_progress
    )
    org = network.organization(organization)
    result = InitOutput(
        directory=str(directory),
        organizations=[org.msp_id],
        channels=[c.name for c in network.channels],
        nodes=[n.name for n in launcher.nodes_of(NetworkLayout(directory, network), org.name)],
        bundle=str(bundle),
        bundle_sha256=hashlib.sha256(bundle.read_bytes()).hexdigest(),
    )
    if output_state.json:
        emit_json(result)
    else:
        stdout().print(
            f"{org.name}'s keys are in {directory}; send {bundle} (certificates only, SHA-256 "
            f"{result.bundle_sha256}) to the organisation making the genesis blocks"
        )


@app.command("up")
def up(
    directory: DirOption,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every node.")] = 90.0,
    organization: OrgOption = None,
) -> None:
    """Start every node as a process, wait until all are healthy, deploy the contracts.

    Nodes already running are left alone, so after a crash `up` restarts what died, on the same
    ledgers. With --org, only that organisation's nodes start and nothing is deployed: once a
    majority of the channel's peers is up, each organisation runs `network deploy --org`.

    Example: medalliance network up --dir test-network

    Example: medalliance network up --dir /srv/medalliance --org CityHC
    """
    layout = NetworkLayout.load(directory)
    started = launcher.up(layout, timeout=timeout, on_progress=_progress, organization=organization)
    try:  # the organisations' Fabric CA servers (docs/fabric-ca.md), where the config has `ca:`
        started_cas = ca_launcher.up(
            layout, timeout=timeout, on_progress=_progress, organization=organization
        )
    except MedallianceError as exc:
        note = launcher.rolled_back(layout, started, _progress)
        raise category_of(exc)(f"starting the Fabric CAs failed: {exc}\n{note}") from None
    deployed: list[str] = []
    if organization is None:
        try:
            deployed = _deploy(layout, None)
        except MedallianceError as exc:
            # A network that cannot run its contracts is not up: leave nothing this call started.
            ca_launcher.stop(layout, started_cas, _progress)
            note = launcher.rolled_back(layout, started, _progress)
            raise category_of(exc)(f"deploying the contracts failed: {exc}\n{note}") from None
    result = UpOutput(
        network=layout.config.name,
        nodes=[NodeRow(**row) for row in launcher.status(layout, organization)],
        deployed=deployed,
    )
    if output_state.json:
        emit_json(result)
        return
    _table(result)
    stdout().print(f"network {layout.config.name} is up; logs in {directory / launcher.LOGS}")
    org = layout.config.organization(organization) if organization else None
    if org is not None and any(org in layout.config.members(c) for c in layout.config.channels):
        stdout().print(
            f"once a majority of each channel's peers is up: "
            f"`medalliance network deploy --dir {directory} --org {organization}`"
        )


class DeployOutput(BaseModel):
    deployed: list[str]


@app.command("deploy")
def deploy(directory: DirOption, organization: OrgOption = None) -> None:
    """Approve the configured contracts as your organisation's Admin, and commit each one once
    a majority of its channel's organisations has approved it.

    For a split set-up, after `network up --org` of a majority of each channel's organisations:
    each runs it once; the one bringing the last approval needed commits. Without --org, every
    organisation's Admin of the folder approves (what `network up` does).

    Example: medalliance network deploy --dir /srv/medalliance --org TertiaryA
    """
    layout = NetworkLayout.load(directory)
    own = layout.config.organization(organization).msp_id if organization else None
    deployed = _deploy(layout, [own] if own else None)
    if output_state.json:
        emit_json(DeployOutput(deployed=deployed))
    else:
        stdout().print(
            f"committed: {', '.join(deployed)}"
            if deployed
            else "no definition committed by this run"
        )


def _deploy(layout: NetworkLayout, organizations: list[str] | None) -> list[str]:
    """Deploy through the lifecycle with the admins of `organizations` (None: all)."""
    sessions: dict[str, GatewayAdminSession] = {}
    try:
        return deploy_contracts(
            layout.config,
            lambda msp_id: (
                sessions.get(msp_id)
                or sessions.setdefault(msp_id, GatewayAdminSession(layout, msp_id))
            ),
            _progress,
            organizations=organizations,
        )
    finally:
        for session in sessions.values():
            session.close()


@app.command("status")
def status(directory: DirOption, organization: OrgOption = None) -> None:
    """Show each node: organisation, role, pid, endpoint, health and block height.

    Nodes of other organisations (no pid here) are shown as their operations endpoints answer;
    --org shows one organisation's nodes only. Each Fabric CA is a row of role `ca`
    (https://host:port; up when it answers `cainfo` over TLS with the organisation's TLS CA).

    Under the table, each integrity monitor's latest check (docs/audit.md §5). Exits 1 when any
    node or CA is not up or an integrity monitor names a divergent peer (its last block or world
    state differs from the majority's), 0 otherwise.

    Example: medalliance --json network status --dir test-network
    """
    layout = NetworkLayout.load(directory)
    rows = [NodeRow(**row) for row in launcher.status(layout, organization)]
    result = StatusOutput(network=layout.config.name, nodes=rows)
    if output_state.json:
        emit_json(result)
    else:
        _table(result)
    divergent = any((r.integrity or {}).get("findings") for r in rows)
    if divergent or any(r.health != "up" for r in rows):
        raise typer.Exit(1)


class AddOrgOutput(BaseModel):
    organization: str
    msp_id: str
    update: str
    description: str


@app.command("add-org")
def add_org(
    org_file: Annotated[
        Path, typer.Argument(help="The organisation, as one `organizations` entry in YAML.")
    ],
    directory: DirOption,
    proposer: Annotated[
        str, typer.Option("--org", help="Your organisation (name or MSP id); its Admin proposes.")
    ],
    channel: Annotated[str, typer.Option("--channel", "-C", help="The channel to join.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the update.")],
) -> None:
    """Add an organisation to the network folder and propose it to a channel's admins.

    Generates its crypto material, connection profiles and node files, adds it to network.yaml,
    and writes the channel update adding it (unsigned). A majority of the channel's
    organisations' admins then sign and submit it (`medalliance channel sign-update`,
    `submit-update`); afterwards `network down` and `network up` restart the nodes so they
    trust the new organisation's TLS CA, and start its peers, which catch up from the chain.

    Example: medalliance network add-org secondary-c.yaml --dir alliance --org CityHC
    -C alliance -o add-sc.json
    """
    layout = NetworkLayout.load(directory)
    try:
        entry = yaml.safe_load(org_file.read_text(encoding="utf-8"))
        org = OrganizationConfig.model_validate(entry)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise InvalidArgument(f"{org_file}: not an organisation entry ({exc})") from None
    layout = add_organization(layout, org, now=dt.datetime.now(dt.UTC))
    update = propose(layout, proposer, channel, add_org=org.name)
    update.save(output)
    result = AddOrgOutput(
        organization=org.name, msp_id=org.msp_id, update=str(output), description=update.description
    )
    if output_state.json:
        emit_json(result)
    else:
        stdout().print(
            f"{org.name} added to {directory}; {update.description}: written to {output}"
        )


@app.command("add-orderer")
def add_orderer_cmd(
    directory: DirOption,
    org: Annotated[str, typer.Option("--org", help="The ordering organisation (name or MSP id).")],
    name: Annotated[str, typer.Option("--name", help="The node's name, e.g. orderer4.")],
    port: Annotated[int, typer.Option("--port", help="Its gRPC port.")],
    host: Annotated[str, typer.Option("--host", help="Where it listens.")] = "127.0.0.1",
    operations_port: Annotated[
        int | None,
        typer.Option("--operations-port", help="Its /healthz port (default port+10000)."),
    ] = None,
    cluster_port: Annotated[
        int | None,
        typer.Option("--cluster-port", help="Its consensus port, mutual TLS (default port+20000)."),
    ] = None,
) -> None:
    """Add an ordering node of an ordering organisation to the network folder.

    Issues its certificates from the organisation's CAs and writes its node file; `network up`
    starts it as a follower that catches up from the chain. It orders once the channel's admins
    have voted it in: `channel propose-update --add-orderer <name>.<domain>`, `sign-update`,
    `submit-update`.

    Example: medalliance network add-orderer --dir net --org OrdererOrg --name orderer4 --port 7058
    """
    layout = NetworkLayout.load(directory)
    node: dict[str, object] = {"name": name, "host": host, "port": port}
    if operations_port is not None:
        node["operations_port"] = operations_port
    if cluster_port is not None:
        node["cluster_port"] = cluster_port
    layout = add_orderer(layout, org, node, now=dt.datetime.now(dt.UTC))
    domain = layout.config.organization(org).domain
    if output_state.json:
        print(json.dumps({"orderer": f"{name}.{domain}", "organization": org}))
    else:
        stdout().print(
            f"{name}.{domain} added to {directory}; `network up` starts it as a follower"
        )


@app.command("down")
def down(directory: DirOption, organization: OrgOption = None) -> None:
    """Stop every node cleanly (SIGTERM; SIGKILL after 15 s). Ledgers are kept.

    Example: medalliance network down --dir test-network --org Org1
    """
    layout = NetworkLayout.load(directory)
    stopped = ca_launcher.down(layout, on_progress=_progress, organization=organization)
    stopped += launcher.down(layout, on_progress=_progress, organization=organization)
    if output_state.json:
        emit_json(DownOutput(stopped=stopped))
    else:
        stdout().print(f"stopped {len(stopped)} node(s)" if stopped else "no node was running")


def _table(result: StatusOutput) -> None:
    table = Table(title=f"network {result.network}")
    for column in ("node", "organization", "role", "pid", "endpoint", "health", "height"):
        table.add_column(column)
    colours: dict[str, Any] = {"up": "green", "starting": "yellow", "down": "red"}
    for row in result.nodes:
        table.add_row(
            row.name,
            row.organization,
            row.role,
            str(row.pid or "-"),
            row.endpoint,
            f"[{colours[row.health]}]{row.health}[/]",
            "-" if row.height is None else str(row.height),
        )
    stdout().print(table)
    for row in result.nodes:
        if row.integrity is not None:
            _integrity_lines(row.name, row.integrity)


def _integrity_lines(monitor: str, check: dict[str, Any]) -> None:
    """The integrity monitor's latest check, under the table: one line, plus one per finding."""
    out = stdout()
    if not check.get("checked"):
        out.print(f"integrity ({monitor}): no check yet")
        return
    findings = check.get("findings") or []
    compared = sorted({p for c in check.get("channels") or [] for p in c.get("compared") or []})
    unreachable = check.get("unreachable") or []
    summary = f"[red]{len(findings)} finding(s)[/]" if findings else "[green]no divergence[/]"
    out.print(
        f"integrity ({monitor}, {check['checked']}): {summary} among {len(compared)} peers"
        + (f"; unreachable: {', '.join(unreachable)}" if unreachable else ""),
        highlight=False,
    )
    for finding in findings:
        out.print(f"  [red]{finding.get('message', '')}[/]", highlight=False)


network_split_cmd.register(app)  # `network genesis`, `network join-genesis`
