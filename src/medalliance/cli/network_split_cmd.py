"""`medalliance network genesis` and `network join-genesis`: the split set-up's exchange.

Each organisation runs `network init --org` on its own machine; one runs `network genesis` over
everyone's public bundles and publishes the printed hashes out of band; each imports the archive
with `network join-genesis`, checked against those hashes (docs/deployment.md).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from medalliance.cli.output import dir_option, emit_json, output_state, stdout
from medalliance.errors import InvalidArgument, PreconditionFailed
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.config import load_network_config
from medalliance.node.split_setup import join_genesis, make_genesis, published_hashes


class GenesisOutput(BaseModel):
    archive: str
    organizations: list[str]
    # channel -> SHA-256 (hex) of its genesis block: publish these out of band
    genesis_sha256: dict[str, str]


class JoinOutput(BaseModel):
    directory: str
    organization: str
    genesis_sha256: dict[str, str]


def genesis(
    config: Annotated[Path, typer.Argument(help="The network config YAML all agreed on.")],
    bundles: Annotated[
        list[Path], typer.Argument(help="Every organisation's <Org>.public.tar.gz.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the genesis archive.")],
) -> None:
    """Verify every organisation's public bundle and build the channels' genesis blocks.

    Refuses a bundle holding a private key, a certificate its own CA did not issue, another
    organisation's name, or a missing or doubled organisation. Writes one archive (the blocks
    and the bundles) for every organisation, and prints each block's SHA-256: publish those out
    of band, each organisation checks them in `network join-genesis`.

    Example: medalliance network genesis alliance.yaml CityHC.public.tar.gz
    TertiaryA.public.tar.gz ... --out alliance.genesis.tar.gz
    """
    network = load_network_config(config)
    if out.exists():
        raise PreconditionFailed(f"{out} exists; choose another --out or remove it")
    read = []
    for path in bundles:
        try:
            read.append((path.name, path.read_bytes()))
        except OSError as exc:
            raise InvalidArgument(f"{path}: cannot read the bundle ({exc.strerror})") from None
    made = make_genesis(network, read, now=dt.datetime.now(dt.UTC))
    partial = out.with_name(f".{out.name}.partial")
    partial.write_bytes(made.archive)
    partial.replace(out)
    result = GenesisOutput(
        archive=str(out),
        organizations=[o.msp_id for o in network.organizations],
        genesis_sha256=dict(made.block_sha256),
    )
    if output_state.json:
        emit_json(result)
        return
    stdout().print(f"genesis archive written to {out}; publish these hashes out of band:")
    for channel, digest in result.genesis_sha256.items():
        stdout().print(f"  --genesis-sha256 {channel}={digest}")


def join(
    archive: Annotated[Path, typer.Argument(help="The genesis archive from `network genesis`.")],
    directory: Annotated[Path, dir_option("Your organisation's folder (`network init --org`).")],
    organization: Annotated[str, typer.Option("--org", help="Your organisation (name or MSP id).")],
    genesis_sha256: Annotated[
        list[str],
        typer.Option(
            "--genesis-sha256",
            help="CHANNEL=HEX as the genesis maker published it (HEX alone for one channel); "
            "once per channel.",
        ),
    ],
) -> None:
    """Check the genesis archive and import it into your organisation's folder.

    Checks each block against the hash published out of band, every public bundle inside, that
    the bundle under your name is your own, and that the blocks follow from the bundles; then
    installs the others' public material and the blocks. Nothing is written when a check fails.

    Example: medalliance network join-genesis alliance.genesis.tar.gz --dir /srv/medalliance
    --org TertiaryA --genesis-sha256 alliance=3f5a...
    """
    layout = NetworkLayout.load(directory)
    published = published_hashes(genesis_sha256, layout.config)
    org = layout.config.organization(organization)
    try:
        data = archive.read_bytes()
    except OSError as exc:
        raise InvalidArgument(
            f"{archive}: cannot read the genesis archive ({exc.strerror})"
        ) from None
    hashes = join_genesis(layout, org.name, data, published)
    result = JoinOutput(directory=str(directory), organization=org.msp_id, genesis_sha256=hashes)
    if output_state.json:
        emit_json(result)
    else:
        stdout().print(
            f"the genesis blocks match the published hashes and {org.name}'s keys; start your "
            f"nodes with `medalliance network up --dir {directory} --org {org.name}`"
        )


def register(app: typer.Typer) -> None:
    """Add the commands to the `network` group."""
    app.command("genesis")(genesis)
    app.command("join-genesis")(join)
