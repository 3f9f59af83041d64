"""When the upon-rules of consensus-design §2.6 fire: pure queries over a `HeightState`.

Each function answers "does rule X fire now, and with what?"; `machine.py` asks them in the
priority order of §2.5 and performs the transition (sign, lock, change round) itself. Keeping
the conditions here, apart from the effects, lets each be read against the paper's line.
"""

from __future__ import annotations

from dataclasses import dataclass

from medalliance.consensus.hard_state import Step
from medalliance.consensus.height_state import HeightState
from medalliance.consensus.messages import Certificate, Kind, Value, Vote
from medalliance.consensus.timeouts import TimerKind
from medalliance.consensus.validators import ValidatorSet


@dataclass(frozen=True, slots=True)
class Prevote:
    value_id: bytes | None  # None: NIL


def decision(state: HeightState) -> tuple[Value, Certificate] | None:
    """D (paper line 49): q precommits of any round for a value we hold and judged valid."""
    for round, value_id in state.votes.precommit_quorums:
        value = state.valid_body(value_id)
        precommits = state.votes.quorum(round, Kind.PRECOMMIT, value_id)
        if value is not None and precommits is not None:
            return value, Certificate(precommits)
    return None


def skip_target(state: HeightState) -> int | None:
    """K (line 55): f+1 validators are in a later round, so at least one correct node is."""
    return state.votes.skip_round()


def prevote(state: HeightState) -> Prevote | None:
    """P (lines 22, 28): prevote the round's proposal if valid(v) and the lock allows it."""
    proposal = state.proposals.get(state.round)
    if state.step is not Step.PROPOSE or proposal is None:
        return None
    value_id = proposal.value.value_id
    verdict = state.verdicts.get(value_id)
    if verdict is None:
        return None  # the host is still checking it; the propose timer still runs
    locked_id = None if state.locked_value is None else state.locked_value.value_id
    if proposal.valid_round == -1:
        allowed = state.locked_round == -1 or locked_id == value_id
    else:  # a polka of a round at or after our lock unlocks us
        allowed = state.locked_round <= proposal.valid_round or locked_id == value_id
    return Prevote(value_id if verdict and allowed else None)


def polka_for_proposal(state: HeightState) -> tuple[Value, tuple[Vote, ...]] | None:
    """L (line 36): q prevotes in this round for its proposal, which we judged valid."""
    proposal = state.proposals.get(state.round)
    if state.step is Step.PROPOSE or proposal is None or ("L", state.round) in state.once:
        return None
    value = state.valid_body(proposal.value.value_id)
    polka = state.votes.quorum(state.round, Kind.PREVOTE, proposal.value.value_id)
    return None if value is None or polka is None else (value, polka)


def has_nil_polka(state: HeightState, validators: ValidatorSet) -> bool:
    """N (line 44): q prevotes for NIL while prevoting."""
    nil_prevotes = state.votes.count(state.round, Kind.PREVOTE, None)
    return state.step is Step.PREVOTE and nil_prevotes >= validators.quorum


def timers_due(state: HeightState, validators: ValidatorSet) -> list[tuple[str, TimerKind]]:
    """T1/T2 (lines 34, 47): q votes of any value in this round start the step's timer once."""
    due = []
    prevotes = state.votes.count_any(state.round, Kind.PREVOTE)
    precommits = state.votes.count_any(state.round, Kind.PRECOMMIT)
    if state.step is Step.PREVOTE and prevotes >= validators.quorum:
        due.append(("T1", TimerKind.PREVOTE))
    if precommits >= validators.quorum:
        due.append(("T2", TimerKind.PRECOMMIT))
    return [(rule, timer) for rule, timer in due if (rule, state.round) not in state.once]
