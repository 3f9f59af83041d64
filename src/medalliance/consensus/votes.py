"""The vote keeper of one height: counts distinct validators and keeps the signed votes.

Pure (consensus-design §2.5). Only the first vote of a validator per (round, kind) counts; a
second, different one is returned as `Equivocation` evidence. Quorums are exported as signed
votes, ordered by validator index so every node exports the same bytes, for a POL or a commit
certificate. Memory is bounded: votes of rounds above the current round + `window_rounds` are
not kept, only each sender's highest round (all rule K needs); their senders re-send them.
"""

from __future__ import annotations

from dataclasses import dataclass

from medalliance.consensus.messages import Kind, Proposal, Vote
from medalliance.consensus.validators import ValidatorSet


@dataclass(frozen=True, slots=True)
class Equivocation:
    """Two different messages one validator signed for the same (height, round, kind)."""

    first: Vote | Proposal
    second: Vote | Proposal


class VoteKeeper:
    """Signed votes of one height, by (round, kind) and voter."""

    def __init__(self, validators: ValidatorSet, height: int, window_rounds: int) -> None:
        assert window_rounds >= 1
        self._validators = validators
        self._height = height
        self._window_rounds = window_rounds
        self._round = 0
        self._votes: dict[tuple[int, Kind], dict[str, Vote]] = {}
        self._max_round: dict[str, int] = {}
        # (round, value id) pairs that reached q precommits, in the order they did: rule D.
        self.precommit_quorums: list[tuple[int, bytes]] = []

    def set_round(self, round: int) -> None:
        assert round >= self._round, "rounds never go back"
        self._round = round

    def add(self, vote: Vote) -> Equivocation | None:
        """Count `vote` if it is its voter's first for its (round, kind); evidence if it conflicts.

        A "vote" of kind PROPOSAL is ignored: its signature would be a proposal's.
        """
        assert vote.height == self._height
        if vote.kind is Kind.PROPOSAL or not self._validators.contains(vote.voter):
            return None
        self.note_round(vote.voter, vote.round)
        if vote.round > self._round + self._window_rounds:
            return None
        by_voter = self._votes.setdefault((vote.round, vote.kind), {})
        first = by_voter.get(vote.voter)
        if first is not None:
            return None if first.value_id == vote.value_id else Equivocation(first, vote)
        by_voter[vote.voter] = vote
        if (
            vote.kind is Kind.PRECOMMIT
            and vote.value_id is not None
            and self.count(vote.round, Kind.PRECOMMIT, vote.value_id) == self._validators.quorum
        ):
            self.precommit_quorums.append((vote.round, vote.value_id))
        return None

    def note_round(self, sender: str, round: int) -> None:
        """Remember that `sender` has been seen at `round` of this height (rule K)."""
        if self._validators.contains(sender) and round > self._max_round.get(sender, -1):
            self._max_round[sender] = round

    def count(self, round: int, kind: Kind, value_id: bytes | None) -> int:
        by_voter = self._votes.get((round, kind), {})
        return sum(1 for vote in by_voter.values() if vote.value_id == value_id)

    def count_any(self, round: int, kind: Kind) -> int:
        return len(self._votes.get((round, kind), {}))

    def quorum(self, round: int, kind: Kind, value_id: bytes | None) -> tuple[Vote, ...] | None:
        """Exactly q votes for `value_id` at (round, kind), by validator order; None if fewer."""
        by_voter = self._votes.get((round, kind), {})
        matching = [vote for vote in by_voter.values() if vote.value_id == value_id]
        if len(matching) < self._validators.quorum:
            return None
        matching.sort(key=lambda vote: self._validators.index(vote.voter))
        return tuple(matching[: self._validators.quorum])

    def any_quorum(self, round: int, kind: Kind) -> tuple[Vote, ...]:
        """The first q votes of (round, kind) for any values, by validator order (T2's proof)."""
        by_voter = self._votes.get((round, kind), {})
        ordered = sorted(by_voter.values(), key=lambda vote: self._validators.index(vote.voter))
        return tuple(ordered[: self._validators.quorum])

    def votes_at(self, round: int) -> tuple[Vote, ...]:
        """All kept votes of `round`, prevotes first, for a peer that lags behind in rounds."""
        found: list[Vote] = []
        for kind in (Kind.PREVOTE, Kind.PRECOMMIT):
            by_voter = self._votes.get((round, kind), {})
            found += sorted(by_voter.values(), key=lambda v: self._validators.index(v.voter))
        return tuple(found)

    def skip_round(self) -> int | None:
        """The highest round above the current one that f+1 distinct validators have reached.

        At least one of f+1 senders is correct, so that round is genuinely under way (rule K);
        Byzantine validators alone cannot drag a correct node forward.
        """
        rounds = sorted(self._max_round.values(), reverse=True)
        if len(rounds) < self._validators.weak:
            return None
        target = rounds[self._validators.weak - 1]
        return target if target > self._round else None
