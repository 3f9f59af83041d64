"""What the role commands (`visit`, `referral`, `report`, `resource`, `settlement`, `connector`)
share: the `--as USER@ORG` and `--dir` options, a session on a running network, and rendering.

A command opens a `Session` as its caller, makes one contract call through `GatewayAlliance`
(a contract's refusal is a `ContractError` with the contract's own message; main.py turns it
into a clean error and exit code) and renders the result: a table or a short line, or exactly one
JSON document under `--json`. Nothing here catches errors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.table import Table

from medalliance.app.alliance_network import Committed, GatewayAlliance
from medalliance.cli.output import committed_line, dir_option, emit_json, output_state, stdout
from medalliance.errors import InvalidArgument, NotFound, Unavailable
from medalliance.node import launcher
from medalliance.node.bootstrap import NetworkLayout

CHANNEL = "alliance"
AS_EXAMPLE = "User1@SecondaryHospitalA"

Dir = Annotated[Path, dir_option("The network folder (running).")]
As = Annotated[
    str,
    typer.Option(
        "--as",
        help=f"Act as USER@ORG, e.g. {AS_EXAMPLE} (ORG: a name or an MSP id).",
        show_default=False,
    ),
]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a command acts as: a user of an organisation (resolved to its MSP id)."""

    user: str
    msp_id: str


def parse_as(value: str) -> tuple[str, str]:
    """(user, organisation as written) from `USER@ORG`; `InvalidArgument` when malformed."""
    user, sep, org = value.partition("@")
    if not sep or not user.strip() or not org.strip() or "@" in org:
        raise InvalidArgument(f"--as takes USER@ORG, e.g. {AS_EXAMPLE}")
    return user.strip(), org.strip()


class Session:
    """A caller on a running network: contract calls on the alliance channel as that user."""

    def __init__(self, network: GatewayAlliance, caller: Caller) -> None:
        self.network = network
        self.caller = caller

    def submit(self, contract: str, function: str, *args: str) -> Committed:
        """Endorse, order and wait for the commit (`ContractError` if the contract refuses)."""
        return self.network.submit(self.caller.msp_id, self.caller.user, contract, function, *args)

    def evaluate(self, contract: str, function: str, *args: str) -> Any:
        """A query's JSON result, read on the caller's own peer."""
        raw = self.network.evaluate(self.caller.msp_id, self.caller.user, contract, function, *args)
        return json.loads(raw) if raw else None

    def msp_id(self, organization: str) -> str:
        """An organisation given by name or MSP id, as its MSP id (`ConfigError` if unknown)."""
        return self.network.layout.config.organization(organization).msp_id


@contextmanager
def session(directory: Path, as_: str) -> Iterator[Session]:
    """A session as `--as` on the network in `directory`, closed on exit."""
    user, org = parse_as(as_)
    network = GatewayAlliance(directory, CHANNEL)
    try:
        caller = Caller(user, network.layout.config.organization(org).msp_id)
        yield Session(network, caller)
    finally:
        network.close()


def read_json_argument(value: str, option: str) -> str:
    """The text of a JSON option given inline or as `@FILE`; the contract checks its content."""
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{option} {value}: no file {path}") from None


# --- rendering -----------------------------------------------------------------------------------


class SubmitOutput(BaseModel):
    """A committed transaction under --json: where it landed and the contract's result."""

    transaction_id: str
    tx_id: str  # the same id under the name every mutating command uses
    block_number: int
    result: Any


def show_committed(done: Committed, line: Callable[[Any], str]) -> Any:
    """Render a committed transaction: `line(result)` and the block, or one JSON document.
    Returns the contract's parsed result."""
    result = json.loads(done.payload) if done.payload else None
    if output_state.json:
        emit_json(
            SubmitOutput(
                transaction_id=done.tx_id, tx_id=done.tx_id, block_number=done.block, result=result
            )
        )
    else:
        stdout().print(f"{line(result)}; {committed_line(done.tx_id, done.block)}", soft_wrap=True)
    return result


def show_result(result: Any, render: Callable[[Any], Table | str]) -> None:
    """Render a query's result: a table or a line, or the contract's JSON as one document."""
    if output_state.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        rendered = render(result)
        stdout().print(rendered, soft_wrap=isinstance(rendered, str))


def record_table(title: str, record: dict[str, Any]) -> Table:
    """A record as a two-column table; nested values as compact JSON."""
    table = Table("field", "value", title=title, title_justify="left", show_header=False)
    for key, value in record.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        table.add_row(key, text)
    return table


def rows_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[object]], empty: str
) -> Table | str:
    """Rows as a table, or `empty` when there are none."""
    if not rows:
        return empty
    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    return table


def exactly_one(flags: dict[str, bool]) -> str:
    """The one flag that is set; `InvalidArgument` when none or several are."""
    chosen = [name for name, value in flags.items() if value]
    if len(chosen) != 1:
        raise InvalidArgument(f"give exactly one of {' or '.join(flags)}")
    return chosen[0]


def money(cents: int) -> str:
    return f"{cents / 100:.2f}"


ThroughBlock = Annotated[
    int | None,
    typer.Option(
        "--through-block",
        min=0,
        help="Read at least through this block (e.g. the one a `referral refer` printed), "
        "waiting up to a minute for your peer to commit it.",
        show_default=False,
    ),
]


def one_pass_only(follow: bool, through_block: int | None) -> None:
    """`--through-block` bounds one pass; with `--follow` every block is read as it commits."""
    if follow and through_block is not None:
        raise InvalidArgument(
            "--through-block is for one pass; --follow already reads every block as it commits"
        )


def last_block(
    layout: NetworkLayout, msp_id: str, through: int | None = None, timeout_s: float = 60.0
) -> int:
    """The last block the organisation's own peer has committed on the alliance channel, from
    its operations endpoint (as `network status` reads it): where a one-pass reader of blocks
    (connector, audit index, alarm runner) stops. `Unavailable` with a hint when it cannot say.

    With `through`, waits until the peer has committed that block: a transaction's block is
    known when the gateway's peer commits it, and another organisation's peer receives it a
    moment later, so a reader told "block N" must not stop short of it."""
    peers = [n for n in launcher.nodes_of(layout) if n.organization == msp_id and n.role == "peer"]
    if not peers:
        raise Unavailable(f"{msp_id} runs no peer to read blocks from")
    deadline = time.monotonic() + timeout_s
    while True:
        answer = launcher.probe(peers[0], timeout=5.0)
        height = (answer or {}).get("channels", {}).get(CHANNEL)
        if not isinstance(height, int):
            raise Unavailable(
                f"peer {peers[0].name} does not report its height on channel {CHANNEL}; "
                "is the network up (`medalliance network status`)?"
            )
        if through is None or height - 1 >= through:
            return height - 1
        if time.monotonic() > deadline:
            raise Unavailable(
                f"peer {peers[0].name} has committed through block {height - 1}, not block "
                f"{through}, after {timeout_s:.0f} s; is it catching up (`medalliance network "
                "status`)?"
            )
        time.sleep(0.2)  # polling the peer's height, not guessing how long it takes
