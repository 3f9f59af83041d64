"""`medalliance visit register|show|patients`: the visit registry (就诊号), as a hospital user."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Annotated, Any

import typer

from medalliance.cli.alliance_cmd import (
    As,
    Dir,
    exactly_one,
    record_table,
    rows_table,
    session,
    show_committed,
    show_result,
)

app = typer.Typer(
    help="Register visits and see where patients are (visit contract).", no_args_is_help=True
)

VisitNo = Annotated[str, typer.Argument(help="The visit number (就诊号).", show_default=False)]


@app.command("register")
def register(
    visit_no: VisitNo,
    as_: As,
    patient_ref: Annotated[
        str | None,
        typer.Option(
            "--patient-ref", help="The patient's pseudonym (never an identity).", show_default=False
        ),
    ] = None,
    patient: Annotated[
        str | None,
        typer.Option(
            "--patient",
            help="Or the local Patient id: its pseudonym comes from your store (derived through "
            "the pseudonym service the first time), and the visit number goes on an Encounter.",
            show_default=False,
        ),
    ] = None,
    encounter: Annotated[
        str | None,
        typer.Option(
            "--encounter",
            help="With --patient: the Encounter to give the visit number (default: a new one).",
            show_default=False,
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="With --patient: your clinical store (path or URL).", show_default=False
        ),
    ] = None,
    directory: Dir = Path("."),
) -> None:
    """Register a visit at your hospital (a doctor or clerk), bound to the patient's pseudonym.

    Example: medalliance visit register V-1001 --patient sa-p1 --as User1@SecondaryHospitalA -d demo
    """
    exactly_one({"--patient-ref": patient_ref is not None, "--patient": patient is not None})
    with session(directory, as_) as s:
        if patient is not None:
            # Here, not at the top: the store brings FHIR models, which `visit show` never needs.
            from medalliance.app.hospital_store import open_store_of
            from medalliance.app.pseudonyms import pseudonym_client
            from medalliance.app.referral_packages import visit_of_patient

            msp_id, user = s.caller.msp_id, s.caller.user
            with closing(open_store_of(s.network.layout, msp_id, db)) as store:
                client = pseudonym_client(s.network, msp_id, user, store)
                patient_ref = visit_of_patient(
                    store, visit_no, patient, client, encounter_id=encounter
                )
        assert patient_ref is not None
        done = s.submit("visit", "RegisterVisit", visit_no, patient_ref, s.caller.msp_id)
    show_committed(done, lambda r: f"visit {r['visitNo']} registered at {r['hospital']}")


@app.command("show")
def show(visit_no: VisitNo, as_: As, directory: Dir = Path(".")) -> None:
    """A visit: its patient's pseudonym and the hospital that holds the patient now.

    Example: medalliance visit show V-1001 --as User1@TertiaryHospitalB -d demo
    """
    with session(directory, as_) as s:
        visit = s.evaluate("visit", "GetVisit", visit_no)
    show_result(visit, lambda v: record_table(f"visit {visit_no}", v))


@app.command("patients")
def patients(
    as_: As,
    hospital: Annotated[
        str, typer.Option("--hospital", help="The hospital (name or MSP id).", show_default=False)
    ],
    directory: Dir = Path("."),
) -> None:
    """The visits a hospital holds now (for the hospital and its regulators).

    Example: medalliance visit patients --hospital TertiaryHospitalB --as Reviewer1@DistrictHC -d demo
    """
    with session(directory, as_) as s:
        msp_id = s.msp_id(hospital)
        found = s.evaluate("visit", "PatientsAt", msp_id)
    show_result(found, lambda rows: _patients(msp_id, rows))


def _patients(msp_id: str, rows: list[Any]) -> Any:
    return rows_table(
        f"patients at {msp_id}",
        ("visit", "patient (pseudonym)"),
        [(v["visitNo"], v["patientRef"]) for v in rows],
        f"no visits at {msp_id}",
    )
