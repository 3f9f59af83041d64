"""Rendering for commands: one JSON document under `--json`, rich tables and progress otherwise;
and the state of the options every command shares (`--json`, `--verbose`, `--dir`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console

DIR_ENV = "MEDALLIANCE_DIR"
# Wide enough for any table row we print: piped output is for grep and files, never cut.
_PIPED_WIDTH = 10_000


@dataclass
class _OutputState:
    json: bool = False
    # The network folder a command was given (`--dir` or MEDALLIANCE_DIR), None when it fell
    # back to its default: main.py's hints depend on which.
    dir_given: Path | None = None


output_state = _OutputState()


def _note_dir(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    source = ctx.get_parameter_source(param.name or "")
    if value is not None and source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT"):
        output_state.dir_given = value
    return value


def dir_option(help: str) -> Any:
    """The `--dir`/`-d` option of a command: also from MEDALLIANCE_DIR; remembers whether it
    was given (for "add --dir" hints)."""
    return typer.Option("--dir", "-d", help=help, envvar=DIR_ENV, callback=_note_dir)


def emit_json(model: BaseModel) -> None:
    """Print the command's one JSON document on stdout."""
    print(model.model_dump_json(indent=2))


def committed_line(tx_id: str, block: int) -> str:
    """How every command that writes to the ledger says where its transaction landed."""
    return f"committed in block {block} ({tx_id})"


def stdout() -> Console:
    """Tables and lines on stdout; when piped, as wide as their content (never cut at 80)."""
    if sys.stdout.isatty():
        return Console(highlight=False)
    return Console(highlight=False, width=_PIPED_WIDTH, no_color=True)


def stderr() -> Console:
    """Progress and notes: on stderr, silent under --json or when stderr is not a terminal."""
    quiet = output_state.json or not sys.stderr.isatty()
    return Console(stderr=True, quiet=quiet, highlight=False)
