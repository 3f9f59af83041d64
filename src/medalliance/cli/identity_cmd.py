"""`medalliance identity enroll|register|revoke|list`: people at run time, through the
organisation's Fabric CA server (docs/fabric-ca.md).

Client side over HTTPS (ca/client.py). Enrolled identities go to
`<org folder>/users/<id>@<domain>/msp` in Fabric CA's layout, so `--user <id>` of every other
command finds them. A secret is read from `--secret-file` or MEDALLIANCE_CA_SECRET, never from
a command-line argument (it would show in `ps`), and printed only by `register`, which is how a
registrar hands it to the new user.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from medalliance.cli.output import dir_option, emit_json, output_state, stdout
from medalliance.errors import InvalidArgument, PermissionDenied
from medalliance.node.bootstrap import NetworkLayout

app = typer.Typer(
    help="Enrol, register, revoke and list identities at an organisation's Fabric CA.",
    no_args_is_help=True,
)

SECRET_ENV = "MEDALLIANCE_CA_SECRET"  # noqa: S105 (a variable name)
DirOption = Annotated[Path, dir_option("The network folder (created by `network init`).")]
OrgOption = Annotated[str, typer.Option("--org", help="The organisation whose CA to use.")]
AsOption = Annotated[
    str, typer.Option("--as", help="The enrolled registrar to act as (`identity enroll` first).")
]


class Enrolled(BaseModel):
    id: str
    msp_dir: str


class Registered(BaseModel):
    id: str
    secret: str


class Revoked(BaseModel):
    id: str
    serials: list[str]
    crl_file: str | None


class IdentityRow(BaseModel):
    id: str
    type: str
    affiliation: str
    role: str | None
    max_enrollments: int


class Listed(BaseModel):
    ca_name: str
    identities: list[IdentityRow]


@app.command("enroll")
def enroll(
    enrollment_id: Annotated[str, typer.Argument(help="The enrollment ID a registrar gave.")],
    directory: DirOption,
    org: OrgOption,
    secret_file: Annotated[
        Path | None,
        typer.Option("--secret-file", help=f"A file holding the secret (else ${SECRET_ENV})."),
    ] = None,
    msp_dir: Annotated[
        Path | None, typer.Option("--msp-dir", help="Where to write the MSP folder.")
    ] = None,
) -> None:
    """Enrol ENROLLMENT_ID: a new key, a certificate from the CA, written as an MSP folder.

    Example: MEDALLIANCE_CA_SECRET=... medalliance identity enroll doctor7 --dir net --org Org1
    """
    from medalliance.app.org_ca import enroll_into

    secret = _secret(secret_file)
    folder = enroll_into(NetworkLayout.load(directory), org, enrollment_id, secret, msp_dir)
    if output_state.json:
        emit_json(Enrolled(id=enrollment_id, msp_dir=str(folder)))
    else:
        stdout().print(f"enrolled {enrollment_id}: {folder}")


@app.command("register")
def register(
    enrollment_id: Annotated[str, typer.Argument(help="The new identity's enrollment ID.")],
    directory: DirOption,
    org: OrgOption,
    role: Annotated[
        str | None, typer.Option("--role", help="Alliance role: doctor, clerk, auditor, ...")
    ] = None,
    type_: Annotated[
        str, typer.Option("--type", help="client, admin, peer or orderer (its node OU).")
    ] = "client",
    affiliation: Annotated[str, typer.Option("--affiliation", help="Dotted; default yours.")] = "",
    max_enrollments: Annotated[
        int, typer.Option("--max-enrollments", help="0: the CA's maximum; -1 unlimited.", min=-1)
    ] = 0,
    registrar: AsOption = "admin",
) -> None:
    """Register ENROLLMENT_ID and print its enrolment secret (give it to the user only).

    Example: medalliance identity register doctor7 --role doctor --dir net --org Org1
    """
    from medalliance.app.org_ca import ca_client
    from medalliance.app.org_ca import registrar as load_registrar

    layout = NetworkLayout.load(directory)
    secret = ca_client(layout, org).register(
        load_registrar(layout, org, registrar),
        enrollment_id,
        type=type_,
        role=role,
        affiliation=affiliation,
        max_enrollments=max_enrollments,
    )
    if output_state.json:
        emit_json(Registered(id=enrollment_id, secret=secret))
    else:
        stdout().print(f"registered {enrollment_id}; its enrolment secret: {secret}")


@app.command("revoke")
def revoke(
    enrollment_id: Annotated[str, typer.Argument(help="The identity to revoke.")],
    directory: DirOption,
    org: OrgOption,
    reason: Annotated[str, typer.Option("--reason", help="e.g. keycompromise.")] = "",
    registrar: AsOption = "admin",
) -> None:
    """Revoke ENROLLMENT_ID and all its certificates; writes the CA's new CRL.

    The CRL reaches the channel's MSP through the admins' vote (docs/fabric-ca.md).
    Example: medalliance identity revoke doctor7 --dir net --org Org1 --reason keycompromise
    """
    from medalliance.app.org_ca import CA_SERVER, ca_client
    from medalliance.app.org_ca import registrar as load_registrar

    layout = NetworkLayout.load(directory)
    client = ca_client(layout, org)
    who = load_registrar(layout, org, registrar)
    result = client.revoke(who, enrollment_id=enrollment_id, reason=reason)
    serials = [str(r["Serial"]) for r in result["RevokedCerts"]]
    crl_file: Path | None = layout.org_dir(org) / CA_SERVER / "crl.pem"
    try:
        crl = client.gencrl(who)
    except PermissionDenied:  # a registrar with hf.Revoker but not hf.GenCRL
        crl_file = None
    else:
        assert crl_file is not None
        crl_file.parent.mkdir(parents=True, exist_ok=True)
        crl_file.write_bytes(crl)
    if output_state.json:
        emit_json(
            Revoked(id=enrollment_id, serials=serials, crl_file=str(crl_file) if crl_file else None)
        )
    else:
        where = f"CRL: {crl_file}" if crl_file else "no CRL: this registrar lacks hf.GenCRL"
        stdout().print(f"revoked {enrollment_id} ({len(serials)} certificates); {where}")


@app.command("list")
def list_identities(directory: DirOption, org: OrgOption, registrar: AsOption = "admin") -> None:
    """List the identities the registrar may manage.

    Example: medalliance identity list --dir net --org Org1
    """
    from medalliance.app.org_ca import ca_client
    from medalliance.app.org_ca import registrar as load_registrar

    layout = NetworkLayout.load(directory)
    client = ca_client(layout, org)
    rows = [
        IdentityRow(
            id=i["id"],
            type=i["type"],
            affiliation=i["affiliation"],
            role=next((a["value"] for a in i["attrs"] if a["name"] == "role"), None),
            max_enrollments=i["max_enrollments"],
        )
        for i in client.identities(load_registrar(layout, org, registrar))
    ]
    result = Listed(ca_name=client.ca_name, identities=rows)
    if output_state.json:
        emit_json(result)
        return
    from rich.table import Table

    table = Table("id", "type", "affiliation", "role", "max enrollments")
    for row in rows:
        table.add_row(row.id, row.type, row.affiliation, row.role or "", str(row.max_enrollments))
    stdout().print(table)


def _secret(secret_file: Path | None) -> str:
    if secret_file is not None:
        try:
            secret = secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InvalidArgument(f"cannot read {secret_file}: {exc.strerror}") from None
    else:
        secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        raise InvalidArgument(f"give the enrolment secret with --secret-file or ${SECRET_ENV}")
    return secret
