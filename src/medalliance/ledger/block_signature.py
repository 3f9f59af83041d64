"""When a block was made, as every node can compute it. Pure.

Orderer identities in a block's commit certificate (`commit_certificate.py`) are judged at this
time, so a ledger verified years later still verifies, and all nodes agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from fabric_protos.common import common_pb2

from medalliance.ledger.tx import EnvelopeView, MalformedTransaction, parse_envelopes, stamped_at


def block_time(
    block: common_pb2.Block, views: Sequence[EnvelopeView | MalformedTransaction] | None = None
) -> dt.datetime:
    """When a block was made, as every node can compute it: its newest transaction's timestamp.

    Orderer certificates are judged at this time, so a ledger verified years later still
    verifies, and all peers agree. Raises `MalformedTransaction` if no envelope parses.
    `views`: the block's envelopes as `parse_envelopes` gave them, when the caller has them.
    """
    if views is None:
        views = parse_envelopes(block)
    stamps = [v.header.timestamp_ms for v in views if isinstance(v, EnvelopeView)]
    if not stamps:
        raise MalformedTransaction(2, f"block {block.header.number} has no readable transaction")
    return newest(stamps)


def newest(timestamps_ms: Iterable[int]) -> dt.datetime:
    """`block_time` from its transactions' timestamps (ms), for a caller that parsed them."""
    return stamped_at(max(timestamps_ms))
