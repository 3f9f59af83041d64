"""`medalliance channel propose-update|sign-update|submit-update`: membership by vote.

A change to a channel's members or ordering nodes is proposed by one organisation's admin,
signed by the admins of a majority of the channel's organisations, and submitted to the
ordering service, which applies it only with those signatures (docs/consensus.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from medalliance.app.channel_update import UpdateFile, propose, sign, submit
from medalliance.cli.output import committed_line, dir_option, emit_json, output_state, stdout
from medalliance.node.bootstrap import NetworkLayout

app = typer.Typer(
    help="Change a channel's members or ordering nodes, by a vote of the organisations' admins.",
    no_args_is_help=True,
)

Dir = Annotated[Path, dir_option("The network folder (running).")]
Org = Annotated[
    str, typer.Option("--org", help="Your organisation (name or MSP id); its Admin acts.")
]
UpdatePath = Annotated[Path, typer.Argument(help="The update file.")]


class UpdateOutput(BaseModel):
    file: str
    channel: str
    description: str
    signed_by: list[str]


class SubmitOutput(UpdateOutput):
    transaction_id: str
    tx_id: str  # the same id under the name every mutating command uses
    block_number: int


def _output(path: Path, update: UpdateFile) -> UpdateOutput:
    return UpdateOutput(
        file=str(path),
        channel=update.channel,
        description=update.description,
        signed_by=[s["signer"] for s in update.signatures],
    )


def _show(result: UpdateOutput, line: str) -> None:
    if output_state.json:
        emit_json(result)
    else:
        stdout().print(line)


@app.command("propose-update")
def propose_update(
    org: Org,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the update.")],
    channel: Annotated[str, typer.Option("--channel", "-C", help="The channel.")],
    remove_org: Annotated[
        str | None, typer.Option("--remove-org", help="An organisation to remove from it.")
    ] = None,
    remove_orderer: Annotated[
        str | None,
        typer.Option("--remove-orderer", help="An ordering node (its host name) to remove."),
    ] = None,
    add_orderer: Annotated[
        str | None,
        typer.Option(
            "--add-orderer", help="An ordering node (host name) of the network folder to add."
        ),
    ] = None,
    revoke: Annotated[
        Path | None,
        typer.Option(
            "--revoke",
            help="A certificate (PEM) of your organisation to revoke, or its Fabric CA's CRL.",
        ),
    ] = None,
    directory: Dir = Path("."),
) -> None:
    """Propose a change against the channel's current configuration, unsigned.

    Example: medalliance channel propose-update --dir alliance --org CityHC -C alliance
    --remove-org SecondaryHospitalB -o remove-sb.json
    """
    layout = NetworkLayout.load(directory)
    update = propose(
        layout,
        org,
        channel,
        remove_org=remove_org,
        remove_orderer=remove_orderer,
        revoke=revoke.read_bytes() if revoke is not None else None,
        add_orderer=add_orderer,
    )
    update.save(output)
    _show(
        _output(output, update),
        f"{update.description}: written to {output}; now collect signatures",
    )


@app.command("sign-update")
def sign_update(update_path: UpdatePath, org: Org, directory: Dir = Path(".")) -> None:
    """Add your organisation admin's signature to an update file.

    Example: medalliance channel sign-update remove-sb.json --dir alliance --org DistrictHC
    """
    layout = NetworkLayout.load(directory)
    update = sign(layout, org, UpdateFile.load(update_path))
    update.save(update_path)
    result = _output(update_path, update)
    _show(result, f"signed; {len(result.signed_by)} signature(s): {', '.join(result.signed_by)}")


@app.command("submit-update")
def submit_update(update_path: UpdatePath, org: Org, directory: Dir = Path(".")) -> None:
    """Send a signed update to the ordering service and wait until it is in a block.

    The ordering service refuses it unless a majority of the channel's organisations' admins
    signed it. Example: medalliance channel submit-update remove-sb.json --dir alliance --org CityHC
    """
    layout = NetworkLayout.load(directory)
    update = UpdateFile.load(update_path)
    tx_id, block = submit(layout, org, update)
    result = SubmitOutput(
        **_output(update_path, update).model_dump(),
        transaction_id=tx_id,
        tx_id=tx_id,
        block_number=block,
    )
    _show(
        result,
        f"{update.description}: in force from block {block + 1}; {committed_line(tx_id, block)}",
    )
