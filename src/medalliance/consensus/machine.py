"""The Tendermint state machine of one channel (consensus-design §2.4–§2.11).

Pure and deterministic: no clock, disk, network, threads or randomness. The host feeds one
`Input` at a time to `step` and executes the returned `Ready` records in order (`ready.py`).
Same state and inputs give the same outputs, which lets `tests/simulation/` replay whole
networks from a seed.

The rules are the paper's upon-rules as written in design §2.6, evaluated after every input
until none fires, in the priority order of §2.5: D decide > K round skip > P prevote > L polka
for a value > N polka for nil > T arm timers. The node's own messages loop back through the same
FIFO queue, so it counts its own votes like anyone else's; with n = 1 that alone decides.
Retransmission and catch-up (§2.10, §2.11) are in `catch_up.py`.
"""

from __future__ import annotations

from collections import deque
from typing import assert_never

from medalliance.consensus import rules
from medalliance.consensus.catch_up import CatchUp
from medalliance.consensus.hard_state import CorruptHardState, HardState, Step
from medalliance.consensus.height_state import HeightState
from medalliance.consensus.inputs import (
    Input,
    MessageReceived,
    ProposalChecked,
    Start,
    SyncedBlock,
    Timeout,
    TxAvailable,
    ValueReady,
)
from medalliance.consensus.messages import (
    Certificate,
    Decision,
    Kind,
    Message,
    Proposal,
    Signed,
    Status,
    Value,
    Vote,
    certificate_problem,
    kind_of,
)
from medalliance.consensus.ready import (
    Commit,
    Decided,
    Evidence,
    NeedValue,
    Ready,
    ReadyBuilder,
)
from medalliance.consensus.signing import Signer, SigningGuard
from medalliance.consensus.timeouts import Timeouts, TimerKind
from medalliance.consensus.validators import ValidatorSet

WINDOW_ROUNDS = 8  # rounds above the current one whose votes are kept in full


class ConsensusMachine:
    """One node's consensus for one channel. Feed `Start` first, then any other input."""

    def __init__(
        self,
        channel: str,
        signer: Signer,
        timeouts: Timeouts | None = None,
        window_rounds: int = WINDOW_ROUNDS,
    ) -> None:
        self._channel = channel
        self._signer = signer
        self._me = signer.node_id
        self._timeouts = timeouts or Timeouts()
        self._window_rounds = window_rounds
        self._started = False
        self._validators = ValidatorSet((self._me,))
        self._guard = SigningGuard(signer, None)
        self._catch_up = CatchUp(channel, self._me, None)
        self._state = HeightState(0, self._validators, window_rounds)
        self._queue: deque[Message] = deque()
        self._out = ReadyBuilder()
        self._readies: list[Ready] = []
        self._dirty = False  # hard state changed since the last Ready

    def fresh(self, timeouts: Timeouts | None = None) -> ConsensusMachine:
        """A new machine of the same node and channel (after a reconfiguration), with these
        timeouts or the same; feed it `Start`."""
        return ConsensusMachine(
            self._channel, self._signer, timeouts or self._timeouts, self._window_rounds
        )

    @property
    def timeouts(self) -> Timeouts:
        return self._timeouts

    @property
    def node_id(self) -> str:
        return self._me

    @property
    def height(self) -> int:
        return self._state.height

    @property
    def round(self) -> int:
        return self._state.round

    @property
    def current_step(self) -> Step:
        return self._state.step

    def hard_state(self) -> HardState:
        return self._state.to_hard_state(self._guard)

    def step(self, event: Input) -> list[Ready]:
        """Apply one input; return the `Ready` records the host must execute, in order.

        Raises `WouldEquivocate` (fail-stop) rather than sign a conflicting message, and
        `CorruptHardState` on `Start` with hard state ahead of the ledger.
        """
        assert self._started or isinstance(event, Start), "feed Start first"
        state = self._state
        match event:
            case Start():
                self._on_start(event)
            case MessageReceived(message):
                self._queue.append(message)
            case ProposalChecked():
                if event.height == state.height:
                    state.verdicts[event.value_id] = event.is_valid
            case ValueReady():
                self._on_value_ready(event)
            case TxAvailable():
                state.txs_available = True
                self._wake()
            case Timeout():
                self._on_timeout(event)
            case SyncedBlock():
                self._on_certified(event.height, event.value, event.certificate)
            case _:
                assert_never(event)
        self._run()
        self._flush()
        readies, self._readies = self._readies, []
        return readies

    # --- inputs ---------------------------------------------------------------------------------

    def _on_start(self, event: Start) -> None:
        assert not self._started, "Start is fed once"
        stored = event.hard_state
        if stored is not None and stored.height > event.height:
            raise CorruptHardState(stored.height, event.height)
        self._started = True
        self._validators = event.validators
        self._catch_up.last_decision = event.last_decision
        if stored is not None:
            self._guard.last = stored.last_signed  # LAST only grows, across heights too
        self._arm(TimerKind.RESEND, 0, 0)
        self._begin_height(event.height)
        if stored is not None and stored.height == event.height:
            self._restore(stored)
        else:
            self._start_round(0)

    def _restore(self, stored: HardState) -> None:
        """Resume mid-height after a crash (§2.9): same locks, same signed messages, re-sent."""
        state = self._state
        state.restore(stored)
        self._guard.restore(stored.sent)
        for message in stored.sent:
            self._out.send(message)
            self._queue.append(message)  # count our own votes again
        if state.step is Step.PROPOSE:
            if self._is_proposer() and Kind.PROPOSAL not in self._guard.sent:
                self._propose_or_ask()
            self._arm_propose_or_wait()
        elif state.step is Step.PREVOTE:
            self._arm(TimerKind.PREVOTE, state.height, state.round)
        # No timer in PRECOMMIT: the precommit timer moves rounds, and a node may leave a round
        # alone only after q precommits (rule T2 re-arms it once they are re-sent to us).

    def _on_value_ready(self, event: ValueReady) -> None:
        state = self._state
        if (event.height, event.round) != (state.height, state.round):
            return
        if state.step is not Step.PROPOSE or not self._is_proposer():
            return
        if Kind.PROPOSAL in self._guard.sent:  # a re-proposed valid value went out already
            return
        state.remember_valid(event.value)  # built by our own cutter from admitted txs
        self._sign_and_send(
            Proposal(self._channel, state.height, state.round, event.value, -1, (), self._me)
        )

    def _on_timeout(self, event: Timeout) -> None:
        state = self._state
        if event.kind is TimerKind.RESEND:
            # §2.10: our own messages of this round again (identical bytes) and where we are.
            for message in self._guard.sent_in_order():
                self._out.send(message)
            status = Status(self._channel, state.height, state.round, self._me)
            self._out.send(self._guard.sign_status(status))
            self._catch_up.new_period()
            self._arm(TimerKind.RESEND, 0, 0)
            return
        if (event.height, event.round) != (state.height, state.round):
            return
        match event.kind:
            case TimerKind.PROPOSE:
                if state.step is Step.PROPOSE:
                    self._vote(Kind.PREVOTE, None)
            case TimerKind.PREVOTE:
                if state.step is Step.PREVOTE:
                    self._vote(Kind.PRECOMMIT, None)
            case TimerKind.PRECOMMIT:
                # Keep (durably) the q precommits that let us leave this round: a restart
                # forgets the vote keeper, and peers still in this round need them to leave it.
                state.round_proof = state.votes.any_quorum(state.round, Kind.PRECOMMIT)
                self._start_round(state.round + 1)
            case _:
                assert_never(event.kind)

    # --- messages -------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._apply_rules()
            if not self._queue:
                return
            self._on_message(self._queue.popleft())

    def _on_message(self, message: Message) -> None:
        if message.channel != self._channel:
            return
        state = self._state
        match message:
            case Decision() if message.height > state.height:
                self._catch_up.on_ahead(message, message.sender, state.height, self._out)
                if message.height == state.height + 1:  # we lack H, the sender has it
                    self._catch_up.ask_sync(message.sender, state.height, state.height, self._out)
            case Decision():
                self._on_certified(message.height, message.value, message.certificate)
            case Status():
                self._on_status(message)
            case Proposal() | Vote():
                self._on_signed(message)
            case _:
                assert_never(message)

    def _on_signed(self, message: Signed) -> None:
        state, sender = self._state, message.signer
        if message.height < state.height:
            if sender != self._me:
                self._catch_up.answer_laggard(sender, message.height, self._out)
        elif message.height > state.height:
            self._catch_up.on_ahead(message, sender, state.height, self._out)
        else:
            if sender != self._me and message.round > state.heard_round:
                state.heard_round = message.round
                if message.round >= state.round:
                    self._wake()
            if isinstance(message, Proposal):
                self._on_proposal(message)
            else:
                self._on_vote(message)

    def _on_proposal(self, proposal: Proposal) -> None:
        for request in self._state.add_proposal(proposal, self._validators, self._window_rounds):
            self._out.request(request)

    def _on_vote(self, vote: Vote) -> None:
        equivocation = self._state.votes.add(vote)
        if equivocation is not None:
            self._out.request(Evidence(equivocation))

    def _on_status(self, status: Status) -> None:
        state, peer = self._state, status.sender
        if peer == self._me:
            return
        if status.height < state.height:
            self._catch_up.answer_laggard(peer, status.height, self._out)
        elif status.height > state.height + 1:
            self._catch_up.ask_sync(peer, state.height, status.height - 1, self._out)
        elif status.height == state.height:  # (a peer at H+1 answers us with DECISION(H))
            # A heartbeat is not a proposal or a vote: it must not end an idle round 0, or an
            # idle network would time out round after round (§3.6).
            state.votes.note_round(peer, status.round)
            if status.round < state.round:
                proposal = state.proposals.get(status.round)
                votes = state.votes.votes_at(status.round) + state.round_proof
                self._catch_up.help_lagging_round(peer, proposal, votes, self._out)

    def _on_certified(self, height: int, value: Value, certificate: Certificate) -> None:
        """Rule D from a certificate of any round. It holds a correct node's precommit, and a
        correct node precommits only a value valid(v) accepted, so validity follows."""
        if height != self._state.height:
            return
        problem = certificate_problem(
            certificate,
            self._validators,
            channel=self._channel,
            height=height,
            value_id=value.value_id,
        )
        if problem is None:
            self._decide(value, certificate)

    # --- rules (§2.6) ---------------------------------------------------------------------------

    def _apply_rules(self) -> None:
        while (
            self._rule_decide()
            or self._rule_skip_round()
            or self._rule_prevote()
            or self._rule_polka_value()
            or self._rule_polka_nil()
            or self._rule_arm_timers()
        ):
            pass

    def _rule_decide(self) -> bool:
        found = rules.decision(self._state)
        if found is not None:
            self._decide(*found)
        return found is not None

    def _rule_skip_round(self) -> bool:
        target = rules.skip_target(self._state)
        if target is not None:
            self._start_round(target)
        return target is not None

    def _rule_prevote(self) -> bool:
        choice = rules.prevote(self._state)
        if choice is not None:
            self._vote(Kind.PREVOTE, choice.value_id)
        return choice is not None

    def _rule_polka_value(self) -> bool:
        """L: lock the value and precommit it if still prevoting; remember it as valid value."""
        found, state = rules.polka_for_proposal(self._state), self._state
        if found is None:
            return False
        value, polka = found
        state.once.add(("L", state.round))
        if state.step is Step.PREVOTE:
            state.locked_round, state.locked_value = state.round, value  # lock before signing
            self._vote(Kind.PRECOMMIT, value.value_id)
        state.valid_round, state.valid_value, state.valid_pol = state.round, value, polka
        self._dirty = True
        return True

    def _rule_polka_nil(self) -> bool:
        fires = rules.has_nil_polka(self._state, self._validators)
        if fires:
            self._vote(Kind.PRECOMMIT, None)
        return fires

    def _rule_arm_timers(self) -> bool:
        state = self._state
        due = rules.timers_due(state, self._validators)
        for rule, timer in due:
            state.once.add((rule, state.round))
            self._arm(timer, state.height, state.round)
        return bool(due)

    # --- transitions ----------------------------------------------------------------------------

    def _begin_height(self, height: int) -> None:
        self._state = HeightState(height, self._validators, self._window_rounds)
        self._guard.new_round()
        self._dirty = True
        self._queue.extend(self._catch_up.take_buffered(height))

    def _start_round(self, round: int) -> None:
        state = self._state
        state.round, state.step = round, Step.PROPOSE
        state.votes.set_round(round)
        self._guard.new_round()
        self._dirty = True
        if self._is_proposer():
            self._propose_or_ask()
        self._arm_propose_or_wait()

    def _arm_propose_or_wait(self) -> None:
        state = self._state
        if state.has_work():
            state.waiting_for_txs = False
            self._arm(TimerKind.PROPOSE, state.height, state.round)
        else:
            state.waiting_for_txs = True  # idle: no empty blocks, no empty rounds (§3.6)

    def _wake(self) -> None:
        state = self._state
        if state.waiting_for_txs:
            state.waiting_for_txs = False
            self._arm(TimerKind.PROPOSE, state.height, state.round)

    def _propose_or_ask(self) -> None:
        state = self._state
        if state.valid_value is None:
            self._out.request(NeedValue(state.height, state.round))
            return
        # Never propose a fresh value while holding a valid one (Tendermint #1047).
        self._sign_and_send(
            Proposal(
                self._channel,
                state.height,
                state.round,
                state.valid_value,
                state.valid_round,
                state.valid_pol,
                self._me,
            )
        )

    def _vote(self, kind: Kind, value_id: bytes | None) -> None:
        state = self._state
        self._sign_and_send(
            Vote(kind, self._channel, state.height, state.round, value_id, self._me)
        )
        state.step = Step.PREVOTE if kind is Kind.PREVOTE else Step.PRECOMMIT
        self._dirty = True

    def _sign_and_send(self, unsigned: Signed) -> None:
        signed, is_new = self._guard.sign(unsigned)  # raises rather than equivocate
        self._out.send(signed)
        if is_new:
            assert kind_of(signed) in self._guard.sent
            self._dirty = True  # persisted before the send above leaves the host (§2.8)
            self._queue.append(signed)

    def _decide(self, value: Value, certificate: Certificate) -> None:
        height = self._state.height
        decided = Commit(height, value, certificate)
        self._out.commit = decided
        self._out.request(Decided(height, value.value_id))
        self._catch_up.last_decision = decided
        self._flush()  # close height h: block h must be durable before h+1 state is written
        self._begin_height(height + 1)
        self._start_round(0)

    # --- helpers --------------------------------------------------------------------------------

    def _is_proposer(self) -> bool:
        return self._validators.proposer(self._state.height, self._state.round) == self._me

    def _arm(self, kind: TimerKind, height: int, round: int) -> None:
        self._out.arm(kind, height, round, self._timeouts.ticks(kind, round))

    def _flush(self) -> None:
        ready = self._out.build(self.hard_state() if self._dirty else None)
        self._dirty = False
        if not ready.is_empty():
            self._readies.append(ready)
