"""What a gateway's networks and contracts share: the stubs, the signer and the default deadline.

Also the client's only sources of randomness and time (nonces, timestamps), kept here so the
message builders in `sdk.messages` stay pure.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from fabric_protos.gateway import gateway_pb2_grpc
from fabric_protos.peer import events_pb2_grpc

from medalliance.ledger.tx import SigningIdentity
from medalliance.sdk.messages import NONCE_BYTES


@dataclass(frozen=True, slots=True)
class Client:
    """One connection to a gateway peer as one identity.

    `timeout_seconds` bounds every unary call unless the call passes its own; `tls_cert_hash` is
    the SHA-256 of the client's TLS certificate under mutual TLS, else empty.
    """

    gateway: gateway_pb2_grpc.GatewayStub = field(repr=False)
    deliver: events_pb2_grpc.DeliverStub = field(repr=False)
    signer: SigningIdentity = field(repr=False)
    timeout_seconds: float
    tls_cert_hash: bytes = b""

    def deadline(self, timeout: float | None) -> float:
        """The timeout of one call: its own, or the gateway's."""
        return self.timeout_seconds if timeout is None else timeout


def new_nonce() -> bytes:
    """A fresh proposal nonce; unpredictable, so a transaction id cannot be guessed or replayed."""
    return secrets.token_bytes(NONCE_BYTES)


def now_ms() -> int:
    """Wall-clock time in milliseconds, the precision of Fabric clients' header timestamps."""
    return time.time_ns() // 1_000_000
