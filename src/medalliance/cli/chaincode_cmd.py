"""`medalliance chaincode package|install|approve|commit`: chaincode as a service
(docs/chaincode-as-a-service.md) — Fabric ccaas packages on an organisation's peers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from medalliance.app.chaincode_service import (
    approve_external,
    commit_external,
    install_package,
)
from medalliance.cli.output import dir_option, emit_json, output_state, stdout
from medalliance.contracts.ccaas_package import build_ccaas_package, parse_ccaas_package
from medalliance.contracts.collections import load_collections_config
from medalliance.contracts.package import package_id
from medalliance.errors import Conflict, InvalidArgument
from medalliance.node.bootstrap import NetworkLayout

app = typer.Typer(help="Chaincode as a service: external chaincode servers.", no_args_is_help=True)

NetworkDir = Annotated[Path, dir_option("The network folder.")]
Org = Annotated[str, typer.Option("--org", help="Your organisation (name or MSP id).")]
Channel = Annotated[str, typer.Option("--channel", "-C", help="The channel.")]
Name = Annotated[str, typer.Option("--name", "-n", help="The chaincode's name on the channel.")]
Version = Annotated[str, typer.Option("--version", "-v", help="The definition's version.")]
Sequence = Annotated[int, typer.Option("--sequence", help="The definition's sequence.")]
Policy = Annotated[
    str,
    typer.Option(
        "--policy", help="Endorsement policy, e.g. \"AND('Org1MSP.peer','Org2MSP.peer')\"."
    ),
]

CollectionsConfig = Annotated[
    Path | None,
    typer.Option(
        "--collections-config",
        help="Fabric's collections_config.json: the private data collections of the definition.",
        exists=True,
        dir_okay=False,
    ),
]


class PackageOutput(BaseModel):
    path: str
    package_id: str
    address: str


class InstallOutput(BaseModel):
    package_id: str
    peers: list[str]


class TxOutput(BaseModel):
    tx_id: str
    code: int


@app.command("package")
def package(
    out: Annotated[Path, typer.Argument(help="The package file to write (.tar.gz).")],
    label: Annotated[str, typer.Option("--label", help="The package label, e.g. basic_1.0.")],
    address: Annotated[str, typer.Option("--address", help="host:port of your chaincode server.")],
    dial_timeout: Annotated[str, typer.Option(help="How long the peer dials, e.g. 10s.")] = "10s",
    root_cert: Annotated[
        Path | None, typer.Option(help="PEM CA of the server's TLS certificate (enables TLS).")
    ] = None,
) -> None:
    """Write a Fabric ccaas package whose connection.json names your chaincode server.

    Example: medalliance chaincode package basic.tar.gz --label basic_1.0 --address cc.org1:9999
    """
    connection: dict[str, object] = {"address": address, "dial_timeout": dial_timeout}
    if root_cert is not None:
        connection.update(tls_required=True, root_cert=root_cert.read_text(encoding="utf-8"))
    data = build_ccaas_package(label, connection)
    parse_ccaas_package(data)  # refuses what a peer would refuse, before anything is written
    out.write_bytes(data)
    result = PackageOutput(path=str(out), package_id=package_id(data, label), address=address)
    if output_state.json:
        emit_json(result)
    else:
        stdout().print(f"wrote {out}: package id {result.package_id}")


@app.command("install")
def install(
    package_file: Annotated[Path, typer.Argument(help="A ccaas package (.tar.gz).")],
    org: Org,
    directory: NetworkDir = Path("test-network"),
) -> None:
    """Install a package on your organisation's peers (Fabric's `peer lifecycle chaincode install`).

    Example: medalliance chaincode install basic.tar.gz --org Org1 --dir test-network
    """
    if not package_file.is_file():
        raise InvalidArgument(f"{package_file} is not a file; give the package to install")
    pkg_id, hosts = install_package(NetworkLayout.load(directory), org, package_file.read_bytes())
    if output_state.json:
        emit_json(InstallOutput(package_id=pkg_id, peers=hosts))
    else:
        stdout().print(f"installed {pkg_id} on {', '.join(hosts)}")


def _emit_tx(tx_id: str, code: int, what: str) -> None:
    if code != 0:
        raise Conflict(f"{what} transaction {tx_id} was invalidated (validation code {code})")
    if output_state.json:
        emit_json(TxOutput(tx_id=tx_id, code=code))
    else:
        stdout().print(f"{what}: valid ({tx_id})")


@app.command("approve")
def approve(
    org: Org,
    channel: Channel,
    name: Name,
    version: Version,
    sequence: Sequence,
    package_id_: Annotated[str, typer.Option("--package-id", help="Your installed package id.")],
    policy: Policy,
    collections_config: CollectionsConfig = None,
    directory: NetworkDir = Path("test-network"),
) -> None:
    """Approve an external chaincode's definition for your organisation, with your package.

    Example: medalliance chaincode approve --org Org1 -C mychannel -n basic-node -v 1.0 --sequence 1 --package-id basic_1.0:ab12... --policy "AND('Org1MSP.peer','Org2MSP.peer')"
    """
    layout = NetworkLayout.load(directory)
    tx_id, code = approve_external(
        layout, org, channel, name=name, version=version, sequence=sequence,
        package_id=package_id_, policy=policy, collections=_collections(collections_config),
    )  # fmt: skip
    _emit_tx(tx_id, code, f"approval of {name} for {org}")


@app.command("commit")
def commit(
    org: Org,
    channel: Channel,
    name: Name,
    version: Version,
    sequence: Sequence,
    policy: Policy,
    collections_config: CollectionsConfig = None,
    directory: NetworkDir = Path("test-network"),
) -> None:
    """Commit an external chaincode's definition once a majority of members approved it.

    Example: medalliance chaincode commit --org Org1 -C mychannel -n basic-node -v 1.0 --sequence 1 --policy "AND('Org1MSP.peer','Org2MSP.peer')"
    """
    layout = NetworkLayout.load(directory)
    tx_id, code = commit_external(
        layout, org, channel, name=name, version=version, sequence=sequence, policy=policy,
        collections=_collections(collections_config),
    )  # fmt: skip
    _emit_tx(tx_id, code, f"commit of {name}")


def _collections(path: Path | None) -> bytes:
    """The checked CollectionConfigPackage of a collections config file (b"": none)."""
    return load_collections_config(path.read_bytes()) if path else b""
