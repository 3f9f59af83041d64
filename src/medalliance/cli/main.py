"""The `medalliance` command: one entry point, noun then verb (style.md §7).

Commands parse options, call one function of a lower layer and render its result. Errors are
caught once, here: a `MedallianceError` becomes a message and its exit code; anything else is a
bug, reported as such with exit code 70.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console

from medalliance import __version__
from medalliance.cli.output import DIR_ENV, output_state
from medalliance.errors import MedallianceError, NoNetwork, Unavailable

# Each command group is imported only when it runs (or `--help` lists it): a node process or a
# one-line `visit show` then loads what it needs, not FHIR models, PDF fonts and every contract.
# name -> "module:attribute": a Typer app, or a loader returning the app or the one command.
_GROUPS = {
    "ledger": "medalliance.cli.ledger_cmd:app",
    "network": "medalliance.cli.network_cmd:app",
    "channel": "medalliance.cli.channel_cmd:app",
    "node": "medalliance.cli.node_cmd:app",
    "tx": "medalliance.cli.tx_cmd:app",
    "privacy": "medalliance.cli.privacy_cmd:app",
    "visit": "medalliance.cli.visit_cmd:app",
    "referral": "medalliance.cli.referral_cmd:app",
    "report": "medalliance.cli.report_cmd:app",
    "resource": "medalliance.cli.resource_cmd:app",
    "result": "medalliance.cli.result_cmd:app",
    "settlement": "medalliance.cli.settlement_cmd:app",
    "consultation": "medalliance.cli.consultation_cmd:app",
    "connector": "medalliance.cli.connector_cmd:app",
    "hospital": "medalliance.cli.hospital_cmd:app",
    "audit": "medalliance.cli.main:_audit",
    "demo": "medalliance.cli.main:_demo",
    "serve": "medalliance.cli.main:_serve",
    "web": "medalliance.cli.web_cmd:app",
    "ca": "medalliance.cli.ca_cmd:app",
    "identity": "medalliance.cli.identity_cmd:app",
    "chaincode": "medalliance.cli.chaincode_cmd:app",
}


def _audit() -> typer.Typer:
    from medalliance.cli import audit_alarm_cmd, audit_cmd, audit_report_cmd

    audit_report_cmd.register(audit_cmd.app)  # report, verify-report, generate-month
    audit_alarm_cmd.register(audit_cmd.app)  # `audit alarms ...`
    return audit_cmd.app


def _demo() -> Callable[..., None]:
    from medalliance.cli import demo_cmd

    return demo_cmd.demo


def _serve() -> Callable[..., None]:
    from medalliance.cli import serve_cmd

    return serve_cmd.serve


class _LazyGroup(typer.core.TyperGroup):
    """The root command: its subcommands are built from `_GROUPS` on first use."""

    # Any: click's Context and Command, which typer may vendor and names no public alias for.
    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *_GROUPS})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in _GROUPS:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = _GROUPS[cmd_name].partition(":")
        loaded = getattr(importlib.import_module(module), attribute)
        target = loaded if isinstance(loaded, typer.Typer) else loaded()
        # Built as the root would build it (a group of one, without completion options).
        holder = typer.Typer(add_completion=False)
        holder.callback()(_nothing)
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=cmd_name)
        else:
            holder.command(cmd_name)(target)
        built = typer.main.get_command(holder).commands[cmd_name]  # type: ignore[attr-defined]
        return _with_global_flags(built)


def _nothing() -> None:
    """The holder group's callback: it only makes typer build a group."""


app = typer.Typer(
    name="medalliance",
    cls=_LazyGroup,
    help="A consortium blockchain for a regional medical alliance, speaking Fabric's protocols.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Every subcommand inherits it: `-h` is what people type first.
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"medalliance {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log at INFO to stderr.")
    ] = False,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            "-d",
            help=f"The network folder, for the commands that take one (or set {DIR_ENV}).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """medalliance: hospitals and health commissions sharing one permissioned ledger.

    --json, --verbose and --dir may come before or after the command.
    """
    del directory  # main() hands it to the command, which declares its own --dir
    _global_json(json_output)
    _global_verbose(verbose)


# --- options every command accepts, anywhere on the line ---------------------------------------

_verbose = False


def _configure_logging() -> None:
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    level = logging.INFO if _verbose and not output_state.json else logging.WARNING
    logging.getLogger().setLevel(level)


def _global_json(value: bool) -> None:
    if value:
        output_state.json = True
    _configure_logging()


def _global_verbose(value: bool) -> None:
    global _verbose
    _verbose = _verbose or value
    _configure_logging()


def _global_flags(
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print exactly one JSON document on stdout.",
            callback=_global_json,
            expose_value=False,
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Log at INFO to stderr.",
            callback=_global_verbose,
            expose_value=False,
        ),
    ] = False,
) -> None:
    """A template: its options are added to every command (`_with_global_flags`)."""


@functools.cache
def _global_params() -> list[Any]:
    holder = typer.Typer(add_completion=False)
    holder.command()(_global_flags)
    params: list[Any] = typer.main.get_command(holder).params
    return params


def _with_global_flags(command: Any) -> Any:
    """`command` and every command under it accept --json and --verbose after their name too
    (click only parses an option on the command that declares it). Declared by click itself,
    so an option's value that reads "--json" stays that option's value, and `--` ends options."""
    for sub in (getattr(command, "commands", None) or {}).values():
        _with_global_flags(sub)
    taken = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for param in _global_params():
        if not taken & {*param.opts, *param.secondary_opts}:
            command.params.append(param)
    return command


_DIR_OPTIONS = ("--dir", "-d")


def _dir_after_the_command(argv: list[str]) -> list[str]:
    """A `--dir D` written before the command moved after it: the command declares --dir (its
    default differs per command), the root only documents it. Only the root's own options are
    looked at, so nothing after the command name is reinterpreted."""
    front: list[str] = []
    moved: list[str] = []
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        if argv[i] in _DIR_OPTIONS and i + 1 < len(argv):
            moved += argv[i : i + 2]
            i += 2
        elif argv[i].startswith("--dir="):
            moved.append(argv[i])
            i += 1
        else:
            front.append(argv[i])
            i += 1
    rest = argv[i:]
    if not moved or not rest or rest[0] == "--":
        return argv  # no command to hand it to: the root takes it
    end = rest.index("--") if "--" in rest else len(rest)
    return [*front, *rest[:end], *moved, *rest[end:]]


# --- errors: one mapping, with the hints that apply whatever the command ------------------------


# What TLS (BoringSSL) says when a certificate's dates do not cover this machine's clock.
_CLOCK_REFUSALS = ("certificate is not yet valid", "certificate has expired")


def _message(exc: MedallianceError) -> str:
    if isinstance(exc, NoNetwork) and output_state.dir_given is None:
        return (
            f"{exc.directory} (the current folder) is not a network folder; "
            f"add --dir DIR (or set {DIR_ENV})"
        )
    if isinstance(exc, Unavailable) and any(r in str(exc) for r in _CLOCK_REFUSALS):
        # A clock off by more than the certificates' slack looks like a dead node: say which.
        return f"{exc}; a TLS certificate was refused for its dates: check this machine's clock"
    if isinstance(exc, Unavailable) and _unreachable(exc):
        folder = output_state.dir_given or Path(".")
        return f"{exc}; is the network up? `medalliance network status --dir {folder}`"
    return str(exc)


def _unreachable(exc: MedallianceError) -> bool:
    """A node that did not answer at all (gRPC UNAVAILABLE: refused, reset, no route)."""
    return getattr(exc, "code", None) is not None and "UNAVAILABLE" in str(getattr(exc, "code", ""))


def _kind(exc: BaseException) -> str:
    """The public class name (a contract's refusal is a `ContractError` of its category)."""
    return next(c.__name__ for c in type(exc).__mro__ if not c.__name__.startswith("_"))


# gRPC's EventEngine TCP endpoints cost ≈ 10 % more CPU per call than its posix endpoints on a
# node's load (docs/performance.md, "gRPC's TCP endpoints"): every `medalliance` process, nodes
# included, turns off the two experiments that select them, unless GRPC_EXPERIMENTS is set.
# Command groups load gRPC lazily, so this runs before it does.
GRPC_EXPERIMENTS = "-event_engine_client,-event_engine_listener"


def main() -> None:
    os.environ.setdefault("GRPC_EXPERIMENTS", GRPC_EXPERIMENTS)
    try:
        app(args=_dir_after_the_command(sys.argv[1:]), prog_name="medalliance")
    except MedallianceError as exc:
        _fail(_kind(exc), _message(exc), exc.status.exit_code)
    except Exception as exc:  # a bug: say so, keep the traceback for the operator
        logging.getLogger(__name__).exception("unexpected error")
        _fail("InternalError", f"internal error ({type(exc).__name__}); please report it", 70)


def _fail(kind: str, message: str, code: int) -> None:
    if output_state.json:
        print(json.dumps({"error": kind, "message": message}))
    else:
        Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)
