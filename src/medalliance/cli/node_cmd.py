"""`medalliance node start`: run one peer or ordering node in this process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from medalliance.node.process import configure_logging, serve

app = typer.Typer(help="Run a single node.", no_args_is_help=True)


@app.command("start")
def start(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The node's node.yaml (under nodes/<host>/).")
    ],
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the node until SIGTERM or Ctrl-C; logs are JSON lines on stderr.

    Example: medalliance node start --config test-network/nodes/peer0.org1.example.com/node.yaml
    """
    configure_logging(log_level.upper())
    asyncio.run(serve(config))
