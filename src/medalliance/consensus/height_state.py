"""The variables of the height being decided (consensus-design §2.4), durable and not.

Pure bookkeeping, no rules: `machine.py` owns every transition. A new height starts from a
fresh `HeightState`; a restart rebuilds one from the `HardState` the host stored.
"""

from __future__ import annotations

from medalliance.consensus.hard_state import HardState, Step
from medalliance.consensus.messages import Proposal, Value, Vote, pol_problem
from medalliance.consensus.ready import CheckValue, Evidence, Request
from medalliance.consensus.signing import SigningGuard
from medalliance.consensus.validators import ValidatorSet
from medalliance.consensus.votes import Equivocation, VoteKeeper


class HeightState:
    def __init__(self, height: int, validators: ValidatorSet, window_rounds: int) -> None:
        self.height = height
        self.round = 0
        self.step = Step.PROPOSE
        self.locked_round = -1
        self.locked_value: Value | None = None
        self.valid_round = -1
        self.valid_value: Value | None = None
        self.valid_pol: tuple[Vote, ...] = ()
        self.round_proof: tuple[Vote, ...] = ()
        self.proposals: dict[int, Proposal] = {}  # first proposal of the round's proposer
        self.bodies: dict[bytes, Value] = {}
        self.verdicts: dict[bytes, bool] = {}  # valid(v) by value id, from the host
        self.checks_asked: set[bytes] = set()
        self.votes = VoteKeeper(validators, height, window_rounds)
        self.once: set[tuple[str, int]] = set()  # (rule, round): the paper's "for the first time"
        self.waiting_for_txs = False
        self.txs_available = False
        self.heard_round = -1  # the highest round of this height another node spoke in

    def has_work(self) -> bool:
        """Whether the current round should run its timers: transactions wait here, another
        node spoke in this round, or a value from an earlier round is still to be decided.
        Otherwise the round waits idle (no empty blocks, §3.6): an idle network after a
        restart or a failed round must not time out round after round."""
        return (
            self.txs_available
            or self.heard_round >= self.round
            or self.valid_value is not None
            or self.locked_value is not None
        )

    def restore(self, state: HardState) -> None:
        assert state.height == self.height
        self.round, self.step = state.round, state.step
        self.votes.set_round(state.round)
        self.locked_round, self.locked_value = state.locked_round, state.locked_value
        self.valid_round, self.valid_value = state.valid_round, state.valid_value
        self.valid_pol = state.valid_pol
        self.round_proof = state.round_proof
        for value in (state.locked_value, state.valid_value):
            if value is not None:  # rule L only locks or remembers values it judged valid
                self.remember_valid(value)

    def add_proposal(
        self, proposal: Proposal, validators: ValidatorSet, window_rounds: int
    ) -> list[Request]:
        """Keep the first proposal of the round's proposer, with its POL; ask for valid(v)."""
        round, value = proposal.round, proposal.value
        if proposal.proposer != validators.proposer(self.height, round):
            return []
        self.votes.note_round(proposal.proposer, round)
        if round > self.round + window_rounds:
            return []
        first = self.proposals.get(round)
        if first is not None:
            if (first.value.value_id, first.valid_round) == (value.value_id, proposal.valid_round):
                return []
            return [Evidence(Equivocation(first, proposal))]
        if proposal.valid_round >= 0 and pol_problem(proposal, validators) is not None:
            return []  # a re-proposal must prove its polka of an earlier round (§2.3)
        if proposal.valid_round == -1 and proposal.pol:
            return []
        requests: list[Request] = []
        for vote in proposal.pol:
            equivocation = self.votes.add(vote)
            if equivocation is not None:
                requests.append(Evidence(equivocation))
        self.proposals[round] = proposal
        self.bodies.setdefault(value.value_id, value)
        if value.value_id not in self.verdicts and value.value_id not in self.checks_asked:
            self.checks_asked.add(value.value_id)
            requests.append(CheckValue(self.height, round, value))
        return requests

    def remember_valid(self, value: Value) -> None:
        self.bodies[value.value_id] = value
        self.verdicts[value.value_id] = True

    def valid_body(self, value_id: bytes) -> Value | None:
        """The body of `value_id` if we hold it and the host judged it valid."""
        return self.bodies.get(value_id) if self.verdicts.get(value_id) is True else None

    def to_hard_state(self, guard: SigningGuard) -> HardState:
        return HardState(
            height=self.height,
            round=self.round,
            step=self.step,
            locked_round=self.locked_round,
            locked_value=self.locked_value,
            valid_round=self.valid_round,
            valid_value=self.valid_value,
            valid_pol=self.valid_pol,
            last_signed=guard.last,
            sent=guard.sent_in_order(),
            round_proof=self.round_proof,
        )
