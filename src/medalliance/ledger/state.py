"""World-state types and the narrow interfaces every state backend implements.

The world state maps (namespace, key) to a value and the version (block, tx) that wrote it, plus
the key's metadata (Fabric's `KVMetadataWrite` entries, e.g. `VALIDATION_PARAMETER`: the key's own
endorsement policy); it is always derivable from the block store (architecture §3). Contracts read it through `StateReader`
during simulation; the committer writes whole blocks through `StateStore.apply_block`, atomically.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """The height of the transaction that last wrote a key: (block number, index in block)."""

    block_num: int
    tx_num: int


@dataclass(frozen=True, slots=True)
class VersionedValue:
    value: bytes = field(repr=False)
    version: Version


@dataclass(frozen=True, slots=True)
class KeyModification:
    """One entry of a key's history (Fabric's `queryresult.KeyModification`)."""

    tx_id: str
    version: Version
    timestamp_ms: int
    is_delete: bool
    value: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Write:
    """A write of one valid transaction: `value is None` deletes the key."""

    namespace: str
    key: str
    value: bytes | None = field(repr=False)


# Fabric's metadata entry that holds a key's endorsement policy (a serialized
# SignaturePolicyEnvelope), set by `SetStateValidationParameter`.
VALIDATION_PARAMETER = "VALIDATION_PARAMETER"


@dataclass(frozen=True, slots=True)
class MetadataWrite:
    """A metadata write of one valid transaction (Fabric's `KVMetadataWrite`).

    It replaces the key's whole metadata with `entries` (name → value); no entries clears it.
    Applied after the transaction's value writes, so a key created by the same transaction
    takes it; a key that does not exist afterwards keeps no metadata (as in Fabric).
    """

    namespace: str
    key: str
    entries: tuple[tuple[str, bytes], ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class TxWrites:
    """The writes of one VALID transaction of a block, applied at version (block, tx_num)."""

    tx_num: int
    tx_id: str
    timestamp_ms: int
    writes: tuple[Write, ...]
    metadata: tuple[MetadataWrite, ...] = ()


@dataclass(frozen=True, slots=True)
class QueryPage:
    """One page of a rich query: results in sort order and a bookmark for the next page."""

    results: tuple[tuple[str, VersionedValue], ...]
    bookmark: str


class StateReader(Protocol):
    """Read-only view of committed state, used by simulation and MVCC."""

    def get(self, namespace: str, key: str) -> VersionedValue | None:
        """The committed value of a key, or None if it does not exist (or was deleted)."""
        ...

    def get_metadata(self, namespace: str, key: str) -> Mapping[str, bytes]:
        """The committed metadata entries of a key; empty when it has none or does not exist."""
        ...

    def range(
        self, namespace: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, VersionedValue]]:
        """Keys in [start_key, end_key) in byte order of their UTF-8 encoding.

        An empty `start_key` means from the first key, an empty `end_key` to the last.
        """
        ...

    def query(
        self,
        namespace: str,
        query: Mapping[str, Any],
        page_size: int = 0,
        bookmark: str = "",
    ) -> QueryPage:
        """A CouchDB-style JSON query (`selector`, `sort`, `limit`) over JSON values.

        Raises `InvalidArgument` for a query outside the supported subset.
        """
        ...

    def history(self, namespace: str, key: str) -> Sequence[KeyModification]:
        """Every committed modification of a key, newest first (Fabric's order)."""
        ...


class StateStore(StateReader, Protocol):
    """Committed state plus the one way to change it."""

    @property
    def savepoint(self) -> int:
        """The number of the last block applied, or -1 for an empty state."""
        ...

    def apply_block(self, block_num: int, txs: Sequence[TxWrites]) -> None:
        """Apply the writes of one block's valid transactions and move the savepoint, atomically.

        `block_num` must be `savepoint + 1`; otherwise raises `PreconditionFailed` and changes
        nothing.
        """
        ...

    def close(self) -> None: ...
