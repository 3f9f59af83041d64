"""`medalliance privacy encrypt|decrypt`: seal a clinical package for the parties of a referral."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel

from medalliance.alliance.records import ERASURE_REJECTIONS
from medalliance.app.alliance_network import GatewayAlliance
from medalliance.app.hospital_store import open_store_of
from medalliance.app.packages import (
    confirm_erasure,
    copies_left,
    erasure_holders,
    fetch,
    grant,
    open_as,
    records_call,
    records_submit,
    seal_package,
    share,
)
from medalliance.app.pseudonym_migration import migrate_pseudonyms
from medalliance.app.pseudonyms import pseudonym_client
from medalliance.cli.alliance_cmd import last_block
from medalliance.cli.output import committed_line, dir_option, emit_json, output_state, stdout
from medalliance.errors import InvalidArgument, NotFound
from medalliance.node.bootstrap import NetworkLayout
from medalliance.privacy.documents import DocumentStore
from medalliance.privacy.envelope import SealedPackage

app = typer.Typer(
    help="Encrypt and decrypt clinical packages (docs/privacy.md).", no_args_is_help=True
)

Dir = Annotated[Path, dir_option("The network folder.")]
Org = Annotated[str, typer.Option("--org", help="Your organisation (name or MSP id).")]


class SealOutput(BaseModel):
    record_id: str
    version: int
    digest: str
    recipients: list[str]
    output: str


@app.command("encrypt")
def encrypt(
    source: Annotated[Path, typer.Argument(help="The package to seal (e.g. a JSON file).")],
    org: Org,
    record: Annotated[str, typer.Option("--record", help="The record id.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the sealed package.")
    ],
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help="Another organisation that may read it (repeat)."),
    ] = None,
    version: Annotated[int, typer.Option(help="The record version.")] = 1,
    attach: Annotated[
        list[Path] | None,
        typer.Option("--attach", help="An image or report to seal with it (repeat)."),
    ] = None,
    directory: Dir = Path("."),
) -> None:
    """Seal a package for your organisation, the ones named with --to and your regulator.

    Attachments are encrypted into OUTPUT.documents/ (their addresses go on the ledger with the
    package's digest). Example: medalliance privacy encrypt referral.json --dir demo
    --org SecondaryAMSP --to TertiaryBMSP --record R-1 --attach ct.dcm -o R-1.sealed
    """
    layout = NetworkLayout.load(directory)
    plaintext = _read(source)
    attachments = [(path.name, _read(path)) for path in attach or []]
    package, ciphertexts = seal_package(
        layout,
        org,
        to or [],
        plaintext,
        record_id=record,
        version=version,
        now=dt.datetime.now(dt.UTC),
        attachments=attachments,
    )
    documents = DocumentStore(_documents_dir(output))
    for ciphertext in ciphertexts:
        documents.put(ciphertext)
    _write_private(output, package.to_bytes())
    result = SealOutput(
        record_id=record,
        version=version,
        digest=package.digest,
        recipients=list(package.recipients),
        output=str(output),
    )
    if output_state.json:
        emit_json(result)
    else:
        stdout().print(
            f"sealed {record} v{version} for {', '.join(result.recipients)}; digest {result.digest}"
        )


@app.command("decrypt")
def decrypt(
    sealed: Annotated[Path, typer.Argument(help="A sealed package.")],
    org: Org,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the plaintext.")],
    directory: Dir = Path("."),
) -> None:
    """Open a sealed package with your organisation's key; refused if it was not sealed for you.

    The plaintext goes to a file (mode 0600), never to the terminal or a log.
    Example: medalliance privacy decrypt R-1.sealed --dir demo --org TertiaryBMSP -o R-1.json
    """
    layout = NetworkLayout.load(directory)
    package = SealedPackage.from_bytes(_read(sealed))
    _write_opened(output, open_as(layout, org, package, _ciphertexts(sealed)))
    if not output_state.json:
        stdout().print(f"opened {package.record_id} v{package.version} into {output}")


class ShareOutput(BaseModel):
    record_id: str
    digest: str
    held_by: list[str]
    tx_id: str
    block_number: int


@app.command("share")
def share_cmd(
    sealed: Annotated[Path, typer.Argument(help="A package sealed with `privacy encrypt`.")],
    org: Org,
    patient_ref: Annotated[str, typer.Option("--patient-ref", help="The patient's pseudonym.")],
    channel: Annotated[str, typer.Option("--channel", "-C", help="The channel.")] = "alliance",
    user: Annotated[str, typer.Option("--user", help="Your user name.")] = "User1",
    directory: Dir = Path("."),
) -> None:
    """Register the record on the ledger (hash and rights only) and hand the package to your
    peer, which keeps it and sends it to the peers of the other authorised organisations.

    Example: medalliance privacy share R-1.sealed --dir demo --org SecondaryAMSP --patient-ref 9f86d081884c7d65
    """
    layout = NetworkLayout.load(directory)
    package = SealedPackage.from_bytes(_read(sealed))
    pushed = share(layout, org, user, channel, package, patient_ref, _ciphertexts(sealed))
    result = ShareOutput(
        record_id=package.record_id,
        digest=package.digest,
        held_by=sorted({layout.config.organization(org).msp_id, *pushed["forwardedTo"]}),
        tx_id=pushed["tx_id"],
        block_number=pushed["block_number"],
    )
    if output_state.json:
        emit_json(result)
    else:
        stdout().print(
            f"record {result.record_id} registered; held by {', '.join(result.held_by)}; "
            + committed_line(result.tx_id, result.block_number),
            soft_wrap=True,
        )


@app.command("fetch")
def fetch_cmd(
    org: Org,
    record: Annotated[str, typer.Option("--record", help="The record id.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the plaintext.")],
    version: Annotated[int, typer.Option(help="The record version.")] = 1,
    channel: Annotated[str, typer.Option("--channel", "-C", help="The channel.")] = "alliance",
    user: Annotated[str, typer.Option("--user", help="Your user name.")] = "User1",
    through_block: Annotated[
        int | None,
        typer.Option(
            "--through-block",
            min=0,
            help="Wait (up to a minute) until your peer has committed this block first, e.g. "
            "the block of the grant that authorised you: your peer decides on its own ledger.",
            show_default=False,
        ),
    ] = None,
    directory: Dir = Path("."),
) -> None:
    """Get a record through your peer (from another authorised peer if yours lacks it), open it
    with your organisation's key, and record the access on the ledger.

    Example: medalliance privacy fetch --dir demo --org TertiaryBMSP --record R-1 -o R-1.json
    """
    layout = NetworkLayout.load(directory)
    if through_block is not None:
        last_block(layout, layout.config.organization(org).msp_id, through_block)
    _write_opened(output, fetch(layout, org, user, channel, record, version))
    if not output_state.json:
        stdout().print(f"record {record} v{version} written to {output}; access logged")


Channel = Annotated[str, typer.Option("--channel", "-C", help="The channel.")]
User = Annotated[str, typer.Option("--user", help="Your user name.")]


def _show(result: object, text: str) -> None:
    if output_state.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        stdout().print(text, soft_wrap=True)


def _show_committed(result: Any, tx_id: str, block: int, text: str) -> None:
    """A committed records call: the contract's result plus `tx_id` and `block_number`."""
    _show(
        {**result, "tx_id": tx_id, "block_number": block}, f"{text}; {committed_line(tx_id, block)}"
    )


@app.command("grant")
def grant_cmd(
    org: Org,
    record: Annotated[str, typer.Option("--record", help="The record id.")],
    to: Annotated[str, typer.Option("--to", help="The organisation to authorise.")],
    channel: Channel = "alliance",
    user: User = "User1",
    directory: Dir = Path("."),
) -> None:
    """Authorise another organisation (e.g. a consultant hospital) to read a record.

    Example: medalliance privacy grant --dir demo --org TertiaryBMSP --record R-1 --to TertiaryAMSP
    """
    result = grant(NetworkLayout.load(directory), org, user, channel, record, to)
    _show_committed(
        result,
        result["tx_id"],
        result["block_number"],
        f"{to} may now read record {record}; authorised: {', '.join(result['authorised'])}",
    )


@app.command("revoke")
def revoke_cmd(
    org: Org,
    record: Annotated[str, typer.Option("--record", help="The record id.")],
    target: Annotated[str, typer.Option("--from", help="The organisation that loses access.")],
    channel: Channel = "alliance",
    user: User = "User1",
    directory: Dir = Path("."),
) -> None:
    """End an organisation's access to a record (owner or its regulator); holders stop serving it.

    Example: medalliance privacy revoke --dir demo --org SecondaryAMSP --record R-1 --from TertiaryAMSP
    """
    layout = NetworkLayout.load(directory)
    msp_id = layout.config.organization(target).msp_id
    result, tx_id, block = records_submit(layout, org, user, channel, "Revoke", record, msp_id)
    _show_committed(result, tx_id, block, f"{msp_id} may no longer read record {record}")


@app.command("erase")
def erase_cmd(
    org: Org,
    patient_ref: Annotated[str, typer.Option("--patient-ref", help="The patient's pseudonym.")],
    approve: Annotated[
        bool, typer.Option("--approve", help="As the regulator: approve it.")
    ] = False,
    reject: Annotated[
        str | None,
        typer.Option(
            "--reject",
            help=f"As the regulator: refuse it with a reason code ({', '.join(ERASURE_REJECTIONS)}).",
        ),
    ] = None,
    withdraw: Annotated[
        bool, typer.Option("--withdraw", help="As the requester: withdraw the request.")
    ] = False,
    confirm: Annotated[
        bool,
        typer.Option(
            "--confirm",
            help="As a holder, after approval: check your peer deleted every copy and file "
            "your organisation's signed deletion receipts.",
        ),
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Report which holders filed a deletion receipt (exit 1 while one has not, or "
            "while a node on this machine still holds a copy).",
        ),
    ] = False,
    channel: Channel = "alliance",
    user: User = "User1",
    directory: Dir = Path("."),
) -> None:
    """Ask (the hospital holding the patient's records, or its regulator), withdraw (the
    requester), reject or approve (the supervising regulator) the erasure of a patient's data.

    On approval every holder's peer deletes the packages, wrapped keys and attachments; each
    holder then files its signed deletion receipt (--confirm); the hashes stay as proof.
    Example: medalliance privacy erase --dir demo --org DistrictHCMSP --patient-ref 9f86... --approve
    """
    layout = NetworkLayout.load(directory)
    if check:
        _erase_check(layout, org, user, channel, patient_ref)
        return
    if sum((approve, withdraw, confirm, reject is not None)) > 1:
        raise InvalidArgument("choose one of --approve, --reject, --withdraw and --confirm")
    if confirm:
        done = confirm_erasure(layout, org, user, channel, patient_ref)
        _show(done, f"deletion confirmed for {', '.join(done['confirmed']) or 'nothing new'}")
        return
    if reject is not None:
        function, args = "RejectErasure", [patient_ref, reject]
    else:
        function = (
            "ApproveErasure" if approve else "WithdrawErasure" if withdraw else "RequestErasure"
        )
        args = [patient_ref]
    result, tx_id, block = records_submit(layout, org, user, channel, function, *args)
    _show_committed(result, tx_id, block, f"erasure {result['status'].lower()}")


def _erase_check(layout: NetworkLayout, org: str, user: str, channel: str, patient: str) -> None:
    receipts = records_call(layout, org, user, channel, "ErasureReceipts", patient)
    holders = erasure_holders(receipts)
    left = copies_left(layout, list(receipts["records"]))
    lines = [f"{holder}: {state}" for holder, state in holders.items()]
    lines += [f"{node}: {n} cop{'y' if n == 1 else 'ies'} left" for node, n in left.items() if n]
    _show(
        {"status": receipts["status"], "holders": holders, "copiesLeft": left},
        "\n".join([f"erasure {receipts['status'].lower()}", *lines]),
    )
    if receipts["status"] != "APPROVED" or "pending" in holders.values() or any(left.values()):
        raise typer.Exit(1)


@app.command("access-log")
def access_log_cmd(
    org: Org,
    record: Annotated[str, typer.Option("--record", help="The record id.")],
    channel: Channel = "alliance",
    user: User = "User1",
    directory: Dir = Path("."),
) -> None:
    """Every grant, revocation and decrypt of a record, from the ledger (for the regulator).

    Example: medalliance privacy access-log --dir demo --org DistrictHCMSP --user Auditor1 --record R-1
    """
    entries = records_call(NetworkLayout.load(directory), org, user, channel, "AccessLog", record)
    _show(
        entries,
        "\n".join(f"{e['at']}  {e['org']}  {e['action']}  v{e['version']}" for e in entries)
        or "no access yet",
    )


@app.command("pseudonym")
def pseudonym_cmd(
    org: Org,
    id_type: Annotated[
        str, typer.Option("--id-type", help="resident-id, passport or medical-card.")
    ] = "resident-id",
    db: Annotated[
        str | None,
        typer.Option("--db", help="Your hospital's clinical store, path or URL (caches answers)."),
    ] = None,
    channel: Channel = "alliance",
    user: User = "Clerk1",
    directory: Dir = Path("."),
) -> None:
    """A patient's pseudonym, from the regulator's pseudonym service (for `visit register`).

    The identifier is read from standard input, never from the command line (shell history
    and process lists would keep it); the service sees it blinded only.
    Example: medalliance privacy pseudonym --dir demo --org SecondaryAMSP < id.txt
    """
    id_number = sys.stdin.readline().strip()
    network = GatewayAlliance(directory, channel)
    try:
        msp_id = network.layout.config.organization(org).msp_id
        store = None if db is None else open_store_of(network.layout, msp_id, db)
        try:
            ref = pseudonym_client(network, org, user, store).pseudonym(id_type, id_number)
        finally:
            if store is not None:
                store.close()
    finally:
        network.close()
    _show({"patientRef": ref}, ref)


@app.command("migrate-pseudonyms")
def migrate_pseudonyms_cmd(
    org: Org,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Your hospital's clinical store, path or URL (default DIR/hospitals/<MSP>.db).",
        ),
    ] = None,
    channel: Channel = "alliance",
    user: User = "Clerk1",
    directory: Dir = Path("."),
) -> None:
    """Move your hospital's patients to pseudonyms from the regulator's pseudonym service.

    Each patient's visits on the chain are re-keyed (the old pseudonym stays linked), the
    store's Patients get the new pseudonym identifier, and your copy of the old shared pseudonym key is deleted. Safe to
    run again. Run it when your connector has imported every referral in flight.
    Example: medalliance privacy migrate-pseudonyms --dir demo --org SecondaryAMSP --db hospitals/SecondaryAMSP.db
    """
    network = GatewayAlliance(directory, channel)
    try:
        msp_id = network.layout.config.organization(org).msp_id
        with closing(open_store_of(network.layout, msp_id, db)) as store:
            client = pseudonym_client(network, org, user, store)
            result = migrate_pseudonyms(network, org, user, store, client, dt.datetime.now(dt.UTC))
    finally:
        network.close()
    _show(
        {
            "patients": result.patients,
            "unchanged": result.unchanged,
            "visitsMoved": list(result.visits_moved),
            "visitsElsewhere": list(result.visits_elsewhere),
            "keyDeleted": result.key_deleted,
        },
        f"{result.patients} patient(s) re-keyed ({result.unchanged} already done), "
        f"{len(result.visits_moved)} visit(s) moved on the chain; old key "
        + ("deleted" if result.key_deleted else "not present"),
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no file {path}") from None


def _documents_dir(sealed: Path) -> Path:
    return sealed.with_name(sealed.name + ".documents")


def _ciphertexts(sealed: Path) -> list[bytes]:
    """The sealed attachments stored beside a sealed package by `encrypt`."""
    folder = _documents_dir(sealed)
    if not folder.is_dir():
        return []
    documents = DocumentStore(folder)
    return [documents.get(address) for address in documents.addresses()]


def _write_opened(output: Path, opened: tuple[bytes, list[tuple[str, bytes]]]) -> None:
    """The clinical data to `output`, attachments to `output.attachments/<name>` (mode 0600)."""
    data, attachments = opened
    _write_private(output, data)
    for name, content in attachments:
        _write_private(output.with_name(output.name + ".attachments") / name, content)


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600: packages and plaintext are for their owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
