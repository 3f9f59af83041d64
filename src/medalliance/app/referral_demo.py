"""The paper's referral workflow (fig. 5), end to end, on any `AllianceNetwork`.

Secondary hospital A admits a patient and registers the visit; its doctor seals the clinical
summary — with the reason for the referral — for tertiary hospital B and the district commission
C and applies twice; C rejects one application (a reason code and a sealed note for A) and
approves the other; A refers the patient with the approved one (reusing it is refused); B's
connector imports the referral into B's own database, exactly once; B accepts and completes the
referral with a sealed feedback document, and the A–B benefit-sharing agreement settles it; B
refers the patient back down for rehabilitation and A's connector imports B's discharge summary;
finally the city commission traces the whole history. Each step is reported through `on_step`.

Patient identities and clinical text live only in the hospitals' databases (`hospitals/<MSP>.db`
in the network folder) and in sealed packages; the chain sees visit numbers, pseudonyms, hashes,
reason codes and decisions (docs/privacy.md §5). `Narrative` holds a run's clinical free text.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medalliance.app.alliance_network import AllianceNetwork
from medalliance.app.connector import Connector
from medalliance.app.hospital_db import HospitalDatabase
from medalliance.app.packages import seal_package
from medalliance.app.pseudonyms import PseudonymClient, pseudonym_client
from medalliance.errors import ContractError, NotFound
from medalliance.node.config import NetworkConfig
from medalliance.node.embedded import utc_now
from medalliance.node.package_holding import Held
from medalliance.privacy.documents import address_of
from medalliance.privacy.masking import mask_name

DOCTOR, CLERK, REVIEWER, AUDITOR = "User1", "Clerk1", "Reviewer1", "Auditor1"
# GB 11643's own example number: synthetic, valid check digit; never a real person.
DEMO_PATIENT = {
    "name": "张三",
    "sex": "M",
    "birthDate": "1949-12-31",
    "idNumber": "11010519491231002X",
}
NOTE_SCHEMA = "medalliance.note/1"  # a sealed note or feedback document: {schema, kind, text}
TERMS = {"UP": {"amountCents": 5000, "payer": "target"}, "DOWN": {"amountCents": 2000, "payer": "origin"}}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the scenario did, and what came of it."""

    title: str
    outcome: str
    ok: bool = True
    detail: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Narrative:
    """The clinical free text of one run: sealed into packages, never a contract argument."""

    reason: str = field(repr=False)  # why A refers the patient: in the sealed summary
    review_note: str = field(repr=False)  # C's note on the rejection, sealed for A
    outcome_up: str = field(repr=False)  # B's feedback on completing the upward referral
    outcome_down: str = field(repr=False)  # A's feedback on completing the downward one


DEMO_NARRATIVE = Narrative(
    reason="PCI for acute myocardial infarction",
    review_note="TertiaryB has no cath lab slot this week; apply to TertiaryA",
    outcome_up="PCI done, one stent, stable; rehabilitation at the community hospital",
    outcome_down="rehabilitation done, discharged home",
)


@dataclass(frozen=True, slots=True)
class Roles:
    secondary: str  # A: MSP ids
    tertiary: str  # B
    other_tertiary: str
    regulator: str  # C, A's supervising regulator
    top: str  # the regulator at the top of C's hierarchy

    @classmethod
    def of(cls, config: NetworkConfig) -> Roles:
        by_type: dict[str, list[str]] = {}
        for org in config.organizations:
            by_type.setdefault(org.type, []).append(org.msp_id)
        secondary, tertiary = by_type.get("secondary", []), by_type.get("tertiary", [])
        if not secondary or len(tertiary) < 2:
            raise NotFound("the referral demo needs a secondary and two tertiary hospitals")
        a = config.organization(secondary[0])
        if not a.regulator:
            raise NotFound(f"{a.name} has no supervising regulator in the config")
        regulator = config.organization(a.regulator)
        top = regulator
        while top.parent:
            top = config.organization(top.parent)
        return cls(secondary[0], tertiary[0], tertiary[1], regulator.msp_id, top.msp_id)


def run_referral(
    network: AllianceNetwork,
    on_step: Callable[[Step], None],
    narrative: Narrative = DEMO_NARRATIVE,
) -> list[Step]:
    """Run the workflow once (fresh ids each run); returns every step."""
    steps: list[Step] = []

    def report(title: str, outcome: str, ok: bool = True, detail: tuple[str, ...] = ()) -> None:
        steps.append(Step(title, outcome, ok, detail))
        on_step(steps[-1])

    roles = Roles.of(network.layout.config)
    a, b, c = roles.secondary, roles.tertiary, roles.regulator
    run = secrets.token_hex(3)
    visit, app_no, app_yes = f"V-{run}", f"APP-{run}-1", f"APP-{run}-2"
    up, down, summary, discharge = f"REF-{run}-UP", f"REF-{run}-DOWN", f"R-{run}-1", f"R-{run}-2"
    note, feedback_up, feedback_down = f"N-{run}-1", f"F-{run}-UP", f"F-{run}-DOWN"
    dbs = {msp: _database(network, msp) for msp in (a, b)}
    # Each hospital asks the regulator's pseudonym service, caching in its own database.
    clients = {
        msp: pseudonym_client(network, msp, DOCTOR, database_path(network, msp)) for msp in (a, b)
    }
    try:
        # 1. A admits the patient: identity in A's database, only the pseudonym on the chain.
        ref = clients[a].pseudonym("resident-id", DEMO_PATIENT["idNumber"])
        _admit(dbs[a], ref, visit)
        done = network.submit(a, DOCTOR, "visit", "RegisterVisit", visit, ref, a)
        report(
            f"{a} admits a patient and registers visit {visit}",
            f"block {done.block}; on the chain only pseudonym {ref[:8]}…, the identity stays in "
            f"{a}'s database",
        )
        # 2. The clinical summary with the reason for the referral, sealed for B and the
        #    regulator (the privacy module): the reason is never a contract argument.
        exported = _with_reason(dbs[a].export_visit(visit), narrative.reason)
        size = _share(network, a, DOCTOR, [b], summary, ref, exported)
        report(
            f"{a} seals the clinical summary {summary} for {b} and {c}",
            f"{size}; the ledger keeps its SHA-256, peers of {a}, {b} and {c} hold the ciphertext",
        )
        # 3. Two applications (上报申请) to the regulator: one rejected, one approved.
        for app_id, target in ((app_no, roles.other_tertiary), (app_yes, b)):
            network.submit(a, DOCTOR, "report", "SubmitApplication", app_id, visit, target, summary)
        seal_note(network, c, REVIEWER, [a], note, ref, "review-note", narrative.review_note)
        network.submit(c, REVIEWER, "report", "ReviewApplication", app_no, "REJECTED",
                       "TARGET_NO_CAPACITY", note)  # fmt: skip
        _refused(
            report,
            f"{a} refers with the rejected {app_no}",
            lambda: network.submit(
                a,
                DOCTOR,
                "referral",
                "Refer",
                up,
                app_no,
                visit,
                a,
                roles.other_tertiary,
                "UP",
                summary,
            ),
        )
        network.submit(c, REVIEWER, "report", "ReviewApplication", app_yes, "APPROVED", "", "")
        report(f"{c} reviews both applications",
               f"{app_no} REJECTED (TARGET_NO_CAPACITY, sealed note {note} for {a}), "
               f"{app_yes} APPROVED")  # fmt: skip
        # 4. The benefit-sharing agreement between A and B, signed by both.
        report(f"{a} and {b} agree on benefit sharing", _agreement(network, a, b))
        # 5. A refers the patient up; from then on the patient is B's, not A's, to refer.
        done = network.submit(
            a, DOCTOR, "referral", "Refer", up, app_yes, visit, a, b, "UP", summary
        )
        report(f"{a} refers visit {visit} to {b} ({up})",
               f"block {done.block}: {app_yes} used, the patient is now at {b}")  # fmt: skip
        _refused(
            report,
            f"{a} refers the same patient again",
            lambda: network.submit(
                a, DOCTOR, "referral", "Refer", f"{up}-2", app_yes, visit, a, b, "UP", summary
            ),
        )
        # 6. B's connector brings the referral into B's database, exactly once.
        referred = done.block  # the connectors read through the referral's block
        _sync(report, network, b, dbs[b], clients[b], visit, referred)
        again = Connector(network, b, DOCTOR, dbs[b], clients[b]).sync(until=referred)
        report(f"{b}'s connector runs again", f"imported {len(again.imported)}: exactly once",
               ok=not again.imported)  # fmt: skip
        # 7. B treats the patient; completing the referral executes the agreement.
        network.submit(b, DOCTOR, "referral", "AcceptReferral", up)
        seal_note(network, b, DOCTOR, [a, c], feedback_up, ref, "feedback", narrative.outcome_up)
        done = network.submit(b, DOCTOR, "referral", "CompleteReferral", up, feedback_up)
        report(f"{b} accepts and completes {up}", _settled(json.loads(done.payload)))
        # 8. Downward referral for rehabilitation, with B's discharge summary.
        dbs[b].add_details(
            visit,
            diagnoses=[("Z95.5", "Coronary stent in place")],
            examinations=[("Echocardiogram", "EF 52%", "2026-11-29")],
        )
        _share(network, b, DOCTOR, [a], discharge, ref, dbs[b].export_visit(visit))
        rule = json.loads(network.evaluate(b, DOCTOR, "report", "DownwardRule", b))["rule"]
        done = network.submit(
            b, DOCTOR, "referral", "Refer", down, "", visit, b, a, "DOWN", discharge
        )
        report(f"{b} refers the patient back down to {a} ({down})",
               f"block {done.block}; rule of {c} for downward referrals: {rule}")  # fmt: skip
        _sync(report, network, a, dbs[a], clients[a], visit, done.block)
        network.submit(a, DOCTOR, "referral", "AcceptReferral", down)
        b_readers = [b, *_regulator(network, b)]
        seal_note(network, a, DOCTOR, b_readers, feedback_down, ref, "feedback",
                  narrative.outcome_down)  # fmt: skip
        done = network.submit(a, DOCTOR, "referral", "CompleteReferral", down, feedback_down)
        report(f"{a} accepts and completes {down}", _settled(json.loads(done.payload)))
        # 9. The commission at the top traces everything.
        report(f"{roles.top} traces visit {visit}", "referrals, applications and accesses",
               detail=_trace(network, roles.top, visit, [summary, discharge]))  # fmt: skip
    finally:
        for db in dbs.values():
            db.close()
        for client in clients.values():
            client.close()
    return steps


def database_path(network: AllianceNetwork, msp_id: str) -> Path:
    return network.layout.directory / "hospitals" / f"{msp_id}.db"


def _database(network: AllianceNetwork, msp_id: str) -> HospitalDatabase:
    return HospitalDatabase.open(database_path(network, msp_id))


def _admit(db: HospitalDatabase, ref: str, visit: str) -> None:
    db.add_patient(ref, name=DEMO_PATIENT["name"], sex=DEMO_PATIENT["sex"],
                   birth_date=DEMO_PATIENT["birthDate"], id_type="resident-id",
                   id_number=DEMO_PATIENT["idNumber"])  # fmt: skip
    db.add_visit(
        visit,
        ref,
        utc_now().date().isoformat(),
        diagnoses=[("I21.0", "Acute anterior wall myocardial infarction"), ("I10", "Hypertension")],
        examinations=[("ECG", "ST elevation V1-V4", "2026-11-29"), ("Troponin I", "2.3 ng/mL", "2026-11-29")],
        images=[("ecg.png", _synthetic_image())],
    )  # fmt: skip


def _synthetic_image() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(4096)  # stands in for an ECG scan


def seal_note(
    network: AllianceNetwork,
    writer: str,
    user: str,
    named: list[str],
    record_id: str,
    patient_ref: str,
    kind: str,
    text: str,
) -> None:
    """Seal a free-text note (a review note, a rejection note, a feedback or discharge
    document) as a records entry of the patient for `named` (and the writer's regulator): how
    free text accompanies a decision whose contract takes only the record's id."""
    document = {"schema": NOTE_SCHEMA, "kind": kind, "text": text}
    plaintext = json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
    _share(network, writer, user, named, record_id, patient_ref, (plaintext, []))


def _with_reason(
    exported: tuple[bytes, list[tuple[str, bytes]]], reason: str
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The exported clinical package with the reason for the referral added (the receiving
    hospital's import ignores fields it does not store)."""
    clinical, images = exported
    package = json.loads(clinical)
    package["referralReason"] = reason
    return json.dumps(package, ensure_ascii=False, sort_keys=True).encode(), images


def _regulator(network: AllianceNetwork, msp_id: str) -> list[str]:
    """The MSP id of the organisation's supervising regulator, if it has one."""
    config = network.layout.config
    regulator = config.organization(msp_id).regulator
    return [config.organization(regulator).msp_id] if regulator else []


def _share(
    network: AllianceNetwork,
    writer: str,
    user: str,
    named: list[str],
    record_id: str,
    patient_ref: str,
    exported: tuple[bytes, list[tuple[str, bytes]]],
) -> str:
    """Seal, register on the ledger, hand to the writer's peer; a size description."""
    clinical, images = exported
    package, ciphertexts = seal_package(
        network.layout, writer, named, clinical, record_id=record_id, version=1, now=utc_now(),
        attachments=images,
    )  # fmt: skip
    network.submit(
        writer, user, "records", "RegisterRecord", record_id, patient_ref, package.digest,
        json.dumps([address_of(c) for c in ciphertexts]), json.dumps(package.key_commitments),
    )  # fmt: skip
    network.push(writer, Held(package.to_bytes(), tuple(ciphertexts)))
    return f"{len(clinical) / 1024:.1f} KiB sealed, {len(images)} image(s)"


def _refused(report: Callable[..., None], title: str, call: Callable[[], object]) -> None:
    try:
        call()
    except ContractError as exc:
        report(title, f"refused: {exc}")
        return
    report(title, "accepted (it must be refused)", ok=False)


def _agreement(network: AllianceNetwork, a: str, b: str) -> str:
    agreement_id = f"AG-{a}-{b}"
    try:
        current = json.loads(network.evaluate(a, CLERK, "settlement", "GetAgreement", agreement_id))
    except ContractError:
        current = None
    if current is None:
        network.submit(
            a, CLERK, "settlement", "ProposeAgreement", agreement_id, b, json.dumps(TERMS)
        )
    if current is None or current["status"] == "PROPOSED":
        network.submit(b, CLERK, "settlement", "AcceptAgreement", agreement_id)
        return f"{agreement_id} proposed by {a}, accepted by {b}: {_terms_text(TERMS)}"
    return f"{agreement_id} already {current['status']}: {_terms_text(current['terms'])}"


def _terms_text(terms: dict[str, Any]) -> str:
    return "; ".join(
        f"{d} referral {t['amountCents'] / 100:.2f} paid by the {t['payer']}"
        for d, t in terms.items()
    )


def _settled(referral: dict[str, Any]) -> str:
    settlement = referral["settlement"]
    if not settlement["executed"]:
        return f"{referral['status']}; not settled: {settlement['reason']}"
    amount = settlement["amountCents"] / 100
    return (
        f"{referral['status']}; settled under {settlement['agreementId']}: {settlement['payer']} "
        f"pays {settlement['payee']} {amount:.2f} for {settlement['period']}"
    )


def _sync(
    report: Callable[..., None],
    network: AllianceNetwork,
    org: str,
    db: HospitalDatabase,
    key: PseudonymClient,
    visit: str,
    until: int,
) -> None:
    result = Connector(network, org, DOCTOR, db, key).sync(until=until)
    held = db.visit_summary(visit)
    report(
        f"{org}'s connector syncs from the chain",
        f"imported {', '.join(result.imported) or 'nothing'} (through block {result.last_block}); "
        f"its database holds patient {mask_name(held['name'])} with {held['diagnoses']} "
        f"diagnoses, {held['examinations']} examinations, {held['images']} image(s)",
        ok=bool(result.imported),
    )


def _trace(
    network: AllianceNetwork, org: str, visit: str, record_ids: list[str]
) -> tuple[str, ...]:
    lines = []
    for app in json.loads(network.evaluate(org, AUDITOR, "report", "ApplicationsForVisit", visit)):
        lines.append(
            f"application {app['applicationId']} {app['hospital']} → {app['targetHospital']}: "
            f"{app['status']}" + (f" ({app['reasonCode']})" if app.get("reasonCode") else "")
        )
    for ref in json.loads(network.evaluate(org, AUDITOR, "referral", "ReferralHistory", visit)):
        steps = " → ".join(h["status"] for h in ref["history"])
        lines.append(
            f"referral {ref['referralId']} {ref['direction']} {ref['fromHospital']} → "
            f"{ref['toHospital']}: {steps}"
        )
    for record_id in record_ids:
        for entry in json.loads(network.evaluate(org, AUDITOR, "records", "AccessLog", record_id)):
            lines.append(f"record {record_id} {entry['action']} by {entry['org']} at {entry['at']}")
    return tuple(lines)
