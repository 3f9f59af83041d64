"""A content-addressed, chunked document store for large attachments (images, pathology).

Attachments are stored as ciphertext (sealed by `privacy.envelope`), so the store never sees
plaintext. A document is split into chunks of `CHUNK_BYTES`; each chunk is a file named by its
SHA-256, and a manifest (the ordered chunk hashes and the size) is stored under its own SHA-256,
which is the document's address: the hash the ledger records. Reading verifies every chunk and
the manifest, so a corrupted or substituted chunk is an error, never data. Files are written to
a temporary name, fsynced and renamed, so a crash leaves whole files or none. Chunks shared by
several documents are kept until the last one that uses them is deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from medalliance.errors import InvalidArgument, NotFound

CHUNK_BYTES = 1024 * 1024
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class CorruptDocument(InvalidArgument):
    """A stored chunk or manifest does not match its hash."""


class DocumentStore:
    """Documents under `root/{manifests,chunks}/<2 hex>/<64 hex>`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for folder in ("manifests", "chunks"):
            (root / folder).mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes) -> str:
        """Store a document; returns its address (the manifest's SHA-256). Idempotent."""
        chunks = _chunks(data)
        hashes = []
        for chunk in chunks:
            digest = hashlib.sha256(chunk).hexdigest()
            path = self._path("chunks", digest)
            if not path.exists():
                _write_atomically(path, chunk)
            hashes.append(digest)
        manifest = _manifest_bytes(hashes, len(data))
        address = hashlib.sha256(manifest).hexdigest()
        path = self._path("manifests", address)
        if not path.exists():
            _write_atomically(path, manifest)
        return address

    def get(self, address: str) -> bytes:
        """The document at `address`; `NotFound` if absent, `CorruptDocument` if tampered."""
        hashes, size = self._manifest(address)
        parts = []
        for digest in hashes:
            try:
                chunk = self._path("chunks", digest).read_bytes()
            except FileNotFoundError:
                raise CorruptDocument(f"document {address} is missing chunk {digest}") from None
            if hashlib.sha256(chunk).hexdigest() != digest:
                raise CorruptDocument(
                    f"chunk {digest} of document {address} does not match its hash"
                )
            parts.append(chunk)
        data = b"".join(parts)
        if len(data) != size:
            raise CorruptDocument(f"document {address} has {len(data)} bytes, not {size}")
        return data

    def contains(self, address: str) -> bool:
        return self._path("manifests", _checked(address)).exists()

    def delete(self, address: str) -> None:
        """Remove a document and every chunk no other stored document uses (crypto-shredding
        deletes the ciphertext too, not only the key)."""
        hashes, _ = self._manifest(address)
        self._path("manifests", address).unlink()
        still_used = {d for other in self.addresses() for d in self._manifest(other)[0]}
        for digest in set(hashes) - still_used:
            with contextlib.suppress(FileNotFoundError):
                self._path("chunks", digest).unlink()

    def addresses(self) -> Iterator[str]:
        for path in sorted((self.root / "manifests").glob("*/*")):
            if _DIGEST.match(path.name):
                yield path.name

    def _manifest(self, address: str) -> tuple[list[str], int]:
        path = self._path("manifests", _checked(address))
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no document {address} in this store") from None
        if hashlib.sha256(raw).hexdigest() != address:
            raise CorruptDocument(f"the manifest of document {address} does not match its hash")
        try:
            fields = json.loads(raw)
            hashes, size = list(fields["chunks"]), int(fields["size"])
        except (ValueError, KeyError, TypeError):
            raise CorruptDocument(f"the manifest of document {address} is malformed") from None
        if not all(isinstance(h, str) and _DIGEST.match(h) for h in hashes):
            raise CorruptDocument(f"the manifest of document {address} names a bad chunk")
        return hashes, size

    def _path(self, kind: str, digest: str) -> Path:
        return self.root / kind / digest[:2] / digest


def address_of(data: bytes) -> str:
    """The address `put` would give `data`, computed without storing it (to check a document
    against the address the ledger recorded before keeping it)."""
    hashes = [hashlib.sha256(chunk).hexdigest() for chunk in _chunks(data)]
    return hashlib.sha256(_manifest_bytes(hashes, len(data))).hexdigest()


def _chunks(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]


def _checked(address: str) -> str:
    if not _DIGEST.match(address):
        raise InvalidArgument("a document address is 64 lower-case hex characters (a SHA-256)")
    return address


def _manifest_bytes(hashes: list[str], size: int) -> bytes:
    return json.dumps({"chunks": hashes, "size": size}, separators=(",", ":")).encode()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
