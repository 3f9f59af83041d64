"""`medalliance web account ...` and `medalliance web token ...`: the web client's staff accounts
and the API tokens of hospital systems (web/accounts.py; docs/web.md, "Accounts").

Accounts live in DIR/web-accounts.db unless `--accounts URL` names another file or a PostgreSQL
database. Passwords are read from a hidden prompt, or from stdin with --password-stdin (scripts);
never from an argument, which other users of the machine could see.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import BaseModel
from rich.table import Table

from medalliance.cli.output import emit_json, output_state, stdout
from medalliance.errors import InvalidArgument
from medalliance.node.bootstrap import NetworkLayout

if TYPE_CHECKING:  # the web stack is imported when a web command runs, not by every command
    from medalliance.web.accounts import Account, AccountStore

app = typer.Typer(help="The web client's staff accounts and API tokens.", no_args_is_help=True)
account_app = typer.Typer(
    help="Staff accounts bound to identities of the network.", no_args_is_help=True
)
token_app = typer.Typer(
    help="API tokens for hospital systems, bound to an account.", no_args_is_help=True
)
app.add_typer(account_app, name="account")
app.add_typer(token_app, name="token")

DirOption = Annotated[Path, typer.Option("--dir", help="The network folder (network.yaml).")]
AccountsOption = Annotated[
    str | None,
    typer.Option(
        "--accounts",
        help="Accounts database: a file or postgresql://... (default DIR/web-accounts.db).",
    ),
]
StdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
]


class AccountOut(BaseModel):
    username: str
    organization: str
    msp_id: str
    identity: str
    role: str
    language: str
    disabled: bool


class AccountsOut(BaseModel):
    accounts: list[AccountOut]


class TokenOut(BaseModel):
    token_id: str
    username: str
    token: str | None = None  # only when issued
    label: str = ""
    created: str = ""
    revoked: bool = False


class TokensOut(BaseModel):
    tokens: list[TokenOut]


def _store(directory: Path, accounts: str | None) -> AccountStore:
    from medalliance.web.accounts import AccountStore
    from medalliance.web.backend import accounts_location

    return AccountStore(accounts_location(directory, accounts))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt("password", hide_input=True)
    if typer.prompt("again", hide_input=True) != first:
        raise InvalidArgument("the two passwords differ; run the command again")
    return str(first)


def _out(account: Account) -> AccountOut:
    return AccountOut(
        username=account.username, organization=account.organization, msp_id=account.msp_id,
        identity=account.identity, role=account.role, language=account.language,
        disabled=account.disabled,
    )  # fmt: skip


def _show(account: Account, verb: str) -> None:
    if output_state.json:
        emit_json(_out(account))
    else:
        stdout().print(
            f"{verb} {account.username}: {account.identity}@{account.organization} "
            f"({account.role}){' — disabled' if account.disabled else ''}"
        )


@account_app.command("add")
def account_add(
    username: Annotated[str, typer.Argument(help="The login name, e.g. doctor.zhang.")],
    directory: DirOption,
    org: Annotated[str, typer.Option("--org", help="The organisation (name or MSP id).")],
    identity: Annotated[
        str,
        typer.Option(
            "--identity",
            help="The MSP user it signs as: User1, Clerk1, Reviewer1, Auditor1 or Admin.",
        ),
    ],
    language: Annotated[str, typer.Option("--language", help="zh_CN or en.")] = "zh_CN",
    accounts: AccountsOption = None,
    password_stdin: StdinOption = False,
) -> None:
    """Add a staff account bound to an identity of the organisation; asks for its password.

    The role follows the identity: User1 doctor, Clerk1 clerk, Reviewer1 reviewer, Auditor1
    auditor, Admin alliance operator.

    Example: medalliance web account add doctor.zhang --dir net --org SecondaryHospitalA --identity User1
    """
    layout = NetworkLayout.load(directory)
    store = _store(directory, accounts)
    try:
        account = store.add(
            layout.config, username, org, identity, _password(password_stdin), language
        )
    finally:
        store.close()
    _show(account, "added")


@account_app.command("list")
def account_list(directory: DirOption, accounts: AccountsOption = None) -> None:
    """List the staff accounts.

    Example: medalliance web account list --dir net
    """
    store = _store(directory, accounts)
    try:
        rows = store.all()
    finally:
        store.close()
    if output_state.json:
        emit_json(AccountsOut(accounts=[_out(a) for a in rows]))
        return
    table = Table(title="web accounts")
    for column in ("username", "organization", "identity", "role", "language", "state"):
        table.add_column(column)
    for a in rows:
        state = "disabled" if a.disabled else "enabled"
        table.add_row(a.username, a.organization, a.identity, a.role, a.language, state)
    stdout().print(table)


@account_app.command("disable")
def account_disable(
    username: Annotated[str, typer.Argument(help="The account.")],
    directory: DirOption,
    accounts: AccountsOption = None,
) -> None:
    """Disable an account: its sessions end and its API tokens stop working.

    Example: medalliance web account disable doctor.zhang --dir net
    """
    store = _store(directory, accounts)
    try:
        account = store.disable(username)
    finally:
        store.close()
    _show(account, "disabled")


@account_app.command("password")
def account_password(
    username: Annotated[str, typer.Argument(help="The account.")],
    directory: DirOption,
    accounts: AccountsOption = None,
    password_stdin: StdinOption = False,
) -> None:
    """Set a new password (asked for); every session of the account ends.

    Example: medalliance web account password doctor.zhang --dir net
    """
    store = _store(directory, accounts)
    try:
        store.set_password(username, _password(password_stdin))
        account = store.get(username)
    finally:
        store.close()
    _show(account, "new password for")


@token_app.command("issue")
def token_issue(
    username: Annotated[str, typer.Argument(help="The account the token acts for.")],
    directory: DirOption,
    label: Annotated[str, typer.Option("--label", help="What uses it, e.g. 'HIS of ward 3'.")] = "",
    accounts: AccountsOption = None,
) -> None:
    """Issue an API token for an account; it is shown once, only its hash is kept.

    A hospital system sends it as `Authorization: Bearer <token>`.

    Example: medalliance web token issue clerk.li --dir net --label "HIS"
    """
    store = _store(directory, accounts)
    try:
        issued = store.issue_token(username, label)
    finally:
        store.close()
    if output_state.json:
        emit_json(
            TokenOut(token_id=issued.token_id, username=username, token=issued.token, label=label)
        )
    else:
        stdout().print(f"token {issued.token_id} for {username} (shown once; keep it secret):")
        stdout().print(issued.token, soft_wrap=True)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (see `web token list`).")],
    directory: DirOption,
    accounts: AccountsOption = None,
) -> None:
    """Revoke an API token.

    Example: medalliance web token revoke 3f9a0c1b2d4e --dir net
    """
    store = _store(directory, accounts)
    try:
        store.revoke_token(token_id)
        row = next(t for t in store.tokens() if t[0] == token_id)
    finally:
        store.close()
    if output_state.json:
        emit_json(
            TokenOut(token_id=token_id, username=row[1], label=row[2], created=row[3], revoked=True)
        )
    else:
        stdout().print(f"revoked token {token_id} of {row[1]}")


@token_app.command("list")
def token_list(directory: DirOption, accounts: AccountsOption = None) -> None:
    """List API tokens (ids, accounts, labels; never the tokens).

    Example: medalliance web token list --dir net
    """
    store = _store(directory, accounts)
    try:
        rows = store.tokens()
    finally:
        store.close()
    if output_state.json:
        emit_json(TokensOut(tokens=[
            TokenOut(token_id=r[0], username=r[1], label=r[2], created=r[3], revoked=r[4]) for r in rows
        ]))  # fmt: skip
        return
    table = Table(title="API tokens")
    for column in ("id", "account", "label", "created", "state"):
        table.add_column(column)
    for r in rows:
        table.add_row(r[0], r[1], r[2], r[3], "revoked" if r[4] else "active")
    stdout().print(table)
