"""The chunked document store: content addresses, verification on read, safe deletion."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medalliance.errors import InvalidArgument, NotFound
from medalliance.privacy import documents
from medalliance.privacy.documents import CorruptDocument, DocumentStore


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DocumentStore:
    monkeypatch.setattr(documents, "CHUNK_BYTES", 1000)  # several chunks from small test data
    return DocumentStore(tmp_path / "docs")


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 4500], ids=lambda n: f"{n} bytes")
def test_a_document_reads_back_exactly(store: DocumentStore, size: int) -> None:
    data = os.urandom(size)
    address = store.put(data)
    assert documents.address_of(data) == address
    assert store.get(address) == data
    assert store.put(data) == address  # the same content has the same address
    assert store.contains(address)


def test_a_flipped_bit_in_a_chunk_is_detected(store: DocumentStore) -> None:
    address = store.put(os.urandom(2500))
    chunk = next((store.root / "chunks").glob("*/*"))
    raw = bytearray(chunk.read_bytes())
    raw[7] ^= 0x01
    chunk.write_bytes(bytes(raw))
    with pytest.raises(CorruptDocument, match="does not match its hash"):
        store.get(address)


def test_a_substituted_chunk_is_detected(store: DocumentStore) -> None:
    address = store.put(b"a" * 1000 + b"b" * 1000)
    other = store.put(b"c" * 1000)
    chunks = sorted((store.root / "chunks").glob("*/*"))
    assert len(chunks) == 3
    target = next(p for p in chunks if p.read_bytes() == b"b" * 1000)
    target.write_bytes(b"c" * 1000)  # someone swaps in another document's chunk
    with pytest.raises(CorruptDocument):
        store.get(address)
    assert store.get(other) == b"c" * 1000


def test_a_tampered_manifest_is_detected(store: DocumentStore) -> None:
    address = store.put(b"x" * 1500)
    manifest = next((store.root / "manifests").glob("*/*"))
    manifest.write_bytes(manifest.read_bytes().replace(b'"size":1500', b'"size":1000'))
    with pytest.raises(CorruptDocument, match="manifest"):
        store.get(address)


def test_delete_keeps_chunks_other_documents_use(store: DocumentStore) -> None:
    shared = b"s" * 1000
    first = store.put(shared + b"1" * 10)
    second = store.put(shared + b"2" * 10)
    store.delete(first)
    assert not store.contains(first)
    assert store.get(second) == shared + b"2" * 10
    store.delete(second)
    assert list((store.root / "chunks").glob("*/*")) == []
    with pytest.raises(NotFound):
        store.get(second)


@pytest.mark.parametrize("address", ["", "abc", "../../etc/passwd", "G" * 64])
def test_a_malformed_address_is_refused_before_touching_the_disk(
    store: DocumentStore, address: str
) -> None:
    with pytest.raises(InvalidArgument, match="64 lower-case hex"):
        store.get(address)
