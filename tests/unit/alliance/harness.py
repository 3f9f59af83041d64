"""An alliance of test organisations and every alliance contract, simulated over one state.

Two districts under one city: DistrictHC supervises TertiaryA/B and SecondaryA/B, OtherHC
supervises SecondaryC. `call` runs a contract function as a user with an alliance role and
commits its writes like a valid transaction (each call is its own block).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tests.conftest import NOW, Org, make_org
from tests.unit.contracts.fakes import DictState

from medalliance.contracts.api import Context, Contract, Organization, transaction
from medalliance.contracts.simulation import SimulationResult, TxContext, simulate
from medalliance.identity.msp import MspManager
from medalliance.identity.signing import Signer

ORGS: dict[str, Organization] = {
    "CityHCMSP": Organization("CityHCMSP", "regulator"),
    "DistrictHCMSP": Organization("DistrictHCMSP", "regulator", parent="CityHCMSP"),
    "OtherHCMSP": Organization("OtherHCMSP", "regulator", parent="CityHCMSP"),
    "TertiaryAMSP": Organization("TertiaryAMSP", "tertiary", regulator="DistrictHCMSP"),
    "TertiaryBMSP": Organization("TertiaryBMSP", "tertiary", regulator="DistrictHCMSP"),
    "SecondaryAMSP": Organization("SecondaryAMSP", "secondary", regulator="DistrictHCMSP"),
    "SecondaryBMSP": Organization("SecondaryBMSP", "secondary", regulator="DistrictHCMSP"),
    "SecondaryCMSP": Organization("SecondaryCMSP", "secondary", regulator="OtherHCMSP"),
}
START_MS = 1_764_331_200_000  # 2025-11-28T12:00:00Z
_ORGS: dict[str, Org] = {}


def _org(msp_id: str) -> Org:
    if msp_id not in _ORGS:  # CA keys are slow to make: one set per test session
        _ORGS[msp_id] = make_org(msp_id)
    return _ORGS[msp_id]


class Alliance:
    def __init__(self, contracts: Mapping[str, Contract]) -> None:
        self.contracts = dict(contracts)
        self.msps = MspManager([_org(m).msp for m in ORGS])
        self.state = DictState()
        self.count = 0
        self.clock_ms = START_MS
        self._signers: dict[tuple[str, str | None], Signer] = {}

    def signer(self, msp_id: str, role: str | None) -> Signer:
        key = (msp_id, role)
        if key not in self._signers:
            self._signers[key] = _org(msp_id).signer(f"{role or 'user'}1", role=role)
        return self._signers[key]

    def call(
        self, msp_id: str, role: str | None, contract: str, *args: str, commit: bool = True
    ) -> SimulationResult:
        """Simulate `args[0](*args[1:])` of `contract`; commit it if it succeeded."""
        self.count += 1
        self.clock_ms += 1000
        creator = self.msps.deserialize(self.signer(msp_id, role).serialized_identity, at=NOW)
        tx = TxContext(
            "alliance",
            f"tx{self.count:05d}",
            self.clock_ms,
            creator,
            channel_orgs=tuple(ORGS),
            organizations=ORGS,
            contracts=self.contracts.get,
        )
        result = simulate(
            self.contracts[contract], contract, [a.encode() for a in args], self.state, tx
        )
        if commit and result.status == 200:
            self.state.commit(result)
        return result

    def ok(self, msp_id: str, role: str | None, contract: str, *args: str) -> Any:
        """A call that must succeed; its JSON result (None when empty)."""
        result = self.call(msp_id, role, contract, *args)
        assert result.status == 200, f"{args[0]} refused: {result.status} {result.message}"
        return json.loads(result.payload) if result.payload else None

    def refused(self, msp_id: str, role: str | None, contract: str, *args: str) -> tuple[int, str]:
        """A call that must be refused: (status, message); asserts nothing was written."""
        before = dict(self.state.data)
        result = self.call(msp_id, role, contract, *args)
        assert result.status >= 400, f"{args[0]} was accepted: {result.payload!r}"
        assert result.rwset == b""
        assert self.state.data == before
        return result.status, result.message


class StandInConsultation(Contract):
    """Stands in for the consultation contract (`ctx.called_by == "consultation"`): finishing a
    consultation charges its fee through settlement, in the same transaction."""

    name = "consultation"

    @transaction
    def Finish(
        self, ctx: Context, consultation_id: str, requester_msp: str, consultant_msp: str
    ) -> Any:
        payload = ctx.stub.invoke_chaincode(
            "settlement",
            ["ExecuteConsultation", consultation_id, requester_msp, consultant_msp],
        )
        return json.loads(payload)
