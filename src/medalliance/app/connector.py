"""The hospital connector: from the chain's referral events into the hospital's clinical store.

Paper fig. 5: "B reads the referral through the contract and syncs it into its local database".
The connector reads committed blocks from its own organisation's peer, takes the `referral`
contract's events of VALID transactions, and for a referral addressed to its hospital fetches
the sealed package through the privacy module (its own peer, which holds or reconciles it),
opens it with the hospital's key, reads it as a BSeR referral Bundle (`read_referral_bundle`),
checks that it is the referred patient's, logs the decryption on the chain for the regulator,
and imports it with a Provenance (app/referral_import.py). It keeps the referral's record and
local Task status in step with the chain for referrals its hospital made or received. When a
block's VALID writes put a record into the erased state (`privacy.record_ledger`: committed
writes, never an event), what was imported from that record is deleted from the hospital's
store (`erase_imported`; docs/privacy.md §4).

Exactly once, even across restarts: the import and the referral's record are one store
transaction, and the last finished block is stored after each block, so a replay skips what is
done.

A bad package never blocks the queue (`app/quarantine.py`): a fault of the package itself
quarantines that referral with its reason, written with the block's checkpoint, and the sync goes
on; `retry` tries one again. A fault on the way to it (peer down) stops the sync before the block.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fabric_protos.common import common_pb2

from medalliance.alliance.records import RecordsContract
from medalliance.alliance.referral import ReferralContract
from medalliance.app.alliance_network import AllianceNetwork
from medalliance.app.hospital_book import HospitalBook, Referral
from medalliance.app.packages import open_as
from medalliance.app.pseudonyms import PseudonymClient
from medalliance.app.quarantine import (
    PERMANENT,
    TRANSIENT,
    PackageRefused,
    Quarantined,
    now_iso,
    stopped_before,
)
from medalliance.app.referral_import import (
    erase_imported,
    follow_status,
    import_feedback,
    import_referral,
)
from medalliance.errors import ContractError, InvalidArgument, NotFound
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import patient_identity
from medalliance.hospital.referral_bundle import ReferralPackage, read_referral_bundle
from medalliance.ledger.block import transactions_filter
from medalliance.ledger.block_events import VALID, chaincode_events
from medalliance.ledger.tx import (
    ENDORSER_TRANSACTION,
    MalformedTransaction,
    parse_envelope,
    parse_rwset,
)
from medalliance.privacy import record_ledger
from medalliance.privacy.envelope import SealedPackage

log = logging.getLogger(__name__)

FOLLOWED = {
    "ReferralAccepted": "ACCEPTED",
    "ReferralRejected": "REJECTED",
    "ReferralCompleted": "COMPLETED",
}


@dataclass(slots=True)
class SyncReport:
    imported: list[str] = field(default_factory=list)  # referral ids written into the store
    noted: list[str] = field(default_factory=list)  # own outgoing referrals noted
    updated: list[tuple[str, str]] = field(default_factory=list)  # (referral id, new status)
    erased: list[str] = field(default_factory=list)  # records whose imported copy was deleted
    confirmed: list[str] = field(default_factory=list)  # deletion receipts this sync filed
    quarantined: list[str] = field(default_factory=list)  # referrals whose package was refused
    last_block: int = -1


class Connector:
    """One hospital's connector, acting as one of its users."""

    def __init__(
        self,
        network: AllianceNetwork,
        org: str,
        user: str,
        store: ClinicalStore,
        pseudonyms: PseudonymClient | None = None,
    ) -> None:
        self._network = network
        self._org = org
        self._msp_id = network.layout.config.organization(org).msp_id
        self._user = user
        self._store = store
        self._db = HospitalBook(store)
        self._pseudonyms = pseudonyms  # None: only the package's own reference is compared

    def sync(
        self, until: int | None = None, on_change: Callable[[SyncReport], None] | None = None
    ) -> SyncReport:
        """Process the blocks after the last finished one, through `until` (None: the current
        height when embedded, forever over the network)."""
        report = SyncReport(last_block=self._db.last_block())
        for block in self._network.blocks(self._org, report.last_block + 1, until):
            number = int(block.header.number)
            refused: list[Quarantined] = []
            for event in chaincode_events(block, ReferralContract.name):
                self._handle(
                    event.event_name, json.loads(event.payload), event.tx_id, number, report,
                    refused,
                )  # fmt: skip
            for record_id in record_ledger.erased_records(_valid_writes(block)):
                if erase_imported(self._store, record_id):
                    report.erased.append(record_id)
                    log.info("imported copy erased", extra={"record": record_id, "block": number})
                if self._confirm_erasure(record_id):
                    report.confirmed.append(record_id)
            self._db.set_last_block(number, refused)  # with the block's quarantine entries
            report.quarantined.extend(entry.referral_id for entry in refused)
            report.last_block = number
            if on_change is not None:
                on_change(report)
        return report

    def retry(self, referral_id: str) -> None:
        """Fetch, open and import a quarantined referral (or feedback) again; on success it
        leaves the quarantine in the import's transaction. `PackageRefused` (with the new
        attempt noted) if the package is still at fault; a transient fault changes nothing."""
        entries = self._db.quarantined(referral_id)
        if not entries:
            raise NotFound(
                f"referral {referral_id} is not quarantined at {self._msp_id}; "
                "see `medalliance connector failures`"
            )
        entry = entries[0]
        try:
            self._fetch_and_import(entry.event, entry.tx_id, entry.block)
        except _PackageFault as fault:
            self._db.quarantine(entry.attempted(fault.reason, now_iso()))
            log.warning("quarantined referral refused again", extra={"referral": referral_id})
            raise PackageRefused(referral_id, fault.reason) from fault.__cause__

    def _handle(
        self,
        name: str,
        event: dict[str, str],
        tx_id: str,
        block: int,
        report: SyncReport,
        refused: list[Quarantined],
    ) -> None:
        referral_id = event["referralId"]
        if self._msp_id in (event["fromHospital"], event["toHospital"]):
            self._db.note_tx(tx_id, block)  # the block of each step, for the referral's timeline
        if name == "ReferralCreated" and event["toHospital"] == self._msp_id:
            if self._db.has_referral(referral_id) or self._db.quarantined(referral_id):
                return
            if self._attempt(event, tx_id, block, refused):
                report.imported.append(referral_id)
        elif name == "ReferralCreated" and event["fromHospital"] == self._msp_id:
            if self._db.note_referral(_referral(event, "outgoing", tx_id, block)):
                report.noted.append(referral_id)
        elif name in FOLLOWED:
            if follow_status(self._store, referral_id, FOLLOWED[name]):
                report.updated.append((referral_id, FOLLOWED[name]))
            if _is_feedback(name, event, self._msp_id) and self._feedback_pending(referral_id):
                on_chain = json.loads(
                    self._network.evaluate(
                        self._org, self._user, ReferralContract.name, "GetReferral", referral_id
                    )
                )  # the feedback's record id, for the quarantine entry should it be refused
                feedback = {"event": name, "feedbackRef": str(on_chain.get("feedbackRef") or "")}
                self._attempt({**event, **feedback}, tx_id, block, refused)

    def _attempt(
        self, event: dict[str, str], tx_id: str, block: int, refused: list[Quarantined]
    ) -> bool:
        """Import what the event brings; False (and a quarantine entry for the block's
        checkpoint) if its package is at fault. A transient fault stops the sync here."""
        referral_id = event["referralId"]
        try:
            self._fetch_and_import(event, tx_id, block)
        except TRANSIENT as exc:
            raise stopped_before(exc, block, referral_id) from exc
        except _PackageFault as fault:
            at = now_iso()
            record_id = event.get("feedbackRef") or event["clinicalRef"]
            entry = Quarantined(
                referral_id, record_id, tx_id, block, fault.reason, at, at, dict(event)
            )
            refused.append(entry)
            log.warning("referral quarantined", extra={"referral": referral_id, "block": block})
            return False
        return True

    def _fetch_and_import(self, event: dict[str, str], tx_id: str, block: int) -> None:
        if event.get("event") == "ReferralCompleted":
            self._import_feedback(event, tx_id, block)
        else:
            self._import(event, tx_id, block)

    def _feedback_pending(self, referral_id: str) -> bool:
        return self._db.referral(referral_id) is not None and not (
            self._db.feedback_imported(referral_id) or self._db.quarantined(referral_id)
        )

    def _confirm_erasure(self, record_id: str) -> bool:
        """File the hospital's deletion receipt for an erased record it held: its imported copy
        is gone (just above) and its peer, which committed the block first, holds no version.
        False when it never held the record, or its receipt is on the ledger already."""
        record = json.loads(
            self._network.evaluate(
                self._org, self._user, RecordsContract.name, "GetRecord", record_id
            )
        )
        if not record["erased"] or self._msp_id not in record.get("holders", record["authorised"]):
            return False
        held = self._network.holds(self._org, self._user, record_id)
        if held:
            log.warning("erased record still held", extra={"record": record_id, "versions": held})
            return False
        try:
            self._network.submit(
                self._org, self._user, RecordsContract.name, "ConfirmErasure", record_id
            )
        except ContractError as exc:
            if exc.status_code == 409:  # confirmed already (an earlier sync, or `--confirm`)
                return False
            raise
        log.info("deletion receipt filed", extra={"record": record_id})
        return True

    def _import(self, event: dict[str, str], tx_id: str, block: int) -> None:
        referral_id, record_id = event["referralId"], event["clinicalRef"]
        on_chain = json.loads(
            self._network.evaluate(
                self._org, self._user, ReferralContract.name, "GetReferral", referral_id
            )
        )
        clinical = self._open(record_id)
        with _package_fault():
            package = read_referral_bundle(clinical, referral_id=referral_id)
            self._check_parties(package, event)
            self._check_patient(package, on_chain["patientRef"], referral_id)
            import_referral(
                self._store, _referral(event, "incoming", tx_id, block), package,
                channel=self._network.channel, recorded=now_iso(),
            )  # fmt: skip
        if on_chain.get("status", "REFERRED") != "REFERRED":  # a retry after the chain moved on
            follow_status(self._store, referral_id, str(on_chain["status"]))
        log.info("referral imported", extra={"referral": referral_id, "block": block})

    def _open(self, record_id: str) -> bytes:
        """The record's latest version, fetched through the own peer and opened (faults of the
        package: `_PackageFault`), its decryption logged on the chain; the plaintext."""
        record = json.loads(
            self._network.evaluate(
                self._org, self._user, RecordsContract.name, "GetRecord", record_id
            )
        )
        version = int(record["version"])
        with _package_fault():
            held = self._network.pull(self._org, self._user, record_id, version)
            clinical, _ = open_as(
                self._network.layout, self._org, SealedPackage.from_bytes(held.sealed),
                held.attachments,
            )  # fmt: skip
        # Every decryption is an access event the regulator sees, logged before the data is used.
        self._network.submit(
            self._org, self._user, RecordsContract.name, "LogAccess", record_id, str(version),
            "decrypt",
        )  # fmt: skip
        return clinical

    def _import_feedback(self, event: dict[str, str], tx_id: str, block: int) -> None:
        """The feedback (or discharge) Bundle the target sealed for this hospital when it
        completed the referral: imported under `feedback:<referral>` with its Task's status."""
        referral_id = event["referralId"]
        on_chain = json.loads(
            self._network.evaluate(
                self._org, self._user, ReferralContract.name, "GetReferral", referral_id
            )
        )
        record_id = str(on_chain.get("feedbackRef") or "")
        if not record_id:
            self._db.note_feedback(referral_id, "")
            return
        clinical = self._open(record_id)
        with _package_fault():
            package = read_referral_bundle(clinical, referral_id=referral_id)
            self._check_parties(package, event)
            if package.patient_ref != on_chain["patientRef"]:
                raise InvalidArgument(
                    f"the feedback of referral {referral_id} is not the referred patient's; "
                    "not imported"
                )
            import_feedback(self._store, referral_id, record_id, package)
        log.info("feedback imported", extra={"referral": referral_id, "block": block})

    def _check_patient(self, package: ReferralPackage, patient_ref: str, referral_id: str) -> None:
        """The Bundle's Patient carries the chain's patientRef, and the pseudonym service derives
        that same pseudonym from the identity it carries (unless no service is configured)."""
        identity = patient_identity(package.patient)
        derived = (
            self._pseudonyms.pseudonym(*identity)
            if self._pseudonyms is not None and identity is not None
            else None
        )
        missing = self._pseudonyms is not None and identity is None
        if package.patient_ref != patient_ref or derived not in (None, patient_ref) or missing:
            raise InvalidArgument(
                f"the clinical package of referral {referral_id} is not the referred patient's; "
                "not imported"
            )

    def _check_parties(self, package: ReferralPackage, event: dict[str, str]) -> None:
        """The Bundle's Task names the chain's hospitals: requester = origin, owner = target."""
        if (package.requester, package.owner) != (event["fromHospital"], event["toHospital"]):
            raise InvalidArgument(
                f"the package of referral {event['referralId']} names requester "
                f"{package.requester or '?'} and owner {package.owner or '?'}, not the chain's "
                f"{event['fromHospital']} and {event['toHospital']}; not imported"
            )


class _PackageFault(Exception):
    """A fault of the package itself (one of `quarantine.PERMANENT`), raised only around the
    steps that read the package, so a refusal of our own calls never quarantines a referral."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextmanager
def _package_fault() -> Iterator[None]:
    try:
        yield
    except PERMANENT as exc:
        raise _PackageFault(f"{type(exc).__name__}: {exc}") from exc


def _valid_writes(block: common_pb2.Block) -> Iterator[tuple[str, str, bytes | None]]:
    """(namespace, key, value) of every write of the block's VALID endorser transactions."""
    codes = transactions_filter(block)
    for index, data in enumerate(block.data.data):
        if index >= len(codes) or codes[index] != VALID:
            continue
        try:
            view = parse_envelope(bytes(data))
            if view.header.header_type != ENDORSER_TRANSACTION:
                continue
            rwsets = parse_rwset(view.endorser_tx().rwset)
        except MalformedTransaction:
            continue  # a VALID transaction always parses; nothing to learn from one that does not
        for namespace, kv in rwsets:
            for write in kv.writes:
                yield namespace, str(write.key), None if write.is_delete else bytes(write.value)


def _is_feedback(name: str, event: dict[str, str], msp_id: str) -> bool:
    """A completion of a referral this hospital made: the target sealed feedback for it."""
    return name == "ReferralCompleted" and event["fromHospital"] == msp_id


def _referral(event: dict[str, str], side: str, tx_id: str, block: int) -> Referral:
    counterpart = event["fromHospital"] if side == "incoming" else event["toHospital"]
    return Referral(
        referral_id=event["referralId"],
        visit_no=event["visitNo"],
        side=side,
        counterpart=counterpart,
        direction=event["direction"],
        record_id=event["clinicalRef"],
        tx_id=tx_id,
        block=block,
    )
