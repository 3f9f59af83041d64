"""Whole networks under faults: safety after every event, liveness after GST (design §5)."""

from __future__ import annotations

import shlex
from dataclasses import replace

import pytest

from medalliance.consensus.messages import Certificate, Kind, Vote
from medalliance.consensus.ready import Commit
from medalliance.consensus.validators import ValidatorSet
from tests.simulation.__main__ import _config, _parser
from tests.simulation.byzantine import ROUND_INFLATION
from tests.simulation.checker import Checker, InvariantViolated
from tests.simulation.config import SimConfig
from tests.simulation.fakes import CHANNEL, FakeSigner, KeyTable, honest_value
from tests.simulation.simulator import SimulationFailure, simulate

SEEDS = (1, 2, 3)


@pytest.mark.parametrize("n", [1, 4, 7])
@pytest.mark.parametrize("seed", SEEDS)
def test_a_fault_free_network_decides_every_height(n: int, seed: int) -> None:
    outcome = simulate(SimConfig(seed=seed, n=n, heights=8))
    assert all(height >= 8 for height in outcome.heights.values())
    assert outcome.rounds_max == 0  # nothing fails, so every height ends in its first round


FAULTS = {
    "loss": {"drop": 0.2, "gst_ticks": 2000},
    "duplication and reordering": {"duplicate": 0.3, "delay_max_ticks": 60},
    "partitions that heal": {"partitions": True, "drop": 0.05, "gst_ticks": 3000},
    "crash-restart": {"crashes": True, "gst_ticks": 3000},
    "everything at once": {
        "drop": 0.1,
        "duplicate": 0.1,
        "delay_max_ticks": 40,
        "partitions": True,
        "crashes": True,
        "gst_ticks": 3000,
    },
}


@pytest.mark.parametrize("n", [1, 4, 7])
@pytest.mark.parametrize("faults", FAULTS.values(), ids=FAULTS.keys())
@pytest.mark.parametrize("seed", SEEDS)
def test_network_and_crash_faults_keep_safety_and_heal(
    faults: dict[str, object], n: int, seed: int
) -> None:
    outcome = simulate(SimConfig(seed=seed, n=n, heights=6, **faults))  # type: ignore[arg-type]
    assert min(outcome.heights.values()) >= 6


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize(
    "behaviour", ["equivocate", "silent", "bad-signature", "replay", "invalid-value", "amnesia"]
)
@pytest.mark.parametrize("seed", SEEDS)
def test_f_byzantine_nodes_break_neither_safety_nor_liveness(
    behaviour: str, n: int, seed: int
) -> None:
    f = (n - 1) // 3
    config = SimConfig(
        seed=seed, n=n, byzantine=f, behaviour=behaviour, heights=6, drop=0.05, gst_ticks=1500
    )
    outcome = simulate(config)
    assert all(h >= 6 for node, h in outcome.heights.items() if node not in outcome.byzantine)
    assert set(outcome.culprits) <= set(outcome.byzantine)  # evidence never blames the correct


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("behaviour", ["forged-status", "outsider-status", "swapped-body"])
@pytest.mark.parametrize("seed", SEEDS)
def test_forged_status_and_swapped_bodies_are_dropped_and_move_nothing(
    behaviour: str, n: int, seed: int
) -> None:
    """Issue 11, items 7–8: unsigned, non-consenter or inflated STATUS messages move no round;
    a genuine certificate beside another body is never committed; ordering goes on."""
    f = (n - 1) // 3
    config = SimConfig(
        seed=seed, n=n, byzantine=f, behaviour=behaviour, heights=6, drop=0.05, gst_ticks=1500
    )
    outcome = simulate(config)
    assert all(h >= 6 for node, h in outcome.heights.items() if node not in outcome.byzantine)
    assert outcome.rejected > 0
    assert outcome.rounds_max < ROUND_INFLATION
    assert outcome.culprits == ()


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("behaviour", ["equivocate", "silent", "invalid-value", "amnesia"])
@pytest.mark.parametrize("seed", SEEDS)
def test_config_blocks_vote_a_node_in_and_one_out_under_byzantine_nodes(
    behaviour: str, n: int, seed: int
) -> None:
    """Issue 15: each replica reconfigures itself on the config block it decides or syncs. The
    spare, following the chain, takes part from height 4; the validator voted out at 6 only
    follows from 7; every certificate is checked against the set in force at its height."""
    f = (n - 1) // 3
    config = SimConfig(
        seed=seed,
        n=n,
        byzantine=f,
        behaviour=behaviour,
        heights=9,
        drop=0.05,
        gst_ticks=1500,
        reconfigure=True,
    )
    outcome = simulate(config)
    assert all(h >= 9 for node, h in outcome.heights.items() if node not in outcome.byzantine)
    assert len(outcome.retired) == 1  # the one voted out, and not the spare voted in
    assert outcome.retired[0] not in (*outcome.byzantine, f"node{n}")
    assert set(outcome.culprits) <= set(outcome.byzantine)


@pytest.mark.parametrize("n", [1, 4])
@pytest.mark.parametrize("seed", SEEDS)
def test_reconfiguration_survives_crashes_partitions_and_loss(n: int, seed: int) -> None:
    faults = FAULTS["everything at once"]
    outcome = simulate(SimConfig(seed=seed, n=n, heights=9, reconfigure=True, **faults))  # type: ignore[arg-type]
    assert min(outcome.heights.values()) >= 9
    assert len(outcome.retired) == 1


@pytest.mark.parametrize("seed", SEEDS)
def test_forged_and_corrupted_signatures_never_reach_the_core(seed: int) -> None:
    outcome = simulate(SimConfig(seed=seed, n=4, byzantine=1, behaviour="bad-signature", heights=4))
    assert outcome.rejected > 0
    assert outcome.culprits == ()  # a forged vote in node X's name does not frame X


@pytest.mark.parametrize("n", [1, 4, 7])
@pytest.mark.parametrize("seed", range(50))
def test_swarm_seeds(n: int, seed: int) -> None:
    simulate(SimConfig.swarm(seed, n))


REGRESSIONS = {
    # A node left round 0 by timeout, crashed and forgot the precommits that let it leave; the
    # two others stayed in round 0 forever until the proof of leaving became durable.
    "a restarted node shows how it left a round": SimConfig(
        seed=6311,
        n=4,
        byzantine=1,
        behaviour="silent",
        heights=8,
        partitions=True,
        crashes=True,
        gst_ticks=3000,
    ),
}


@pytest.mark.parametrize("config", REGRESSIONS.values(), ids=REGRESSIONS.keys())
def test_regressions(config: SimConfig) -> None:
    simulate(config)


def test_the_same_seed_replays_the_same_run() -> None:
    config = SimConfig.swarm(11, 4)
    first, second = simulate(config), simulate(config)
    assert (first.ticks, first.events, first.decided) == (
        second.ticks,
        second.events,
        second.decided,
    )


def test_f_plus_one_colluding_nodes_break_agreement_and_the_checker_says_how_to_replay() -> None:
    config = SimConfig(seed=3, n=4, byzantine=2, behaviour="split", heights=6)
    with pytest.raises(SimulationFailure, match="agreement violated") as failure:
        simulate(config)
    message = str(failure.value)
    assert "seed: 3" in message
    replay = message.split("replay: ")[1].strip()
    args = _parser().parse_args(shlex.split(replay)[3:])  # after "python -m tests.simulation"
    assert _config(args, args.seed, args.n[0]) == config


def _certificate(value_id: bytes, voters: tuple[str, ...]) -> Certificate:
    unsigned = [Vote(Kind.PRECOMMIT, CHANNEL, 1, 0, value_id, voter) for voter in voters]
    signers = [FakeSigner.for_node(vote.voter) for vote in unsigned]
    return Certificate(
        tuple(
            replace(v, signature=s.sign(v.signed_bytes()))
            for v, s in zip(unsigned, signers, strict=True)
        )
    )


def test_the_checker_rejects_two_decisions_for_one_height() -> None:
    ids = ("a", "b", "c", "d")
    checker = Checker(ValidatorSet(ids), ids, KeyTable(ids))
    x, y = honest_value(1, "a"), honest_value(1, "b")
    checker.on_commit("a", Commit(1, x, _certificate(x.value_id, ("a", "b", "c"))))
    with pytest.raises(InvariantViolated, match="agreement violated at height 1"):
        checker.on_commit("d", Commit(1, y, _certificate(y.value_id, ("b", "c", "d"))))


def test_the_checker_rejects_a_certificate_short_of_a_quorum() -> None:
    ids = ("a", "b", "c", "d")
    checker = Checker(ValidatorSet(ids), ids, KeyTable(ids))
    x = honest_value(1, "a")
    with pytest.raises(InvariantViolated, match="bad certificate"):
        checker.on_commit("a", Commit(1, x, _certificate(x.value_id, ("a", "b"))))
