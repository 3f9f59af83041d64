"""A contract run by an external chaincode server (Fabric's chaincode as a service).

`ExternalContract` is a `Contract` like any Python one, so the simulator, contract-to-contract
calls and the endorser treat it alike; its `invoke` hands the call to the chaincode through an
`Executor` (the gRPC edge, node/chaincode_link.py) which carries the shim conversation that
`shim_handler.Invocation` applies to the transaction's stub. The read-write set is therefore
built by the same `Stub` a Python contract writes to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from medalliance.contracts.api import Context, Contract, FunctionInfo
from medalliance.contracts.determinism import host_running
from medalliance.contracts.shim_handler import Invocation, Msg, Outcome
from medalliance.errors import ContractError


class Executor(Protocol):
    """Carries one invocation's messages to and from the chaincode server until it ends."""

    def execute(self, invocation: Invocation, first: Msg) -> Outcome:
        """Send `first`, feed every answer to `invocation`; its outcome (never raises for a
        chaincode that misbehaves: the outcome says what happened)."""
        ...


class ExternalContract(Contract):
    """The contract of one installed ccaas package; its functions are the chaincode's."""

    def __init__(self, package_id: str, executor: Executor) -> None:
        self.package_id = package_id
        self._executor = executor

    @classmethod
    def functions(cls) -> Mapping[str, FunctionInfo]:
        # Unknown to the peer: the chaincode decides what it offers (and refuses the rest).
        return {}

    def invoke(self, ctx: Context, function: str, args: list[bytes]) -> bytes:
        invocation = Invocation(ctx.stub, channel_id=ctx.channel_id, tx_id=ctx.tx_id)
        first = invocation.start([function.encode(), *args], ctx.signed_proposal)
        # The edge's sockets and threads are the peer's, not the contract's (determinism guard).
        with host_running():
            outcome = self._executor.execute(invocation, first)
        if outcome.status >= 400:
            raise ContractError(outcome.message or "the chaincode refused the call", outcome.status)
        if outcome.event is not None:
            ctx.stub.set_event(outcome.event.event_name, outcome.event.payload)
        return outcome.payload
