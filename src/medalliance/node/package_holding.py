"""What one peer holds of the alliance's sealed packages, checked against the ledger.

A package (and its sealed attachments) is kept only when the committed record registry has that
version, the record is not erased, this peer's organisation is authorised, the ciphertext hashes
to the committed digest and every wrapped key is the one committed for its organisation
(`privacy.record_ledger`) — so nobody can plant or swap data and the sender needs no trust. A
held copy is never replaced by a different one, except by an extension that keeps every held
wrapped key (a grant). When a block's VALID writes put a record into the erased state, every
held version of it and its attachment chunks are deleted: side effects follow committed state,
never an event. What a committed record means is the privacy module's; this shell only reads
the channel's state and is fed each committed block's valid writes. Used by the peer's
`medalliance.PrivateData` service and, without a network in between, by the embedded network.
Stores: `packages.db` (sealed packages) and `documents/` (sealed attachments, chunked).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fabric_protos.common import common_pb2

from medalliance.errors import InvalidArgument, NotFound, PermissionDenied, PreconditionFailed
from medalliance.ledger.state import StateReader
from medalliance.ledger.validation import VALID, BlockResult
from medalliance.node.channel import PeerChannel
from medalliance.privacy import record_ledger
from medalliance.privacy.documents import DocumentStore, address_of
from medalliance.privacy.envelope import SealedPackage
from medalliance.privacy.private_store import PrivateStore
from medalliance.privacy.record_ledger import CommittedVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Held:
    """A version as peers exchange it: the sealed package and its sealed attachments."""

    sealed: bytes = field(repr=False)
    attachments: tuple[bytes, ...] = field(repr=False)


class PackageHolding:
    """One peer's sealed packages and attachments, and the ledger checks that guard them."""

    def __init__(
        self,
        msp_id: str,
        directory: Path,
        state: Callable[[], StateReader],
    ) -> None:
        self.msp_id = msp_id
        self._store = PrivateStore.open(directory / "packages.db")
        self._documents = DocumentStore(directory / "documents")
        self._state = state  # the committed state of the channel whose record registry decides

    def close(self) -> None:
        self._store.close()

    def lookup(self, key: str) -> bytes | None:
        """A committed value of the record registry (`privacy.record_ledger.Lookup`)."""
        found = self._state().get(record_ledger.NAMESPACE, key)
        return None if found is None else found.value

    def committed(self, record_id: str, version: int) -> CommittedVersion:
        """The committed version with the record's current rights."""
        return record_ledger.committed_version(self.lookup, record_id, version)

    def keep(self, held: Held) -> SealedPackage:
        """Verify a sealed package and its attachments against the ledger, then store them.

        Idempotent: a copy already held stays, unless `held` extends it (same ciphertext and
        every held wrapped key, plus keys a grant committed). Returns the package now held.
        """
        package = SealedPackage.from_bytes(held.sealed)
        entry = self.committed(package.record_id, package.version)
        record_ledger.check_package(entry, package, self.msp_id)
        if sorted(address_of(a) for a in held.attachments) != sorted(entry.attachments):
            raise InvalidArgument(
                f"attachments of record {package.record_id} v{package.version} do not match "
                "the addresses on the ledger"
            )
        for attachment in held.attachments:
            self._documents.put(attachment)
        with contextlib.suppress(NotFound):
            current = SealedPackage.from_bytes(
                self._store.get(package.record_id, package.version).sealed
            )
            if not package.extends(current) or package == current:
                return current  # never replace a held copy with one that drops or swaps a key
            self._store.replace(package.record_id, package.version, package.to_bytes())
            return package
        self._store.put(package.record_id, package.version, package.digest, package.to_bytes())
        return package

    def get(self, entry: CommittedVersion) -> Held:
        """What this peer holds of a committed version (`NotFound` if it holds nothing)."""
        held = self._store.get(entry.record_id, entry.version)
        return Held(held.sealed, tuple(self._documents.get(a) for a in entry.attachments))

    def serve(self, org: str, record_id: str, version: int) -> Held:
        """The version for a requester of `org`, if its organisation is currently authorised."""
        entry = self.committed(record_id, version)
        if org not in entry.authorised:
            raise PermissionDenied(f"{org} is not authorised for record {record_id}")
        return self.get(entry)

    def committed_block(self, block: common_pb2.Block, result: BlockResult) -> None:
        """Commit listener: when the block's VALID writes erased records, delete every held
        version of them, packages and attachment chunks (the hashes stay on the ledger).

        Only committed writes count, and each erasure is confirmed against the committed
        state: a transaction that merely emits an erasure event deletes nothing.
        """
        del block
        writes = (
            (w.namespace, w.key, w.value)
            for tx in result.txs
            if tx.code == VALID
            for w in tx.writes
        )
        self._erase([r for r in record_ledger.erased_records(writes) if self._is_erased(r)])

    def follow(self, ledger: PeerChannel) -> None:
        """Follow a channel's commits from now on, after deleting what its committed state
        already erased: blocks committed while no listener ran (a crash between a block's state
        write and its listener, a replay at start-up, a restored backup) erase here."""
        ledger.add_listener(self.committed_block)
        self.reconcile()

    def reconcile(self) -> int:
        """Delete every held record the committed state says is erased; returns how many."""
        return self._erase([r for r in self._store.record_ids() if self._is_erased(r)])

    def _erase(self, records: list[str]) -> int:
        if not records:
            return 0
        for address in self._attachments_of(records):
            with contextlib.suppress(NotFound):
                self._documents.delete(address)
        deleted = self._store.erase(records)
        log.info("private data erased", extra={"records": len(records), "versions": deleted})
        return len(records)

    def versions_held(self, record_id: str) -> int:
        """How many versions of a record this peer holds (0 after its erasure)."""
        return len(self._store.versions(record_id))

    def _is_erased(self, record_id: str) -> bool:
        try:
            record_ledger.committed_version(self.lookup, record_id, 1)
        except PreconditionFailed:
            return True
        except NotFound:
            return False
        return False

    def _attachments_of(self, record_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for record_id in record_ids:
            for version in self._store.versions(record_id):
                raw = self.lookup(record_ledger.version_key(record_id, version))
                if raw is not None:
                    found.update(json.loads(raw)["attachments"])
        return found
