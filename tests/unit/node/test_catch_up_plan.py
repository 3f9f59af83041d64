"""When an ordering node pulls blocks (node/catch_up_plan.py): only while behind, one pull at a
time, extended by newer requests, and once after a quiet spell."""

from __future__ import annotations

from medalliance.node.catch_up_plan import CatchUpPlan


def test_a_request_above_the_store_starts_one_pull_that_later_requests_extend() -> None:
    plan = CatchUpPlan(idle_s=5.0)
    assert plan.request(height=10, to_height=14, peer="orderer1")
    assert (plan.running, plan.target, plan.prefer) == (True, 15, "orderer1")
    # while it runs: a further request raises the target, a lower one changes nothing
    assert not plan.request(height=11, to_height=20, peer="orderer2")
    assert not plan.request(height=12, to_height=13, peer="orderer3")
    assert (plan.target, plan.prefer, plan.runs) == (21, "orderer1", 1)
    plan.ended()
    assert plan.request(height=21, to_height=22, peer="orderer3")
    assert (plan.target, plan.prefer, plan.runs) == (23, "orderer3", 2)


def test_a_request_for_blocks_already_held_starts_nothing() -> None:
    """Decided or pulled since the core asked: a NeedSync that arrives late costs no call."""
    plan = CatchUpPlan(idle_s=5.0)
    assert not plan.request(height=15, to_height=14, peer="orderer1")
    assert not plan.running
    assert plan.runs == 0


def test_a_pull_that_ended_short_of_its_target_is_started_again_by_the_next_request() -> None:
    """Hostile: a consenter claims heights nobody holds; the pull ends after one round of
    sources, and only the core's next request (rate-limited per peer) starts another."""
    plan = CatchUpPlan(idle_s=5.0)
    assert plan.request(height=3, to_height=1_000_000, peer="liar")
    plan.ended()  # no source had block 3..: gave up
    assert not plan.running
    assert plan.request(height=3, to_height=1_000_000, peer="liar")
    assert plan.runs == 2


def test_a_quiet_spell_asks_the_others_once_per_idle_period() -> None:
    plan = CatchUpPlan(idle_s=5.0)
    assert not plan.idle_check(height=7, now=100.0)  # first look: remembered
    assert not plan.idle_check(height=7, now=104.9)
    assert plan.idle_check(height=7, now=105.0)
    assert (plan.running, plan.target, plan.prefer) == (True, None, None)  # as far as they have
    plan.ended()
    assert not plan.idle_check(height=7, now=106.0)  # the next only after another quiet 5 s
    assert plan.idle_check(height=7, now=110.0)
    plan.ended()
    # a block arrived: the clock starts again from it
    assert not plan.idle_check(height=8, now=111.0)
    assert not plan.idle_check(height=8, now=115.0)
    assert plan.idle_check(height=8, now=116.0)


def test_no_idle_check_while_a_pull_runs_and_no_second_pull_during_one() -> None:
    plan = CatchUpPlan(idle_s=1.0)
    assert not plan.idle_check(height=4, now=0.0)
    assert plan.request(height=4, to_height=9, peer="orderer1")
    assert not plan.idle_check(height=4, now=5.0)
    assert plan.target == 10  # the running pull's target is kept
    plan.ended()
    assert plan.idle_check(height=4, now=6.0)
    assert not plan.request(height=4, to_height=9, peer="orderer1")  # the idle pull runs
    assert plan.target is None  # ... and already fetches as far as the others have
