"""Committed-state reads an endorsement repeats, answered once per committed block.

Every proposal reads its contract's committed definition (the endorser, and the lifecycle's
collections look-up, each ask) and, for each key it writes, the key's metadata (its key-level
policy, for `ProposalResponse.interest`): the same SQLite rows thousands of times per block
when nothing in them changes. `CommittedReads` wraps a peer's world state and keeps, until the
next block commits, the lifecycle namespace's values (definitions, approvals) and whether a
namespace has any metadata at all (when none has, no key of it has a policy and none is asked).

Correctness rests on one rule: an instance answers for one committed state only. The channel
that commits (`node/channel.py`) replaces its instance after every block, whether or not the
block changed anything, so an upgrade, a new policy or a key's new metadata is seen by the first
endorsement after the block that commits it. Reads of any other namespace, ranges, queries and
history pass through. Entries kept are bounded (`KEPT_MAX`): a flood of reads of distinct
lifecycle keys within one block costs SQLite reads, not memory. A reader on another thread (the
web's) may hold an instance across a commit: it then mixes reads from before and after the
block, as it would reading the state itself, and the channel's next instance starts afresh.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from medalliance.ledger.state import KeyModification, QueryPage, StateReader, VersionedValue
from medalliance.ledger.validation import LIFECYCLE_NAMESPACE

KEPT_MAX = 256  # lifecycle values and namespaces kept per block: far more than a channel defines
_NO_METADATA: Mapping[str, bytes] = types.MappingProxyType({})  # shared: read-only


class MetadataAwareReader(StateReader, Protocol):
    """A state reader that can say whether a namespace has any metadata (both backends can)."""

    def has_metadata(self, namespace: str) -> bool: ...


class CommittedReads:
    """A `StateReader` over one committed state, remembering its lifecycle values and which
    namespaces hold metadata; replace it once the state changes (see the module docstring)."""

    def __init__(self, state: MetadataAwareReader) -> None:
        self._state = state
        self._lifecycle: dict[str, VersionedValue | None] = {}
        self._has_metadata: dict[str, bool] = {}

    def get(self, namespace: str, key: str) -> VersionedValue | None:
        if namespace != LIFECYCLE_NAMESPACE:
            return self._state.get(namespace, key)
        try:
            return self._lifecycle[key]
        except KeyError:
            value = self._state.get(namespace, key)
            if len(self._lifecycle) < KEPT_MAX:
                self._lifecycle[key] = value  # VersionedValue is frozen: safe to share
            return value

    def get_metadata(self, namespace: str, key: str) -> Mapping[str, bytes]:
        if not self.has_metadata(namespace):
            return _NO_METADATA
        return self._state.get_metadata(namespace, key)

    def has_metadata(self, namespace: str) -> bool:
        known = self._has_metadata.get(namespace)
        if known is None:
            known = self._state.has_metadata(namespace)
            if len(self._has_metadata) < KEPT_MAX:
                self._has_metadata[namespace] = known
        return known

    def range(
        self, namespace: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, VersionedValue]]:
        return self._state.range(namespace, start_key, end_key)

    def query(
        self,
        namespace: str,
        query: Mapping[str, Any],
        page_size: int = 0,
        bookmark: str = "",
    ) -> QueryPage:
        return self._state.query(namespace, query, page_size, bookmark)

    def history(self, namespace: str, key: str) -> Sequence[KeyModification]:
        return self._state.history(namespace, key)
