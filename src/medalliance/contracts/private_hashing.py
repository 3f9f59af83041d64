"""Fabric's hashing of private data, and where committed hashes live in the state store.

Fabric records a private write on the ledger as SHA-256 of the key's UTF-8 bytes and SHA-256 of
the value; every peer, member of the collection or not, keeps these hashes as versioned state (its
"hashed state"), which is what hashed MVCC and `GetPrivateDataHash` read. Here the hashed state of
collection `c` of contract `ns` is the state namespace `ns$$hc`, keyed by the hex of the key hash
(`$` cannot occur in a contract name, so no contract can write there).
"""

from __future__ import annotations

import hashlib

HASHED_SEPARATOR = "$$h"


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def value_hash(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def hashed_namespace(namespace: str, collection: str) -> str:
    return f"{namespace}{HASHED_SEPARATOR}{collection}"
