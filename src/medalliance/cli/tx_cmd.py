"""`medalliance tx submit|evaluate`: call a contract through the Gateway as a network user."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from medalliance.app.peer_commits import wait_for_block
from medalliance.app.session import connect_as, contract_refusal
from medalliance.cli.output import committed_line, dir_option, emit_json, output_state
from medalliance.errors import InvalidArgument, NotFound
from medalliance.node.bootstrap import NetworkLayout
from medalliance.sdk import CommitError, GatewayError

app = typer.Typer(
    help="Submit or evaluate a transaction through the Gateway API.", no_args_is_help=True
)

Dir = Annotated[Path, dir_option("The network folder.")]
Org = Annotated[str, typer.Option("--org", help="Your organisation (name or MSP id).")]
User = Annotated[str, typer.Option("--user", help="Your user name in that organisation.")]
Channel = Annotated[str, typer.Option("--channel", "-C", help="The channel.")]
ContractName = Annotated[str, typer.Option("--contract", "-n", help="The contract name.")]
Function = Annotated[str, typer.Argument(help="The transaction function, e.g. ReadAsset.")]
Args = Annotated[list[str] | None, typer.Argument(help="String arguments, in order.")]
Transient = Annotated[
    list[str] | None,
    typer.Option(
        "--transient", help="Private input key=value; reaches the contract, never the ledger."
    ),
]


class TxOutput(BaseModel):
    transaction_id: str | None
    tx_id: str | None  # the same id under the name every mutating command uses
    block_number: int | None
    result: str


def _transient(items: list[str] | None) -> dict[str, bytes]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"--transient {item!r}: use key=value")
        out[key] = value.encode()
    return out


def _show(result: TxOutput) -> None:
    if output_state.json:
        emit_json(result)
    else:
        if result.result:
            print(result.result)  # verbatim: a contract's JSON must not be wrapped or styled
        if result.tx_id is not None and result.block_number is not None:
            print(committed_line(result.tx_id, result.block_number))


@contextmanager
def _refusals(layout: NetworkLayout, channel: str, contract: str) -> Iterator[None]:
    """A contract's refusal by its own status; an unknown contract with the configured ones."""
    try:
        yield
    except GatewayError as exc:
        if "no chaincode definition" in str(exc):
            names = ", ".join(c.name for c in layout.config.channel(channel).contracts)
            raise NotFound(
                f"no contract {contract!r} on channel {channel}; contracts: {names}"
            ) from None
        raise contract_refusal(exc) from None


@app.command("submit")
def submit(
    function: Function,
    org: Org,
    channel: Channel,
    contract: ContractName,
    args: Args = None,
    directory: Dir = Path("."),
    user: User = "User1",
    transient: Transient = None,
) -> None:
    """Endorse, order and wait for the commit; prints the contract's result.

    Example: medalliance tx submit --dir test-network --org Org1 -C mychannel -n basic CreateAsset asset7 red 5 Ana 900
    """
    layout = NetworkLayout.load(directory)
    layout.config.channel(channel)  # an unknown channel: the error lists the network's channels
    with connect_as(layout, org, user) as gateway, _refusals(layout, channel, contract):
        target = gateway.get_network(channel).get_contract(contract)
        submitted = target.submit_async(
            function, arguments=args or [], transient=_transient(transient)
        )
        status = submitted.get_status()
        # As `peer chaincode invoke --waitForEvent` waits for every peer it addressed: the
        # next command may be another organisation's, on its own peer.
        wait_for_block(layout, channel, status.block_number)
        if not status.successful:
            raise CommitError(status.code, status.transaction_id)
        _show(
            TxOutput(
                transaction_id=status.transaction_id,
                tx_id=status.transaction_id,
                block_number=status.block_number,
                result=submitted.result.decode("utf-8", "replace"),
            )
        )


@app.command("evaluate")
def evaluate(
    function: Function,
    org: Org,
    channel: Channel,
    contract: ContractName,
    args: Args = None,
    directory: Dir = Path("."),
    user: User = "User1",
    transient: Transient = None,
) -> None:
    """Run a query on your organisation's peer; nothing is written to the ledger.

    Example: medalliance tx evaluate --dir test-network --org Org1 -C mychannel -n basic GetAllAssets
    """
    layout = NetworkLayout.load(directory)
    layout.config.channel(channel)
    with connect_as(layout, org, user) as gateway, _refusals(layout, channel, contract):
        target = gateway.get_network(channel).get_contract(contract)
        result = target.evaluate(function, arguments=args or [], transient=_transient(transient))
    _show(
        TxOutput(
            transaction_id=None,
            tx_id=None,
            block_number=None,
            result=result.decode("utf-8", "replace"),
        )
    )
