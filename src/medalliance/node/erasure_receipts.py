"""A holder's signed deletion receipts: after its peer deleted an erased record, it says so on
the ledger (docs/privacy.md §4, Erasure).

The receipt is a transaction of the record registry, `ConfirmErasure(recordId)`, created and
signed by the peer's own identity — the node that actually deleted the copies, not a user who
could only assert it — and sent through the peer's own Gateway service over TLS like any
client's, so it is endorsed under the registry's policy and validated like every transaction.
`privacy erase --check` reads the receipts. A receipt that fails to commit is retried a few
times; a record confirmed already (by another peer of the organisation) is not an error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Callable

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.peer import transaction_pb2

from medalliance.ledger.tx import SigningIdentity, new_signed_proposal, sign_envelope
from medalliance.privacy import record_ledger

log = logging.getLogger(__name__)

ATTEMPTS = 5
RETRY_S = 2.0
CALL_TIMEOUT_S = 30.0


class ErasureReceipts:
    """Files `ConfirmErasure` for erased records as this peer, through its own gateway."""

    def __init__(
        self,
        *,
        channel_id: str,
        signer: SigningIdentity,
        gateway: Callable[[], grpc.aio.Channel],
        now: Callable[[], dt.datetime],
    ) -> None:
        self._channel_id = channel_id
        self._signer = signer
        self._gateway = gateway  # a TLS channel to this peer's own Gateway service
        self._now = now

    async def file(self, record_ids: list[str]) -> None:
        """One receipt per record; failures are logged (names and codes only) and retried."""
        for record_id in record_ids:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    status = await self._submit(record_id)
                except grpc.aio.AioRpcError as exc:
                    if "already confirmed" in (exc.details() or ""):
                        break
                    log.warning(
                        "deletion receipt not filed",
                        extra={"record": record_id, "attempt": attempt, "reason": exc.code().name},
                    )
                else:
                    if status == "VALID":
                        log.info("deletion receipt filed", extra={"record": record_id})
                        break
                    log.warning(
                        "deletion receipt invalidated",
                        extra={"record": record_id, "attempt": attempt, "reason": status},
                    )
                await asyncio.sleep(RETRY_S)

    async def _submit(self, record_id: str) -> str:
        """Endorse, sign, submit and wait for the commit status; its validation code name."""
        signed, tx_id = new_signed_proposal(
            self._signer,
            channel_id=self._channel_id,
            chaincode=record_ledger.NAMESPACE,
            args=[b"ConfirmErasure", record_id.encode()],
            nonce=os.urandom(24),
            timestamp_ms=int(self._now().timestamp() * 1000),
        )
        stub = gateway_pb2_grpc.GatewayStub(self._gateway())
        endorsed = await stub.Endorse(
            gateway_pb2.EndorseRequest(
                transaction_id=tx_id, channel_id=self._channel_id, proposed_transaction=signed
            ),
            timeout=CALL_TIMEOUT_S,
        )
        envelope = common_pb2.Envelope.FromString(
            sign_envelope(endorsed.prepared_transaction.payload, self._signer)
        )
        await stub.Submit(
            gateway_pb2.SubmitRequest(
                transaction_id=tx_id, channel_id=self._channel_id, prepared_transaction=envelope
            ),
            timeout=CALL_TIMEOUT_S,
        )
        request = gateway_pb2.CommitStatusRequest(
            transaction_id=tx_id,
            channel_id=self._channel_id,
            identity=self._signer.serialized_identity,
        )
        raw = request.SerializeToString()
        answer = await stub.CommitStatus(
            gateway_pb2.SignedCommitStatusRequest(request=raw, signature=self._signer.sign(raw)),
            timeout=CALL_TIMEOUT_S,
        )
        return str(transaction_pb2.TxValidationCode.Name(answer.result))
