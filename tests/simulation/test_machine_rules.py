"""The state machine's rules one at a time (consensus-design §2.6), driven by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from medalliance.consensus.hard_state import (
    CorruptHardState,
    HardState,
    LastSigned,
    Step,
    WouldEquivocate,
)
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
from medalliance.consensus.machine import ConsensusMachine
from medalliance.consensus.messages import (
    Certificate,
    Decision,
    Kind,
    Message,
    Proposal,
    Status,
    Value,
    Vote,
)
from medalliance.consensus.ready import (
    ArmTimer,
    CheckValue,
    Decided,
    Evidence,
    NeedSync,
    NeedValue,
    Ready,
)
from medalliance.consensus.timeouts import TimerKind
from medalliance.consensus.validators import ValidatorSet
from tests.simulation.fakes import CHANNEL, FakeSigner, honest_value

IDS = ("node0", "node1", "node2", "node3")
V4 = ValidatorSet(IDS)
A, B = honest_value(1, "node1"), honest_value(1, "node2")


def start(
    me: str = "node0", state: HardState | None = None
) -> tuple[ConsensusMachine, list[Ready]]:
    machine = ConsensusMachine(CHANNEL, FakeSigner.for_node(me))
    return machine, machine.step(Start(1, V4, state))


def signed(message: Proposal | Vote) -> Proposal | Vote:
    signer = FakeSigner.for_node(message.signer)
    return replace(message, signature=signer.sign(message.signed_bytes()))


def vote(voter: str, kind: Kind, value: Value | None, round: int = 0) -> Vote:
    value_id = None if value is None else value.value_id
    result = signed(Vote(kind, CHANNEL, 1, round, value_id, voter))
    assert isinstance(result, Vote)
    return result


def proposal(
    value: Value, round: int = 0, valid_round: int = -1, pol: tuple[Vote, ...] = ()
) -> Proposal:
    result = signed(Proposal(CHANNEL, 1, round, value, valid_round, pol, V4.proposer(1, round)))
    assert isinstance(result, Proposal)
    return result


def feed(machine: ConsensusMachine, *events: Input | Message) -> list[Ready]:
    """Step through `events`; messages arrive as `MessageReceived`."""
    readies: list[Ready] = []
    for event in events:
        is_message = isinstance(event, Proposal | Vote | Decision | Status)
        readies += machine.step(MessageReceived(event) if is_message else event)  # type: ignore[arg-type]
    return readies


def own_votes(readies: list[Ready], kind: Kind, me: str = "node0") -> list[bytes | None]:
    return [
        s.message.value_id
        for r in readies
        for s in r.send
        if isinstance(s.message, Vote) and s.message.kind is kind and s.message.voter == me
    ]


def checked(value: Value, round: int = 0) -> ProposalChecked:
    return ProposalChecked(1, round, value.value_id, True)


def locked_on_a() -> ConsensusMachine:
    """node0 prevoted A, saw a polka for A, locked A and precommitted it in round 0."""
    machine, _ = start()
    readies = feed(machine, proposal(A), checked(A))
    readies += feed(machine, vote("node1", Kind.PREVOTE, A), vote("node2", Kind.PREVOTE, A))
    assert own_votes(readies, Kind.PRECOMMIT) == [A.value_id]
    assert machine.hard_state().locked_value == A
    return machine


def test_one_node_decides_each_height_in_one_pass_without_timers() -> None:
    machine = ConsensusMachine(CHANNEL, FakeSigner.for_node("solo"))
    readies = machine.step(Start(1, ValidatorSet(("solo",))))
    for height in (1, 2, 3):
        assert NeedValue(height, 0) in readies[-1].requests
        readies = machine.step(ValueReady(height, 0, honest_value(height, "solo")))
        closing, opening = readies
        assert closing.persist is not None
        assert closing.commit is not None
        assert closing.persist.last_signed == LastSigned(
            height, 0, Kind.PRECOMMIT, honest_value(height, "solo").value_id
        )  # persisted in the same Ready, before the commit and the sends
        assert closing.commit.height == height
        assert opening.persist is not None
        assert opening.persist.height == height + 1
        assert all(t.kind is TimerKind.RESEND for r in readies for t in r.timers)
    assert machine.height == 4


def test_a_fresh_proposal_is_checked_then_prevoted() -> None:
    machine, _ = start()
    readies = feed(machine, proposal(A))
    assert [r for ready in readies for r in ready.requests] == [CheckValue(1, 0, A)]
    assert own_votes(readies, Kind.PREVOTE) == []
    assert own_votes(feed(machine, checked(A)), Kind.PREVOTE) == [A.value_id]


def test_an_invalid_proposal_gets_a_nil_prevote() -> None:
    machine, _ = start()
    readies = feed(machine, proposal(A), ProposalChecked(1, 0, A.value_id, False))
    assert own_votes(readies, Kind.PREVOTE) == [None]


def test_the_lock_prevents_prevoting_another_fresh_value() -> None:
    machine = locked_on_a()
    feed(machine, vote("node2", Kind.PRECOMMIT, None), vote("node3", Kind.PRECOMMIT, None))
    feed(machine, Timeout(TimerKind.PRECOMMIT, 1, 0))
    assert machine.round == 1
    readies = feed(machine, proposal(B, round=1), checked(B, round=1))
    assert own_votes(readies, Kind.PREVOTE) == [None]


def test_a_polka_of_a_round_at_or_after_the_lock_unlocks() -> None:
    machine = locked_on_a()
    pol = tuple(vote(v, Kind.PREVOTE, B, round=1) for v in ("node1", "node2", "node3"))
    feed(machine, vote("node1", Kind.PREVOTE, None, 2), vote("node2", Kind.PREVOTE, None, 2))
    assert machine.round == 2
    readies = feed(machine, proposal(B, round=2, valid_round=1, pol=pol), checked(B, 2))
    assert own_votes(readies, Kind.PREVOTE) == [B.value_id]


def test_a_re_proposal_without_its_polka_is_ignored() -> None:
    machine, _ = start()
    feed(machine, vote("node1", Kind.PREVOTE, None, 1), vote("node2", Kind.PREVOTE, None, 1))
    readies = feed(machine, proposal(B, round=1, valid_round=0), checked(B, 1))
    assert machine.current_step is Step.PROPOSE
    assert not [r for ready in readies for r in ready.requests if isinstance(r, CheckValue)]


def test_f_plus_one_validators_in_a_later_round_make_a_node_skip_to_it() -> None:
    machine, _ = start()
    feed(machine, vote("node1", Kind.PREVOTE, None, round=3))
    assert machine.round == 0  # one validator may be Byzantine
    readies = feed(machine, vote("node2", Kind.PRECOMMIT, None, round=3))
    assert machine.round == 3
    assert ArmTimer(TimerKind.PROPOSE, 1, 3, 220) in [t for r in readies for t in r.timers]


def test_votes_signed_for_another_channel_do_not_count() -> None:
    machine, _ = start()
    foreign = [
        signed(replace(vote(v, Kind.PREVOTE, None, round=3), channel="another-channel"))
        for v in ("node1", "node2")
    ]
    feed(machine, *foreign)
    assert machine.round == 0


def test_a_polka_for_nil_gives_a_nil_precommit() -> None:
    machine, _ = start()
    feed(machine, TxAvailable(), Timeout(TimerKind.PROPOSE, 1, 0))
    readies = feed(machine, vote("node1", Kind.PREVOTE, None), vote("node2", Kind.PREVOTE, None))
    assert own_votes(readies, Kind.PRECOMMIT) == [None]


def test_an_idle_round_zero_arms_no_propose_timer_until_transactions_wait() -> None:
    _, readies = start()
    assert [t.kind for r in readies for t in r.timers] == [TimerKind.RESEND]
    machine, _ = start()
    readies = feed(machine, TxAvailable())
    assert [t.kind for r in readies for t in r.timers] == [TimerKind.PROPOSE]


def test_a_second_different_vote_is_reported_as_evidence() -> None:
    machine, _ = start()
    readies = feed(machine, vote("node1", Kind.PREVOTE, A), vote("node1", Kind.PREVOTE, B))
    evidence = [r for ready in readies for r in ready.requests if isinstance(r, Evidence)]
    assert [e.culprit for e in evidence] == ["node1"]


def test_a_certificate_of_any_round_decides_and_is_relayed_to_laggards() -> None:
    machine, _ = start()
    cert = Certificate(tuple(vote(v, Kind.PRECOMMIT, A, round=4) for v in IDS[1:]))
    readies = feed(machine, SyncedBlock(1, A, cert))
    assert readies[0].commit is not None
    assert readies[0].commit.certificate == cert
    assert Decided(1, A.value_id) in readies[0].requests
    assert machine.height == 2
    readies = feed(machine, vote("node2", Kind.PREVOTE, None))  # node2 still votes at height 1
    relays = [s for r in readies for s in r.send if isinstance(s.message, Decision)]
    assert [(s.to, s.message.height) for s in relays] == [("node2", 1)]


def test_a_short_certificate_decides_nothing() -> None:
    machine, _ = start()
    cert = Certificate(tuple(vote(v, Kind.PRECOMMIT, A) for v in IDS[1:3]))
    feed(machine, MessageReceived(Decision(CHANNEL, 1, A, cert, "node1")))
    assert machine.height == 1


def test_a_peer_far_ahead_triggers_block_sync() -> None:
    machine, _ = start()
    readies = feed(machine, Status(CHANNEL, 5, 0, "node2"))
    assert [r for ready in readies for r in ready.requests] == [NeedSync(1, 4, "node2")]


def test_a_restart_resends_the_same_bytes_and_keeps_the_lock() -> None:
    before = locked_on_a()
    state = before.hard_state()
    machine, readies = start(state=state)
    assert [s.message for r in readies for s in r.send] == list(state.sent)
    feed(machine, vote("node1", Kind.PREVOTE, None, 1), vote("node2", Kind.PREVOTE, None, 1))
    readies = feed(machine, proposal(B, round=1), checked(B, round=1))
    assert own_votes(readies, Kind.PREVOTE) == [None]


def test_the_core_stops_rather_than_sign_a_second_vote_for_one_round() -> None:
    state = replace(locked_on_a().hard_state(), step=Step.PROPOSE)  # a prevote is in SENT
    machine, _ = start(state=state)
    with pytest.raises(WouldEquivocate):
        machine.step(Timeout(TimerKind.PROPOSE, 1, 0))  # would prevote NIL after prevoting A


def test_the_core_stops_rather_than_sign_below_last() -> None:
    state = replace(start()[0].hard_state(), last_signed=LastSigned(1, 5, Kind.PRECOMMIT, None))
    machine, _ = start(state=state)
    with pytest.raises(WouldEquivocate):
        machine.step(Timeout(TimerKind.PROPOSE, 1, 0))


def test_hard_state_ahead_of_the_ledger_refuses_to_start() -> None:
    state = replace(start()[0].hard_state(), height=3)
    with pytest.raises(CorruptHardState):
        start(state=state)


def test_same_inputs_give_the_same_outputs() -> None:
    inputs: list[Input | Message] = [
        proposal(A),
        checked(A),
        vote("node1", Kind.PREVOTE, A),
        vote("node2", Kind.PREVOTE, A),
        vote("node3", Kind.PRECOMMIT, A),
        vote("node1", Kind.PRECOMMIT, A),
    ]
    runs = [feed(start()[0], *inputs) for _ in range(2)]
    assert runs[0] == runs[1]
    assert any(r.commit is not None for r in runs[0])


def test_after_a_restart_a_node_still_shows_laggards_how_it_left_their_round() -> None:
    machine, _ = start()
    feed(machine, TxAvailable(), Timeout(TimerKind.PROPOSE, 1, 0))
    feed(machine, vote("node1", Kind.PREVOTE, None), vote("node2", Kind.PREVOTE, None))
    feed(machine, vote("node1", Kind.PRECOMMIT, None), vote("node2", Kind.PRECOMMIT, None))
    feed(machine, Timeout(TimerKind.PRECOMMIT, 1, 0))
    assert machine.round == 1
    restarted, _ = start(state=machine.hard_state())  # the vote keeper is gone
    readies = feed(restarted, Status(CHANNEL, 1, 0, "node3"))
    shown = [s.message for r in readies for s in r.send if s.to == "node3"]
    precommits = [m for m in shown if isinstance(m, Vote) and m.kind is Kind.PRECOMMIT]
    assert sorted(v.voter for v in precommits if v.round == 0) == ["node0", "node1", "node2"]


def propose_timers(readies: list[Ready]) -> list[int]:
    return [t.round for r in readies for t in r.timers if t.kind is TimerKind.PROPOSE]


def test_an_idle_network_waits_after_a_nil_round_and_after_a_restart() -> None:
    """Nobody has transactions: round 0 ended nil; round 1 and a restart into it arm no
    timer (before, each idle round timed out into the next, forever). A transaction, or
    another node speaking in the round, starts its timer."""
    machine, _ = start()
    nil_round = [Timeout(TimerKind.PROPOSE, 1, 0)]
    nil_round += [vote(v, Kind.PREVOTE, None) for v in IDS[1:]]
    nil_round += [vote(v, Kind.PRECOMMIT, None) for v in IDS[1:]]
    feed(machine, *nil_round)
    readies = feed(machine, Timeout(TimerKind.PRECOMMIT, 1, 0))
    assert machine.round == 1
    assert propose_timers(readies) == []
    assert propose_timers(feed(machine, TxAvailable())) == [1]

    restarted, readies = start(state=machine.hard_state())
    assert restarted.round == 1
    assert propose_timers(readies) == []
    assert propose_timers(feed(restarted, vote("node1", Kind.PREVOTE, None, round=0))) == []
    assert propose_timers(feed(restarted, vote("node2", Kind.PREVOTE, None, round=1))) == [1]
