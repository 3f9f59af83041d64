"""What one peer holds of the alliance's sealed packages, checked against the ledger.

A package (and its sealed attachments) is kept only when the committed `records` state has that
version, the record is not erased, this peer's organisation is authorised, and the ciphertexts
hash to what the ledger recorded — so nobody can plant data and the sender needs no trust. On a
committed `ErasureApproved` every held version of the erased records is deleted. Used by the
peer's `medalliance.PrivateData` service and, without a network in between, by the embedded
network. Stores: `packages.db` (sealed packages) and `documents/` (sealed attachments, chunked).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabric_protos.common import common_pb2

from medalliance.alliance.records import RecordsContract, record_key, version_key
from medalliance.errors import InvalidArgument, NotFound, PermissionDenied, PreconditionFailed
from medalliance.ledger.state import StateReader
from medalliance.ledger.tx import parse_chaincode_event
from medalliance.ledger.validation import VALID, BlockResult
from medalliance.privacy.documents import DocumentStore, address_of
from medalliance.privacy.envelope import SealedPackage
from medalliance.privacy.private_store import PrivateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Held:
    """A version as peers exchange it: the sealed package and its sealed attachments."""

    sealed: bytes = field(repr=False)
    attachments: tuple[bytes, ...] = field(repr=False)


class PackageHolding:
    """One peer's sealed packages and attachments, and the ledger checks that guard them."""

    def __init__(self, msp_id: str, directory: Path, state: Callable[[], StateReader]) -> None:
        self.msp_id = msp_id
        self._store = PrivateStore.open(directory / "packages.db")
        self._documents = DocumentStore(directory / "documents")
        self._state = state  # the committed state of the channel whose `records` decide

    def close(self) -> None:
        self._store.close()

    def committed(self, record_id: str, version: int) -> dict[str, Any]:
        """The committed version with the record's current rights (`currentlyAuthorised`)."""
        state = self._state()
        record = state.get(RecordsContract.name, record_key(record_id))
        entry = state.get(RecordsContract.name, version_key(record_id, version))
        if record is None or entry is None:
            raise NotFound(f"version {version} of record {record_id} is not committed")
        found: dict[str, Any] = json.loads(entry.value)
        current = json.loads(record.value)
        if current["erased"]:
            raise PreconditionFailed(f"record {record_id} was erased")
        found["currentlyAuthorised"] = current["authorised"]
        return found

    def keep(self, held: Held) -> SealedPackage:
        """Verify a sealed package and its attachments against the ledger, then store them."""
        package = SealedPackage.from_bytes(held.sealed)
        entry = self.committed(package.record_id, package.version)
        if self.msp_id not in entry["currentlyAuthorised"]:
            raise PermissionDenied(
                f"{self.msp_id} is not authorised for record {package.record_id}; not kept"
            )
        if package.digest != entry["digest"]:
            raise InvalidArgument(
                f"package of record {package.record_id} v{package.version} does not match "
                "the digest on the ledger"
            )
        if sorted(address_of(a) for a in held.attachments) != sorted(entry["attachments"]):
            raise InvalidArgument(
                f"attachments of record {package.record_id} v{package.version} do not match "
                "the addresses on the ledger"
            )
        for attachment in held.attachments:
            self._documents.put(attachment)
        self._store.put(package.record_id, package.version, package.digest, package.to_bytes())
        return package

    def get(self, entry: dict[str, Any]) -> Held:
        """What this peer holds of a committed version (`NotFound` if it holds nothing)."""
        held = self._store.get(entry["recordId"], int(entry["version"]))
        return Held(held.sealed, tuple(self._documents.get(a) for a in entry["attachments"]))

    def serve(self, org: str, record_id: str, version: int) -> Held:
        """The version for a requester of `org`, if its organisation is currently authorised."""
        entry = self.committed(record_id, version)
        if org not in entry["currentlyAuthorised"]:
            raise PermissionDenied(f"{org} is not authorised for record {record_id}")
        return self.get(entry)

    def committed_block(self, block: common_pb2.Block, result: BlockResult) -> None:
        """Commit listener: on an approved erasure, delete every held version of the erased
        records, packages and attachment chunks (the hashes stay on the ledger)."""
        del block
        for tx in result.txs:
            if tx.code != VALID or tx.chaincode != RecordsContract.name or not tx.event:
                continue
            event = parse_chaincode_event(tx.event)
            if event.event_name != "ErasureApproved":
                continue
            records = [str(r) for r in json.loads(event.payload)["records"]]
            for address in self._attachments_of(records):
                with contextlib.suppress(NotFound):
                    self._documents.delete(address)
            deleted = self._store.erase(records)
            log.info("private data erased", extra={"records": len(records), "versions": deleted})

    def _attachments_of(self, record_ids: list[str]) -> set[str]:
        state = self._state()
        found = set()
        for record_id in record_ids:
            for version in self._store.versions(record_id):
                entry = state.get(RecordsContract.name, version_key(record_id, version))
                if entry is not None:
                    found.update(json.loads(entry.value)["attachments"])
        return found
