"""Seal and open clinical packages as an organisation of a network (docs/privacy.md §4).

The recipients of a package are the writing organisation, the organisations it names, and the
writer's supervising regulator (from the network config, never from the caller); each
recipient's encryption certificate is verified against its CA before its key is used.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import grpc

from medalliance.alliance.records import RecordsContract
from medalliance.app.peer_commits import wait_for_block
from medalliance.app.session import connect_as, contract_refusal, own_peer, user_signer
from medalliance.errors import NotFound, PreconditionFailed
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.package_holding import Held
from medalliance.node.private_data import SERVICE, signed_push, signed_request
from medalliance.privacy.attachments import (
    AttachmentRef,
    bundle,
    open_attachment,
    safe_name,
    seal_attachment,
    unbundle,
)
from medalliance.privacy.documents import address_of
from medalliance.privacy.envelope import SealedPackage, add_recipients, open_package, seal
from medalliance.privacy.keys import EncryptionKeyring, recipient_key
from medalliance.privacy.private_store import PrivateStore
from medalliance.sdk.errors import CommitError, GatewayError, gateway_error


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
    attachments: Sequence[tuple[str, bytes]] = (),
) -> tuple[SealedPackage, list[bytes]]:
    """The sealed package (a bundle of the clinical data and the attachments' keys) and the
    attachments' ciphertexts, for the document store."""
    keys = [
        recipient_key(layout.org_msp_dir(msp_id), msp_id, now)
        for msp_id in recipients_for(layout, writer, named)
    ]
    refs, ciphertexts = [], []
    for index, (name, data) in enumerate(attachments):
        ciphertext, key = seal_attachment(data, record_id=record_id, version=version, index=index)
        refs.append(AttachmentRef(safe_name(name), address_of(ciphertext), key))
        ciphertexts.append(ciphertext)
    plaintext = bundle(plaintext, refs)
    package = seal(plaintext, record_id=record_id, version=version, recipients=keys)
    return package, ciphertexts


def open_as(
    layout: NetworkLayout,
    reader: str,
    package: SealedPackage,
    ciphertexts: Sequence[bytes] = (),
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The clinical data and the (name, content) of each attachment, if `reader` is a
    recipient and holds its key; typed errors otherwise."""
    msp_id = layout.config.organization(reader).msp_id
    keyring = EncryptionKeyring.load(layout.org_dir(msp_id), msp_id)
    data, refs = unbundle(open_package(package, msp_id, keyring.private_keys))
    by_address = {address_of(c): c for c in ciphertexts}
    opened = []
    for index, ref in enumerate(refs):
        if ref.address not in by_address:
            raise NotFound(f"attachment {ref.name} of record {package.record_id} is missing")
        content = open_attachment(
            by_address[ref.address],
            ref.key,
            record_id=package.record_id,
            version=package.version,
            index=index,
        )
        opened.append((ref.name, content))
    return data, opened


def _peer_channel(layout: NetworkLayout, org: str) -> grpc.Channel:
    """A TLS channel to the organisation's first peer, as its applications connect."""
    endpoint, tls_ca, server_name = own_peer(layout, org)
    return grpc.secure_channel(
        endpoint,
        grpc.ssl_channel_credentials(tls_ca),
        options=[("grpc.ssl_target_name_override", server_name)],
    )


def _call(channel: grpc.Channel, method: str, request: bytes) -> dict[str, Any]:
    call = channel.unary_unary(
        f"/{SERVICE}/{method}", request_serializer=None, response_deserializer=None
    )
    try:
        answer: bytes = call(request, timeout=30)
    except grpc.RpcError as exc:
        raise gateway_error(exc) from None
    result: dict[str, Any] = json.loads(answer)
    return result


def share(
    layout: NetworkLayout,
    org: str,
    user: str,
    channel_id: str,
    package: SealedPackage,
    patient_ref: str,
    attachments: Sequence[bytes] = (),
) -> dict[str, Any]:
    """Register version 1 of a record on the ledger, then hand the package to the
    organisation's peer, which keeps it and pushes it to the other authorised organisations."""
    _, tx_id, block = records_submit(
        layout,
        org,
        user,
        channel_id,
        "RegisterRecord",
        package.record_id,
        patient_ref,
        package.digest,
        json.dumps([address_of(a) for a in attachments]),
        json.dumps(package.key_commitments, sort_keys=True),
    )
    pushed = push_bundle(layout, org, Held(package.to_bytes(), tuple(attachments)), user)
    return {**pushed, "tx_id": tx_id, "block_number": block}


def push_bundle(layout: NetworkLayout, org: str, held: Held, user: str = "User1") -> dict[str, Any]:
    """Hand a sealed package and its attachments to the organisation's peer, signed by `user`
    of `org`; the peer keeps them (if the ledger agrees) and pushes them to the other
    authorised organisations."""
    signer = user_signer(layout, org, user)
    package = SealedPackage.from_bytes(held.sealed)
    request = signed_push(signer, held, package, dt.datetime.now(dt.UTC), forward=True)
    with _peer_channel(layout, org) as channel:
        return _call(channel, "Push", request)


def get_bundle(layout: NetworkLayout, org: str, user: str, record_id: str, version: int) -> Held:
    """A version from the organisation's peer (which reconciles a miss from another holder)."""
    signer = user_signer(layout, org, user)
    with _peer_channel(layout, org) as channel:
        answer = _call(
            channel, "Get", signed_request(signer, record_id, version, dt.datetime.now(dt.UTC))
        )
    return Held(
        base64.b64decode(answer["sealed"]),
        tuple(base64.b64decode(a) for a in answer.get("attachments", [])),
    )


def fetch(
    layout: NetworkLayout, org: str, user: str, channel_id: str, record_id: str, version: int
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Get a package through the organisation's peer, open it, and log the access on the
    ledger for the regulator."""
    held = get_bundle(layout, org, user, record_id, version)
    opened = open_as(layout, org, SealedPackage.from_bytes(held.sealed), held.attachments)
    with connect_as(layout, org, user) as gateway:
        records = gateway.get_network(channel_id).get_contract(RecordsContract.name)
        records.submit_transaction("LogAccess", record_id, str(version), "decrypt")
    return opened


def records_call(
    layout: NetworkLayout, org: str, user: str, channel_id: str, function: str, *args: str
) -> Any:
    """Submit (or, for queries, evaluate) a `records` contract function; its JSON result."""
    with connect_as(layout, org, user) as gateway:
        records = gateway.get_network(channel_id).get_contract(RecordsContract.name)
        if function in ("AccessLog", "ErasureReceipts", "GetErasure", "GetRecord", "GetVersion"):
            return json.loads(records.evaluate_transaction(function, *args))
        return json.loads(records.submit_transaction(function, *args))


def records_submit(
    layout: NetworkLayout, org: str, user: str, channel_id: str, function: str, *args: str
) -> tuple[Any, str, int]:
    """Submit a `records` contract function and wait for its commit: its JSON result, the
    transaction id and the block (`CommitError` if the transaction was invalidated)."""
    with connect_as(layout, org, user) as gateway:
        records = gateway.get_network(channel_id).get_contract(RecordsContract.name)
        try:
            submitted = records.submit_async(function, arguments=list(args))
        except GatewayError as exc:
            raise contract_refusal(exc) from None
        status = submitted.get_status()
        # The next step (a grant's recipient fetching, an erasure's approval) is often another
        # organisation's, on its own peer.
        wait_for_block(layout, channel_id, status.block_number)
        if not status.successful:
            raise CommitError(status.code, submitted.transaction_id)
        result = json.loads(submitted.result) if submitted.result else None
        return result, submitted.transaction_id, status.block_number


def grant(
    layout: NetworkLayout, org: str, user: str, channel_id: str, record_id: str, to: str
) -> dict[str, Any]:
    """Authorise `to` on the ledger, wrap the latest version's data key for it (the ciphertext
    and its digest stay), and push the re-wrapped package to every authorised organisation."""
    record = records_call(layout, org, user, channel_id, "GetRecord", record_id)
    version = int(record["version"])
    msp_id = layout.config.organization(org).msp_id
    target = layout.config.organization(to).msp_id
    held = get_bundle(layout, org, user, record_id, version)
    keyring = EncryptionKeyring.load(layout.org_dir(msp_id), msp_id)
    key = recipient_key(layout.org_msp_dir(target), target, dt.datetime.now(dt.UTC))
    package = SealedPackage.from_bytes(held.sealed)
    rewrapped = add_recipients(package, msp_id, keyring.private_keys, [key])
    commitment = rewrapped.key_commitments[target]
    granted, tx_id, block = records_submit(
        layout, org, user, channel_id, "GrantWithKey", record_id, target, commitment
    )
    push_bundle(layout, org, Held(rewrapped.to_bytes(), held.attachments), user)
    return {**granted, "tx_id": tx_id, "block_number": block}


def confirm_erasure(
    layout: NetworkLayout, org: str, user: str, channel_id: str, patient_ref: str
) -> dict[str, Any]:
    """File the organisation's signed deletion receipts for an approved erasure.

    For each erased record the organisation held and has not confirmed yet, its own peer is
    asked (a signed `Holds`) how many versions it still holds; only at zero is the receipt
    (`ConfirmErasure`, signed by `user` of `org`) submitted. `PreconditionFailed` while the
    peer still holds a copy (it has not committed the erasure yet: ask again). Returns
    `{confirmed: [...], already: [...]}`.
    """
    msp_id = layout.config.organization(org).msp_id
    receipts = records_call(layout, org, user, channel_id, "ErasureReceipts", patient_ref)
    if receipts["status"] != "APPROVED":
        raise PreconditionFailed(f"the erasure is {receipts['status']}, not approved")
    due = [r for r, e in sorted(receipts["records"].items()) if msp_id in e["pending"]]
    already = [r for r, e in sorted(receipts["records"].items()) if msp_id in e["confirmed"]]
    for record_id in due:
        held = versions_held(layout, org, user, record_id)
        if held:
            raise PreconditionFailed(
                f"{msp_id}'s peer still holds {held} version(s) of record {record_id}; "
                "wait until it has committed the erasure, then confirm again"
            )
    for record_id in due:
        records_call(layout, org, user, channel_id, "ConfirmErasure", record_id)
    return {"confirmed": due, "already": already}


def versions_held(layout: NetworkLayout, org: str, user: str, record_id: str) -> int:
    """How many versions of a record the organisation's own peer still holds (signed `Holds`)."""
    signer = user_signer(layout, org, user)
    request = signed_request(signer, record_id, 0, dt.datetime.now(dt.UTC), "holds")
    with _peer_channel(layout, org) as channel:
        return int(_call(channel, "Holds", request)["versions"])


def erasure_holders(receipts: dict[str, Any]) -> dict[str, str]:
    """Per holder organisation, from the ledger's deletion receipts (`ErasureReceipts`):
    `confirmed` once it filed a receipt for every erased record it held, else `pending`."""
    holders: dict[str, str] = {}
    for entry in receipts["records"].values():
        for org in entry["confirmed"]:
            holders.setdefault(org, "confirmed")
        for org in entry["pending"]:
            holders[org] = "pending"
    return dict(sorted(holders.items()))


def copies_left(layout: NetworkLayout, record_ids: Sequence[str]) -> dict[str, int]:
    """Per node folder on this machine: how many versions of these records its private store
    still holds (what `privacy erase --check` reports; all zero after an erasure)."""
    found = {}
    for store_path in sorted((layout.directory / "nodes").glob("*/private/packages.db")):
        store = PrivateStore.open(store_path)
        try:
            found[store_path.parent.parent.name] = sum(len(store.versions(r)) for r in record_ids)
        finally:
            store.close()
    return found
