"""`medalliance audit ...`: what a health commission runs to supervise the alliance."""

from __future__ import annotations

import typer

app = typer.Typer(help="Supervise the alliance: reports, queries, alarms.", no_args_is_help=True)
