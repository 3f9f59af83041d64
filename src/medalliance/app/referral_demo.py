"""The paper's referral workflow (fig. 5), end to end, on any `AllianceNetwork`.

Secondary hospital A admits a patient and registers the visit; its doctor seals the clinical
summary — with the reason for the referral — for tertiary hospital B and the district commission
C and applies twice; C rejects one application (a reason code and a sealed note for A) and
approves the other; A refers the patient with the approved one (reusing it is refused); B's
connector imports the referral into B's own database, exactly once; B accepts and completes the
referral with a sealed feedback document, and the A–B benefit-sharing agreement settles it; B
refers the patient back down for rehabilitation and A's connector imports B's discharge summary;
finally the city commission traces the whole history. Each step is reported through `on_step`.

The hospitals speak FHIR R4: A's admission is imported into its clinical store as a Bundle
(app/demo_records.py), the referral and the return referral are BSeR Bundles built from the
stores (app/referral_packages.py), the feedback documents are feedback Bundles, and the
connectors import what reaches them with a Provenance (app/referral_import.py).

Patient identities and clinical text live only in the hospitals' stores (`hospitals/<MSP>.db`
in the network folder) and in sealed packages; the chain sees visit numbers, pseudonyms, hashes,
reason codes and decisions (docs/privacy.md §5). `Narrative` holds a run's clinical free text.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medalliance.app.alliance_network import AllianceNetwork
from medalliance.app.connector import Connector
from medalliance.app.demo_records import (
    DEMO_PATIENT,
    PATIENT_ID,
    admission_bundle,
    example_bundle,
    first_patient,
    synthetic_image,
    treatment_bundle,
    visit_bundle,
)
from medalliance.app.hospital_store import open_store_of
from medalliance.app.pseudonyms import PseudonymClient, pseudonym_client
from medalliance.app.referral_packages import (
    ReferralDraft,
    build_from_store,
    bundle_bytes,
    seal_and_share,
    share_feedback,
)
from medalliance.errors import ContractError, NotFound
from medalliance.hospital.bundle_import import import_bundle
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.hospital.identifiers import PSEUDONYM_SYSTEM, VISIT_NUMBER_SYSTEM, identifier_value
from medalliance.node.config import NetworkConfig
from medalliance.node.embedded import utc_now
from medalliance.privacy.masking import mask_name

DOCTOR, CLERK, REVIEWER, AUDITOR = "User1", "Clerk1", "Reviewer1", "Auditor1"
__all__ = ["DEMO_PATIENT", "DOCTOR", "REVIEWER", "Narrative", "run_referral", "seal_note"]
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
    dbs = {msp: open_store_of(network.layout, msp) for msp in (a, b)}
    # Each hospital asks the regulator's pseudonym service, caching in its own store.
    clients = {msp: pseudonym_client(network, msp, DOCTOR, dbs[msp]) for msp in (a, b)}
    try:
        # 1. A admits the patient: its HIS sends its records as a FHIR Bundle (the shipped
        #    examples, else one built in code); the import adds the pseudonyms. The identity
        #    stays in A's store, only the pseudonym goes on the chain.
        day = utc_now().date().isoformat()
        seeded = _seed(network, dbs, clients, visit, day)
        patient_id = seeded[a]
        ref = identifier_value(dbs[a].get("Patient", patient_id), PSEUDONYM_SYSTEM) or ""
        done = network.submit(a, DOCTOR, "visit", "RegisterVisit", visit, ref, a)
        report(
            f"{a} admits a patient and registers visit {visit}",
            f"block {done.block}; {dbs[a].count()} FHIR resources in {a}'s store; on the chain "
            f"only pseudonym {ref[:8]}…, the identity stays in {a}'s store",
        )
        # 2. The referral Bundle (BSeR) with the reason for the referral, built from A's store
        #    (the patient's active diagnoses and recent findings) and sealed for B and the
        #    regulator: the reason is never a contract argument.
        draft = ReferralDraft(up, b, patient_id=patient_id, encounter_id=_encounter_id(dbs[a], visit),
                              direction="UP", priority="urgent", department="03.04",
                              purpose=narrative.reason)  # fmt: skip
        built = build_from_store(dbs[a], draft, from_org=a, pseudonyms=clients[a])
        size = seal_and_share(network, a, DOCTOR, [b], summary, ref, bundle_bytes(built.bundle))
        report(
            f"{a} seals the referral Bundle {summary} for {b} and {c}",
            f"{size}, {len(built.bundle['entry'])} entries; the ledger keeps its SHA-256, peers "
            f"of {a}, {b} and {c} hold the ciphertext",
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
        share_feedback(network, b, DOCTOR, a, [a, c], up, feedback_up, ref, narrative.outcome_up)
        done = network.submit(b, DOCTOR, "referral", "CompleteReferral", up, feedback_up)
        report(f"{b} accepts and completes {up}", _settled(json.loads(done.payload)))
        # 8. Downward referral for rehabilitation, with B's discharge summary: B records its
        #    treatment against the patient and visit it imported, and refers back from its store.
        encounter_b = _encounter_id(dbs[b], visit)
        patient_b = _subject_id(dbs[b], encounter_b)
        import_bundle(dbs[b], treatment_bundle(visit, patient_b, encounter_b, day,
                                               narrative.outcome_up))  # fmt: skip
        back = ReferralDraft(down, a, encounter_id=encounter_b, direction="DOWN",
                             department="17", purpose="rehabilitation")  # fmt: skip
        built = build_from_store(dbs[b], back, from_org=b, pseudonyms=clients[b])
        seal_and_share(network, b, DOCTOR, [a], discharge, ref, bundle_bytes(built.bundle))
        rule = json.loads(network.evaluate(b, DOCTOR, "report", "DownwardRule", b))["rule"]
        done = network.submit(
            b, DOCTOR, "referral", "Refer", down, "", visit, b, a, "DOWN", discharge
        )
        report(f"{b} refers the patient back down to {a} ({down})",
               f"block {done.block}; rule of {c} for downward referrals: {rule}")  # fmt: skip
        _sync(report, network, a, dbs[a], clients[a], visit, done.block)
        network.submit(a, DOCTOR, "referral", "AcceptReferral", down)
        b_readers = [b, *_regulator(network, b)]
        share_feedback(network, a, DOCTOR, b, b_readers, down, feedback_down, ref,
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


def _seed(
    network: AllianceNetwork,
    stores: dict[str, ClinicalStore],
    clients: dict[str, PseudonymClient],
    visit: str,
    day: str,
) -> dict[str, str]:
    """Import each hospital's example records (idempotent), and the run's visit of the first
    hospital's first patient; {MSP id: that patient's id} (the first hospital's only)."""
    first = next(iter(stores))
    for msp_id, store in stores.items():
        example = example_bundle(network.layout.config.organization(msp_id).name)
        if example is None and msp_id == first:
            admission = admission_bundle(visit, day, synthetic_image())
            import_bundle(store, admission, pseudonym=clients[msp_id].pseudonym)
            return {first: PATIENT_ID}
        if example is not None:
            import_bundle(store, example, pseudonym=clients[msp_id].pseudonym)
            if msp_id == first:
                patient_id = first_patient(example)
                import_bundle(store, visit_bundle(visit, patient_id, day))
    return {first: patient_id}


def _encounter_id(store: ClinicalStore, visit: str) -> str:
    """The id of the hospital's Encounter of visit number `visit`."""
    found = store.search("Encounter", {"identifier": f"{VISIT_NUMBER_SYSTEM}|{visit}"})
    if not found:
        raise NotFound(f"no Encounter of visit {visit} in the hospital's store")
    return str(found[-1]["id"])


def _subject_id(store: ClinicalStore, encounter_id: str) -> str:
    """The id of the Patient an Encounter is about. Not found by pseudonym: a patient referred
    twice (a second demo run on the same folder) is imported as one Patient per referral."""
    encounter = store.get("Encounter", encounter_id)
    return str(encounter["subject"]["reference"]).removeprefix("Patient/")


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
    seal_and_share(network, writer, user, named, record_id, patient_ref, plaintext)


def _regulator(network: AllianceNetwork, msp_id: str) -> list[str]:
    """The MSP id of the organisation's supervising regulator, if it has one."""
    config = network.layout.config
    regulator = config.organization(msp_id).regulator
    return [config.organization(regulator).msp_id] if regulator else []


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
    store: ClinicalStore,
    key: PseudonymClient,
    visit: str,
    until: int,
) -> None:
    result = Connector(network, org, DOCTOR, store, key).sync(until=until)
    counts: dict[str, int] = {}
    names = []
    for referral_id in result.imported:
        for target in store.get("Provenance", f"referral-{referral_id}")["target"]:
            kind, rid = target["reference"].split("/", 1)
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "Patient":
                names += [str(n.get("text", "?")) for n in store.get(kind, rid).get("name") or ()]
    names.append("?")
    held = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    report(
        f"{org}'s connector syncs from the chain",
        f"imported {', '.join(result.imported) or 'nothing'} (through block {result.last_block}); "
        f"its store holds patient {mask_name(names[0])}: {held or 'nothing new'}, with a "
        "Provenance naming the channel, transaction and block",
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
