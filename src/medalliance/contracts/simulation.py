"""Simulate one contract call into a read-write set, a response and an event.

A contract that raises `ContractError` refuses the call: the result carries its status and
message and no writes. Any other exception is a bug in the contract: logged at ERROR with the tx id
and its traceback frames (never its arguments, nor the exception text that may quote them),
answered with a generic 500 "contract <namespace> failed: internal error".
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from medalliance.contracts.api import ClientIdentity, Context, Contract, Organization
from medalliance.contracts.determinism import contract_running
from medalliance.contracts.stub import Stub
from medalliance.errors import ContractError
from medalliance.identity.msp import Identity
from medalliance.ledger.state import StateReader

log = logging.getLogger(__name__)

OK = 200


@dataclass(frozen=True, slots=True)
class TxContext:
    channel_id: str
    tx_id: str
    timestamp_ms: int
    creator: Identity
    transient: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    channel_orgs: tuple[str, ...] = ()
    organizations: Mapping[str, Organization] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SimulationResult:
    status: int
    message: str
    payload: bytes = field(repr=False)
    rwset: bytes = field(repr=False)
    event: bytes | None = field(repr=False)


def simulate(
    contract: Contract,
    namespace: str,
    args: Sequence[bytes],
    reader: StateReader,
    tx: TxContext,
) -> SimulationResult:
    """Run `args[0]` of `contract` with `args[1:]` over committed state; writes nothing."""
    if not args:
        return SimulationResult(400, "a call needs a function name", b"", b"", None)
    function = args[0].decode("utf-8", "replace")
    info = type(contract).functions().get(function.split(":")[-1])
    stub = Stub(
        reader,
        namespace,
        tx_id=tx.tx_id,
        channel_id=tx.channel_id,
        timestamp_ms=tx.timestamp_ms,
        transient=tx.transient,
        read_only=bool(info and info.evaluate),
        function=function,
    )
    creator = tx.creator
    ctx = Context(
        stub=stub,
        client=ClientIdentity(
            creator.msp_id,
            creator.alliance_role,
            creator.node_ou,
            creator.is_admin,
            creator.id_hash.hex(),
        ),
        channel_id=tx.channel_id,
        tx_id=tx.tx_id,
        tx_timestamp_ms=tx.timestamp_ms,
        channel_orgs=tx.channel_orgs,
        transient=tx.transient,
        organizations=tx.organizations,
    )
    try:
        with contract_running():
            payload = contract.invoke(ctx, function, list(args[1:]))
    except ContractError as exc:
        return SimulationResult(exc.status_code, str(exc), b"", b"", None)
    except Exception as exc:
        # The traceback's frames but not the exception's text: that may quote the arguments,
        # which can be patient data (style §5).
        log.error(
            "contract failed",
            extra={
                "tx_id": tx.tx_id,
                "contract": namespace,
                "error": type(exc).__name__,
                "traceback": "".join(traceback.format_tb(exc.__traceback__)),
            },
        )
        return SimulationResult(500, f"contract {namespace} failed: internal error", b"", b"", None)
    return SimulationResult(
        OK, "", payload, bytes(stub.rwset().SerializeToString()), stub.event_bytes()
    )
