"""Rendering for commands: one JSON document under `--json`, rich tables and progress otherwise."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from pydantic import BaseModel
from rich.console import Console


@dataclass
class _OutputState:
    json: bool = False


output_state = _OutputState()


def emit_json(model: BaseModel) -> None:
    """Print the command's one JSON document on stdout."""
    print(model.model_dump_json(indent=2))


def stdout() -> Console:
    return Console(highlight=False)


def stderr() -> Console:
    """Progress and notes: on stderr, silent under --json or when stderr is not a terminal."""
    quiet = output_state.json or not sys.stderr.isatty()
    return Console(stderr=True, quiet=quiet, highlight=False)
