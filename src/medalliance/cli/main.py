"""The `medalliance` command: one entry point, noun then verb (style.md §7).

Commands parse options, call one function of a lower layer and render its result. Errors are
caught once, here: a `MedallianceError` becomes a message and its exit code; anything else is a
bug, reported as such with exit code 70.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated

import typer
from rich.console import Console

from medalliance import __version__
from medalliance.cli import (
    audit_alarm_cmd,
    audit_cmd,
    audit_report_cmd,
    channel_cmd,
    connector_cmd,
    demo_cmd,
    hospital_cmd,
    ledger_cmd,
    network_cmd,
    node_cmd,
    privacy_cmd,
    referral_cmd,
    report_cmd,
    resource_cmd,
    serve_cmd,
    settlement_cmd,
    tx_cmd,
    visit_cmd,
    web_cmd,
)
from medalliance.cli.output import output_state
from medalliance.errors import MedallianceError

app = typer.Typer(
    name="medalliance",
    help="A consortium blockchain for a regional medical alliance, speaking Fabric's protocols.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Every subcommand inherits it: `-h` is what people type first.
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(ledger_cmd.app, name="ledger")
app.add_typer(network_cmd.app, name="network")
app.add_typer(channel_cmd.app, name="channel")
app.add_typer(node_cmd.app, name="node")
app.add_typer(tx_cmd.app, name="tx")
app.add_typer(privacy_cmd.app, name="privacy")
app.add_typer(visit_cmd.app, name="visit")
app.add_typer(referral_cmd.app, name="referral")
app.add_typer(report_cmd.app, name="report")
app.add_typer(resource_cmd.app, name="resource")
app.add_typer(settlement_cmd.app, name="settlement")
app.add_typer(connector_cmd.app, name="connector")
app.add_typer(hospital_cmd.app, name="hospital")
audit_report_cmd.register(audit_cmd.app)  # report, verify-report, generate-month
app.add_typer(audit_cmd.app, name="audit")
audit_alarm_cmd.register(audit_cmd.app)  # `audit alarms ...`
app.command("demo")(demo_cmd.demo)
app.command("serve")(serve_cmd.serve)
app.add_typer(web_cmd.app, name="web")


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
