"""One way for alliance applications to reach a network, embedded or of processes.

The referral workflow, the role CLIs and the hospital connector need the same few things: submit
and evaluate contract calls as a user, hand a sealed package to the organisation's peer, get one
back, and read committed blocks. `EmbeddedAlliance` does them in-process over an
`EmbeddedNetwork` (each peer keeps packages in its own `private/` folder, checked against the
ledger exactly as a peer process does); `GatewayAlliance` does them over the Gateway, Deliver
and private-data gRPC services of a running network, as any hospital application would.

A contract's refusal is a `ContractError` with the contract's own status and message; a
transaction that reached a block but was invalidated (e.g. an MVCC conflict) is a `Conflict`.

`submit` returns once every peer of the channel has the transaction's block, not only the
submitting organisation's: the next step of a workflow is often another organisation's, and its
gateway endorses on its own (and other) peers, which commit a block a little later than the
submitter's. Without the wait that step reads state from before the transaction (e.g.
"application ... does not exist") on a loaded machine.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fabric_protos.common import common_pb2
from fabric_protos.peer import transaction_pb2

from medalliance.app.packages import get_bundle, push_bundle, versions_held
from medalliance.app.peer_commits import wait_for_block
from medalliance.app.pseudonyms import evaluate_over_grpc
from medalliance.app.session import connect_as, contract_refusal
from medalliance.errors import Conflict, NotFound, Unavailable
from medalliance.ledger.state import StateReader
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.channel import PeerChannel
from medalliance.node.embedded import EmbeddedNetwork
from medalliance.node.package_holding import Held, PackageHolding
from medalliance.node.pseudonym_service import evaluate_request, evaluated_elements
from medalliance.sdk import Contract, Gateway, GatewayError


@dataclass(frozen=True, slots=True)
class Committed:
    """A VALID transaction: its id, block and the contract's result."""

    tx_id: str
    block: int
    payload: bytes = field(repr=False)


class AllianceNetwork(Protocol):
    layout: NetworkLayout
    channel: str

    def submit(self, org: str, user: str, contract: str, function: str, *args: str) -> Committed:
        """Endorse, order and wait for the commit; `ContractError` if refused, `Conflict` if
        the transaction was invalidated in its block."""
        ...

    def evaluate(self, org: str, user: str, contract: str, function: str, *args: str) -> bytes: ...

    def push(self, org: str, held: Held) -> None:
        """The organisation's peer keeps the package and passes it to the authorised others."""
        ...

    def pull(self, org: str, user: str, record_id: str, version: int) -> Held:
        """A version from the organisation's peer, for a user of that organisation."""
        ...

    def evaluate_pseudonyms(self, org: str, user: str, elements: list[bytes]) -> list[bytes]:
        """The pseudonym service's evaluation of blinded elements, asked by `user` of `org`
        (app/pseudonyms.py turns them into pseudonyms)."""
        ...

    def holds(self, org: str, user: str, record_id: str) -> int:
        """How many versions of a record the organisation's peer still holds."""
        ...

    def blocks(self, org: str, start: int, until: int | None) -> Iterator[common_pb2.Block]:
        """Committed blocks from `start` through `until` (None: through the current height when
        embedded; wait for new blocks forever over the network)."""
        ...


def _invalid(tx_id: str, code: int) -> Conflict:
    name = transaction_pb2.TxValidationCode.Name(code)
    return Conflict(f"transaction {tx_id} was invalidated in its block: {name}; retry it")


class EmbeddedAlliance:
    """An `AllianceNetwork` over an in-process network; packages held per peer folder."""

    def __init__(self, network: EmbeddedNetwork, channel: str) -> None:
        self.network = network
        self.layout = network.layout
        self.channel = channel
        self._holdings: dict[str, PackageHolding] = {}
        for peer in network.peers_of(channel):
            ledger = peer.channel(channel)
            holding = PackageHolding(
                peer.msp_id, peer.directory / "private", functools.partial(_state_of, ledger)
            )
            holding.follow(ledger)
            self._holdings.setdefault(peer.msp_id, holding)

    def close(self) -> None:
        for holding in self._holdings.values():
            holding.close()

    def submit(self, org: str, user: str, contract: str, function: str, *args: str) -> Committed:
        client = self.network.client(self._msp(org), user)
        result = client.submit(self.channel, contract, function, *args)
        if not result.valid:
            raise _invalid(result.tx_id, result.code)
        return Committed(result.tx_id, result.block_number, result.payload)

    def evaluate(self, org: str, user: str, contract: str, function: str, *args: str) -> bytes:
        return self.network.client(self._msp(org), user).evaluate(
            self.channel, contract, function, *args
        )

    def push(self, org: str, held: Held) -> None:
        own = self._holding(org)
        package = own.keep(held)
        entry = own.committed(package.record_id, package.version)
        for msp_id, holding in self._holdings.items():
            if msp_id != own.msp_id and msp_id in entry.authorised:
                holding.keep(held)

    def pull(self, org: str, user: str, record_id: str, version: int) -> Held:
        holding = self._holding(org)
        return holding.serve(holding.msp_id, record_id, version)

    def evaluate_pseudonyms(self, org: str, user: str, elements: list[bytes]) -> list[bytes]:
        service = self.network.pseudonyms
        if service is None:
            raise Unavailable("this network runs no pseudonym service (no regulator OPRF key)")
        signer = self.network.signer(self._msp(org), user)
        answer = service.evaluate(evaluate_request(signer, elements, self.network.now()))
        return evaluated_elements(answer, len(elements))

    def holds(self, org: str, user: str, record_id: str) -> int:
        return self._holding(org).versions_held(record_id)

    def blocks(self, org: str, start: int, until: int | None) -> Iterator[common_pb2.Block]:
        peer = next(p for p in self.network.peers_of(self.channel) if p.msp_id == self._msp(org))
        ledger = peer.channel(self.channel)
        last = ledger.height - 1 if until is None else min(until, ledger.height - 1)
        for number in range(start, last + 1):
            yield ledger.store.get_block(number)

    def _msp(self, org: str) -> str:
        return self.layout.config.organization(org).msp_id

    def _holding(self, org: str) -> PackageHolding:
        msp_id = self._msp(org)
        if msp_id not in self._holdings:
            raise NotFound(f"{org} runs no peer on channel {self.channel}")
        return self._holdings[msp_id]


class GatewayAlliance:
    """An `AllianceNetwork` over a running network's gRPC services (one gateway per user)."""

    def __init__(self, directory: Path, channel: str) -> None:
        self.layout = NetworkLayout.load(directory)
        self.channel = channel
        self._gateways: dict[tuple[str, str], Gateway] = {}

    def close(self) -> None:
        for gateway in self._gateways.values():
            gateway.close()
        self._gateways.clear()

    def submit(self, org: str, user: str, contract: str, function: str, *args: str) -> Committed:
        target = self._contract(org, user, contract)
        try:
            submitted = target.submit_async(function, arguments=list(args))
        except GatewayError as exc:
            raise _refusal(exc) from None
        status = submitted.get_status()
        # An invalidated transaction's block counts too: the caller's retry reads its state.
        wait_for_block(self.layout, self.channel, status.block_number)
        if not status.successful:
            raise _invalid(submitted.transaction_id, status.code)
        return Committed(submitted.transaction_id, status.block_number, submitted.result)

    def evaluate(self, org: str, user: str, contract: str, function: str, *args: str) -> bytes:
        try:
            return self._contract(org, user, contract).evaluate_transaction(function, *args)
        except GatewayError as exc:
            raise _refusal(exc) from None

    def push(self, org: str, held: Held) -> None:
        push_bundle(self.layout, org, held)

    def pull(self, org: str, user: str, record_id: str, version: int) -> Held:
        return get_bundle(self.layout, org, user, record_id, version)

    def evaluate_pseudonyms(self, org: str, user: str, elements: list[bytes]) -> list[bytes]:
        return evaluate_over_grpc(self.layout, org, user, elements)

    def holds(self, org: str, user: str, record_id: str) -> int:
        return versions_held(self.layout, org, user, record_id)

    def blocks(self, org: str, start: int, until: int | None) -> Iterator[common_pb2.Block]:
        if until is not None and start > until:
            return
        network = self._gateway(org, "User1").get_network(self.channel)
        with network.get_block_events(start_block=start) as stream:
            for block in stream:
                yield block
                if until is not None and block.header.number >= until:
                    return

    def _gateway(self, org: str, user: str) -> Gateway:
        key = (self.layout.config.organization(org).msp_id, user)
        if key not in self._gateways:
            self._gateways[key] = connect_as(self.layout, org, user)
        return self._gateways[key]

    def _contract(self, org: str, user: str, contract: str) -> Contract:
        return self._gateway(org, user).get_network(self.channel).get_contract(contract)


def _state_of(ledger: PeerChannel) -> StateReader:
    return ledger.state


def _refusal(exc: GatewayError) -> Exception:
    """A contract's refusal as the contract said it; other gateway errors unchanged."""
    return contract_refusal(exc)
