"""What a commission's peer's integrity monitor reports, read over its operations endpoint.

The monitor (node/integrity_monitor.py) runs inside the peer and keeps its latest check in the
peer's `/status` (`integrity`), which `network status` prints. The alarm runner
(app/alarm_runner.py) reads the same answer here to raise `integrity.divergence` alarms on the
chain: the node knows no contract, so the application drives it.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from medalliance.audit.integrity import Finding

__all__ = ["findings_of_status", "monitor_findings"]

log = logging.getLogger(__name__)

_MAX_ANSWER_BYTES = 1024 * 1024  # a status answer is a few kilobytes
_KINDS = ("block-hash", "state-hash")


def monitor_findings(operations: str, timeout_s: float = 5.0) -> list[Finding] | None:
    """The findings of the latest check of the monitor behind `operations` (host:port); None
    when the peer runs no monitor, has not checked yet or does not answer (logged): the runner
    then leaves what it raised as it is."""
    url = f"http://{operations}/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:
            body = reply.read(_MAX_ANSWER_BYTES + 1)
        if len(body) > _MAX_ANSWER_BYTES:
            raise ValueError("status answer too large")
        status = json.loads(body)
    except (OSError, ValueError, urllib.error.URLError) as exc:
        log.warning(
            "integrity monitor not readable",
            extra={"operations": operations, "reason": type(exc).__name__},
        )
        return None
    return findings_of_status(status) if isinstance(status, Mapping) else None


def findings_of_status(status: Mapping[str, Any]) -> list[Finding] | None:
    """The findings of a peer's `/status` answer (None: no monitor, or no check yet). A
    malformed finding is left out: it cannot name a peer reliably."""
    integrity = status.get("integrity")
    if not isinstance(integrity, Mapping) or integrity.get("checked") is None:
        return None
    found = []
    for entry in integrity.get("findings") or []:
        if not isinstance(entry, Mapping):
            continue
        texts = [entry.get(k) for k in ("channel_id", "peer", "organization", "expected", "found")]
        height, kind, agreeing = entry.get("height"), entry.get("kind"), entry.get("agreeing")
        if not all(isinstance(t, str) and t for t in texts) or not isinstance(height, int):
            continue
        if kind not in _KINDS or not isinstance(agreeing, list):
            continue
        channel_id, peer, organization, expected, found_hash = (str(t) for t in texts)
        found.append(
            Finding(
                channel_id,
                height,
                peer,
                organization,
                kind,
                expected,
                found_hash,
                tuple(str(a) for a in agreeing),
            )
        )
    return found
