"""`discovery.Discovery/Discover` on a peer: the thin gRPC shell around gateway/discovery.py.

It takes the request as raw bytes (so malformed bytes are an INVALID_ARGUMENT that says so, not
a framework error), the client's TLS certificate from the connection, asks the hosting node for
what it knows (`knowledge`, which may refresh other peers' heights first) and the time, and
returns the core's answer. A request refused as a whole ends the call with its error's status;
everything else is a per-query result.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Awaitable, Callable

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fabric_protos.discovery import protocol_pb2 as discovery_pb2

from medalliance.errors import MedallianceError
from medalliance.gateway.discovery import (
    PeerKnowledge,
    check_tls_binding,
    discover,
    parse_signed_request,
)
from medalliance.gateway.errors import RpcFailure, abort

log = logging.getLogger(__name__)

SERVICE = "discovery.Discovery"


class DiscoveryService:
    """Fabric's discovery service of one peer; `handler()` registers it on a gRPC server."""

    def __init__(
        self,
        knowledge: Callable[[], Awaitable[PeerKnowledge]],
        now: Callable[[], dt.datetime],
    ) -> None:
        self._knowledge = knowledge
        self._now = now

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Discover": grpc.unary_unary_rpc_method_handler(
                    self.Discover,
                    request_deserializer=None,  # raw bytes: parsed by the core
                    response_serializer=discovery_pb2.Response.SerializeToString,
                )
            },
        )

    async def Discover(
        self, data: bytes, context: grpc.aio.ServicerContext
    ) -> discovery_pb2.Response:
        try:
            signed, request = parse_signed_request(data)
            check_tls_binding(request, _client_cert_hash(context))
        except MedallianceError as exc:
            log.warning("discovery request refused", extra={"reason": str(exc)})
            await abort(context, RpcFailure.from_error(exc))
            raise
        knowledge = await self._knowledge()
        response = discover(signed, request, knowledge, now=self._now())
        errors = sum(1 for r in response.results if r.WhichOneof("result") == "error")
        log.debug("discovery answered", extra={"queries": len(response.results), "errors": errors})
        return response


def _client_cert_hash(context: grpc.aio.ServicerContext) -> bytes | None:
    """SHA-256 of the DER of the client's TLS certificate, as Fabric computes it; None when the
    client presented none."""
    pems = context.auth_context().get("x509_pem_cert")
    if not pems:
        return None
    cert = x509.load_pem_x509_certificate(pems[0])
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
