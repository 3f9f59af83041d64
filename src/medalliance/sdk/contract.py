"""Contracts: evaluate and submit transactions of one chaincode on one channel (§3.1–3.4).

`submit` = Endorse → sign the prepared transaction → Submit → CommitStatus, raising the error of
the step that failed, so the caller knows whether the transaction can still commit:
`EndorseError` (it was never ordered), `SubmitError` (ordering refused it),
`CommitStatusError` (unknown: ask again with `SubmittedTransaction.get_status`) or
`CommitError` (it committed as invalid). Arguments, transient data and results are never
logged; transaction ids and channels are.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

from medalliance.sdk.client import Client, new_nonce, now_ms
from medalliance.sdk.errors import (
    CommitError,
    CommitStatusError,
    EndorseError,
    SubmitError,
    gateway_error,
    transaction_error,
)
from medalliance.sdk.messages import (
    PreparedTransaction,
    Proposal,
    endorse_request,
    evaluate_request,
    new_proposal,
    read_endorse_response,
    signed_commit_status_request,
    submit_request,
)

log = logging.getLogger(__name__)

VALID = 0  # TxValidationCode.VALID


@dataclass(frozen=True, slots=True)
class Status:
    """The commit status of a transaction: its validation code and the block that holds it."""

    code: int  # a TxValidationCode
    block_number: int
    transaction_id: str
    successful: bool


class SubmittedTransaction:
    """A transaction accepted for ordering; its result is known, its commit not yet."""

    def __init__(self, client: Client, prepared: PreparedTransaction) -> None:
        self._client = client
        self._prepared = prepared

    def __repr__(self) -> str:  # never shows the result: it may hold patient data
        return f"SubmittedTransaction(transaction_id={self.transaction_id!r})"

    @property
    def result(self) -> bytes:
        """What the contract returned when endorsed (valid only if the transaction commits)."""
        return self._prepared.result

    @property
    def transaction_id(self) -> str:
        return self._prepared.transaction_id

    def get_status(self, timeout: float | None = None) -> Status:
        """Wait until the transaction is in a committed block, up to the deadline.

        Raises `CommitStatusError` when the status cannot be had (DEADLINE_EXCEEDED if the
        block did not come in time); the transaction may still commit, so asking again is safe.
        """
        request = signed_commit_status_request(
            self._client.signer,
            transaction_id=self.transaction_id,
            channel_id=self._prepared.channel_id,
        )
        try:
            response = self._client.gateway.CommitStatus(
                request, timeout=self._client.deadline(timeout)
            )
        except grpc.RpcError as exc:
            raise transaction_error(CommitStatusError, exc, self.transaction_id) from exc
        code = int(response.result)
        return Status(code, int(response.block_number), self.transaction_id, code == VALID)


class Contract:
    """One chaincode (and optionally one named contract inside it) on one channel."""

    def __init__(
        self,
        client: Client,
        channel_id: str,
        chaincode_name: str,
        contract_name: str | None = None,
    ) -> None:
        self._client = client
        self.channel_id = channel_id
        self.chaincode_name = chaincode_name
        self.contract_name = contract_name

    def __repr__(self) -> str:
        return (
            f"Contract(channel_id={self.channel_id!r}, chaincode_name={self.chaincode_name!r}, "
            f"contract_name={self.contract_name!r})"
        )

    def evaluate_transaction(self, name: str, *arguments: str | bytes) -> bytes:
        """Run a query on one peer and return its result; nothing is recorded on the ledger."""
        return self.evaluate(name, arguments=arguments)

    def submit_transaction(self, name: str, *arguments: str | bytes) -> bytes:
        """Endorse, order and wait for the commit of a transaction; returns its result."""
        return self.submit(name, arguments=arguments)

    def evaluate(
        self,
        name: str,
        *,
        arguments: Sequence[str | bytes] = (),
        transient: Mapping[str, bytes] | None = None,
        target_organizations: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """Evaluate `name`, optionally only on peers of `target_organizations`.

        Raises `GatewayError` (code UNKNOWN when the contract itself refused, protocol §3.7).
        """
        proposal = self._proposal(name, arguments, transient)
        request = evaluate_request(proposal, target_organizations)
        try:
            response = self._client.gateway.Evaluate(
                request, timeout=self._client.deadline(timeout)
            )
        except grpc.RpcError as exc:
            raise gateway_error(exc) from exc
        return bytes(response.result.payload)

    def submit(
        self,
        name: str,
        *,
        arguments: Sequence[str | bytes] = (),
        transient: Mapping[str, bytes] | None = None,
        endorsing_organizations: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """Submit `name` and wait for its commit; `timeout` bounds each of the three calls.

        Raises `EndorseError`, `SubmitError`, `CommitStatusError` or `CommitError` (see module).
        """
        submitted = self.submit_async(
            name,
            arguments=arguments,
            transient=transient,
            endorsing_organizations=endorsing_organizations,
            timeout=timeout,
        )
        status = submitted.get_status(timeout)
        if not status.successful:
            raise CommitError(status.code, status.transaction_id)
        return submitted.result

    def submit_async(
        self,
        name: str,
        *,
        arguments: Sequence[str | bytes] = (),
        transient: Mapping[str, bytes] | None = None,
        endorsing_organizations: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> SubmittedTransaction:
        """Endorse and submit `name`, returning once ordering accepted it (before it commits).

        Raises `EndorseError` or `SubmitError`; call `get_status()` on the result to learn
        whether it committed.
        """
        proposal = self._proposal(name, arguments, transient)
        deadline = self._client.deadline(timeout)
        try:
            response = self._client.gateway.Endorse(
                endorse_request(proposal, endorsing_organizations), timeout=deadline
            )
        except grpc.RpcError as exc:
            raise transaction_error(EndorseError, exc, proposal.transaction_id) from exc
        prepared = read_endorse_response(proposal, response)
        try:
            self._client.gateway.Submit(
                submit_request(prepared, self._client.signer), timeout=deadline
            )
        except grpc.RpcError as exc:
            raise transaction_error(SubmitError, exc, proposal.transaction_id) from exc
        log.debug(
            "transaction submitted",
            extra={"channel": self.channel_id, "tx_id": proposal.transaction_id},
        )
        return SubmittedTransaction(self._client, prepared)

    def _proposal(
        self, name: str, arguments: Sequence[str | bytes], transient: Mapping[str, bytes] | None
    ) -> Proposal:
        # Fabric's qualified name for a function of a named contract (protocol doc §2.1).
        qualified = f"{self.contract_name}:{name}" if self.contract_name else name
        return new_proposal(
            self._client.signer,
            channel_id=self.channel_id,
            chaincode_name=self.chaincode_name,
            transaction_name=qualified,
            arguments=arguments,
            transient=transient,
            nonce=new_nonce(),
            timestamp_ms=now_ms(),
        )
