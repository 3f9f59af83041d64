"""Simulate one contract call into a read-write set, a response and an event.

A contract may call another contract of the channel (`ctx.stub.invoke_chaincode`, Fabric's
chaincode-to-chaincode call): the callee runs in the same transaction, as the same client, over
the same committed state; its reads and writes go to its own namespace of the one read-write set
(namespaces sorted, as Fabric builds it), so validation checks the endorsement policy of every
namespace written. Only the top-level contract's event is kept, as in Fabric. The callee learns
who called it from `ctx.called_by` (Fabric contracts read it from the signed proposal).

A contract that raises `ContractError` refuses the call: the result carries its status and
message and no writes. Any other exception is a bug in the contract: logged at ERROR with the tx id
and its traceback frames (never its arguments, nor the exception text that may quote them),
answered with a generic 500 "contract <namespace> failed: internal error".
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from fabric_protos.ledger.rwset import rwset_pb2

from medalliance.contracts.api import ClientIdentity, Context, Contract, Organization
from medalliance.contracts.determinism import contract_running, host_running
from medalliance.contracts.private_stub import (
    NO_PRIVATE_DATA,
    Collections,
    PrivateReader,
    no_collections,
)
from medalliance.contracts.stub import Stub
from medalliance.errors import ContractError
from medalliance.identity.client_id import client_id
from medalliance.identity.msp import Identity
from medalliance.ledger.state import StateReader

log = logging.getLogger(__name__)

OK = 200
MAX_CALL_DEPTH = 8  # contract → contract calls; deeper is a loop or a design error
QUOTED_CHARS = 64  # of an argument a refusal may quote
MESSAGE_CHARS_MAX = 512  # of a refusal's message


def no_contracts(name: str) -> Contract | None:
    return None


@dataclass(frozen=True, slots=True)
class TxContext:
    channel_id: str
    tx_id: str
    timestamp_ms: int
    creator: Identity
    transient: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    channel_orgs: tuple[str, ...] = ()
    organizations: Mapping[str, Organization] = field(default_factory=dict)
    # the channel's committed contracts, for contract-to-contract calls (None: not committed)
    contracts: Callable[[str], Contract | None] = field(default=no_contracts, repr=False)
    # the client's serialized SignedProposal, for external chaincodes (chaincode as a service)
    signed_proposal: bytes = field(default=b"", repr=False)
    # the simulating peer's organisation, for `Context.peer_msp_id`
    peer_msp_id: str = ""
    # this peer's private data, and the committed collections of a namespace
    private: PrivateReader = field(default=NO_PRIVATE_DATA, repr=False)
    collections: Collections = field(default=no_collections, repr=False)


@dataclass(frozen=True, slots=True)
class SimulationResult:
    status: int
    message: str
    payload: bytes = field(repr=False)
    rwset: bytes = field(repr=False)
    event: bytes | None = field(repr=False)
    # the serialized TxPvtReadWriteSet (b"" when no private data was written): never on the ledger
    private_rwset: bytes = field(default=b"", repr=False)


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
    run = _Run(reader, tx)
    try:
        with contract_running():
            stub, payload = run.call(contract, namespace, list(args), called_by=None)
    except ContractError as exc:
        return SimulationResult(exc.status_code, bounded_message(str(exc), args), b"", b"", None)
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
    return SimulationResult(OK, "", payload, run.rwset(), stub.event_bytes(), run.pvt_rwset())


def bounded_message(message: str, args: Sequence[bytes]) -> str:
    """A contract's refusal as clients and logs see it: long arguments quoted by a prefix only.

    A refusal travels in the proposal response, the gateway's error details and gRPC trailers;
    echoing a large argument there multiplied it (and a client rejects trailers over 16 KiB).
    Any argument longer than `QUOTED_CHARS` is replaced by its prefix and its size, then the
    whole message is cut at `MESSAGE_CHARS_MAX`.
    """
    for arg in args[1:]:
        if len(arg) > QUOTED_CHARS:
            text = arg.decode("utf-8", "replace")
            if text in message:
                message = message.replace(text, f"{text[:QUOTED_CHARS]}… ({len(arg)} bytes)")
    if len(message) > MESSAGE_CHARS_MAX:
        message = message[: MESSAGE_CHARS_MAX - 1] + "…"
    return message


class _Run:
    """One transaction's simulation: one stub per namespace it touches, shared by nested calls."""

    def __init__(self, reader: StateReader, tx: TxContext) -> None:
        self._reader = reader
        self._tx = tx
        self._stubs: dict[str, Stub] = {}
        self._depth = 0

    def call(
        self, contract: Contract, namespace: str, args: list[bytes], *, called_by: str | None
    ) -> tuple[Stub, bytes]:
        tx = self._tx
        function = args[0].decode("utf-8", "replace")
        info = type(contract).functions().get(function.split(":")[-1])
        stub = self._stubs.get(namespace)
        if stub is None:
            stub = self._stubs[namespace] = Stub(
                self._reader,
                namespace,
                tx_id=tx.tx_id,
                channel_id=tx.channel_id,
                timestamp_ms=tx.timestamp_ms,
                transient=tx.transient,
                invoke=self._invoke,
                private=tx.private,
                collections=tx.collections,
                creator_msp=tx.creator.msp_id,
            )
        stub.begin_call(function, read_only=bool(info and info.evaluate))
        creator = tx.creator
        ctx = Context(
            stub=stub,
            client=ClientIdentity(
                creator.msp_id,
                creator.alliance_role,
                creator.node_ou,
                creator.is_admin,
                creator.id_hash.hex(),
                client_id(creator.certificate),
            ),
            channel_id=tx.channel_id,
            tx_id=tx.tx_id,
            tx_timestamp_ms=tx.timestamp_ms,
            channel_orgs=tx.channel_orgs,
            transient=tx.transient,
            organizations=tx.organizations,
            called_by=called_by,
            signed_proposal=tx.signed_proposal,
            peer_msp_id=tx.peer_msp_id,
        )
        try:
            return stub, contract.invoke(ctx, function, args[1:])
        finally:
            stub.end_call()

    def _invoke(self, caller: str, name: str, args: list[bytes]) -> bytes:
        if not args:
            raise ContractError(f"a call of contract {name} needs a function name", 400)
        if self._depth >= MAX_CALL_DEPTH:
            raise ContractError(f"contract calls nest deeper than {MAX_CALL_DEPTH}", 400)
        with host_running():
            callee = self._tx.contracts(name)
        if callee is None:
            raise ContractError(
                f"contract {name} is not committed on channel {self._tx.channel_id}", 404
            )
        self._depth += 1
        try:
            _, payload = self.call(callee, name, args, called_by=caller)
        finally:
            self._depth -= 1
        return payload

    def rwset(self) -> bytes:
        merged = rwset_pb2.TxReadWriteSet(data_model=rwset_pb2.TxReadWriteSet.DataModel.Value("KV"))
        for namespace in sorted(self._stubs):
            merged.ns_rwset.append(self._stubs[namespace].ns_rwset())
        return bytes(merged.SerializeToString())

    def pvt_rwset(self) -> bytes:
        found = [
            ns
            for namespace in sorted(self._stubs)
            if (ns := self._stubs[namespace].ns_pvt_rwset()) is not None
        ]
        if not found:
            return b""
        return bytes(
            rwset_pb2.TxPvtReadWriteSet(
                data_model=rwset_pb2.TxReadWriteSet.DataModel.Value("KV"), ns_pvt_rwset=found
            ).SerializeToString()
        )
