"""The auditor's trace of a visit number (就诊号) or a patient's pseudonym.

Every application, referral, record access and settlement of the visit — each with its
transaction id, block and time — read from the commission's audit index (commission_index.py),
as `referral history` and `privacy access-log` show them one contract at a time. Which records
belong to the visit (the sealed summaries, notes and feedback documents) the contracts say: the
`...Ref` fields of the visit's applications and referrals, read as the auditor. A pseudonym is
traced through the visits the supervised hospitals hold for it (visit contract `PatientsAt`).

Only hospitals the commission supervises are traced: a visit elsewhere gets the same answer as
an unknown one, so the trace cannot be used to probe another district.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from medalliance.app.alliance_network import AllianceNetwork
from medalliance.app.audit_queries import Auditor, supervised_hospitals
from medalliance.audit.facts import Fact
from medalliance.errors import InvalidArgument, NotFound
from medalliance.web.services.commission_index import IndexState, followed_index
from medalliance.web.services.commission_staff import commission_caller
from medalliance.web.services.contract_refusal import translated
from medalliance.web.staff import Staff

__all__ = ["Trace", "TraceStep", "VisitNotTraced", "trace"]

_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_PSEUDONYM = re.compile(r"[0-9a-f]{16,64}")
_VISIT_KINDS = (
    "visit.registered", "application.submitted", "application.reviewed", "application.used",
    "referral.created", "referral.accepted", "referral.rejected", "referral.completed",
)  # fmt: skip
_RECORD_KINDS = ("record.shared", "record.accessed", "record.granted", "record.revoked")


class VisitNotTraced(NotFound):
    def __init__(self) -> None:
        super().__init__(
            "no visit or pseudonym with that value among the hospitals your commission "
            "supervises; check the visit number"
        )


@dataclass(frozen=True, slots=True)
class TraceStep:
    kind: str  # a fact kind (docs/audit.md §1), e.g. referral.accepted
    subject: str  # the application, referral, record or visit id
    organization: str  # the MSP id that submitted the transaction
    status: str  # status, action or amount, whichever the step has
    parties: str  # e.g. "SecondaryAMSP → TertiaryAMSP" ("" if none)
    reason_code: str
    visit_no: str
    tx_id: str
    block: int
    at: str  # the transaction's time, ISO 8601 UTC


@dataclass(frozen=True, slots=True)
class Trace:
    query: str
    visits: tuple[str, ...]
    steps: tuple[TraceStep, ...]  # in ledger order
    index: IndexState


def trace(network: AllianceNetwork, staff: Staff, query: str) -> Trace:
    """Every step of a visit (or of each visit of a pseudonym) in ledger order. Raises
    `InvalidArgument` for a malformed query and `VisitNotTraced` when nothing in the
    commission's jurisdiction matches."""
    caller = commission_caller(network, staff)
    query = query.strip()
    if not _ID.fullmatch(query):
        raise InvalidArgument(
            "enter a visit number or a pseudonym (letters, digits and ._-, up to 64 characters)"
        )
    scope = frozenset(supervised_hospitals(network.layout.config, caller.msp_id))
    with followed_index(network, caller.msp_id) as (index, state):
        registered = {
            f.subject: f
            for f in index.facts(["visit.registered"])
            if f.attribute("hospital") in scope
        }
        visits = [query] if query in registered else []
        if not visits and _PSEUDONYM.fullmatch(query):
            visits = [v for v in _visits_of(network, caller, scope, query) if v in registered]
        if not visits:
            raise VisitNotTraced()
        wanted = frozenset(visits)
        facts = [
            f
            for f in index.facts(list(_VISIT_KINDS))
            if (f.subject if f.kind == "visit.registered" else f.attribute("visit_no")) in wanted
        ]
        referrals = sorted({f.subject for f in facts if f.kind.startswith("referral.")})
        if referrals:
            facts += index.facts(["settlement.entry"], subjects=referrals)
        records = _records_of(network, caller, visits)
        if records:
            facts += index.facts(list(_RECORD_KINDS), subjects=records)
    facts.sort(key=lambda f: (f.block, f.tx_index))
    return Trace(query, tuple(visits), tuple(_step(f) for f in facts), state)


def _visits_of(
    network: AllianceNetwork, caller: Auditor, scope: Iterable[str], pseudonym: str
) -> list[str]:
    found = []
    for hospital in sorted(scope):
        raw = translated(
            functools.partial(
                network.evaluate, caller.msp_id, caller.user, "visit", "PatientsAt", hospital
            )
        )
        found += [v["visitNo"] for v in json.loads(raw) if v.get("patientRef") == pseudonym]
    return sorted(found)


def _records_of(network: AllianceNetwork, caller: Auditor, visits: Iterable[str]) -> list[str]:
    """The record ids the visits' applications and referrals name (summaries, notes,
    feedback), as the contracts tell the auditor."""
    refs: set[str] = set()
    for visit in visits:
        for contract, function in (
            ("report", "ApplicationsForVisit"),
            ("referral", "ReferralHistory"),
        ):
            raw = translated(
                functools.partial(
                    network.evaluate, caller.msp_id, caller.user, contract, function, visit
                )
            )
            for item in json.loads(raw):
                refs.update(
                    value
                    for key, value in item.items()
                    if key.endswith("Ref") and key != "patientRef" and isinstance(value, str)
                    and value
                )  # fmt: skip
    return sorted(refs)


def _step(fact: Fact) -> TraceStep:
    a = fact.attribute
    origin = a("from_hospital") or a("hospital") or a("payer") or a("org")
    target = a("to_hospital") or a("target") or a("payee")
    status = a("status") or a("action")
    if fact.kind == "settlement.entry":
        status = f"{a('amount')} {a('currency')}".strip()
    return TraceStep(
        fact.kind, fact.subject, fact.creator_msp, status,
        f"{origin} → {target}" if origin and target else origin or target,
        a("reason_code"), a("visit_no") or (fact.subject if fact.kind == "visit.registered" else ""),
        fact.tx_id, fact.block, fact.timestamp,
    )  # fmt: skip
