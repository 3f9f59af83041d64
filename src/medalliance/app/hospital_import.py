"""Where a hospital's clinical store lives in a network folder, and importing a FHIR bundle into
it with the alliance's pseudonyms (the use case behind `medalliance hospital import`).

The store is `DIR/hospitals/<MSP id>.db` (the file the demo has always used), unless the
organisation's config names `hospital_database`, or the caller passes a URL. On PostgreSQL each
hospital keeps its tables in the schema `hospital_<msp id>`, so hospitals may share a database.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from medalliance.app.alliance_network import GatewayAlliance
from medalliance.app.pseudonyms import pseudonym_client
from medalliance.database_url import DatabaseUrl, parse_database_url, schema_name
from medalliance.errors import InvalidArgument, NotFound, Unavailable
from medalliance.hospital.bundle_import import ImportReport, import_bundle
from medalliance.hospital.clinical_store import ClinicalStore
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.config import HOSPITAL_TYPES

__all__ = ["default_user", "hospital_store_url", "import_bundle_file", "open_hospital_store"]


def hospital_store_url(
    layout: NetworkLayout, org: str, db: str | None = None
) -> tuple[DatabaseUrl, str]:
    """(database URL, PostgreSQL schema) of `org`'s clinical store. Raises `InvalidArgument`
    for an organisation that is not a hospital, `ConfigError` for an unknown one."""
    organization = layout.config.organization(org)
    if organization.type not in HOSPITAL_TYPES:
        raise InvalidArgument(
            f"{organization.name} is a {organization.type} organisation, not a hospital; "
            "the hospital commands need a tertiary or secondary hospital's --org"
        )
    text = db or organization.hospital_database
    if text:
        url = parse_database_url(text, base=layout.directory)
    else:
        url = DatabaseUrl(
            "sqlite", path=layout.directory / "hospitals" / f"{organization.msp_id}.db"
        )
    return url, schema_name("hospital", organization.msp_id)


def open_hospital_store(layout: NetworkLayout, org: str, db: str | None = None) -> ClinicalStore:
    """`org`'s clinical store, opened (created if absent); the caller closes it."""
    url, schema = hospital_store_url(layout, org, db)
    return ClinicalStore.open(url, schema=schema)


def default_user(layout: NetworkLayout, org: str) -> str:
    """The user a hospital command acts as without `--as`: the organisation's first configured
    user, else `User1` (which `network init` always creates)."""
    users = layout.config.organization(org).users
    return users[0].name if users else "User1"


def import_bundle_file(
    layout: NetworkLayout,
    org: str,
    user: str,
    path: Path,
    *,
    db: str | None = None,
    skip_invalid: bool = False,
    channel: str = "alliance",
) -> ImportReport:
    """Import the bundle in `path` into `org`'s store as `user`, pseudonyms from the regulator's
    pseudonym service over the running network. Nothing is imported when it raises:
    `InvalidResource` (every issue), `InvalidArgument`, `NotFound` (no such file), or
    `Unavailable` (the network or its pseudonym service is not running)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no file {path}") from None
    url, schema = hospital_store_url(layout, org, db)
    msp_id = layout.config.organization(org).msp_id
    with closing(ClinicalStore.open(url, schema=schema)) as store:
        network = GatewayAlliance(layout.directory, channel)
        # Answers are cached beside the patients, as records of the store (either backend).
        client = pseudonym_client(network, msp_id, user, store)
        try:
            return import_bundle(
                store,
                data,
                pseudonym=client.pseudonym,
                skip_invalid=skip_invalid,
                source=f"import:{path.name}",
            )
        except Unavailable as exc:
            raise Unavailable(
                f"cannot reach the pseudonym service, so nothing was imported ({exc}); is the "
                f"network running? Start it with `medalliance network up --dir {layout.directory}`"
            ) from exc
        finally:
            client.close()
            network.close()
