"""Private data collections between peer processes: two methods of `medalliance.PrivateData`.

JSON messages over gRPC (mutual TLS), like the service's other methods (docs/privacy.md §4):
every call is `{request, signature, ...}`, the request `{purpose, channel, txId, ...,
identity, timestampMs}` signed by a peer of a channel member, verified against the channel's
MSPs within the time window of private data requests; a signature is bound to its purpose.

- `PushCollection` (purpose `pushCollection`, plus `rwsetSha256`; the message carries `rwset`):
  an endorsing peer offers a private set before its transaction commits. Kept only for
  collections both organisations are members of (`Peer.receive_private`); `{"held": bool}`.
- `FetchCollection` (purpose `fetchCollection`, plus `namespace` and `collection`): a committed
  collection set for reconciliation, answered only to member organisations; `{"rwset": b64}`,
  NOT_FOUND otherwise.

`CollectionLink` is the calling side: the endorsing peer's pushes and a member's fetches, with
the same rules as the embedded network's link (`private_dissemination`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from medalliance.errors import InvalidArgument, MedallianceError, NotFound, PermissionDenied
from medalliance.ledger.tx import SigningIdentity, outside_time_window
from medalliance.network.tls import NodeTls
from medalliance.node.peer import Peer
from medalliance.node.private_data import _b64, _parse
from medalliance.node.private_dissemination import (
    Pushed,
    candidates,
    check_required,
    gaps_to_fill,
    push_parts,
)

log = logging.getLogger(__name__)

SERVICE = "medalliance.PrivateData"
CALL_TIMEOUT_S = 5.0


def _raw(data: bytes) -> bytes:
    return data


class CollectionService:
    """The serving side, for one peer."""

    def __init__(self, peer: Peer, now: Callable[[], dt.datetime]) -> None:
        self._peer = peer
        self._now = now

    def handler(self) -> grpc.GenericRpcHandler:
        methods = {
            "PushCollection": grpc.unary_unary_rpc_method_handler(
                self._push_rpc, request_deserializer=_raw, response_serializer=_raw
            ),
            "FetchCollection": grpc.unary_unary_rpc_method_handler(
                self._fetch_rpc, request_deserializer=_raw, response_serializer=_raw
            ),
        }
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    async def _push_rpc(self, data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await _answer(context, lambda: self.push(data))

    async def _fetch_rpc(self, data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await _answer(context, lambda: self.fetch(data))

    def push(self, data: bytes) -> dict[str, Any]:
        message = _parse(data)
        request, org = self._verified(message, "pushCollection")
        rwset = _b64(message.get("rwset"))
        if request.get("rwsetSha256") != hashlib.sha256(rwset).hexdigest():
            raise InvalidArgument("the pushed set is not the one the request signature covers")
        held = self._peer.receive_private(request["channel"], org, request["txId"], rwset)
        return {"held": held}

    def fetch(self, data: bytes) -> dict[str, Any]:
        request, org = self._verified(_parse(data), "fetchCollection")
        found = self._peer.serve_private(
            request["channel"],
            org,
            request["txId"],
            str(request.get("namespace", "")),
            str(request.get("collection", "")),
        )
        if found is None:
            raise NotFound("no committed private data of that collection for your organisation")
        log.info(
            "collection data served",
            extra={"tx_id": request["txId"], "collection": request.get("collection"), "to": org},
        )
        return {"rwset": base64.b64encode(found).decode()}

    def _verified(self, message: dict[str, Any], purpose: str) -> tuple[dict[str, Any], str]:
        """A request signed for `purpose` by an identity valid on its channel; its organisation."""
        raw, signature = _b64(message.get("request")), _b64(message.get("signature"))
        try:
            request = json.loads(raw)
            signed_for = request["purpose"]
            identity = base64.b64decode(request["identity"], validate=True)
            timestamp_ms = int(request["timestampMs"])
            request["channel"], request["txId"] = str(request["channel"]), str(request["txId"])
        except (ValueError, KeyError, TypeError):
            raise InvalidArgument(
                "malformed collection request: it needs purpose, channel, txId, identity, "
                "timestampMs and a signature"
            ) from None
        if signed_for != purpose:
            raise InvalidArgument(f"this call needs a request signed for {purpose!r}")
        now = self._now()
        if outside_time_window(timestamp_ms, now):
            raise PermissionDenied(
                "request timestamp is more than 15 minutes from the peer's clock"
            )
        config = self._peer.channel(request["channel"]).config
        try:
            creator = config.msps.deserialize(identity, at=now)
        except MedallianceError as exc:
            raise PermissionDenied(f"the request's identity is not valid: {exc}") from None
        if not creator.verify(signature, raw):
            raise PermissionDenied("the request signature does not verify")
        return request, creator.msp_id


class CollectionLink:
    """The calling side: pushes at endorsement and fetches for reconciliation, over mutual TLS
    to other organisations' peers (`peers`: MSP id -> [(TLS host name, endpoint)])."""

    def __init__(
        self,
        peer: Peer,
        tls: NodeTls,
        signer: SigningIdentity,
        peers: Callable[[], Mapping[str, list[tuple[str, str]]]],
        now: Callable[[], dt.datetime],
    ) -> None:
        self._peer = peer
        self._tls = tls
        self._signer = signer
        self._peers = peers
        self._now = now
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def disseminate(self, channel_id: str, tx_id: str, pvt_rwset: bytes) -> list[Pushed]:
        """`private_dissemination.disseminate` over gRPC."""
        channel = self._peer.channel(channel_id)
        pushed = []
        for collection, _, part in push_parts(channel, self._peer.msp_id, tx_id, pvt_rwset):
            request = self._signed(
                "pushCollection", channel_id, tx_id, rwsetSha256=hashlib.sha256(part).hexdigest()
            )
            message = {**request, "rwset": base64.b64encode(part).decode()}
            accepted: list[str] = []
            for host in candidates(collection, self._peer.msp_id, self._hosts):
                if len(accepted) >= collection.max_peer_count:
                    break
                try:
                    answer = await self._call(host, "PushCollection", message)
                except grpc.aio.AioRpcError as exc:
                    log.warning(
                        "private data push failed",
                        extra={"peer": host, "tx_id": tx_id, "reason": exc.code().name},
                    )
                    continue
                if answer.get("held") is True:
                    accepted.append(host)
            pushed.append(check_required(collection, accepted))
        return pushed

    async def reconcile(self, channel_id: str) -> int:
        """`private_dissemination.reconcile` over gRPC."""
        channel = self._peer.channel(channel_id)
        filled = 0
        for gap, hashed, collection in gaps_to_fill(channel):
            request = self._signed(
                "fetchCollection", channel_id, gap.tx_id,
                namespace=gap.namespace, collection=gap.collection,
            )  # fmt: skip
            for host in candidates(collection, self._peer.msp_id, self._hosts):
                try:
                    answer = await self._call(host, "FetchCollection", request)
                    data = _b64(answer.get("rwset"))
                except (grpc.aio.AioRpcError, InvalidArgument) as exc:
                    log.info(
                        "private data fetch failed",
                        extra={"peer": host, "tx_id": gap.tx_id, "error": type(exc).__name__},
                    )
                    continue
                store = channel.private
                if store is not None and store.reconcile(gap, data, hashed, collection):
                    filled += 1
                    break
        return filled

    def _hosts(self, msp_id: str) -> list[str]:
        return [host for host, _ in self._peers().get(msp_id, []) if host != self._peer.name]

    async def _call(self, host: str, method: str, message: dict[str, Any]) -> dict[str, Any]:
        org, endpoint = next(
            (org, e) for org, peers in self._peers().items() for h, e in peers if h == host
        )
        channel = self._channels.get(host)
        if channel is None:
            channel = self._channels[host] = self._tls.channel(endpoint, host, org)
        call = channel.unary_unary(
            f"/{SERVICE}/{method}", request_serializer=_raw, response_deserializer=_raw
        )
        answer: bytes = await call(json.dumps(message).encode(), timeout=CALL_TIMEOUT_S)
        return _parse(answer)

    def _signed(self, purpose: str, channel_id: str, tx_id: str, **fields: str) -> dict[str, str]:
        return signed_collection_request(
            self._signer, purpose, channel_id, tx_id, self._now(), **fields
        )

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


def signed_collection_request(
    signer: SigningIdentity,
    purpose: str,
    channel_id: str,
    tx_id: str,
    now: dt.datetime,
    **fields: str,
) -> dict[str, str]:
    """`{request, signature}` of a `PushCollection` or `FetchCollection` call."""
    raw = json.dumps(
        {
            **fields,
            "purpose": purpose,
            "channel": channel_id,
            "txId": tx_id,
            "identity": base64.b64encode(signer.serialized_identity).decode(),
            "timestampMs": int(now.timestamp() * 1000),
        },
        sort_keys=True,
    ).encode()
    return {
        "request": base64.b64encode(raw).decode(),
        "signature": base64.b64encode(signer.sign(raw)).decode(),
    }


async def _answer(context: grpc.aio.ServicerContext, call: Callable[[], dict[str, Any]]) -> bytes:
    try:
        result = call()
    except MedallianceError as exc:
        await context.abort(grpc.StatusCode[exc.status.grpc], str(exc))
        raise  # unreachable: abort raises
    return json.dumps(result).encode()
