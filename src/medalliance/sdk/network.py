"""Networks: one channel seen through a gateway; hands out contracts and event streams.

Event streams have no deadline unless the caller gives one: they are meant to stay open,
waiting for blocks, until the caller closes them (protocol doc §3.5, §3.6).
"""

from __future__ import annotations

import threading

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.peer import events_pb2

from medalliance.ledger.seek import new_seek_envelope
from medalliance.sdk.checkpoint import Checkpointer, resume_position
from medalliance.sdk.client import Client, now_ms
from medalliance.sdk.contract import VALID, Contract, Status
from medalliance.sdk.errors import CommitStatusError, transaction_error
from medalliance.sdk.events import (
    ChaincodeEvent,
    EventStream,
    chaincode_events_of,
    deliver_requests,
    deliver_unpacker,
)
from medalliance.sdk.messages import (
    signed_chaincode_events_request,
    signed_commit_status_request,
)


class Network:
    """A channel reached through the gateway peer."""

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self.name = name

    def __repr__(self) -> str:
        return f"Network(name={self.name!r})"

    def get_contract(self, chaincode_name: str, contract_name: str | None = None) -> Contract:
        """The chaincode `chaincode_name`; with `contract_name`, calls go to "contract:fn"."""
        return Contract(self._client, self.name, chaincode_name, contract_name)

    def get_commit_status(self, transaction_id: str, timeout: float | None = None) -> Status:
        """Wait until a transaction of this channel is in a committed block — one submitted
        through any route, e.g. a config update sent to the ordering service."""
        request = signed_commit_status_request(
            self._client.signer, transaction_id=transaction_id, channel_id=self.name
        )
        try:
            response = self._client.gateway.CommitStatus(
                request, timeout=self._client.deadline(timeout)
            )
        except grpc.RpcError as exc:
            raise transaction_error(CommitStatusError, exc, transaction_id) from exc
        code = int(response.result)
        return Status(code, int(response.block_number), transaction_id, code == VALID)

    def get_chaincode_events(
        self,
        chaincode_name: str,
        *,
        start_block: int | None = None,
        after_transaction_id: str | None = None,
        checkpoint: Checkpointer | None = None,
        timeout: float | None = None,
    ) -> EventStream[ChaincodeEvent]:
        """Events of `chaincode_name` from VALID transactions, block by block.

        Starts at the checkpoint when it holds a position, else at `start_block`, else at the
        next block committed. Iteration raises `GatewayError` if the server refuses or fails.
        """
        start, after = resume_position(start_block, after_transaction_id, checkpoint)
        request = signed_chaincode_events_request(
            self._client.signer,
            channel_id=self.name,
            chaincode_name=chaincode_name,
            start_block=start,
            after_transaction_id=after,
        )
        call = self._client.gateway.ChaincodeEvents(request, timeout=timeout)
        return EventStream(call, chaincode_events_of)

    def get_block_events(
        self,
        *,
        start_block: int | None = None,
        checkpoint: Checkpointer | None = None,
        timeout: float | None = None,
    ) -> EventStream[common_pb2.Block]:
        """Full blocks as the peer stored them, from `start_block` or the checkpoint."""
        return self._deliver("Deliver", "block", start_block, checkpoint, timeout)

    def get_filtered_block_events(
        self,
        *,
        start_block: int | None = None,
        checkpoint: Checkpointer | None = None,
        timeout: float | None = None,
    ) -> EventStream[events_pb2.FilteredBlock]:
        """Blocks reduced to tx ids, validation codes and event names (no payloads)."""
        return self._deliver("DeliverFiltered", "filtered_block", start_block, checkpoint, timeout)

    def get_block_and_private_data_events(
        self,
        *,
        start_block: int | None = None,
        checkpoint: Checkpointer | None = None,
        timeout: float | None = None,
    ) -> EventStream[events_pb2.BlockAndPrivateData]:
        """Blocks with the private data this identity may read."""
        return self._deliver(
            "DeliverWithPrivateData", "block_and_private_data", start_block, checkpoint, timeout
        )

    def _deliver(
        self,
        method: str,
        kind: str,
        start_block: int | None,
        checkpoint: Checkpointer | None,
        timeout: float | None,
    ) -> EventStream[object]:
        start, _ = resume_position(start_block, None, checkpoint)
        envelope = new_seek_envelope(
            self._client.signer,
            channel_id=self.name,
            start_block=start,
            timestamp_ms=now_ms(),
            tls_cert_hash=self._client.tls_cert_hash,
        )
        closed = threading.Event()
        call = getattr(self._client.deliver, method)(
            deliver_requests(envelope, closed), timeout=timeout
        )
        return EventStream(call, deliver_unpacker(kind), on_close=closed.set)
