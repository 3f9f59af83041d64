"""The hold sweeper (app/hold_sweep.py) over the simulated alliance: it frees exactly the holds
whose referral was left unanswered past its deadline, and skips what was released meanwhile."""

from __future__ import annotations

from typing import cast

from tests.unit.alliance.harness import START_MS, Alliance
from tests.unit.alliance.test_referral_hold import HOUR_MS, NINE, T2, TEN, A, alliance, refer

from medalliance.app.alliance_network import AllianceNetwork, Committed
from medalliance.app.hold_sweep import sweep_holds
from medalliance.errors import ContractError

__all__ = ["alliance"]  # the fixture


class Simulated:
    """The two calls the sweeper makes, as simulated transactions of the harness (each its own
    block); a refusal is the contract's `ContractError`, as over the gateway."""

    def __init__(self, alliance: Alliance) -> None:
        self.alliance = alliance

    def evaluate(self, org: str, user: str, contract: str, function: str, *args: str) -> bytes:
        result = self.alliance.call(org, user, contract, function, *args, commit=False)
        if result.status != 200:
            raise ContractError(result.message, result.status)
        return result.payload

    def submit(self, org: str, user: str, contract: str, function: str, *args: str) -> Committed:
        result = self.alliance.call(org, user, contract, function, *args)
        if result.status != 200:
            raise ContractError(result.message, result.status)
        return Committed(f"tx{self.alliance.count:05d}", self.alliance.count, result.payload)


def test_the_sweeper_frees_only_lapsed_holds(alliance: Alliance) -> None:
    assert refer(alliance).status == 200
    assert refer(alliance, "REF-2", slot=TEN, second="1").status == 200
    network = cast(AllianceNetwork, Simulated(alliance))
    # listed as lapsed by the wall clock, but not by the transactions' time: refused, skipped
    early = sweep_holds(network, T2, "doctor")
    assert (early.released, early.skipped) == ([], ["REF-1", "REF-2"])
    alliance.ok(A, "doctor", "referral", "CancelHold", "REF-1")
    alliance.clock_ms = START_MS + 25 * HOUR_MS  # both acceptance deadlines have passed
    report = sweep_holds(network, T2, "doctor", at="2025-11-29T12:59:00Z")
    assert [r for r, _ in report.released] == ["REF-2"]
    assert alliance.ok(A, "doctor", "resource", "SlotsOf", "CT-1") == [
        {"slot": NINE, "state": "FREE"},
        {"slot": TEN, "state": "FREE"},
    ]
    assert sweep_holds(network, T2, "doctor").released == []
