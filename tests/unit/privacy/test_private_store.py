"""The private store: one package per record version, and erasure that leaves nothing readable."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from medalliance.errors import Conflict, NotFound
from medalliance.privacy.private_store import PrivateStore


def sealed(n: int) -> tuple[str, bytes]:
    data = b"CIPHERTEXT-MARKER-" + os.urandom(64) + bytes([n])
    return hashlib.sha256(data).hexdigest(), data


def test_versions_are_kept_once_and_read_back(tmp_path: Path) -> None:
    store = PrivateStore.open(tmp_path / "private.db")
    digest, data = sealed(1)
    assert store.put("R-1", 1, digest, data) is True
    assert store.put("R-1", 1, digest, data) is False  # a reconciliation that repeats itself
    other_digest, other = sealed(2)
    with pytest.raises(Conflict, match="already held with other content"):
        store.put("R-1", 1, other_digest, other)
    rewrapped = data + b"-new-wrapped-keys"  # a grant: same ciphertext digest, new wrappings
    with pytest.raises(Conflict, match="already held with other content"):
        store.put("R-1", 1, digest, rewrapped)  # `put` never replaces a held copy
    assert store.get("R-1", 1).sealed == data
    store.replace("R-1", 1, rewrapped)  # only a verified extension does, through `replace`
    assert store.get("R-1", 1).sealed == rewrapped
    store.put("R-1", 2, other_digest, other)
    assert store.versions("R-1") == [1, 2]
    with pytest.raises(NotFound, match="version 3 of record R-1 is not held here"):
        store.get("R-1", 3)


def test_erasure_leaves_no_readable_copy_in_any_file(tmp_path: Path) -> None:
    store = PrivateStore.open(tmp_path / "private.db")
    kept_digest, kept = sealed(9)
    store.put("R-keep", 1, kept_digest, kept)
    erased = [sealed(i) for i in range(3)]
    for version, (digest, data) in enumerate(erased, start=1):
        store.put("R-gone", version, digest, data)
    assert store.erase(["R-gone"]) == 3
    assert store.versions("R-gone") == []
    store.close()
    disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for _, data in erased:
        assert data not in disk
    assert kept in disk  # the other record is untouched
    assert PrivateStore.open(tmp_path / "private.db").get("R-keep", 1).sealed == kept
