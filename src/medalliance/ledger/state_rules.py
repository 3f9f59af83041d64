"""What every world-state backend computes the same way: one definition, so replicas agree. Pure.

SQLite (`sqlite_state`) and PostgreSQL (`postgres_state`) store rows differently but must give the
same answers: the final writes of a block, the state hash that compares replicas, and the pages of
a rich query. The stores do the I/O and hand rows here; nothing in this module touches a database.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medalliance.errors import QuerySyntaxError
from medalliance.ledger.selector import parse_query
from medalliance.ledger.state import QueryPage, TxWrites, VersionedValue

# (value or None for deleted, tx_num) of a key after a block, and its metadata when it changed
FinalWrites = dict[tuple[str, str], tuple[bytes | None, int]]
FinalMetadata = dict[tuple[str, str], tuple[tuple[str, bytes], ...]]
# (ns, key, value, block_num, tx_num) and (ns, key, name, value) rows, in the hash's order
StateRow = tuple[str, str, bytes, int, int]
MetadataRow = tuple[str, str, str, bytes]


@dataclass(frozen=True, slots=True)
class StateExport:
    """A whole world state at block `savepoint`: what a ledger snapshot carries."""

    savepoint: int
    values: tuple[StateRow, ...] = field(repr=False)
    metadata: tuple[MetadataRow, ...] = field(repr=False)

    def digest(self) -> bytes:
        return state_digest(self.values, self.metadata)


def final_writes(
    txs: Sequence[TxWrites], committed: Callable[[str, str], bytes | None]
) -> tuple[FinalWrites, FinalMetadata]:
    """Each key's value after the block and the new metadata of keys whose metadata changed.

    In block order (a later transaction wins), value writes before metadata writes of one
    transaction. Deleting a key drops its metadata; a metadata write gives the key the
    writing transaction's version, as Fabric's does (so a read of it before conflicts), and
    is ignored for a key that does not exist. `committed(ns, key)` is the value before the block.
    """
    final: FinalWrites = {}
    metadata: FinalMetadata = {}
    for tx in txs:
        for w in tx.writes:
            final[(w.namespace, w.key)] = (w.value, tx.tx_num)
            if w.value is None:
                metadata[(w.namespace, w.key)] = ()
        for m in tx.metadata:
            key = (m.namespace, m.key)
            value = final[key][0] if key in final else committed(m.namespace, m.key)
            if value is None:
                continue
            final[key] = (value, tx.tx_num)
            metadata[key] = m.entries
    return final, metadata


def state_digest(values: Iterable[StateRow], metadata: Iterable[MetadataRow]) -> bytes:
    """SHA-256 over every (namespace, key, value, version), then every metadata entry.

    Rows must come ordered by the UTF-8 bytes of (namespace, key[, name]): the backends sort so,
    and equal states then hash equal whichever backend holds them.
    """
    digest = hashlib.sha256()
    for ns, key, value, block_num, tx_num in values:
        for part in (ns.encode(), key.encode(), value, f"{block_num}:{tx_num}".encode()):
            digest.update(len(part).to_bytes(8, "big") + part)
    # Metadata (key-level endorsement policies) is state too; tagged so that it cannot be
    # confused with a value row, and absent metadata leaves the hash as it was.
    for ns, key, name, value in metadata:
        for part in (b"metadata", ns.encode(), key.encode(), name.encode(), value):
            digest.update(len(part).to_bytes(8, "big") + part)
    return digest.digest()


def query_page(
    rows: Iterable[tuple[str, VersionedValue]],
    query: Mapping[str, Any] | str,
    page_size: int = 0,
    bookmark: str = "",
) -> QueryPage:
    """One page of a rich query over a namespace's rows (given in key order).

    Evaluated in Python (selector.py) so every backend has CouchDB's semantics exactly; values
    that are not JSON are skipped. `limit` caps the whole result, `page_size` each page; the
    bookmark is an opaque offset into the sorted result. Raises `QuerySyntaxError` for an
    unsupported query or a bookmark this peer did not return.
    """
    parsed = parse_query(query)
    start = _decode_bookmark(bookmark)
    matches = []
    for key, versioned in rows:
        try:
            document = json.loads(versioned.value)
        except ValueError:
            continue  # only JSON values take part in rich queries
        if parsed.matches(document):
            matches.append((parsed.sort_key(document), key, versioned))
    # Stable sorts, last field first, give a multi-field sort with per-field direction;
    # ties keep key order.
    matches.sort(key=lambda m: m[1])  # code point order is UTF-8 byte order
    for index in reversed(range(len(parsed.sort))):
        matches.sort(key=_sort_field(index), reverse=parsed.sort[index][1])
    limit = parsed.limit or len(matches)
    size = page_size or limit
    page = matches[start : min(start + size, limit)]
    end = start + len(page)
    next_bookmark = _encode_bookmark(end) if end < min(limit, len(matches)) else ""
    return QueryPage(tuple((key, v) for _, key, v in page), next_bookmark)


def _sort_field(index: int) -> Callable[[tuple[tuple[Any, ...], str, VersionedValue]], Any]:
    return lambda match: match[0][index]


def _encode_bookmark(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _decode_bookmark(bookmark: str) -> int:
    if not bookmark:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(bookmark.encode()).decode())
    except ValueError as exc:
        raise QuerySyntaxError("bookmark is not one this peer returned") from exc
    if offset < 0:
        raise QuerySyntaxError("bookmark is not one this peer returned")
    return offset
