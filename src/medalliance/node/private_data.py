"""Sealed packages travel peer to peer, only between organisations the ledger authorises.

`medalliance.PrivateData` on every peer (JSON messages over gRPC, docs/privacy.md §4). Every
call carries `{request, signature}`: a request `{purpose, recordId, version, identity,
timestampMs, ...}` signed by an identity (a peer or a user) of a member organisation, verified
against the records channel's MSPs (certificate chain and validity) within the time window of
private-data requests. Answers depend on committed state only:

- `Push` (purpose `push`, plus `bundleSha256` and `forward`; the message also carries `sealed`
  and `attachments`): keep a sealed package. The signer's organisation must be currently
  authorised for the record, the bundle must be the one signed for, and the package must match
  the ledger (`PackageHolding.keep`: digest, wrapped-key commitments, attachments). `forward` is
  honoured only for the peer's own organisation's applications: the peer then pushes the package
  — signed by itself — to one peer of every other authorised organisation; a miss is repaired
  by the receiver's `Get`.
- `Fetch` (purpose `fetch`): the package, only if the signer's organisation is currently
  authorised (a revoked organisation gets nothing more) and the record is not erased.
- `Get` (purpose `fetch`, from the organisation's own identities): the package from this peer's
  store, or — reconciliation — fetched from another authorised organisation's peer, verified
  against the ledger and kept.
- `Holds` (purpose `holds`, from the organisation's own identities): how many versions of a
  record the peer still holds; checked before the organisation files a deletion receipt.

A bundle is `{sealed, attachments}` (base64): the sealed package and its sealed attachments. The
ledger checks and the stores are `PackageHolding`'s, in the peer's `private/` folder.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import grpc

from medalliance.errors import (
    InvalidArgument,
    MedallianceError,
    NotFound,
    PermissionDenied,
)
from medalliance.ledger.tx import SigningIdentity, outside_time_window
from medalliance.network.tls import NodeTls
from medalliance.node.package_holding import Held, PackageHolding
from medalliance.node.served import ServedChannel
from medalliance.privacy.envelope import SealedPackage
from medalliance.privacy.record_ledger import CommittedVersion

log = logging.getLogger(__name__)

SERVICE = "medalliance.PrivateData"
CALL_TIMEOUT_S = 15.0
PUSH_ATTEMPTS = 4  # a receiver may commit the record's block a moment after the sender
PUSH_RETRY_S = 0.5


def _raw(data: bytes) -> bytes:
    return data


class PrivateDataService:
    """One peer's private data over gRPC: its holding, its links to other peers."""

    def __init__(
        self,
        *,
        msp_id: str,
        directory: Path,
        records_channel: str,
        channel: Callable[[str], ServedChannel],
        peers: Callable[[], Mapping[str, list[tuple[str, str]]]],
        tls: NodeTls,
        signer: SigningIdentity,
        now: Callable[[], dt.datetime],
    ) -> None:
        self._msp_id = msp_id
        self._records_channel = records_channel  # the channel whose `records` state decides
        self.holding = PackageHolding(msp_id, directory, lambda: channel(records_channel).state)
        self._channel = channel
        self._peers = peers  # msp_id -> [(host, endpoint)], other organisations' peers
        self._tls = tls
        self._signer = signer
        self._now = now
        self._channels: dict[str, grpc.aio.Channel] = {}

    def handler(self) -> grpc.GenericRpcHandler:
        methods = {
            name: grpc.unary_unary_rpc_method_handler(
                getattr(self, f"_{name.lower()}_rpc"),
                request_deserializer=_raw,
                response_serializer=_raw,
            )
            for name in ("Push", "Fetch", "Get", "Holds")
        }
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    def close(self) -> None:
        self.holding.close()

    # --- RPCs ------------------------------------------------------------------------------------

    async def _push_rpc(self, data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._answer(context, self._push, data)

    async def _fetch_rpc(self, data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._answer(context, self._fetch, data)

    async def _get_rpc(self, data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._answer(context, self._get, data)

    async def _holds_rpc(self, data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._answer(context, self._holds, data)

    async def _answer(
        self,
        context: grpc.aio.ServicerContext,
        call: Callable[[dict[str, Any]], Any],
        data: bytes,
    ) -> bytes:
        try:
            message = _parse(data)
            result: dict[str, Any] = await call(message)
        except MedallianceError as exc:
            await context.abort(grpc.StatusCode[exc.status.grpc], str(exc))
            raise  # unreachable: abort raises
        return json.dumps(result).encode()

    async def _push(self, message: dict[str, Any]) -> dict[str, Any]:
        request, org = self._signed(message, "push")
        held = _held(message)
        if request.get("bundleSha256") != bundle_sha256(held):
            raise InvalidArgument("the pushed bundle is not the one the request signature covers")
        package = SealedPackage.from_bytes(held.sealed)
        if (package.record_id, package.version) != (request["recordId"], request["version"]):
            raise InvalidArgument("the pushed package is not the record version the request names")
        entry = self.holding.committed(package.record_id, package.version)
        if org not in entry.authorised:
            raise PermissionDenied(
                f"{org} is not authorised for record {package.record_id}; it may not push it"
            )
        self.holding.keep(held)
        forwarded = []
        if request.get("forward") is True and org == self._msp_id:
            forwarded = await self._forward(package, held)
        return {"held": True, "forwardedTo": forwarded}

    async def _fetch(self, message: dict[str, Any]) -> dict[str, Any]:
        request, org = self._signed(message, "fetch")
        held = self.holding.serve(org, request["recordId"], request["version"])
        log.info(
            "private data served",
            extra={"record": request["recordId"], "version": request["version"], "to": org},
        )
        return _bundle(held)

    async def _get(self, message: dict[str, Any]) -> dict[str, Any]:
        request, org = self._signed(message, "fetch")
        if org != self._msp_id:
            raise PermissionDenied(f"this peer serves {self._msp_id}'s users; ask your own peer")
        record_id, version = request["recordId"], request["version"]
        try:
            return _bundle(self.holding.serve(org, record_id, version))
        except NotFound:
            entry = self.holding.committed(record_id, version)  # NotFound if not on the ledger
            return await self._reconcile(record_id, version, entry)

    async def _holds(self, message: dict[str, Any]) -> dict[str, Any]:
        """How many versions of a record this peer still holds: what an organisation checks
        before it files its deletion receipt. Answered to the organisation's own identities."""
        request, org = self._signed(message, "holds")
        if org != self._msp_id:
            raise PermissionDenied(f"this peer answers {self._msp_id}'s identities only")
        return {
            "recordId": request["recordId"],
            "versions": self.holding.versions_held(request["recordId"]),
        }

    # --- peer calls ------------------------------------------------------------------------------

    async def _forward(self, package: SealedPackage, held: Held) -> list[str]:
        entry = self.holding.committed(package.record_id, package.version)
        request = signed_push(self._signer, held, package, self._now(), forward=False)
        reached = []
        for org, peers in self._peers().items():
            if org == self._msp_id or org not in entry.authorised:
                continue
            for host, endpoint in peers:
                try:
                    await self._push_to(org, host, endpoint, request)
                except grpc.aio.AioRpcError as exc:
                    log.warning(
                        "private data push failed",
                        extra={
                            "record": package.record_id,
                            "peer": host,
                            "reason": exc.code().name,
                        },
                    )
                    continue
                reached.append(org)
                break
        return reached

    async def _push_to(self, org: str, host: str, endpoint: str, request: bytes) -> None:
        """One push; a peer that has not committed the record's block yet answers NOT_FOUND,
        so it is asked again a few times before reconciliation is left to repair the miss."""
        for attempt in range(PUSH_ATTEMPTS):
            try:
                await self._call(org, host, endpoint, "Push", request)
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND or attempt == PUSH_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(PUSH_RETRY_S)

    async def _reconcile(
        self, record_id: str, version: int, entry: CommittedVersion
    ) -> dict[str, Any]:
        request = self._sign_request(record_id, version)
        for org, peers in self._peers().items():
            if org == self._msp_id or org not in entry.authorised:
                continue
            for host, endpoint in peers:
                try:
                    answer = await self._call(org, host, endpoint, "Fetch", request)
                    self.holding.keep(_held(_parse(answer)))
                except (grpc.aio.AioRpcError, MedallianceError, ValueError, KeyError) as exc:
                    log.warning(
                        "private data fetch failed",
                        extra={"record": record_id, "peer": host, "reason": type(exc).__name__},
                    )
                    continue
                return _bundle(self.holding.get(entry))
        raise NotFound(f"no authorised peer could provide version {version} of record {record_id}")

    async def _call(self, org: str, host: str, endpoint: str, method: str, request: bytes) -> bytes:
        """One call to another organisation's peer. A push fails fast (reconciliation repairs
        a miss); a fetch waits for a peer that is reconnecting."""
        channel = self._channels.get(host)
        if channel is None:
            channel = self._channels[host] = self._tls.channel(endpoint, host, org)
        call = channel.unary_unary(
            f"/{SERVICE}/{method}", request_serializer=_raw, response_deserializer=_raw
        )
        answer: bytes = await call(
            request, timeout=CALL_TIMEOUT_S, wait_for_ready=method == "Fetch"
        )
        return answer

    def _sign_request(self, record_id: str, version: int) -> bytes:
        return signed_request(self._signer, record_id, version, self._now())

    def _signed(self, message: dict[str, Any], purpose: str) -> tuple[dict[str, Any], str]:
        """A verified signed request for `purpose` and its signer's organisation."""
        if "request" not in message or "signature" not in message:
            raise PermissionDenied(
                "private data requests must be signed by an identity of an authorised "
                "organisation: send {request, signature}"
            )
        raw, signature = _b64(message.get("request")), _b64(message.get("signature"))
        try:
            request = json.loads(raw)
            signed_for = request.get("purpose", "fetch")  # AttributeError: not an object
            identity = base64.b64decode(request["identity"], validate=True)
            timestamp_ms = int(request["timestampMs"])
            request["recordId"], request["version"] = (
                str(request["recordId"]),
                int(request["version"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidArgument(
                "malformed private data request: it needs recordId, version, identity, "
                "timestampMs and a signature"
            ) from None
        if signed_for != purpose:
            # A signature is bound to its purpose: a signed fetch cannot be replayed as a push.
            raise InvalidArgument(f"this call needs a request signed for {purpose!r}")
        if outside_time_window(timestamp_ms, self._now()):
            raise PermissionDenied(
                "request timestamp is more than 15 minutes from the peer's clock; check your clock"
            )
        config = self._channel(self._records_channel).config
        try:
            creator = config.msps.deserialize(identity, at=self._now())
        except MedallianceError as exc:
            raise PermissionDenied(
                f"the request's identity is not valid on channel {self._records_channel}: {exc}"
            ) from None
        if not creator.verify(signature, raw):
            raise PermissionDenied("the request signature does not verify")
        return request, creator.msp_id


def signed_request(
    signer: SigningIdentity,
    record_id: str,
    version: int,
    now: dt.datetime,
    purpose: str = "fetch",
) -> bytes:
    """A `Fetch`/`Get` (or, with purpose `holds` and version 0, `Holds`) request body signed
    by `signer`."""
    return json.dumps(_signed_fields(signer, now, purpose=purpose, recordId=record_id,
                                     version=version)).encode()  # fmt: skip


def signed_push(
    signer: SigningIdentity,
    held: Held,
    package: SealedPackage,
    now: dt.datetime,
    *,
    forward: bool,
) -> bytes:
    """A `Push` message for `held` (whose sealed package is `package`), signed by `signer`;
    `forward` asks the signer's own organisation's peer to pass it on."""
    fields = _signed_fields(
        signer,
        now,
        purpose="push",
        recordId=package.record_id,
        version=package.version,
        bundleSha256=bundle_sha256(held),
        forward=forward,
    )
    return json.dumps({**fields, **_bundle(held)}).encode()


def bundle_sha256(held: Held) -> str:
    """Hex SHA-256 naming a bundle's exact bytes (package and attachments, in order)."""
    parts = [hashlib.sha256(held.sealed).hexdigest()]
    parts += [hashlib.sha256(a).hexdigest() for a in held.attachments]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _signed_fields(signer: SigningIdentity, now: dt.datetime, **fields: object) -> dict[str, str]:
    raw = json.dumps(
        {
            **fields,
            "identity": base64.b64encode(signer.serialized_identity).decode(),
            "timestampMs": int(now.timestamp() * 1000),
        },
        sort_keys=True,
    ).encode()
    return {
        "request": base64.b64encode(raw).decode(),
        "signature": base64.b64encode(signer.sign(raw)).decode(),
    }


def _held(bundle: dict[str, Any]) -> Held:
    attachments = bundle.get("attachments", [])
    if not isinstance(attachments, list):
        raise InvalidArgument("attachments is a list of base64 strings")
    return Held(_b64(bundle.get("sealed")), tuple(_b64(a) for a in attachments))


def _bundle(held: Held) -> dict[str, Any]:
    return {
        "sealed": base64.b64encode(held.sealed).decode(),
        "attachments": [base64.b64encode(a).decode() for a in held.attachments],
    }


def _parse(data: bytes) -> dict[str, Any]:
    try:
        message = json.loads(data)
    except ValueError:
        raise InvalidArgument("a private data message is a JSON object") from None
    if not isinstance(message, dict):
        raise InvalidArgument("a private data message is a JSON object")
    return message


def _b64(value: object) -> bytes:
    if not isinstance(value, str):
        raise InvalidArgument("expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise InvalidArgument("expected a base64 string") from None
