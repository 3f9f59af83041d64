"""Who may do what at a hospital, and the bookkeeping every hospital service shares.

The hospital services (hospital_*.py beside this module) are functions over `(backend, staff,
typed input) -> typed result`; pages, the JSON API and the FHIR REST API all call them, so each
decision is made here once. This module owns what they share:

- the two things they need of the web backend and of the signed-in staff member, as protocols
  (`HospitalBackend`, `Staff`), so the services depend on no web framework;
- the role check made before any call (the contracts check again on the chain): referrals are
  the doctors' (the `referral` and `report` contracts allow doctors only), registering a visit
  and sharing resources the doctors' and clerks', settlement the clerks';
- `submit`: a contract call as the staff member, its transaction id and block noted in the
  hospital's store, so a referral's timeline can name the block of every step;
- the hospital's own access log: every view of a patient's clinical data in the local store is
  an access event kept in the hospital's database (docs/web.md, "Hospital pages"); a ledger
  record is opened only by the connector, which logs the decryption on the chain (`LogAccess`).

Never logs a patient's data, a contract argument or a free text; ids, MSP ids and blocks only.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from medalliance.app.alliance_network import AllianceNetwork, Committed
from medalliance.app.hospital_book import HospitalBook
from medalliance.errors import NotFound, PermissionDenied
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.node.config import HOSPITAL_TYPES
from medalliance.web.staff import Staff

__all__ = [
    "CLERK_ROLES",
    "DOCTOR_ROLES",
    "SETTLEMENT_ROLES",
    "HospitalBackend",
    "NotAtThisHospital",
    "RoleRefused",
    "Staff",
    "Written",
    "access_events",
    "evaluate_json",
    "hospital_store",
    "log_access",
    "require_hospital_role",
    "submit",
    "tx_block",
]

DOCTOR_ROLES = ("doctor",)  # referrals, applications, shared results: referral/report contracts
CLERK_ROLES = ("doctor", "clerk")  # visits, resources: visit/resource contracts
SETTLEMENT_ROLES = ("clerk",)  # settlement contract: agreements
ACCESS_KIND = "web.access"  # the hospital's own access log of patient data views


class HospitalBackend(Protocol):
    """What the hospital services need of the web backend (web/backend.py `WebBackend`)."""

    @property
    def network(self) -> AllianceNetwork: ...

    def store(self, org: str) -> ClinicalStore: ...


@dataclass(frozen=True, slots=True)
class Written:
    """Where a write committed: shown with every write (issue 13)."""

    tx_id: str
    block: int


class RoleRefused(PermissionDenied):
    def __init__(self, role: str, action: str, allowed: tuple[str, ...]) -> None:
        super().__init__(
            f"a {role} may not {action}; ask a {' or '.join(allowed)} of your hospital"
        )


class NotAtThisHospital(NotFound):
    """Something this hospital does not hold. The same answer whether it exists elsewhere or not,
    so that another hospital's ids cannot be probed (docs/web.md: 404, not 403)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"no {what} at your hospital; check the id or open it from your lists")


def require_hospital_role(
    backend: HospitalBackend, staff: Staff, action: str, roles: tuple[str, ...]
) -> None:
    """Refuse (`RoleRefused`) staff of a non-hospital or without one of `roles`."""
    org = backend.network.layout.config.organization(staff.msp_id)
    if org.type not in HOSPITAL_TYPES:
        raise RoleRefused(f"{org.type} user", action, ("hospital's staff",))
    if staff.role not in roles:
        raise RoleRefused(staff.role, action, roles)


def hospital_store(backend: HospitalBackend, staff: Staff) -> ClinicalStore:
    """The staff member's own hospital's store: the only one a hospital service ever opens."""
    return backend.store(staff.msp_id)


def submit(
    backend: HospitalBackend, staff: Staff, contract: str, function: str, *args: str
) -> Committed:
    """Call a contract as the staff member; the contract's refusal is its `ContractError`
    (nothing written). The commit's block is noted for the timeline."""
    done = backend.network.submit(staff.msp_id, staff.identity, contract, function, *args)
    HospitalBook(hospital_store(backend, staff)).note_tx(done.tx_id, done.block)
    return done


def evaluate_json(
    backend: HospitalBackend, staff: Staff, contract: str, function: str, *args: str
) -> Any:
    raw = backend.network.evaluate(staff.msp_id, staff.identity, contract, function, *args)
    return json.loads(raw)


def tx_block(store: ClinicalStore, tx_id: str) -> int | None:
    """The block of a transaction this hospital saw (its own writes, the connector's events)."""
    return HospitalBook(store).tx_block(tx_id)


_ACCESS_LOCK = threading.Lock()


def log_access(store: ClinicalStore, staff: Staff, reference: str, view: str) -> None:
    """Note that `staff` viewed `reference` (e.g. "Patient/p1") in the hospital's own access log,
    before the data is shown. Local: the resource never left the hospital."""
    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    with _ACCESS_LOCK:
        store.set_record(
            ACCESS_KIND,
            f"{at}-{secrets.token_hex(4)}",
            {"at": at, "user": staff.username, "identity": staff.identity, "msp": staff.msp_id,
             "reference": reference, "view": view},
        )  # fmt: skip


def access_events(store: ClinicalStore, reference: str | None = None) -> list[dict[str, Any]]:
    """The hospital's access log (of one resource), oldest first."""
    found = [doc for _, doc in store.records(ACCESS_KIND)]
    return sorted(
        (d for d in found if reference is None or d["reference"] == reference),
        key=lambda d: str(d["at"]),
    )
