"""Seal and open clinical packages as an organisation of a network (docs/privacy.md §4).

The recipients of a package are the writing organisation, the organisations it names, and the
writer's supervising regulator (from the network config, never from the caller); each
recipient's encryption certificate is verified against its CA before its key is used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from medalliance.node.bootstrap import NetworkLayout
from medalliance.privacy.envelope import SealedPackage, open_package, seal
from medalliance.privacy.keys import EncryptionKeyring, recipient_key


def recipients_for(layout: NetworkLayout, writer: str, named: Sequence[str]) -> list[str]:
    """MSP ids that may read a package `writer` seals for `named` organisations."""
    config = layout.config
    owner = config.organization(writer)
    orgs = {owner.msp_id, *(config.organization(n).msp_id for n in named)}
    if owner.regulator:
        orgs.add(config.organization(owner.regulator).msp_id)
    return sorted(orgs)


def seal_package(
    layout: NetworkLayout,
    writer: str,
    named: Sequence[str],
    plaintext: bytes,
    *,
    record_id: str,
    version: int,
    now: dt.datetime,
) -> SealedPackage:
    keys = [
        recipient_key(layout.org_msp_dir(msp_id), msp_id, now)
        for msp_id in recipients_for(layout, writer, named)
    ]
    return seal(plaintext, record_id=record_id, version=version, recipients=keys)


def open_as(layout: NetworkLayout, reader: str, package: SealedPackage) -> bytes:
    """The plaintext, if `reader` is a recipient and holds its key; typed errors otherwise."""
    msp_id = layout.config.organization(reader).msp_id
    keyring = EncryptionKeyring.load(layout.org_dir(msp_id), msp_id)
    return open_package(package, msp_id, keyring.private_keys)
