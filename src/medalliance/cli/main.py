"""The `medalliance` command: one entry point, noun then verb (style.md §7).

Commands parse options, call one function of a lower layer and render its result. Errors are
caught once, here: a `MedallianceError` becomes a message and its exit code; anything else is a
bug, reported as such with exit code 70.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console

from medalliance import __version__
from medalliance.cli.output import output_state
from medalliance.errors import MedallianceError

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
    "settlement": "medalliance.cli.settlement_cmd:app",
    "connector": "medalliance.cli.connector_cmd:app",
    "hospital": "medalliance.cli.hospital_cmd:app",
    "audit": "medalliance.cli.main:_audit",
    "demo": "medalliance.cli.main:_demo",
    "serve": "medalliance.cli.main:_serve",
    "web": "medalliance.cli.web_cmd:app",
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
        return typer.main.get_command(holder).commands[cmd_name]  # type: ignore[attr-defined]


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
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """medalliance: hospitals and health commissions sharing one permissioned ledger."""
    output_state.json = json_output
    logging.basicConfig(
        level=logging.INFO if verbose and not json_output else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    try:
        app()  # standalone: usage errors exit 2, Ctrl-C exits 130 (click's handling)
    except MedallianceError as exc:
        _fail(type(exc).__name__, str(exc), exc.status.exit_code)
    except Exception as exc:  # a bug: say so, keep the traceback for the operator
        logging.getLogger(__name__).exception("unexpected error")
        _fail("InternalError", f"internal error ({type(exc).__name__}); please report it", 70)


def _fail(kind: str, message: str, code: int) -> None:
    if output_state.json:
        print(json.dumps({"error": kind, "message": message}))
    else:
        Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)
