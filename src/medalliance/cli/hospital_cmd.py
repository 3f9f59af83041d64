"""`medalliance hospital ...`: a hospital's FHIR clinical store from the command line: import
bundles (with the alliance pseudonyms), list and show patients and encounters, export a record.

The store is the one of `--org` in the network folder `--dir` (docs/hospital-store.md), or the
database `--db` names. Identity numbers are never printed: a patient shows its pseudonym.
"""

from __future__ import annotations

import json
import os
from contextlib import closing
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.table import Table

from medalliance.app.hospital_import import default_user, import_bundle_file, open_hospital_store
from medalliance.cli.alliance_cmd import parse_as
from medalliance.cli.output import dir_option, emit_json, output_state, stdout
from medalliance.errors import InvalidArgument
from medalliance.hospital.bundle_export import export_patient
from medalliance.hospital.summaries import encounter_rows, patient_rows, patient_summary
from medalliance.node.bootstrap import NetworkLayout

app = typer.Typer(
    help="A hospital's FHIR R4 clinical store: import, patients, encounters, export.",
    no_args_is_help=True,
)
patient_app = typer.Typer(help="One patient of the hospital.", no_args_is_help=True)
app.add_typer(patient_app, name="patient")

Dir = Annotated[Path, dir_option("The network folder.")]
Org = Annotated[
    str, typer.Option("--org", help="Your hospital (name or MSP id).", show_default=False)
]
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="The store's database (file path or postgresql://...), instead of the one the "
        "network config gives the hospital.",
        show_default=False,
    ),
]


class SkippedOutput(BaseModel):
    resource: str
    path: str
    reason: str


class ImportOutput(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    skipped: list[SkippedOutput]
    ignored: list[str]
    patients: dict[str, str]  # patient id → pseudonym
    without_pseudonym: list[str]


@app.command("import")
def import_cmd(
    bundle: Annotated[Path, typer.Argument(help="A FHIR R4 Bundle (JSON).", show_default=False)],
    org: Org,
    skip_invalid: Annotated[
        bool,
        typer.Option("--skip-invalid", help="Import the valid resources, report the others."),
    ] = False,
    as_: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Ask the pseudonym service as USER@ORG (default: the org's first user).",
            show_default=False,
        ),
    ] = None,
    db: Db = None,
    directory: Dir = Path("."),
) -> None:
    """Import a transaction, batch, collection or searchset bundle into your hospital's store.

    References are resolved, each patient gets the alliance pseudonym from the regulator's
    pseudonym service (the network must be running), and the same bundle imported twice changes
    nothing. Strict: an invalid resource refuses the whole bundle, every issue listed (exit 2).

    Example: medalliance hospital import patients.json --org SecondaryHospitalA --dir demo
    """
    layout = NetworkLayout.load(directory)
    user = default_user(layout, org)
    if as_ is not None:
        user, as_org = parse_as(as_)
        if layout.config.organization(as_org).msp_id != layout.config.organization(org).msp_id:
            raise InvalidArgument("--as must name a user of the --org hospital")
    report = import_bundle_file(layout, org, user, bundle, db=db, skip_invalid=skip_invalid)
    result = ImportOutput(
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        skipped=[
            SkippedOutput(
                resource=f"{i.resource_type}/{i.resource_id}", path=i.path, reason=i.reason
            )
            for i in report.skipped
        ],
        ignored=report.ignored,
        patients=dict(report.patients),
        without_pseudonym=report.without_pseudonym,
    )
    if output_state.json:
        emit_json(result)
        return
    console = stdout()
    console.print(
        f"created {len(result.created)}, updated {len(result.updated)}, unchanged "
        f"{len(result.unchanged)}, skipped {len(result.skipped)}"
        + (
            f", ignored {len(result.ignored)} (types the store does not keep)"
            if result.ignored
            else ""
        )
    )
    for skipped in result.skipped:
        console.print(f"skipped {skipped.resource} {skipped.path}: {skipped.reason}")
    for patient in result.without_pseudonym:
        console.print(
            f"Patient/{patient} has no resident ID, passport or medical card number: no pseudonym"
        )


@app.command("patients")
def patients_cmd(org: Org, db: Db = None, directory: Dir = Path(".")) -> None:
    """List the hospital's patients: id, name, sex, birth date, pseudonym, encounters.

    Example: medalliance hospital patients --org SecondaryHospitalA --dir demo
    """
    with closing(open_hospital_store(NetworkLayout.load(directory), org, db)) as store:
        rows = patient_rows(store)
    if output_state.json:
        _print_json([asdict(row) for row in rows])
        return
    table = Table("id", "name", "sex", "birth date", "pseudonym", "encounters")
    for row in rows:
        table.add_row(
            row.id, row.name, row.sex, row.birth_date, row.pseudonym or "-", str(row.encounters)
        )
    stdout().print(table if rows else "no patients yet; import a bundle with `hospital import`")


@patient_app.command("show")
def patient_show_cmd(
    patient_id: Annotated[str, typer.Argument(help="The patient's id in the store.")],
    org: Org,
    db: Db = None,
    directory: Dir = Path("."),
) -> None:
    """Show a patient: pseudonym, encounters, conditions, observations, medications, procedures.

    Example: medalliance hospital patient show P-1001 --org SecondaryHospitalA --dir demo
    """
    with closing(open_hospital_store(NetworkLayout.load(directory), org, db)) as store:
        summary = patient_summary(store, patient_id)
    if output_state.json:
        _print_json(asdict(summary))
        return
    p = summary.patient
    console = stdout()
    console.print(f"Patient/{p.id}  {p.name}  {p.sex}  born {p.birth_date or '?'}")
    console.print(f"pseudonym: {p.pseudonym or '(none: no known identifier)'}")
    for title, lines in (
        ("conditions", summary.conditions),
        ("observations", summary.observations),
        ("medications", summary.medications),
        ("procedures", summary.procedures),
    ):
        console.print(f"{title}: {len(lines)}")
        for line in lines:
            console.print(
                f"  {line.date[:10] or '----------'}  {line.code}  {line.text}"
                + (f" = {line.value}" if line.value else "")
                + (f"  [{line.status}]" if line.status else ""),
                soft_wrap=True,
            )
    console.print(f"encounters: {len(summary.encounters)}")
    for e in summary.encounters:
        console.print(f"  {e.id}  {e.start[:16]}  {e.kind}  {e.status}  {e.type}", soft_wrap=True)


@app.command("encounters")
def encounters_cmd(
    org: Org,
    patient: Annotated[
        str | None, typer.Option("--patient", help="Only this patient's.", show_default=False)
    ] = None,
    db: Db = None,
    directory: Dir = Path("."),
) -> None:
    """List encounters (visits), all or one patient's.

    Example: medalliance hospital encounters --patient P-1001 --org SecondaryHospitalA --dir demo
    """
    with closing(open_hospital_store(NetworkLayout.load(directory), org, db)) as store:
        rows = encounter_rows(store, patient)
    if output_state.json:
        _print_json([asdict(row) for row in rows])
        return
    table = Table("id", "patient", "class", "status", "start", "end", "type")
    for row in rows:
        table.add_row(row.id, row.patient, row.kind, row.status, row.start, row.end, row.type)
    stdout().print(table if rows else "no encounters")


@app.command("export")
def export_cmd(
    org: Org,
    patient: Annotated[
        str, typer.Option("--patient", help="The patient's id.", show_default=False)
    ],
    encounter: Annotated[
        str | None,
        typer.Option("--encounter", help="Only this encounter of the patient.", show_default=False),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the bundle here (default: stdout).", show_default=False
        ),
    ] = None,
    db: Db = None,
    directory: Dir = Path("."),
) -> None:
    """Export a patient's record (or one encounter) as a FHIR R4 collection Bundle.

    Without -o the bundle is the one JSON document on stdout.
    Example: medalliance hospital export --patient P-1001 --org SecondaryHospitalA --dir demo -o p.json
    """
    with closing(open_hospital_store(NetworkLayout.load(directory), org, db)) as store:
        bundle = export_patient(store, patient, encounter)
    text = json.dumps(bundle, indent=2, ensure_ascii=False)
    if output is None:
        print(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    # A patient's record: readable by its owner only, from the first byte.
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    if output_state.json:
        _print_json({"output": str(output), "entries": len(bundle["entry"])})
    else:
        stdout().print(f"{len(bundle['entry'])} resources written to {output}")


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False))
