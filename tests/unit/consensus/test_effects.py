"""The effect executor: cumulative hard states are written once when nothing leaves in between,
and a new height's empty state is not written when a restart rebuilds it anyway."""

from __future__ import annotations

from dataclasses import replace

from medalliance.consensus.effects import (
    AppendBlock,
    Effect,
    PersistHardState,
    execute,
    restart_rebuilds,
)
from medalliance.consensus.hard_state import HardState, LastSigned, Step
from medalliance.consensus.messages import Certificate, Kind, Value, Vote
from medalliance.consensus.ready import ArmTimer, Commit, Decided, Send
from medalliance.consensus.timeouts import TimerKind

VOTE = Vote(Kind.PREVOTE, "ch", 5, 0, None, "o1", b"s")
LAST = LastSigned(5, 0, Kind.PREVOTE, None)
S5 = HardState(5, 0, Step.PREVOTE, -1, None, -1, None, (), LAST, (VOTE,))
S5_LATER = replace(S5, step=Step.PRECOMMIT)
FRESH6 = HardState(6, 0, Step.PROPOSE, -1, None, -1, None, (), LAST, ())
COMMIT = Commit(5, Value(b"\x01" * 32, b"block"), Certificate((VOTE,)))


class Recorder:
    def __init__(self) -> None:
        self.done: list[object] = []

    def proceed(self) -> bool:
        return True

    def persist_hard_state(self, state: HardState) -> None:
        self.done.append(state)

    def append_block(self, commit: Commit) -> None:
        self.done.append(commit)

    def send_message(self, send: Send) -> None:
        self.done.append(send)

    def arm_timer(self, timer: ArmTimer) -> None:
        self.done.append(timer)

    def forward_envelopes(self, envelopes: tuple[bytes, ...]) -> None:
        self.done.append(envelopes)

    def request_sync(self, request: object) -> None:
        self.done.append(request)

    def record_evidence(self, evidence: object) -> None:
        self.done.append(evidence)

    def note_decided(self, decided: Decided) -> None:
        self.done.append(decided)


def run(effects: list[Effect]) -> list[object]:
    host = Recorder()
    assert execute(effects, host)
    return host.done


def test_only_the_last_of_several_states_is_written_when_nothing_is_sent_between() -> None:
    timer = ArmTimer(TimerKind.PREVOTE, 5, 0, 10)
    assert run([PersistHardState(S5), timer, PersistHardState(S5_LATER)]) == [timer, S5_LATER]


def test_a_state_is_written_before_every_send_that_follows_it() -> None:
    send = Send(VOTE)
    effects: list[Effect] = [PersistHardState(S5), send, PersistHardState(S5_LATER), send]
    assert run(effects) == [S5, send, S5_LATER, send]


def test_the_next_height_state_still_follows_the_decided_block() -> None:
    effects: list[Effect] = [
        PersistHardState(S5_LATER), AppendBlock(COMMIT), PersistHardState(FRESH6),
    ]  # fmt: skip
    assert run(effects) == [COMMIT, FRESH6]


def test_an_empty_new_height_with_the_stored_last_is_rebuilt_by_a_restart() -> None:
    assert restart_rebuilds(FRESH6, S5_LATER, ledger_height=6)
    assert restart_rebuilds(replace(FRESH6, last_signed=None), None, ledger_height=6)


def test_any_difference_from_what_a_restart_rebuilds_is_written() -> None:
    assert not restart_rebuilds(FRESH6, S5_LATER, ledger_height=5)  # block 5 not durable
    assert not restart_rebuilds(FRESH6, replace(S5, last_signed=None), ledger_height=6)
    assert not restart_rebuilds(FRESH6, replace(FRESH6), ledger_height=6)  # same height stored
    assert not restart_rebuilds(replace(FRESH6, round=1), S5_LATER, ledger_height=6)
    assert not restart_rebuilds(replace(FRESH6, sent=(VOTE,)), S5_LATER, ledger_height=6)
    assert not restart_rebuilds(replace(FRESH6, round_proof=(VOTE,)), S5_LATER, ledger_height=6)
