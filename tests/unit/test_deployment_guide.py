"""Every `medalliance` command docs/deployment.md tells an operator to run exists, with the
options it shows (the namespace suite tests/hosts runs them, docs/testing-hosts.md)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from medalliance.cli.main import app

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def guide_commands() -> list[list[str]]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split("  #")[0].replace("<", "'<").replace(">", ">'"))
            if words and words[0] == "medalliance":
                commands.append(words[1:])
    return commands


def resolve(words: list[str]) -> tuple[Any, list[str]]:
    """The click command the words name, and the words after its name."""
    root = typer.main.get_command(app)
    context = root.make_context("medalliance", ["--help"], resilient_parsing=True)
    command: Any = root
    while words and hasattr(command, "get_command"):
        found = command.get_command(context, words[0])
        if found is None:
            break
        command, words = found, words[1:]
    return command, words


@pytest.mark.parametrize("words", guide_commands(), ids=lambda w: " ".join(w[:2]))
def test_the_guide_uses_commands_and_options_that_exist(words: list[str]) -> None:
    command, rest = resolve(words)
    assert not hasattr(command, "get_command"), f"no command `medalliance {' '.join(words)}`"
    options = {name for param in command.params for name in param.opts}
    used = {word for word in rest if word.startswith("-")}
    assert used <= options, f"`{command.name}` has no option {sorted(used - options)}"


def test_the_guide_shows_the_split_set_up() -> None:
    shown = {" ".join(words[:2]) for words in guide_commands()}
    assert {"network init", "network genesis", "network join-genesis", "network up"} <= shown
