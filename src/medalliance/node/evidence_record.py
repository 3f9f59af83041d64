"""Equivocations an ordering node saw: counted, the latest kept for `/status`, logged at ERROR.

A consenter that signed two different proposals or votes for one height and round proves its
own misbehaviour; operators take the record to the alliance. Ids and positions only: no block
body, no payload.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from medalliance.consensus.messages import Proposal, Vote
from medalliance.consensus.ready import Evidence

log = logging.getLogger(__name__)

EVIDENCE_KEPT = 16  # the latest equivocations shown in /status


@dataclass
class EvidenceRecord:
    channel_id: str
    count: int = 0
    latest: list[dict[str, object]] = field(default_factory=list)

    def record(self, evidence: Evidence) -> None:
        self.count += 1
        first, second = evidence.equivocation.first, evidence.equivocation.second
        entry: dict[str, object] = {
            "culprit": evidence.culprit,
            "kind": type(first).__name__,
            "height": first.height,
            "round": first.round,
            "values": [_value_hex(first), _value_hex(second)],
        }
        self.latest = [*self.latest, entry][-EVIDENCE_KEPT:]
        log.error(
            "ordering node equivocated",
            extra={"channel": self.channel_id, "node": evidence.culprit},
        )

    def status(self) -> dict[str, object]:
        return {"count": self.count, "latest": list(self.latest)}


def _value_hex(message: Proposal | Vote) -> str | None:
    value_id = message.value.value_id if isinstance(message, Proposal) else message.value_id
    return None if value_id is None else value_id.hex()
