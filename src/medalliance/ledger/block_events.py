"""What clients learn from a committed block: per-transaction outcomes and chaincode events.

Pure functions over a block as the peer stored it (with its TRANSACTIONS_FILTER). They feed
`DeliverFiltered` (a `FilteredBlock` leaves every payload out) and the gateway's
`ChaincodeEvents` (events of VALID endorser transactions only, protocol doc §3.5, §3.6).
"""

from __future__ import annotations

from dataclasses import dataclass

from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_event_pb2, events_pb2

from medalliance.ledger.block import transactions_filter
from medalliance.ledger.tx import (
    ENDORSER_TRANSACTION,
    MalformedTransaction,
    parse_chaincode_event,
    parse_envelope,
)

VALID = 0


@dataclass(frozen=True, slots=True)
class TxOutcome:
    """One transaction of a block: its id, header type, validation code and event, if any."""

    tx_id: str
    header_type: int
    code: int
    event: chaincode_event_pb2.ChaincodeEvent | None


def tx_outcomes(block: common_pb2.Block) -> list[TxOutcome]:
    """Every transaction of a committed block, in order; unparsable ones keep their code."""
    codes = transactions_filter(block)
    out = []
    for index, data in enumerate(block.data.data):
        code = codes[index] if index < len(codes) else 255
        try:
            view = parse_envelope(bytes(data))
        except MalformedTransaction:
            out.append(TxOutcome("", 0, code, None))
            continue
        event = None
        if view.header.header_type == ENDORSER_TRANSACTION:
            try:
                raw = view.endorser_tx().events
                event = parse_chaincode_event(raw) if raw else None
            except (MalformedTransaction, ValueError):
                event = None
        out.append(TxOutcome(view.tx_id, view.header.header_type, code, event))
    return out


def filtered_block(block: common_pb2.Block, channel_id: str) -> events_pb2.FilteredBlock:
    """Fabric's `FilteredBlock`: ids, types, codes and event names, never a payload."""
    filtered = events_pb2.FilteredBlock(channel_id=channel_id, number=block.header.number)
    for outcome in tx_outcomes(block):
        tx = filtered.filtered_transactions.add(
            txid=outcome.tx_id, type=outcome.header_type, tx_validation_code=outcome.code
        )
        if outcome.header_type != ENDORSER_TRANSACTION:
            continue
        actions = tx.transaction_actions
        actions.SetInParent()
        if outcome.event is not None and outcome.event.chaincode_id:
            actions.chaincode_actions.add().chaincode_event.CopyFrom(
                chaincode_event_pb2.ChaincodeEvent(
                    tx_id=outcome.event.tx_id,
                    chaincode_id=outcome.event.chaincode_id,
                    event_name=outcome.event.event_name,
                )
            )
    return filtered


def chaincode_events(
    block: common_pb2.Block, chaincode: str
) -> list[chaincode_event_pb2.ChaincodeEvent]:
    """The events `chaincode` emitted in the VALID endorser transactions of a block, in order."""
    events = []
    for outcome in tx_outcomes(block):
        event = outcome.event
        if (
            outcome.code == VALID
            and outcome.header_type == ENDORSER_TRANSACTION
            and event is not None
            and event.chaincode_id == chaincode
            and event.event_name
            and event.tx_id
        ):
            events.append(event)
    return events
