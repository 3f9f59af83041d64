"""`medalliance referral package|feedback`: the sealed FHIR Bundles a referral names, built from the
hospital's clinical store, so no one writes clinical JSON by hand (app/referral_packages.py).

`package` builds the BSeR referral Bundle of a local patient, encounter or visit (the resources
selected, or the referral type's defaults), seals it for the target hospital and the writer's
regulator, registers the record and hands it to the writer's peer: its record id is what
`referral apply --summary` and `referral refer --clinical` name. `feedback` does the same for the
target's feedback (discharge summary) Bundle that `referral complete --feedback` names. The
free text (the purpose, the outcome) is read from a file, never from the command line.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from medalliance.app.alliance_network import Committed
from medalliance.app.hospital_store import open_store_of
from medalliance.app.pseudonyms import pseudonym_client
from medalliance.app.referral_packages import (
    ReferralDraft,
    build_from_store,
    bundle_bytes,
    seal_and_share,
    share_feedback,
)
from medalliance.cli.alliance_cmd import As, Dir, session
from medalliance.cli.output import committed_line, emit_json, output_state, stdout
from medalliance.errors import NotFound
from medalliance.hospital.code_systems import PRIORITIES

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Your hospital's clinical store, a path or postgresql://... (default "
        "DIR/hospitals/<MSP>.db).",
        show_default=False,
    ),
]
Record = Annotated[
    str | None,
    typer.Option(
        "--record", help="The record id to share it as (default R-<referral>).", show_default=False
    ),
]


class PackageOutput(BaseModel):
    referral_id: str
    record_id: str
    visit: str
    patient_ref: str
    entries: int  # resources in the sealed Bundle
    sealed: str
    tx_id: str  # the record's registration on the ledger
    block_number: int


def package(
    referral: Annotated[str, typer.Argument(help="The referral id it is for.", show_default=False)],
    to: Annotated[str, typer.Option("--to", help="The target hospital.", show_default=False)],
    as_: As,
    patient: Annotated[
        str | None, typer.Option("--patient", help="The local Patient id.", show_default=False)
    ] = None,
    encounter: Annotated[
        str | None, typer.Option("--encounter", help="The local Encounter id.", show_default=False)
    ] = None,
    visit: Annotated[
        str | None, typer.Option("--visit", help="The visit number (就诊号).", show_default=False)
    ] = None,
    select: Annotated[
        list[str] | None,
        typer.Option(
            "--select",
            help="A resource to send, Type/id (repeat); default: the type's minimum.",
            metavar="TYPE/ID",
        ),
    ] = None,
    direction: Annotated[str, typer.Option("--direction", help="UP or DOWN.")] = "UP",
    priority: Annotated[str, typer.Option("--priority", help=", ".join(PRIORITIES))] = "routine",
    department: Annotated[
        str, typer.Option("--department", help="A department code (docs/fhir.md).")
    ] = "03",
    purpose_file: Annotated[
        Path | None,
        typer.Option("--purpose-file", help="A text file with the reason for the referral."),
    ] = None,
    record: Record = None,
    db: Db = None,
    directory: Dir = Path("."),
) -> None:
    """Build the referral Bundle from your store, seal it for the target and share it.

    Prints the record id to name in `referral apply --summary` and `referral refer --clinical`.
    Example: medalliance referral package REF-1 --visit V-1 --to TertiaryHospitalA --as User1@SecondaryHospitalA -d demo
    """
    purpose = _read(purpose_file)
    record_id = record or f"R-{referral}"
    with session(directory, as_) as s:
        msp_id, target = s.caller.msp_id, s.msp_id(to)
        with closing(open_store_of(s.network.layout, msp_id, db)) as store:
            client = pseudonym_client(s.network, msp_id, s.caller.user, store)
            draft = ReferralDraft(
                referral, target, patient_id=patient, encounter_id=encounter, visit=visit,
                direction=direction.upper(), priority=priority, department=department,
                purpose=purpose, select=tuple(select or ()),
            )  # fmt: skip
            built = build_from_store(store, draft, from_org=msp_id, pseudonyms=client)
        registered: list[Committed] = []
        size = seal_and_share(s.network, msp_id, s.caller.user, [target], record_id,
                              built.patient_ref, bundle_bytes(built.bundle),
                              on_committed=registered.append)  # fmt: skip
    result = PackageOutput(
        referral_id=referral, record_id=record_id, visit=built.visit_number,
        patient_ref=built.patient_ref, entries=len(built.bundle["entry"]), sealed=size,
        tx_id=registered[0].tx_id, block_number=registered[0].block,
    )  # fmt: skip
    if output_state.json:
        emit_json(result)
        return
    stdout().print(
        f"{record_id}: the referral Bundle of {referral} (visit {result.visit}, "
        f"{result.entries} entries) sealed for {target}, shared; {size}; "
        + committed_line(result.tx_id, result.block_number),
        soft_wrap=True,
    )


class FeedbackOutput(BaseModel):
    referral_id: str
    record_id: str
    sealed: str
    tx_id: str  # the record's registration on the ledger
    block_number: int


def feedback(
    referral: Annotated[str, typer.Argument(help="The referral it answers.", show_default=False)],
    text_file: Annotated[
        Path, typer.Option("--text-file", help="The discharge summary or feedback, as text.")
    ],
    as_: As,
    title: Annotated[str, typer.Option("--title", help="The document's title.")] = (
        "Discharge summary"
    ),
    record: Record = None,
    directory: Dir = Path("."),
) -> None:
    """Seal your feedback Bundle (the Task completed, the document) for the referring hospital.

    Prints the record id to name in `referral complete --feedback`.
    Example: medalliance referral feedback REF-1 --text-file outcome.txt --as User1@TertiaryHospitalA -d demo
    """
    text = _read(text_file)
    record_id = record or f"F-{referral}"
    with session(directory, as_) as s:
        on_chain = s.evaluate("referral", "GetReferral", referral)
        registered: list[Committed] = []
        size = share_feedback(
            s.network, s.caller.msp_id, s.caller.user, on_chain["fromHospital"],
            [on_chain["fromHospital"]], referral, record_id, on_chain["patientRef"], text, title,
            on_committed=registered.append,
        )  # fmt: skip
    done = registered[0]
    if output_state.json:
        emit_json(
            FeedbackOutput(
                referral_id=referral, record_id=record_id, sealed=size, tx_id=done.tx_id,
                block_number=done.block,
            )
        )  # fmt: skip
        return
    stdout().print(
        f"{record_id}: the feedback Bundle of {referral} sealed and shared; {size}; "
        + committed_line(done.tx_id, done.block),
        soft_wrap=True,
    )


def _read(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise NotFound(f"no file {path}") from None
