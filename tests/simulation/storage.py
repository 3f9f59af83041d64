"""Simulated disk of one node: what was written and what was fsync'd are different things.

A crash keeps every fsync'd record; an un-fsync'd write survives or vanishes at random, as on a
real disk (consensus-design §5.2).
"""

from __future__ import annotations

import random

from medalliance.consensus.hard_state import HardState
from medalliance.consensus.ready import Commit


class SimStorage:
    def __init__(self) -> None:
        self.hard_state_written: HardState | None = None
        self.hard_state_durable: HardState | None = None
        self.ledger_written: list[Commit] = []
        self.ledger_durable: list[Commit] = []

    def write_hard_state(self, state: HardState) -> None:
        self.hard_state_written = state

    def fsync_hard_state(self) -> None:
        self.hard_state_durable = self.hard_state_written

    def append_block(self, commit: Commit) -> None:
        assert commit.height == len(self.ledger_written) + 1, "the ledger grows one block at a time"
        self.ledger_written.append(commit)

    def fsync_ledger(self) -> None:
        self.ledger_durable = list(self.ledger_written)

    def crash(self, rng: random.Random) -> None:
        if rng.random() < 0.5:
            self.hard_state_durable = self.hard_state_written
        if rng.random() < 0.5:
            self.ledger_durable = list(self.ledger_written)
        self.hard_state_written = self.hard_state_durable
        self.ledger_written = list(self.ledger_durable)
