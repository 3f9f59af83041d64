"""The audit index a commission's web process keeps, and how far behind its peer it is.

Where the index comes from in `medalliance serve`: the commission's own audit index
(app/audit_index.py, by default `DIR/audit/<MSP>.db`, the file `medalliance audit index` keeps)
is brought up to the commission's own peer **at the start of every request that reads it**: a
catch-up reads only the blocks committed since the last one (usually none or one), each block in
one database transaction, so a page never shows facts older than the request and no background
task has to be supervised. A lock per index keeps two requests of one process from reading the
same blocks at once (a second writer would wait on SQLite and then skip them anyway). Each answer
carries `IndexState`: the block the index has read through and the peer's height, which pages
show as the index's lag.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from medalliance.app.alliance_network import AllianceNetwork
from medalliance.app.audit_index import AuditIndex, default_index_path
from medalliance.database_url import DatabaseUrl, parse_database_url
from medalliance.web.services.peer_height import peer_height

__all__ = ["IndexState", "followed_index"]

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True, slots=True)
class IndexState:
    """How far the index has read: `next_block` is the first block it has not indexed."""

    next_block: int
    height: int  # blocks the commission's peer holds

    @property
    def lag_blocks(self) -> int:
        return max(0, self.height - self.next_block)


@contextmanager
def followed_index(
    network: AllianceNetwork, msp_id: str, url: DatabaseUrl | None = None
) -> Iterator[tuple[AuditIndex, IndexState]]:
    """The commission's index, caught up with its own peer; closed on leaving the block.
    Raises `Unavailable` when the peer or the index database cannot be reached."""
    if url is None:
        url = parse_database_url(str(default_index_path(network.layout.directory, msp_id)))
    index = AuditIndex(url, network.channel)
    try:
        with _lock(url.redacted()):
            height = peer_height(network, msp_id)
            start = index.next_block()
            if start < height:
                index.catch_up(network.blocks(msp_id, start, height - 1))
        yield index, IndexState(index.next_block(), height)
    finally:
        index.close()


def _lock(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())
