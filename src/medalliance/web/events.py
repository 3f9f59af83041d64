"""Live events for the web client: alliance-contract facts from committed blocks, per audience.

`EventHub.publish_block` turns the chaincode events of a committed block's VALID transactions into
`LiveEvent`s — the event's type, its ids and status, the transaction and block — and keeps only
the whitelisted fields, so no payload text ever reaches a browser. Each event's audience is the
organisations its payload names (applicant, target, origin, regulator, ...) plus the commissions
above each of them; a subscriber of an organisation receives only events whose audience holds it.
Subscribers are bounded queues read by `GET /events` (server-sent events, web/app.py); a slow
subscriber drops its oldest events rather than holding the publisher.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fabric_protos.common import common_pb2

from medalliance.ledger.block_events import chaincode_events
from medalliance.node.config import NetworkConfig, OrganizationConfig

# The contracts whose events reach browsers, and the payload fields that may go with them.
CONTRACTS = ("visit", "report", "referral", "settlement", "resource", "alarm", "reporting")
_SHOWN = (
    "applicationId", "referralId", "visitNo", "direction", "status", "decision", "alarmId",
    "ruleId", "agreementId", "resourceId", "bookingId", "reportId", "fromHospital", "toHospital",
    "hospital", "targetHospital", "regulator", "raisedBy", "org",
)  # fmt: skip
QUEUE_LIMIT = 100


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One contract fact: `type` is the contract's event name (e.g. "ReferralCreated")."""

    seq: int
    contract: str
    type: str
    tx_id: str
    block: int
    fields: dict[str, str] = field(default_factory=dict)
    audience: frozenset[str] = frozenset()  # MSP ids

    def to_json(self) -> str:
        return json.dumps(
            {
                "seq": self.seq,
                "contract": self.contract,
                "type": self.type,
                "txId": self.tx_id,
                "block": self.block,
                **self.fields,
            },
            sort_keys=True,
        )


class _Subscriber:
    def __init__(self, msp_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.msp_id = msp_id
        self.loop = loop
        self.queue: deque[LiveEvent] = deque(maxlen=QUEUE_LIMIT)
        self.ready = asyncio.Event()

    def offer(self, event: LiveEvent) -> None:
        self.queue.append(event)
        self.loop.call_soon_threadsafe(self.ready.set)


class EventHub:
    """Fan-out of contract facts to the sessions of the organisations that may see them."""

    def __init__(self, config: NetworkConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._subscribers: set[_Subscriber] = set()
        self._seq = itertools.count(1)
        self._last_block = -1
        self.recent: deque[LiveEvent] = deque(maxlen=QUEUE_LIMIT)

    def committed(self, block: common_pb2.Block, *_: object) -> None:
        """A peer's commit listener (node/channel.py): publish the block."""
        self.publish_block(block)

    def publish_block(self, block: common_pb2.Block) -> list[LiveEvent]:
        """Publish a committed block's facts once (a block seen twice — several served peers
        of one channel — is published the first time only). Safe from any thread."""
        number = int(block.header.number)
        with self._lock:
            if number <= self._last_block:
                return []
            self._last_block = number
        events = []
        for contract in CONTRACTS:
            for raw in chaincode_events(block, contract):
                events.append(self._event(contract, raw.event_name, raw.tx_id, number, raw.payload))
        events.sort(key=lambda e: e.seq)
        for event in events:
            self.publish(event)
        return events

    def publish(self, event: LiveEvent) -> None:
        with self._lock:
            self.recent.append(event)
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            if subscriber.msp_id in event.audience:
                subscriber.offer(event)

    def subscribe(self, msp_id: str) -> _Subscriber:
        """A queue of the events `msp_id` may see; call from the event loop that reads it."""
        subscriber = _Subscriber(msp_id, asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: _Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    def visible_to(self, msp_id: str) -> list[LiveEvent]:
        """The recent events `msp_id` may see, oldest first."""
        with self._lock:
            return [e for e in self.recent if msp_id in e.audience]

    def _event(self, contract: str, name: str, tx_id: str, block: int, payload: bytes) -> LiveEvent:
        try:
            data: Any = json.loads(payload) if payload else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        shown = {k: str(data[k]) for k in _SHOWN if isinstance(data.get(k), str | int)}
        return LiveEvent(
            next(self._seq), contract, name, tx_id, block, shown, self._audience(data.values())
        )

    def _audience(self, values: Any) -> frozenset[str]:
        """The organisations a payload names, and every commission above each of them."""
        by_msp = {o.msp_id: o for o in self._config.organizations}
        by_name = {o.name: o for o in self._config.organizations}
        named = {v for v in values if isinstance(v, str) and (v in by_msp or v in by_name)}
        audience: set[str] = set()
        for value in named:
            org: OrganizationConfig | None = by_msp.get(value) or by_name[value]
            seen = 0
            while org is not None and seen < 16:  # a config loop must not hang the publisher
                audience.add(org.msp_id)
                above = org.regulator or org.parent or ""
                org = by_name.get(above) or by_msp.get(above)
                seen += 1
        return frozenset(audience)
