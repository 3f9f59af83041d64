"""Fabric's `common.Status` for each error category: what Broadcast and Deliver answer.

The column beside the gateway's `GRPC_CODES` (gateway/errors.py): both are read from the
category's own `Status` (medalliance.errors), so the statuses an ordering node and a peer answer
follow the categories and cannot drift call site by call site.
"""

from __future__ import annotations

from fabric_protos.common import common_pb2

from medalliance.errors import CATEGORIES, MedallianceError, category_of

_ANSWERED: tuple[type[MedallianceError], ...] = (*CATEGORIES, MedallianceError)
FABRIC_STATUSES: dict[type[MedallianceError], int] = {
    category: int(common_pb2.Status.Value(category.status.fabric)) for category in _ANSWERED
}


def fabric_status(exc: MedallianceError) -> int:
    """The status that answers `exc`: its category's."""
    return FABRIC_STATUSES[category_of(exc)]
